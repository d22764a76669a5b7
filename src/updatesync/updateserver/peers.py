"""The update server's relations with other servers, as its store keeps them.

- its own identity: a server id (in the database) and the key that authenticates the
  cookies it issues, in `<data folder>/cookie.key` (base64, mode 0600, created with O_EXCL;
  refused, naming the file and `chmod 600`, when group or others may read it);
- the downstream servers that sync from it ([MS-WSUSSS] 3.1.1, the DSS table), registered
  on first contact, within `DownstreamLimits` (per source address, in all, and forgotten
  when not seen for 30 days: "Existing entries can be modified or removed at any time");
- per upstream it syncs from, the anchors of the last sync (the spec's "Parent USS State"),
  the deployment anchor of a replica's GetDeployments among them. Anchors are opaque
  strings: a Windows upstream's anchors are its own business.

A downstream is marked a replica when it calls GetDeployments, which only a replica may
call ([MS-WSUSSS] 3.1.4.10); the protocol's own IsReplica flag travels only in
RollupDownstreamServers (3.1.4.14), which updatesync does not implement.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, update

from updatesync.security.private_files import create_private_file, read_private_file
from updatesync.updateserver import schema as t
from updatesync.updateserver.database import COOKIE_KEY_FILE
from updatesync.updateserver.errors import UpdateServerError
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_status import as_utc
from updatesync.wsusss.cookies import MIN_KEY_BYTES


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    server_id: str
    cookie_key: bytes


@dataclass(frozen=True, slots=True)
class DownstreamServer:
    account_guid: str
    account_name: str
    address: str | None
    protocol_version: str | None
    first_seen: datetime
    last_seen: datetime
    last_sync_anchor: str | None
    is_replica: bool = False


@dataclass(frozen=True, slots=True)
class UpstreamState:
    """What a sync from one upstream left behind for the next one."""

    upstream_url: str
    config_anchor: str | None = None
    config_list_anchor: str | None = None
    update_list_anchor: str | None = None
    filter_key: str | None = None
    deployment_anchor: str | None = None
    languages: str | None = None
    """The upstream's LanguageUpdateList as kept (JSON, `sync/languages.py`)."""


def server_id(store: UpdateStore) -> str:
    """This server's id (a GUID), made once, on first use."""
    with store.engine.begin() as conn:
        found = conn.execute(select(t.server_identity.c.server_id)).scalar()
        if found is None:
            found = str(uuid.uuid4())
            row = {"id": 1, "server_id": found, "created_at": datetime.now(UTC)}
            conn.execute(insert(t.server_identity), [row])
    return found


def cookie_key_file(store: UpdateStore) -> Path:
    """Where the store's cookie key is kept: `<data folder>/cookie.key`."""
    if store.data_dir is None:
        raise UpdateServerError(
            "this update server's store has no data folder to keep its cookie key in; open "
            "it with UpdateStore.open(DATA_DIR)"
        )
    return store.data_dir / COOKIE_KEY_FILE


def cookie_key(store: UpdateStore) -> bytes:
    """The key that authenticates this server's MS-WSUSSS cookies, made once, on first use
    (a new file of mode 0600, O_EXCL: of two processes starting at once, one writes it)."""
    path = cookie_key_file(store)
    what = "the MS-WSUSSS cookie key file"
    try:
        text = read_private_file(path, what)
    except FileNotFoundError:
        key = secrets.token_bytes(MIN_KEY_BYTES)
        try:
            create_private_file(path, base64.b64encode(key) + b"\n")
            return key
        except FileExistsError:
            text = read_private_file(path, what)
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) < MIN_KEY_BYTES:
        raise UpdateServerError(
            f"{what} {path} holds no key of {MIN_KEY_BYTES} bytes (base64); delete it and "
            "start the server again to make a new one (downstream servers authorize again)"
        )
    return key


def server_identity(store: UpdateStore) -> ServerIdentity:
    """This server's identity: its id and its cookie key, each made once, on first use."""
    return ServerIdentity(server_id(store), cookie_key(store))


@dataclass(frozen=True, slots=True)
class DownstreamLimits:
    """How many downstream servers an update server keeps, and how long.

    `per_address`: registrations from one source address (the servers behind one NAT
    share one); `total`: registrations in all (IPv6 gives one host many addresses);
    beyond either, the least recently seen registration is forgotten, not the new one, so
    a flood cannot lock a real server out (a forgotten server registers again at its next
    sync, its cookies stay good). `forget_after`: a server not seen for that long is
    forgotten (a WSUS downstream syncs at least daily by default).
    """

    per_address: int = 32
    total: int = 10_000
    forget_after: timedelta = timedelta(days=30)


DEFAULT_DOWNSTREAM_LIMITS: Final = DownstreamLimits()


def register_downstream(
    store: UpdateStore,
    *,
    account_guid: str,
    account_name: str,
    address: str | None = None,
    protocol_version: str | None = None,
    sync_anchor: str | None = None,
    limits: DownstreamLimits = DEFAULT_DOWNSTREAM_LIMITS,
    now: datetime | None = None,
) -> int:
    """Record a downstream server's contact (at `now`, by default the present): add it the
    first time, refresh it after. Keeps within `limits` (forgets the expired and, beyond a
    cap, the least recently seen); returns how many registrations were forgotten."""
    now = now if now is not None else datetime.now(UTC)
    guid = account_guid.lower()
    values: dict[str, object] = {"account_name": account_name, "last_seen": now}
    if address is not None:
        values["address"] = address
    if protocol_version is not None:
        values["protocol_version"] = protocol_version
    if sync_anchor is not None:
        values["last_sync_anchor"] = sync_anchor
    ds = t.downstream_server
    with store.engine.begin() as conn:
        forgotten = conn.execute(delete(ds).where(ds.c.last_seen < now - limits.forget_after))
        dropped = forgotten.rowcount or 0
        changed = conn.execute(update(ds).where(ds.c.account_guid == guid).values(**values))
        if not changed.rowcount:
            conn.execute(insert(ds), [{"account_guid": guid, "first_seen": now, **values}])
        if address is not None:
            dropped += _forget_oldest(conn, limits.per_address, ds.c.address == address)
        dropped += _forget_oldest(conn, limits.total, None)
    return dropped


def _forget_oldest(conn: Connection, keep: int, where: ColumnElement[bool] | None) -> int:
    """Delete the least recently seen registrations (matching `where`) beyond `keep`."""
    ds = t.downstream_server
    query = select(ds.c.account_guid).order_by(
        ds.c.last_seen.desc(), ds.c.first_seen.desc(), ds.c.account_guid
    )
    if where is not None:
        query = query.where(where)
    extra = [row[0] for row in conn.execute(query.offset(max(keep, 1)))]
    for start in range(0, len(extra), 500):
        conn.execute(delete(ds).where(ds.c.account_guid.in_(extra[start : start + 500])))
    return len(extra)


def touch_downstream(
    store: UpdateStore,
    account_guid: str,
    *,
    protocol_version: str | None = None,
    sync_anchor: str | None = None,
    is_replica: bool | None = None,
    now: datetime | None = None,
) -> None:
    """Note a registered downstream's later contact (its cookie, its revision lists, its
    GetDeployments: then it is a replica), at `now` (by default the present)."""
    values: dict[str, object] = {"last_seen": now if now is not None else datetime.now(UTC)}
    if is_replica is not None:
        values["is_replica"] = is_replica
    if protocol_version is not None:
        values["protocol_version"] = protocol_version
    if sync_anchor is not None:
        values["last_sync_anchor"] = sync_anchor
    with store.engine.begin() as conn:
        conn.execute(
            update(t.downstream_server)
            .where(t.downstream_server.c.account_guid == account_guid.lower())
            .values(**values)
        )


def downstream_servers(
    store: UpdateStore,
    *,
    offset: int = 0,
    limit: int | None = None,
    limits: DownstreamLimits = DEFAULT_DOWNSTREAM_LIMITS,
    now: datetime | None = None,
) -> list[DownstreamServer]:
    """The registered downstream servers not yet forgotten (at `now`), first registered
    first; a page of them with `offset` and `limit`."""
    ds = t.downstream_server
    cutoff = (now if now is not None else datetime.now(UTC)) - limits.forget_after
    query = (
        select(ds)
        .where(ds.c.last_seen >= cutoff)
        .order_by(ds.c.first_seen, ds.c.account_guid)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        DownstreamServer(
            account_guid=r["account_guid"],
            account_name=r["account_name"],
            address=r["address"],
            protocol_version=r["protocol_version"],
            first_seen=as_utc(r["first_seen"]),
            last_seen=as_utc(r["last_seen"]),
            last_sync_anchor=r["last_sync_anchor"],
            is_replica=bool(r["is_replica"]),
        )
        for r in rows
    ]


def count_downstream_servers(
    store: UpdateStore,
    *,
    limits: DownstreamLimits = DEFAULT_DOWNSTREAM_LIMITS,
    now: datetime | None = None,
) -> int:
    """How many downstream servers `downstream_servers` lists in all."""
    ds = t.downstream_server
    cutoff = (now if now is not None else datetime.now(UTC)) - limits.forget_after
    query = select(func.count()).select_from(ds).where(ds.c.last_seen >= cutoff)
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def upstream_state(store: UpdateStore, upstream_url: str) -> UpstreamState:
    query = select(t.upstream_state).where(t.upstream_state.c.upstream_url == upstream_url)
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        return UpstreamState(upstream_url)
    return UpstreamState(
        upstream_url=upstream_url,
        config_anchor=row["config_anchor"],
        config_list_anchor=row["config_list_anchor"],
        update_list_anchor=row["update_list_anchor"],
        filter_key=row["filter_key"],
        deployment_anchor=row["deployment_anchor"],
        languages=row["languages"],
    )


def save_upstream_state(store: UpdateStore, state: UpstreamState) -> None:
    """Replace what is kept for `state.upstream_url`."""
    with store.engine.begin() as conn:
        write_upstream_state(conn, state)


def write_upstream_state(conn: Connection, state: UpstreamState) -> None:
    """`save_upstream_state` inside the caller's transaction."""
    row = {
        "upstream_url": state.upstream_url,
        "config_anchor": state.config_anchor,
        "config_list_anchor": state.config_list_anchor,
        "update_list_anchor": state.update_list_anchor,
        "filter_key": state.filter_key,
        "deployment_anchor": state.deployment_anchor,
        "languages": state.languages,
        "updated_at": datetime.now(UTC),
    }
    conn.execute(
        delete(t.upstream_state).where(t.upstream_state.c.upstream_url == state.upstream_url)
    )
    conn.execute(insert(t.upstream_state), [row])
