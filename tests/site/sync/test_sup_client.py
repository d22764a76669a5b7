"""The site server drives an update server through its admin API, over real HTTP."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from upstream import stand_in_upstream, sync_runner, update_server_app

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import read_export, write_export
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.metadata.model import UpdateRevision
from updatesync.roles.serving import BackgroundServer
from updatesync.site.sync.sup_client import (
    UpdateServerApi,
    UpdateServerSyncFailed,
    UpdateServerUnavailable,
)
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[UpdateStore, UpdateStore, str, str]]:
    """A (a stand-in Microsoft Update) and B (the SUP, syncing from A when asked)."""
    records = list(generate_catalog(400, seed=41))
    write_export(tmp_path / "m1.cab", records)  # as A holds it
    write_export(tmp_path / "m2.cab", evolve_catalog(iter(records), 25, seed=42))
    b = UpdateStore.open(tmp_path / "B")
    try:
        with stand_in_upstream(tmp_path, records, name="A") as (a, up):
            app = update_server_app(b, sync_runner(b, up.url))
            with BackgroundServer(app) as sup:
                yield a, b, up.url, sup.url
    finally:
        b.close()


def _documents(path: Path) -> list[UpdateRevision]:
    with read_export(path) as export:
        return [parse_update(r.xml) for r in export.records()]


def test_a_sync_is_followed_to_its_end_and_its_changes_read(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b, _up, sup = pair
    month1, month2 = _documents(tmp_path / "m1.cab"), _documents(tmp_path / "m2.cab")
    seen: list[tuple[str, int, int]] = []
    with UpdateServerApi(sup) as api:
        outcome = api.synchronize(
            progress=lambda phase, done, total, eta: seen.append((phase, done, total))
        )
        assert outcome.changed
        assert outcome.change_counter == b.change_counter()
        phases = [p for p, _d, _t in seen]
        assert phases == sorted(phases, key=["categories", "updates"].index)
        assert "categories" in phases
        for phase in set(phases):
            dones = [d for p, d, _t in seen if p == phase]
            assert dones == sorted(dones)
        everything = list(api.changed_updates(0))
        assert {u["update_id"] for u in everything} == {
            d.update_id for d in month1 if d.update_type in ("Software", "Driver")
        }
        again = api.synchronize()
        assert not again.changed
        before = again.change_counter
        import_export_cabinet(a, tmp_path / "m2.cab")
        assert api.synchronize().changed
        # Computed from the catalogs: updates with a new revision, and those a new
        # revision now supersedes that nothing superseded before.
        old = {d.key for d in month1}
        new = [d for d in month2 if d.key not in old]
        expected = {d.update_id for d in new if d.update_type in ("Software", "Driver")}
        superseded_before = {uid for d in month1 for uid in d.superseded_updates}
        expected |= {uid for d in new for uid in d.superseded_updates} - superseded_before
        assert {u["update_id"] for u in api.changed_updates(before)} == expected
        assert api.changed_categories(before) == []


class _Recording(httpx.HTTPTransport):
    """Real HTTP, remembering the path of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_a_sync_ends_with_the_counter_of_its_own_result_not_a_status_read(pair) -> None:  # type: ignore[no-untyped-def]
    """/api/status counts everything the store holds: a fifth of a second at 100k revisions,
    seconds with a cold cache, on the critical path of every site's sync of every SUP."""
    _a, b, _up, sup = pair
    recording = _Recording()
    with UpdateServerApi(sup, transport=recording) as api:
        outcome = api.synchronize()
    assert outcome.changed
    assert outcome.change_counter == b.change_counter()
    assert "/api/sync" in recording.paths
    assert "/api/status" not in recording.paths


def test_a_failed_sync_and_an_unreachable_server_are_clear(tmp_path: Path) -> None:
    store = UpdateStore.open(tmp_path / "B")
    app = update_server_app(store, sync_runner(store, "http://127.0.0.1:9"))
    with BackgroundServer(app) as sup, UpdateServerApi(sup.url) as api:
        with pytest.raises(UpdateServerSyncFailed) as failed:
            api.synchronize()
        assert "127.0.0.1:9" in failed.value.error
    with UpdateServerApi(sup.url, timeout=5) as gone, pytest.raises(UpdateServerUnavailable):
        gone.status()
    store.close()


def test_a_sync_refused_while_another_process_syncs_the_store_fails_clearly(pair) -> None:  # type: ignore[no-untyped-def]
    """The SUP's store is being synced by another process (`updateserver sync`): the admin
    API answers 409 with the reason, and the site's sync fails saying it (it does not take
    the last result as this sync's)."""
    _a, b, _up, sup = pair
    code = (
        "import sys\n"
        "from updatesync.updateserver.store import UpdateStore\n"
        "from updatesync.updateserver.sync_lock import acquire_sync_lock\n"
        f"acquire_sync_lock(UpdateStore.open({str(b.data_dir)!r}), 'http://far.example')\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with UpdateServerApi(sup) as api, pytest.raises(UpdateServerSyncFailed) as failed:
            api.synchronize()
    finally:
        holder.kill()
        holder.wait()
    assert f"process {holder.pid} on" in str(failed.value)
    assert "syncing from http://far.example" in str(failed.value)


class _FailingPage(httpx.HTTPTransport):
    """A real connection whose `fail_at`-th page of updates fails as a dropped connection."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.pages = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/updates":
            self.pages += 1
            if self.pages == self.fail_at:
                raise httpx.ConnectError("connection dropped", request=request)
        return super().handle_request(request)


def _prefetching() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "updates-prefetch"]


def test_updates_come_page_by_page_read_ahead_and_whole(pair) -> None:  # type: ignore[no-untyped-def]
    """Small pages, read ahead while the caller works: every update once, in the order of
    one big read; a page that fails raises where it would have come, after the pages before
    it; a reader that stops early leaves no reading behind."""
    _a, _b, _up, sup = pair
    with UpdateServerApi(sup) as api:
        api.synchronize()
        whole = [u["update_id"] for u in api.changed_updates(0)]
    assert len(whole) > 3 * 7
    with UpdateServerApi(sup, page_size=7) as api:
        assert [u["update_id"] for u in api.changed_updates(0)] == whole
    transport = _FailingPage(fail_at=3)
    with UpdateServerApi(sup, page_size=7, transport=transport) as api:
        got: list[str] = []
        with pytest.raises(UpdateServerUnavailable, match="connection dropped"):
            for update in api.changed_updates(0):
                got.append(update["update_id"])
        assert got == whole[:14]
    assert transport.pages == 3
    assert _prefetching() == []
    with UpdateServerApi(sup, page_size=7) as api:
        updates = api.changed_updates(0)
        assert next(updates)["update_id"] == whole[0]
        updates.close()
        assert _prefetching() == []
        assert api.status()["last_change"] > 0  # the client is free again
