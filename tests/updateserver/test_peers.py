"""The servers an update server knows: its own identity, its downstream servers, and what
each sync from an upstream left behind."""

from __future__ import annotations

import base64
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from databases import Database

from updatesync.security.private_files import InsecureFileError
from updatesync.updateserver.errors import UpdateServerError
from updatesync.updateserver.peers import (
    DownstreamLimits,
    UpstreamState,
    cookie_key_file,
    count_downstream_servers,
    downstream_servers,
    register_downstream,
    save_upstream_state,
    server_identity,
    touch_downstream,
    upstream_state,
)
from updatesync.updateserver.store import UpdateStore

GUID = "6F1C2F6E-3F0B-4D3A-9B1E-0D2F6A1C5E12"
GUID2 = "7A1C2F6E-3F0B-4D3A-9B1E-0D2F6A1C5E12"


@pytest.fixture
def store(tmp_path: Path, database: Database) -> Iterator[UpdateStore]:
    with UpdateStore.open(tmp_path / "server", url=database.url) as opened:
        yield opened


def test_the_identity_is_made_once(store: UpdateStore, tmp_path: Path) -> None:
    first = server_identity(store)
    assert len(first.cookie_key) == 32 and first == server_identity(store)
    with UpdateStore.open(tmp_path / "other") as other:
        assert server_identity(other).server_id != first.server_id


def test_the_cookie_key_is_a_private_file_of_the_data_folder(
    store: UpdateStore, tmp_path: Path
) -> None:
    key = server_identity(store).cookie_key
    path = tmp_path / "server" / "cookie.key"
    assert cookie_key_file(store) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert base64.b64decode(path.read_bytes()) == key


def test_a_cookie_key_file_others_may_read_is_refused(store: UpdateStore, tmp_path: Path) -> None:
    server_identity(store)
    path = tmp_path / "server" / "cookie.key"
    path.chmod(0o640)
    with pytest.raises(InsecureFileError) as refused:
        server_identity(store)
    assert str(path) in str(refused.value) and "0640" in str(refused.value)
    assert f"chmod 600 {path}" in str(refused.value)


def test_a_cookie_key_file_without_a_key_is_refused(store: UpdateStore, tmp_path: Path) -> None:
    path = tmp_path / "server" / "cookie.key"
    path.write_bytes(b"short\n")
    path.chmod(0o600)
    with pytest.raises(UpdateServerError, match="holds no key of 32 bytes"):
        server_identity(store)


def test_downstream_servers_are_capped_per_address_the_least_recently_seen_going(
    store: UpdateStore,
) -> None:
    limits = DownstreamLimits(per_address=3, total=100)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    guids = [f"00000000-0000-0000-0000-{n:012d}" for n in range(5)]
    for n, guid in enumerate(guids):
        register_downstream(
            store,
            account_guid=guid,
            account_name=f"dss{n}.test",
            address="10.0.0.9",
            limits=limits,
            now=start + timedelta(minutes=n),
        )
    register_downstream(
        store, account_guid=GUID, account_name="other.test", address="10.0.0.1", limits=limits
    )
    kept = {d.account_guid for d in downstream_servers(store, now=start)}
    assert kept == {*guids[2:], GUID.lower()}


def test_downstream_servers_are_capped_in_all(store: UpdateStore) -> None:
    limits = DownstreamLimits(per_address=10, total=2)
    for n in range(4):
        register_downstream(
            store,
            account_guid=f"00000000-0000-0000-0000-{n:012d}",
            account_name="dss.test",
            address=f"10.0.0.{n}",
            limits=limits,
        )
    assert count_downstream_servers(store) == 2


def test_a_downstream_not_seen_for_long_is_forgotten(store: UpdateStore) -> None:
    limits = DownstreamLimits(forget_after=timedelta(days=30))
    now = datetime(2026, 12, 1, tzinfo=UTC)
    old = now - timedelta(days=31)
    register_downstream(store, account_guid=GUID, account_name="old.test", now=old)
    assert count_downstream_servers(store, now=old) == 1
    assert count_downstream_servers(store, limits=limits, now=now) == 0  # not listed
    register_downstream(store, account_guid=GUID2, account_name="new.test", limits=limits, now=now)
    assert [d.account_guid for d in downstream_servers(store, now=old)] == [GUID2.lower()]


def test_downstream_servers_come_in_pages(store: UpdateStore) -> None:
    start = datetime.now(UTC)
    for n in range(5):
        register_downstream(
            store,
            account_guid=f"00000000-0000-0000-0000-{n:012d}",
            account_name="dss.test",
            now=start + timedelta(seconds=n),
        )
    pages = [downstream_servers(store, offset=o, limit=2) for o in (0, 2, 4)]
    assert [[d.account_guid[-1] for d in page] for page in pages] == [["0", "1"], ["2", "3"], ["4"]]


def test_a_downstream_is_registered_then_refreshed(store: UpdateStore) -> None:
    assert downstream_servers(store) == []
    register_downstream(store, account_guid=GUID, account_name="dss.one", address="10.0.0.2")
    register_downstream(store, account_guid=GUID.lower(), account_name="dss.one.renamed")
    touch_downstream(store, GUID, protocol_version="1.20", sync_anchor="7,x", is_replica=True)
    (server,) = downstream_servers(store)
    assert (server.account_guid, server.account_name, server.address) == (
        GUID.lower(),
        "dss.one.renamed",
        "10.0.0.2",
    )
    assert (server.protocol_version, server.last_sync_anchor, server.is_replica) == (
        "1.20",
        "7,x",
        True,
    )
    assert server.first_seen <= server.last_seen and server.last_seen.tzinfo is not None


def test_upstream_state_round_trips_per_upstream(store: UpdateStore) -> None:
    assert upstream_state(store, "http://a") == UpstreamState("http://a")
    state = UpstreamState("http://a", "c", "cl", "ul", '{"products":[]}', "d")
    save_upstream_state(store, state)
    save_upstream_state(store, UpstreamState("http://b", update_list_anchor="other"))
    assert upstream_state(store, "http://a") == state
    save_upstream_state(store, UpstreamState("http://a"))
    assert upstream_state(store, "http://a") == UpstreamState("http://a")
