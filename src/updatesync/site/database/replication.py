"""Database replication between sites (parent → child, SPEC sections 1 and 3), both sides.

Every write of a CI, a category, a user or an API token stamps the row with the database's
next replication sequence number (`content.py`, `users.py`). A parent answers
`changes(after, limit)` from one read snapshot; a child applies such a page with `apply()`
in one transaction that also records how far it got (its `replication_link` row), and
refuses a page that does not start where it stands. The health of each link
(ReplicationLinkStatus) is recorded by `record_check`, in the same transaction as the
site's `SMS_SUPSyncStatus` rows. The HTTP side and the puller are in
`site/replication/db_replication.py`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from updatesync.site.database import schema as t
from updatesync.site.database.content import (
    ContentUpdate,
    category_from_row,
    ci_from_row,
    source_from_row,
)
from updatesync.site.database.expiry import apply_deletions, deleted_after
from updatesync.site.database.localized import localized_by_update
from updatesync.site.database.models import (
    ContentChange,
    LinkStatus,
    ReplicationLink,
    ReplicationPage,
)
from updatesync.site.database.store import (
    SiteDatabaseError,
    SiteStore,
    normal_site_code,
    now,
    read_time,
    upsert,
    utc,
)
from updatesync.site.database.users import apply_changes, changed_after
from updatesync.site.database.wsus_config import read_subscription, write_subscription


def _link(row: Any) -> ReplicationLink:
    return ReplicationLink(
        parent_site=row.parent_site_code,
        applied_seq=int(row.applied_seq),
        replicated_versions={str(k): int(v) for k, v in (row.replicated_versions or {}).items()},
        status=LinkStatus(row.link_status),
        consecutive_failures=int(row.consecutive_failures),
        failing_since=read_time(row.failing_since),
        last_check_time=read_time(row.last_check_time),
        last_success_time=read_time(row.last_success_time),
        last_error_text=row.last_error_text,
    )


def _lock_link(conn: Connection, parent: str) -> None:
    """Create the link row if missing; writing first takes the write lock (SQLite) or the
    row lock (PostgreSQL) before anything is read."""
    link = t.replication_link
    upsert(
        conn,
        link,
        {"parent_site_code": parent},
        {},
        new={
            "applied_seq": 0,
            "replicated_versions": {},
            "link_status": int(LinkStatus.HEALTHY),
            "consecutive_failures": 0,
        },
    )


class Replication:
    """The replication sequence and links of a site database (`SiteDatabase.replication`)."""

    def __init__(self, store: SiteStore) -> None:
        self._store = store

    @property
    def _site_code(self) -> str:
        return self._store.site_code

    # -- the parent's side ---------------------------------------------------------------

    def head(self) -> int:
        """The highest replication sequence number given in this database (0: none yet)."""
        seq = t.replication_sequence
        with self._store.read() as conn:
            return int(conn.execute(select(seq.c.last_seq).where(seq.c.id == 1)).scalar_one())

    def changes(self, after: int, limit: int) -> ReplicationPage:
        """The categories and CIs written after sequence `after`, in sequence order, at most
        `limit` rows in all, with the head sequence and the update sources' content versions,
        all read from ONE snapshot (see `ReplicationPage`). At most 2 x `limit` rows are
        held while the page is cut."""
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise SiteDatabaseError(
                f"site {self._site_code}: replication changes after {after!r}: give a "
                "sequence number of 0 or more"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise SiteDatabaseError(
                f"site {self._site_code}: replication changes limited to {limit!r}: give 1 "
                "row or more"
            )
        cat, ci, seq, src = (
            t.category,
            t.configuration_item,
            t.replication_sequence,
            t.update_source,
        )
        with self._store.snapshot() as conn:
            head = int(conn.execute(select(seq.c.last_seq).where(seq.c.id == 1)).scalar_one())
            cat_rows = conn.execute(
                select(cat)
                .where(cat.c.replication_seq > after)
                .order_by(cat.c.replication_seq)
                .limit(limit)
            ).all()
            ci_rows = conn.execute(
                select(ci)
                .where(ci.c.replication_seq > after)
                .order_by(ci.c.replication_seq)
                .limit(limit)
            ).all()
            sources = tuple(
                source_from_row(r) for r in conn.execute(select(src).order_by(src.c.unique_id))
            )
            users, tokens = changed_after(conn, after, limit)
            deleted = deleted_after(conn, after, limit)
            held = read_subscription(conn, self._site_code)
            texts = localized_by_update(conn, [r.update_id for r in ci_rows])
        numbers = sorted(
            [r.replication_seq for r in (*cat_rows, *ci_rows)]
            + [n for n, _ in users]
            + [n for n, _ in tokens]
            + [n for n, _ in deleted]
        )[:limit]
        last = int(numbers[-1]) if numbers else after
        return ReplicationPage(
            site_code=self._site_code,
            after=after,
            last_seq=last,
            head_seq=head,
            categories=tuple(category_from_row(r) for r in cat_rows if r.replication_seq <= last),
            items=tuple(
                replace(ci_from_row(r), ci_id=None, localized=texts.get(r.update_id, ()))
                for r in ci_rows
                if r.replication_seq <= last
            ),
            update_sources=sources,
            users=tuple(user for n, user in users if n <= last),
            tokens=tuple(token for n, token in tokens if n <= last),
            deleted=tuple(uid for n, uid in deleted if n <= last),
            subscription=None if held is None else replace(held, changed_at=None),
        )

    # -- the child's side ----------------------------------------------------------------

    def apply(self, parent_site: str, page: ReplicationPage, *, at: datetime | None = None) -> int:
        """Apply a page of `parent_site`'s changes, in ONE transaction: its categories and CIs
        are upserted (by category id and update id; this site gives them its own CI ids and
        its own sequence numbers, so it can be the parent of another site in turn) and the
        link's `applied_seq` becomes `page.last_seq`; when the page reaches the parent's head,
        the parent's content versions are recorded as the replicated versions. A page that
        does not start at the link's `applied_seq` (stale, or a duplicate) is refused with
        `SiteDatabaseError` and nothing is written. The parent's subscription, when the page
        carries it, becomes this site's. Returns how many rows changed here."""
        parent = self._parent(parent_site)
        where = f"site {self._site_code}: replication page from {parent}"
        if normal_site_code(page.site_code) != parent:
            raise SiteDatabaseError(
                f"{where} was answered by site {page.site_code}: the parent's URL points at "
                "another site; fix the replication link's parent URL"
            )
        if not 0 <= page.after <= page.last_seq <= page.head_seq:
            raise SiteDatabaseError(
                f"{where} is inconsistent (after {page.after}, last {page.last_seq}, head "
                f"{page.head_seq}; a page needs after <= last <= head); it was not applied"
            )
        if (page.size == 0) != (page.last_seq == page.after):
            raise SiteDatabaseError(
                f"{where}: {page.size} rows between sequence {page.after} and {page.last_seq}; "
                "a page is empty exactly when it ends where it starts; it was not applied"
            )
        when = utc(at or now(), "replication")
        link = t.replication_link
        with self._store.begin() as conn:
            _lock_link(conn, parent)
            applied = conn.execute(
                select(link.c.applied_seq).where(link.c.parent_site_code == parent)
            ).scalar_one()
            if page.after != applied:
                raise SiteDatabaseError(
                    f"{where} starts after sequence {page.after}, but this site holds "
                    f"{parent}'s changes up to sequence {applied}: the page is stale or a "
                    f"duplicate and was not applied; ask {parent} for the changes after "
                    f"{applied}"
                )
            content = ContentUpdate(conn, ContentChange(f"replication from {parent}", 0), when)
            content.upsert_categories(page.categories)
            content.upsert_cis(replace(item, ci_id=None) for item in page.items)
            accounts = apply_changes(conn, page.users, page.tokens)
            # A deletion after a write of the same update in one page cannot happen: a CI
            # written again drops its deletion (expiry.py), so the page holds one of the two.
            removed = apply_deletions(conn, page.deleted, when)
            inherited = self._inherit_subscription(conn, page, when)
            values: dict[str, Any] = {"applied_seq": page.last_seq}
            if page.reaches_head:
                values["replicated_versions"] = {
                    s.unique_id.upper(): s.content_version for s in page.update_sources
                }
            conn.execute(update(link).where(link.c.parent_site_code == parent).values(**values))
        change = content.change
        return (
            change.inserted
            + change.updated
            + change.categories_changed
            + accounts
            + removed
            + inherited
        )

    def _inherit_subscription(self, conn: Connection, page: ReplicationPage, at: datetime) -> int:
        """The parent's subscription becomes this site's (criteria are set at the top-level
        site and inherited below); 1 when that changed it (its version rises, and the
        database monitor wakes this site's WSUS configuration manager), else 0."""
        if page.subscription is None:
            return 0
        held = read_subscription(conn, self._site_code)
        if held is not None and held.same_as(page.subscription):
            return 0
        write_subscription(conn, self._site_code, page.subscription, at)
        return 1

    def link(self, parent_site: str) -> ReplicationLink | None:
        """The link to `parent_site`, or None when this site never replicated from it."""
        parent = normal_site_code(parent_site)
        link = t.replication_link
        with self._store.read() as conn:
            row = conn.execute(select(link).where(link.c.parent_site_code == parent)).first()
        return _link(row) if row is not None else None

    def links(self) -> list[ReplicationLink]:
        """Every link of this site, by parent site code."""
        link = t.replication_link
        with self._store.read() as conn:
            rows = conn.execute(select(link).order_by(link.c.parent_site_code))
            return [_link(r) for r in rows]

    def record_check(
        self,
        parent_site: str,
        status: LinkStatus | int,
        error: str | None = None,
        *,
        at: datetime | None = None,
    ) -> ReplicationLink:
        """Record a check of the link to `parent_site`: a success (no `error`, status 0)
        clears the failure count and the error and sets the last success time; a failure
        (`error` given, status 1 degraded or 2 error) counts one more failure. The status and
        check time are also written to this site's `SMS_SUPSyncStatus` rows
        (ReplicationLinkStatus, LastReplicationLinkCheckTime), in the same transaction."""
        parent = self._parent(parent_site)
        try:
            state = LinkStatus(status)
        except ValueError:
            raise SiteDatabaseError(
                f"replication link to {parent}: status {status!r} is not 0 (healthy), "
                "1 (degraded) or 2 (error)"
            ) from None
        if (error is None) != (state is LinkStatus.HEALTHY):
            raise SiteDatabaseError(
                f"replication link to {parent}: status {int(state)} with "
                f"{'no error' if error is None else 'an error'}; a success is healthy (0) "
                "and has no error, a failure is degraded (1) or error (2) and says what failed"
            )
        when = utc(at or now(), f"replication check of {parent}")
        link = t.replication_link
        with self._store.begin() as conn:
            _lock_link(conn, parent)
            values: dict[str, Any] = {"link_status": int(state), "last_check_time": when}
            if error is None:
                values |= {
                    "consecutive_failures": 0,
                    "failing_since": None,
                    "last_success_time": when,
                    "last_error_text": None,
                }
            else:
                values |= {
                    "consecutive_failures": link.c.consecutive_failures + 1,
                    "failing_since": func.coalesce(link.c.failing_since, when),
                    "last_error_text": error,
                }
            conn.execute(update(link).where(link.c.parent_site_code == parent).values(**values))
            ss = t.supsync_status
            conn.execute(
                update(ss)
                .where(ss.c.site_code == self._site_code)
                .values(replication_link_status=int(state), last_replication_link_check_time=when)
            )
            row = conn.execute(select(link).where(link.c.parent_site_code == parent)).one()
        return _link(row)

    def reset_link(self, parent_site: str) -> ReplicationLink:
        """Start the link to `parent_site` over from sequence 0 (after the parent's database
        was replaced or restored: its sequence numbers restarted). Every row comes again and
        is upserted; nothing is lost, unchanged rows are not rewritten."""
        parent = self._parent(parent_site)
        link = t.replication_link
        with self._store.begin() as conn:
            _lock_link(conn, parent)
            conn.execute(
                update(link)
                .where(link.c.parent_site_code == parent)
                .values(applied_seq=0, replicated_versions={})
            )
            row = conn.execute(select(link).where(link.c.parent_site_code == parent)).one()
        return _link(row)

    def _parent(self, parent_site: str) -> str:
        parent = normal_site_code(parent_site)
        if parent == self._site_code:
            raise SiteDatabaseError(
                f"site {self._site_code} cannot replicate from itself: name its parent site"
            )
        return parent
