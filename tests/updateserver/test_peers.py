"""The servers an update server knows: its own identity, its downstream servers, and what
each sync from an upstream left behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from updatesync.updateserver.peers import (
    UpstreamState,
    downstream_servers,
    register_downstream,
    save_upstream_state,
    server_identity,
    touch_downstream,
    upstream_state,
)
from updatesync.updateserver.store import UpdateStore

GUID = "6F1C2F6E-3F0B-4D3A-9B1E-0D2F6A1C5E12"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[UpdateStore]:
    with UpdateStore.open(tmp_path / "server") as opened:
        yield opened


def test_the_identity_is_made_once(store: UpdateStore, tmp_path: Path) -> None:
    first = server_identity(store)
    assert len(first.cookie_key) == 32 and first == server_identity(store)
    with UpdateStore.open(tmp_path / "other") as other:
        assert server_identity(other).server_id != first.server_id


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
