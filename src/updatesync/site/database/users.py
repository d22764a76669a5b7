"""Administrative users, their security roles and their API tokens (`SiteDatabase.users`).

Users and API tokens are global data: they are written at the top-level site and reach
every other site by database replication, each write stamped with the next replication
sequence number like a CI (`content.stamp`). Nothing is deleted: removing a user or
revoking a token writes `removed_at` / `revoked_at` (and a new sequence number), so the
removal replicates too. Login sessions are rows of `api_token` of kind 'session' without a
sequence number: they stay at the site that issued them.

Only hashes are stored (`security/access.py` makes them); a token is found by its id.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, select, update

from updatesync.site.database import schema as t
from updatesync.site.database.content import lock_sequence, stamp
from updatesync.site.database.models import TOKEN_API, TOKEN_SESSION, TokenRecord, UserRecord
from updatesync.site.database.store import SiteDatabaseError, SiteStore, now, read_time, utc


def user_from_row(row: Any) -> UserRecord:
    return UserRecord(
        name=row.name,
        role=row.role,
        password_hash=row.password_hash,
        created_at=read_time(row.created_at),  # type: ignore[arg-type]  # NOT NULL
        removed_at=read_time(row.removed_at),
    )


def token_from_row(row: Any) -> TokenRecord:
    return TokenRecord(
        token_id=row.token_id,
        user_name=row.user_name,
        kind=row.kind,
        secret_hash=row.secret_hash,
        created_at=read_time(row.created_at),  # type: ignore[arg-type]  # NOT NULL
        expires_at=read_time(row.expires_at),
        revoked_at=read_time(row.revoked_at),
    )


def _user_values(user: UserRecord) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "password_hash": user.password_hash,
        "created_at": user.created_at,
        "removed_at": user.removed_at,
    }


def _token_values(token: TokenRecord) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "user_name": token.user_name,
        "kind": token.kind,
        "secret_hash": token.secret_hash,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


# -- replication (used by `replication.py`, inside its transactions) ------------------------


def changed_after(
    conn: Connection, after: int, limit: int
) -> tuple[list[tuple[int, UserRecord]], list[tuple[int, TokenRecord]]]:
    """The users and API tokens written after sequence `after` (at most `limit` of each),
    with their sequence numbers, in sequence order."""
    u, k = t.site_user, t.api_token
    users = conn.execute(
        select(u).where(u.c.replication_seq > after).order_by(u.c.replication_seq).limit(limit)
    ).all()
    tokens = conn.execute(
        select(k)
        .where(k.c.replication_seq > after, k.c.kind == TOKEN_API)
        .order_by(k.c.replication_seq)
        .limit(limit)
    ).all()
    return (
        [(int(r.replication_seq), user_from_row(r)) for r in users],
        [(int(r.replication_seq), token_from_row(r)) for r in tokens],
    )


def apply_changes(
    conn: Connection, users: Iterable[UserRecord], tokens: Iterable[TokenRecord]
) -> int:
    """Upsert replicated users and API tokens, each taking this site's next sequence
    number (so this site can pass them on to its own children); unchanged rows are not
    rewritten. One statement per table and kind of write. Returns how many rows changed."""
    u, k = t.site_user, t.api_token
    by_name = {user.name: user for user in users}
    by_id = {token.token_id: token for token in tokens}
    if not by_name and not by_id:
        return 0
    lock_sequence(conn)  # before reading: no other writer acts on what we read
    held_users = {
        r.name: user_from_row(r) for r in conn.execute(select(u).where(u.c.name.in_(list(by_name))))
    }
    held_tokens = {
        r.token_id: token_from_row(r)
        for r in conn.execute(select(k).where(k.c.token_id.in_(list(by_id))))
    }
    user_rows = [
        (name in held_users, _user_values(user))
        for name, user in by_name.items()
        if held_users.get(name) != user
    ]
    token_rows = [
        (token_id in held_tokens, _token_values(token))
        for token_id, token in by_id.items()
        if held_tokens.get(token_id) != token
    ]
    stamp(conn, [values for _, values in (*user_rows, *token_rows)])
    _write(conn, u, "name", user_rows)
    _write(conn, k, "token_id", token_rows)
    return len(user_rows) + len(token_rows)


def _write(
    conn: Connection, table: Table, key: str, rows: list[tuple[bool, dict[str, Any]]]
) -> None:
    """Insert the new rows and rewrite the held ones (`(held, values)`), one statement each."""
    new = [values for held, values in rows if not held]
    changed = [
        {**{name: v for name, v in values.items() if name != key}, "b_key": values[key]}
        for held, values in rows
        if held
    ]
    if new:
        conn.execute(insert(table), new)
    if changed:
        conn.execute(update(table).where(table.c[key] == bindparam("b_key")), changed)


# -- the repository ---------------------------------------------------------------------------


class Users:
    """The users and tokens of a site database (`SiteDatabase.users`)."""

    def __init__(self, store: SiteStore) -> None:
        self._store = store

    # -- users -------------------------------------------------------------------------

    def add(
        self, name: str, role: str, password_hash: str | None, *, at: datetime | None = None
    ) -> UserRecord:
        """Add the user `name` (a removed user of that name comes back, with no token);
        `SiteDatabaseError` when an active user has that name."""
        u = t.site_user
        user = UserRecord(name, role, password_hash, utc(at or now(), f"user {name}"))
        values = _user_values(user)
        with self._store.begin() as conn:
            stamp(conn, [values])  # the counter's write lock first
            row = conn.execute(select(u).where(u.c.name == name)).first()
            if row is not None and row.removed_at is None:
                raise SiteDatabaseError(
                    f"user {name} exists already (security role {row.role}); remove it first "
                    "to add it again"
                )
            if row is None:
                conn.execute(insert(u).values(**values))
            else:
                conn.execute(update(u).where(u.c.name == name).values(**values))
        return user

    def set_password(self, name: str, password_hash: str) -> UserRecord | None:
        """Give the active user `name` a new password (its hash); it replicates like the
        user. None when there is no active user of that name."""
        u = t.site_user
        with self._store.begin() as conn:
            lock_sequence(conn)  # before reading
            active = u.c.removed_at.is_(None)
            if conn.execute(select(u.c.name).where(u.c.name == name, active)).first() is None:
                return None  # no number taken: the sequence keeps no hole
            values: dict[str, Any] = {"password_hash": password_hash}
            stamp(conn, [values])
            conn.execute(update(u).where(u.c.name == name).values(**values))
            row = conn.execute(select(u).where(u.c.name == name)).one()
        return user_from_row(row)

    def get(self, name: str) -> UserRecord | None:
        """The user `name`, removed or not; None when there never was one."""
        u = t.site_user
        with self._store.read() as conn:
            row = conn.execute(select(u).where(u.c.name == name)).first()
        return user_from_row(row) if row is not None else None

    def list(self) -> list[UserRecord]:
        """The active users, by name."""
        u = t.site_user
        with self._store.read() as conn:
            rows = conn.execute(select(u).where(u.c.removed_at.is_(None)).order_by(u.c.name))
            return [user_from_row(r) for r in rows]

    def count_ever(self) -> int:
        """How many users this database ever held (removed ones included)."""
        with self._store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.site_user)).scalar_one())

    def remove(self, name: str, *, at: datetime | None = None) -> UserRecord | None:
        """Remove the user `name` and revoke every token and session of it; None when there
        is no active user of that name."""
        when = utc(at or now(), f"removing user {name}")
        u, k = t.site_user, t.api_token
        with self._store.begin() as conn:
            lock_sequence(conn)  # before reading
            row = conn.execute(select(u).where(u.c.name == name, u.c.removed_at.is_(None))).first()
            if row is None:
                return None
            values = {"removed_at": when}
            stamp(conn, [values])
            conn.execute(update(u).where(u.c.name == name).values(**values))
            tokens = conn.execute(
                select(k.c.token_id, k.c.kind).where(
                    k.c.user_name == name, k.c.revoked_at.is_(None)
                )
            ).all()
            for token_id, kind in tokens:
                self._revoke(conn, token_id, kind, when)
            row = conn.execute(select(u).where(u.c.name == name)).one()
        return user_from_row(row)

    # -- tokens ------------------------------------------------------------------------

    def add_token(
        self,
        user: str,
        token_id: str,
        secret_hash: str,
        *,
        kind: str = TOKEN_API,
        expires_at: datetime | None = None,
        at: datetime | None = None,
    ) -> TokenRecord:
        """Store a token (its hash) of the active user `user`; an API token replicates, a
        session (`kind` 'session') does not."""
        if kind not in (TOKEN_API, TOKEN_SESSION):
            raise SiteDatabaseError(f"token kind {kind!r} is not 'api' or 'session'")
        token = TokenRecord(
            token_id,
            user,
            kind,
            secret_hash,
            utc(at or now(), f"token of {user}"),
            utc(expires_at, f"token of {user}") if expires_at is not None else None,
        )
        values = _token_values(token)
        u = t.site_user
        with self._store.begin() as conn:
            if kind == TOKEN_API:
                stamp(conn, [values])
            owner = conn.execute(
                select(u.c.name).where(u.c.name == user, u.c.removed_at.is_(None))
            ).first()
            if owner is None:
                raise SiteDatabaseError(
                    f"user {user} does not exist: add it first (`updatesync user add {user} "
                    "--role ROLE`)"
                )
            conn.execute(insert(t.api_token).values(**values))
        return token

    def token(self, token_id: str) -> tuple[TokenRecord, UserRecord] | None:
        """The token `token_id` with its user; None when either is unknown."""
        k, u = t.api_token, t.site_user
        with self._store.read() as conn:
            row = conn.execute(select(k).where(k.c.token_id == token_id)).first()
            if row is None:
                return None
            owner = conn.execute(select(u).where(u.c.name == row.user_name)).first()
        if owner is None:
            return None
        return token_from_row(row), user_from_row(owner)

    def tokens(self, user: str | None = None) -> list[TokenRecord]:
        """The API tokens not revoked (of `user` only, when given), oldest first."""
        k = t.api_token
        query = select(k).where(k.c.kind == TOKEN_API, k.c.revoked_at.is_(None))
        if user is not None:
            query = query.where(k.c.user_name == user)
        with self._store.read() as conn:
            rows = conn.execute(query.order_by(k.c.created_at, k.c.token_id))
            return [token_from_row(r) for r in rows]

    def revoke_token(self, token_id: str, *, at: datetime | None = None) -> TokenRecord | None:
        """Revoke the token (or session) `token_id`; None when there is no such token not
        revoked yet."""
        when = utc(at or now(), f"revoking token {token_id}")
        k = t.api_token
        with self._store.begin() as conn:
            lock_sequence(conn)  # before reading
            row = conn.execute(
                select(k).where(k.c.token_id == token_id, k.c.revoked_at.is_(None))
            ).first()
            if row is None:
                return None
            self._revoke(conn, token_id, row.kind, when)
            row = conn.execute(select(k).where(k.c.token_id == token_id)).one()
        return token_from_row(row)

    @staticmethod
    def _revoke(conn: Connection, token_id: str, kind: str, when: datetime) -> None:
        values: dict[str, Any] = {"revoked_at": when}
        if kind == TOKEN_API:
            stamp(conn, [values])
        k = t.api_token
        conn.execute(update(k).where(k.c.token_id == token_id).values(**values))
