"""A downstream update server syncing from an upstream over loopback HTTP, with faults injected
between them: what it recovers from, where it stops, and that it never loses a committed batch.

Each test runs against the project's upstream service over a generated catalog (skipped when
it does not import) and against the test's `FakeUpstream` over the same revisions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from databases import KINDS, database_of_kind
from fake_upstream import (
    FakeCatalog,
    FakeUpstream,
    FaultInjector,
    category_ids,
    fault,
    garbage,
    hostile_document,
    reset,
    serve,
    truncated,
    upstream_app,
)
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.logs.softwaredistribution import read_softwaredistribution
from updatesync.metadata.errors import UnsafeXmlError
from updatesync.metadata.export import write_export
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.metadata.model import RevisionKey
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.peers import upstream_state
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync import (
    SyncFailed,
    SyncHooks,
    SyncResult,
    SyncSettings,
    sync_from_upstream,
)
from updatesync.wsusss.client import UpstreamClient, UpstreamUnavailable
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import ErrorCode, WsusssFault
from updatesync.wsusss.messages import GetRevisionIdListRequest

UPDATES = 250  # plus 41 categories and detectoids: 3 GetUpdateData batches of updates


@dataclass
class Upstream:
    store: UpdateStore
    injector: FaultInjector
    url: str
    kind: str

    @property
    def keys(self) -> set[RevisionKey]:
        return self.store.revision_keys()


@pytest.fixture(scope="module")
def upstream_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An upstream data folder filled from a generated catalog (built once, copied per test)."""
    root = tmp_path_factory.mktemp("upstream-template")
    cabinet = root / "catalog.cab"
    write_export(cabinet, generate_catalog(UPDATES, 21))
    with UpdateStore.open(root / "data") as store:
        import_export_cabinet(store, cabinet)
    return root / "data"


@pytest.fixture(params=["service", "fake"])
def upstream(
    upstream_data: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Upstream]:
    data = tmp_path / "upstream"
    data.mkdir()
    for item in upstream_data.iterdir():
        (data / item.name).write_bytes(item.read_bytes())
    with UpdateStore.open(data) as store:
        app, kind = upstream_app(store, request.param)
        if kind != request.param:
            pytest.skip("updatesync.wsusss.service is not importable: the fake covers it")
        injector = FaultInjector(app)
        with serve(injector) as url:
            yield Upstream(store, injector, url, kind)


@pytest.fixture
def downstream(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UpdateStore]:
    """The syncing store: SQLite, or each kind for a test marked ON_EVERY_DATABASE."""
    kind = getattr(request, "param", "sqlite")
    with (
        database_of_kind(kind, tmp_path / "databases", "downstream") as database,
        UpdateStore.open(tmp_path / "downstream", url=database.url) as store,
    ):
        yield store


ON_EVERY_DATABASE = pytest.mark.parametrize("downstream", KINDS, indirect=True)
"""The tests where the database matters run with the downstream on SQLite and PostgreSQL."""


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _sync(
    store: UpdateStore,
    upstream: Upstream,
    *,
    retries: int = 0,
    progress: Callable[[int, int], None] | None = None,
    sleep: Callable[[float], None] | None = None,
    **settings: Any,
) -> SyncResult:
    """Sync `store` from `upstream`; `settings` are further `SyncSettings` fields."""
    client = UpstreamClient(upstream.url, timeout=10.0, retries=retries, sleep=Sleeps())
    hooks = SyncHooks(progress=progress, sleep=sleep or Sleeps())
    with client:
        return sync_from_upstream(
            store,
            SyncSettings(upstream.url, server_name="dss.test.invalid", **settings),
            hooks=hooks,
            client=client,
        )


def _failing_sync(store: UpdateStore, upstream: Upstream, **options: Any) -> SyncFailed:
    held_before = store.revision_keys()
    delivered_before = len(upstream.injector.delivered)
    with pytest.raises(SyncFailed) as caught:
        _sync(store, upstream, **options)
    failure = caught.value
    # The store holds what it held plus the answers delivered intact before the failure,
    # and nothing delivered after it (the fetch stage runs ahead of the commits: what it
    # fetched past the failure is dropped).
    answers = upstream.injector.delivered[delivered_before:]
    held = store.revision_keys()
    kept = next((n for n, key in enumerate(answers) if key not in held), len(answers))
    assert held == held_before | set(answers[:kept])
    assert failure.committed == len(set(answers[:kept]) - held_before)
    assert "run the sync again" in str(failure)
    assert upstream.url in str(failure)
    return failure


def _recovers(store: UpdateStore, upstream: Upstream) -> SyncResult:
    """A clean sync after a failure fetches only what is missing and ends complete."""
    held = store.revision_keys()
    upstream.injector.rules.clear()
    result = _sync(store, upstream)
    assert store.revision_keys() == upstream.keys
    assert result.revisions_requested == len(upstream.keys - held)
    return result


# --------------------------------------------------------------------------- clean syncs


@ON_EVERY_DATABASE
def test_a_first_sync_copies_the_upstream_and_a_second_asks_for_nothing(
    upstream: Upstream, downstream: UpdateStore
) -> None:
    done: list[tuple[int, int]] = []
    first = _sync(downstream, upstream, progress=lambda n, total: done.append((n, total)))
    assert downstream.revision_keys() == upstream.keys
    assert first.new_revisions == len(upstream.keys)
    assert first.changed_revisions == first.expired_revisions == 0
    assert first.revisions_requested == len(upstream.keys)
    assert done[-1] == (len(upstream.keys), len(upstream.keys))
    assert first.update_list_anchor and first.config_list_anchor

    second = _sync(downstream, upstream)
    assert second.revisions_requested == 0 and second.new_revisions == 0
    assert [h.result for h in downstream.history()] == ["Succeeded", "Succeeded"]
    assert {h.kind for h in downstream.history()} == {"sync"}
    assert downstream.history()[-1].source == upstream.url
    assert downstream.history()[-1].new_revisions == len(upstream.keys)


def test_no_batch_is_larger_than_the_upstream_allows(
    upstream: Upstream, downstream: UpdateStore
) -> None:
    with UpstreamClient(upstream.url, timeout=10.0) as client:
        sync_from_upstream(
            downstream, SyncSettings(upstream.url, server_name="dss.test"), client=client
        )
    sizes = [call.ids for call in client.calls if call.operation == "GetUpdateData"]
    assert sizes and max(sizes) <= 100
    assert sum(sizes) == len(upstream.keys)


def test_short_answers_are_completed_by_asking_again(tmp_path: Path) -> None:
    catalog = FakeCatalog.from_records(generate_catalog(60, 4))
    fake = FakeUpstream(catalog, max_per_request=50, max_answer_bytes=20_000)
    with serve(fake) as url, UpdateStore.open(tmp_path / "down") as store:
        client = UpstreamClient(url, timeout=10.0)
        with client:
            result = sync_from_upstream(
                store, SyncSettings(url, server_name="dss.test"), client=client
            )
        assert store.revision_keys() == catalog.keys
    sizes = [call.ids for call in client.calls if call.operation == "GetUpdateData"]
    assert max(sizes) <= 50
    assert len(sizes) > -(-len(catalog.keys) // 50)  # more calls than full batches need
    assert result.batches == len(sizes)


@ON_EVERY_DATABASE
def test_next_months_changes_come_as_changed_and_expired_revisions(
    upstream: Upstream, downstream: UpdateStore, tmp_path: Path
) -> None:
    _sync(downstream, upstream)
    month2 = tmp_path / "month2.cab"
    write_export(month2, evolve_catalog(upstream.store.iter_records(), 40, 5))
    import_export_cabinet(upstream.store, month2)
    if upstream.kind == "fake":  # the fake serves a snapshot: give it the new revisions too
        fake = upstream.injector.app
        assert isinstance(fake, FakeUpstream)
        fake.catalog = FakeCatalog.from_store(upstream.store)
    added = upstream.keys - downstream.revision_keys()

    result = _sync(downstream, upstream)
    assert downstream.revision_keys() == upstream.keys
    assert result.new_revisions + result.changed_revisions == len(added)
    assert result.changed_revisions > 0 and result.expired_revisions > 0
    assert result.revisions_requested == len(added)


def test_a_product_added_later_is_sent_without_delta_and_its_updates_come(
    upstream: Upstream, downstream: UpdateStore
) -> None:
    products, classes = category_ids(FakeCatalog.from_store(upstream.store))
    first_product, *others = products
    _sync(downstream, upstream, products=[first_product], classifications=classes)
    partial = downstream.revision_keys()
    assert partial < upstream.keys

    _sync(downstream, upstream, products=products)
    listing = [
        GetRevisionIdListRequest.from_xml(r.body)
        for r in upstream.injector.requests
        if r.operation == "GetRevisionIdList"
    ]
    last = listing[-1].filter
    assert last is not None and last.anchor is not None
    deltas = {item.id: item.delta for item in last.categories or ()}
    assert deltas[first_product] is True
    assert not any(deltas[p] for p in others)
    assert all(item.delta for item in last.classifications or ())
    assert len(downstream.revision_keys()) > len(partial)
    assert downstream.subscription().products == tuple(sorted(products))


# --------------------------------------------------------------------------- recovery


def test_an_invalid_cookie_mid_sync_gets_a_new_cookie_and_finishes(
    upstream: Upstream, downstream: UpdateStore
) -> None:
    upstream.injector.on("GetUpdateData", fault(ErrorCode.INVALID_COOKIE), call=3)
    _sync(downstream, upstream)
    assert downstream.revision_keys() == upstream.keys
    assert upstream.injector.operations.count("GetCookie") == 2


def test_an_invalid_authorization_cookie_restarts_authorization(
    upstream: Upstream, downstream: UpdateStore
) -> None:
    upstream.injector.on("GetRevisionIdList", fault(ErrorCode.INVALID_AUTHORIZATION_COOKIE), call=2)
    result = _sync(downstream, upstream)
    assert downstream.revision_keys() == upstream.keys
    assert result.authorizations == 2
    assert upstream.injector.operations.count("GetAuthorizationCookie") == 2


def test_server_busy_backs_off_and_finishes(upstream: Upstream, downstream: UpdateStore) -> None:
    upstream.injector.on("GetUpdateData", fault(ErrorCode.SERVER_BUSY), call=2, times=3)
    sleeps = Sleeps()
    _sync(downstream, upstream, sleep=sleeps, busy_backoff=2.0, max_busy_backoff=5.0)
    assert downstream.revision_keys() == upstream.keys
    assert len(sleeps.waits) == 3
    assert all(s / 2 <= w <= s for w, s in zip(sleeps.waits, [2.0, 4.0, 5.0], strict=True))


def test_server_busy_that_lasts_stops_after_the_bounded_waits(
    upstream: Upstream, downstream: UpdateStore
) -> None:
    upstream.injector.on("GetUpdateData", fault(ErrorCode.SERVER_BUSY), call=2, times=100)
    sleeps = Sleeps()
    failure = _failing_sync(downstream, upstream, sleep=sleeps, busy_retries=3)
    assert isinstance(failure.cause, WsusssFault)
    assert failure.cause.code is ErrorCode.SERVER_BUSY
    assert len(sleeps.waits) == 3
    _recovers(downstream, upstream)


def test_server_changed_drops_the_anchors_and_lists_again(
    upstream: Upstream, downstream: UpdateStore
) -> None:
    _sync(downstream, upstream)
    upstream.injector.on("GetRevisionIdList", fault(ErrorCode.SERVER_CHANGED), call=2)
    result = _sync(downstream, upstream)
    assert downstream.revision_keys() == upstream.keys
    assert result.revisions_requested == 0
    listing = [
        GetRevisionIdListRequest.from_xml(r.body).filter
        for r in upstream.injector.requests
        if r.operation == "GetRevisionIdList"
    ]
    # run 2: config list with anchor, update list -> ServerChanged, then both without anchor
    assert [f.anchor is not None for f in listing[2:] if f is not None] == [
        True,
        True,
        False,
        False,
    ]
    assert upstream_state(downstream, upstream.url).update_list_anchor == result.update_list_anchor


def test_a_connection_cut_mid_answer_is_retried_by_the_client(
    upstream: Upstream, downstream: UpdateStore
) -> None:
    upstream.injector.on("GetUpdateData", reset(), call=2)
    _sync(downstream, upstream, retries=1)
    assert downstream.revision_keys() == upstream.keys


# --------------------------------------------------------------------------- stopping


def test_a_connection_cut_with_no_retries_left_stops_and_keeps_the_batches(
    upstream: Upstream, downstream: UpdateStore
) -> None:
    upstream.injector.on("GetUpdateData", reset(), call=3)
    failure = _failing_sync(downstream, upstream, retries=0)
    assert isinstance(failure.cause, UpstreamUnavailable)
    assert failure.committed > 0
    _recovers(downstream, upstream)


@ON_EVERY_DATABASE
@pytest.mark.parametrize("mischief", [truncated(), garbage()], ids=["truncated", "garbage"])
def test_a_bad_body_stops_the_sync_and_keeps_the_batches(
    upstream: Upstream, downstream: UpdateStore, mischief: object
) -> None:
    upstream.injector.on("GetUpdateData", mischief, call=3)  # type: ignore[arg-type]
    failure = _failing_sync(downstream, upstream)
    assert isinstance(failure.cause, ProtocolError)
    assert failure.committed > 0
    _recovers(downstream, upstream)


@ON_EVERY_DATABASE
def test_a_hostile_document_is_refused_and_nothing_of_its_batch_is_kept(
    upstream: Upstream, downstream: UpdateStore
) -> None:
    upstream.injector.on("GetUpdateData", hostile_document(), call=2)
    failure = _failing_sync(downstream, upstream)
    assert isinstance(failure.cause, UnsafeXmlError)
    assert "GetUpdateData from" in str(failure)
    _recovers(downstream, upstream)


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.INTERNAL_SERVER_ERROR,
        ErrorCode.INCOMPATIBLE_PROTOCOL_VERSION,
        ErrorCode.INVALID_PARAMETERS,
        "SomethingNew",
    ],
)
def test_faults_the_spec_says_to_stop_on_stop_the_sync(
    upstream: Upstream, downstream: UpdateStore, code: ErrorCode | str
) -> None:
    upstream.injector.on("GetUpdateData", fault(code), call=2)
    failure = _failing_sync(downstream, upstream)
    assert isinstance(failure.cause, WsusssFault)
    assert str(code) in str(failure)
    _recovers(downstream, upstream)


def test_an_invalid_cookie_that_persists_is_bounded(
    upstream: Upstream, downstream: UpdateStore
) -> None:
    upstream.injector.on("GetConfigData", fault(ErrorCode.INVALID_COOKIE), times=1000)
    failure = _failing_sync(downstream, upstream)
    assert "InvalidCookie" in str(failure)
    assert upstream.injector.operations.count("GetConfigData") <= 10


@ON_EVERY_DATABASE
def test_a_failed_sync_is_in_the_history_and_the_log(
    upstream: Upstream, downstream: UpdateStore, tmp_path: Path
) -> None:
    upstream.injector.on("GetUpdateData", garbage(), call=2)
    _failing_sync(downstream, upstream)
    _recovers(downstream, upstream)
    failed, succeeded = downstream.history()[1], downstream.history()[0]
    assert (failed.result, succeeded.result) == ("Failed", "Succeeded")
    assert failed.error is not None and "GetUpdateData" in failed.error
    assert failed.new_revisions > 0

    log = tmp_path / "downstream" / "logs" / "SoftwareDistribution.log"
    entries = list(read_softwaredistribution(log))
    events = [e.event_id for e in entries if e.event_id is not None]
    assert events == [382, 386, 382, 384]
    error = next(e for e in entries if e.level == "Error")
    # The .NET form of the failure, with no Python stack after it.
    assert error.message.startswith(
        "System.InvalidOperationException: UssCommunicationError: InvalidOperationException: "
        "There is an error in XML document (GetUpdateData)."
    )
    assert error.continuation == ()


# --------------------------------------------------------------------------- command line


def test_the_sync_command_prints_a_summary(upstream: Upstream, tmp_path: Path) -> None:
    data = tmp_path / "cli-downstream"
    runner = CliRunner()
    done = runner.invoke(
        app, ["updateserver", "sync", "--data", str(data), "--upstream", upstream.url]
    )
    assert done.exit_code == 0, done.output
    assert f"synced from {upstream.url}: {len(upstream.keys):,} new, 0 changed" in done.output
    with UpdateStore.open(data) as store:
        assert store.revision_keys() == upstream.keys


def test_the_sync_command_reports_a_failure_in_one_line(upstream: Upstream, tmp_path: Path) -> None:
    upstream.injector.on("GetUpdateData", fault(ErrorCode.INTERNAL_SERVER_ERROR), call=2)
    runner = CliRunner()
    done = runner.invoke(
        app,
        ["updateserver", "sync", "--data", str(tmp_path / "d"), "--upstream", upstream.url],
    )
    assert done.exit_code == 3  # a sync ran and failed (cli.exits.SYNC_FAILED)
    assert "error: sync from" in done.output and "InternalServerError" in done.output
    assert "Traceback" not in done.output
