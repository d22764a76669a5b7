"""Every thread a role starts is its own: once the role has stopped, none is left running,
and an update server's running sync ends before its store closes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from updatesync.config import Hierarchy, load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.roles import ConsoleRole, Role, RoleContext, SiteRole, SupRole, on_loopback
from updatesync.roles.serving import BackgroundServer
from updatesync.security.signing import HmacAuth, create_secret
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.service import create_app


@pytest.fixture
def hierarchy(tmp_path: Path) -> Hierarchy:
    loaded = load_hierarchy(example_hierarchy())
    return replace(loaded, data_dir=tmp_path / "data", secret_file=tmp_path / "secret")


@pytest.fixture
def loopback(hierarchy: Hierarchy) -> Iterator[tuple[Hierarchy, dict[str, socket.socket]]]:
    """The hierarchy on loopback and every role's listening socket, by role name."""
    placed, socks = on_loopback(hierarchy)
    yield placed, socks
    for sock in socks.values():
        sock.close()


@pytest.fixture
def socks(loopback: tuple[Hierarchy, dict[str, socket.socket]]) -> dict[str, socket.socket]:
    return loopback[1]


@pytest.fixture
def context(loopback: tuple[Hierarchy, dict[str, socket.socket]]) -> RoleContext:
    placed = loopback[0]
    return RoleContext(placed, create_secret(placed.secret_path))


def _started_and_stopped(role: Role) -> list[threading.Thread]:
    """The threads `role` started that still run after it stopped."""
    before = set(threading.enumerate())
    role.start()
    try:
        assert httpx.get(role.url + "/", timeout=30).status_code < 500
        started = set(threading.enumerate()) - before
        assert started, f"{role.name} started no thread"
    finally:
        role.stop()
    return [t for t in set(threading.enumerate()) - before if t.is_alive()]


def test_a_sup_role_leaves_no_thread(context: RoleContext, socks: dict[str, socket.socket]) -> None:
    sock = socks["sup:cs1site.contoso.com"]
    assert _started_and_stopped(SupRole(context, "cs1site.contoso.com", sock=sock)) == []


@pytest.mark.parametrize("code", ["CS1", "PS1", "SS1"])
def test_a_site_role_leaves_no_thread(
    context: RoleContext, socks: dict[str, socket.socket], code: str
) -> None:
    """The top site, a primary with a parent and a child, a secondary: every component
    (replication to children, from the parent, the greeting, the worker, the watcher). The
    other roles are down (their ports closed): a neighbour's port that listens without
    answering would hold each call to it for its whole timeout."""
    name = f"site:{code}"
    for other, sock in socks.items():
        if other != name:
            sock.close()
    role = SiteRole(context, code, sock=socks[name])
    assert _started_and_stopped(role) == []


def test_the_console_role_leaves_no_thread(context: RoleContext) -> None:
    assert _started_and_stopped(ConsoleRole(context)) == []


def test_stopping_a_sup_ends_its_running_sync_before_the_store_closes(
    tmp_path: Path, hierarchy: Hierarchy
) -> None:
    """stop() cancels the running sync at a batch boundary (or lets it finish if it is at
    its end), joins it, then closes the store: no thread is left, the sync is recorded, and
    a restarted SUP syncs to the same end as an undisturbed run."""
    write_export(tmp_path / "m1.cab", generate_catalog(1000, seed=5))
    before = set(threading.enumerate())
    with UpdateStore.open(tmp_path / "mu") as mu:
        import_export_cabinet(mu, tmp_path / "m1.cab")
        upstream_revisions = mu.status().revisions
        with BackgroundServer(create_app(StoreBackend(mu))) as upstream:
            placed, socks = on_loopback(hierarchy)
            context = RoleContext(
                placed, create_secret(placed.secret_path), upstream_url=upstream.url
            )
            name = "sup:cs1site.contoso.com"
            for other, sock in socks.items():
                if other != name:
                    sock.close()
            role = SupRole(context, "cs1site.contoso.com", sock=socks[name]).start()
            auth = HmacAuth(context.secret, "CS1")
            try:
                answer = httpx.post(role.url + "/api/sync", json={}, auth=auth, timeout=30)
                assert answer.status_code == 202, answer.text
                assert answer.json()["running"]
            finally:
                role.stop()
            with UpdateStore.open(role.data) as store:
                last = store.status().last_sync
                assert last is not None, "the stopped sync is in the history"
                assert last["result"] == "Succeeded" or "cancelled" in (last["error"] or "")

            again = SupRole(context, "cs1site.contoso.com").start()  # the port of the first
            try:
                answer = httpx.post(again.url + "/api/sync", json={}, auth=auth, timeout=30)
                assert answer.status_code == 202, answer.text
                state = answer.json()
                while state["running"]:  # long polls: each answers when the state changes
                    state = httpx.get(
                        again.url + "/api/sync",
                        params={"version": state["version"], "wait": 60},
                        auth=auth,
                        timeout=90,
                    ).json()
            finally:
                again.stop()
    assert [t for t in set(threading.enumerate()) - before if t.is_alive()] == []
    with UpdateStore.open(role.data) as store:
        assert store.status().last_sync["result"] == "Succeeded", state
        assert store.status().revisions == upstream_revisions
