"""Database replication between site databases over signed HTTP: CS1 → PS1 → SS1 with
thousands of CIs, deltas, an interrupted replication resuming, a parent that is down and
comes back (link status), bad parameters and unsigned calls."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fake_upstream as fu
import httpx
import pytest
from databases import Databases
from starlette.applications import Starlette

from updatesync.logs.cmtrace import CMTraceLog, Severity, read_cmtrace
from updatesync.retry_policy import DB_REPLICATION, jitter_source
from updatesync.roles.serving import BackgroundServer
from updatesync.security.signing import HmacAuth, require_signature
from updatesync.site.database.models import (
    MICROSOFT_UPDATE,
    Category,
    ConfigurationItem,
    LinkStatus,
    SUPSyncStatus,
)
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError
from updatesync.site.replication.db_replication import (
    CHANGES_PATH,
    MAX_PAGE,
    DatabaseReplicationError,
    DatabaseReplicator,
    LinkThresholds,
    ReplicationTimeout,
    page_from_json,
    page_to_json,
    replication_routes,
)
from updatesync.vocabulary import REPLICATION_CONFIGURATION_MONITOR

SECRET = b"0123456789abcdef0123456789abcdef-replication"
T0 = datetime(2014, 1, 16, 18, 53, 52, tzinfo=UTC)
PRODUCT = "11111111-0000-4000-8000-000000000001"
CLASSIFICATION = "11111111-0000-4000-8000-000000000002"
CATEGORIES = [
    Category(PRODUCT, "Product", "Windows 8.1"),
    Category(CLASSIFICATION, "UpdateClassification", "Critical Updates"),
]


def _ci(n: int, **changes: object) -> ConfigurationItem:
    values: dict[str, object] = {
        "update_id": f"af5eb87e-cdd6-40bf-984f-{n:012x}",
        "revision": 100,
        "title": f"Security Update for Windows 8.1 (KB{2461484 + n})",
        "xml_sha256": f"{n:064x}",
        "kb_article": str(2461484 + n),
        "severity": "Critical",
        "products": (PRODUCT,),
        "classifications": (CLASSIFICATION,),
    }
    values.update(changes)
    return ConfigurationItem(**values)  # type: ignore[arg-type]


def _cis(db: SiteDatabase) -> set[tuple[str, int, str, str, bool]]:
    return {
        (c.update_id, c.revision, c.xml_sha256, c.title, c.is_superseded)
        for c in db.content.configuration_items()
    }


class Clock:
    """The replicator's clock for check times; the test moves it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class WatchedLog(CMTraceLog):
    """The CMTrace log, also telling the test each message as it is written."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, component=REPLICATION_CONFIGURATION_MONITOR, bias_minutes=0)
        self.messages: list[str] = []
        self._written = threading.Condition()

    def write(self, severity: Severity, message: str, *, thread: int | None = None) -> Any:
        entry = super().write(severity, message, thread=thread)
        with self._written:
            self.messages.append(message)
            self._written.notify_all()
        return entry

    def wait_for(self, text: str, timeout: float = 30) -> bool:
        with self._written:
            return self._written.wait_for(lambda: any(text in m for m in self.messages), timeout)


class Faulty:
    """The parent's app, with a switch: after `fail_after` change pages it answers 500, or a
    truncated body, until the switch is reset."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.fail_after: int | None = None
        self.mode = "500"
        self.served = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == CHANGES_PATH:
            if self.fail_after is not None and self.served >= self.fail_after:
                if self.mode == "500":
                    status, body = 500, b'{"error": "the site database is being restored"}'
                else:
                    status, body = 200, b'{"site": "CS1", "after": 0, "last_seq": 5'
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            self.served += 1
        await self.app(scope, receive, send)


def _app(db: SiteDatabase) -> Faulty:
    return Faulty(Starlette(routes=replication_routes(db)))


@pytest.fixture
def cs1(databases: Databases) -> Iterator[SiteDatabase]:
    with SiteDatabase.open(url=databases.new("cs1").url, site_code="CS1") as db:
        yield db


@pytest.fixture
def ps1(databases: Databases) -> Iterator[SiteDatabase]:
    with SiteDatabase.open(url=databases.new("ps1").url, site_code="PS1") as db:
        yield db


def _replicator(
    child: SiteDatabase,
    parent: str,
    url: str,
    log: CMTraceLog | None = None,
    **options: Any,
) -> DatabaseReplicator:
    return DatabaseReplicator(
        child,
        parent,
        url,
        auth=HmacAuth(SECRET, child.site_code),
        log=log,
        **options,
    )


def _serve(app: Any, port: int = 0) -> BackgroundServer:
    """The app behind the signature check, as the site server mounts it (not started)."""
    return BackgroundServer(require_signature(app, SECRET), port=port)


# -- a hierarchy: CS1 → PS1 → SS1 --------------------------------------------------------------


def test_thousands_of_cis_replicate_down_the_hierarchy(
    tmp_path: Path, cs1: SiteDatabase, databases: Databases
) -> None:
    with cs1.content.update(at=T0) as content:
        content.upsert_categories(CATEGORIES)
        for start in range(0, 3000, 1000):
            content.upsert_cis(_ci(n, ci_id=16777216 + n) for n in range(start, start + 1000))
    assert cs1.content.version() == 1 and cs1.replication.head() == 3002

    ps1 = SiteDatabase.open(url=databases.new("ps1").url, site_code="PS1")
    ss1 = SiteDatabase.open(url=databases.new("ss1").url, site_code="SS1")
    ps1_log = WatchedLog(tmp_path / "ps1" / "rcmctrl.log")
    with (
        ps1,
        ss1,
        _serve(_app(cs1)) as cs1_server,
        _serve(_app(ps1)) as ps1_server,
        _replicator(ps1, "CS1", cs1_server.url, ps1_log, page_size=500) as to_ps1,
        _replicator(ss1, "PS1", ps1_server.url, page_size=700) as to_ss1,
    ):
        state = to_ps1.catch_up(timeout=60)
        assert (state.parent_site, state.applied_seq, state.head_seq) == ("CS1", 3002, 3002)
        assert state.content_version == 1
        assert state.content_versions == {MICROSOFT_UPDATE: 1}
        # What PS1's sync manager does with it (SPEC 3.3): its own version is the parent's.
        ps1.content.set_version(state.content_version)

        from_ps1 = to_ss1.catch_up(timeout=60)
        assert from_ps1.content_version == 1 and from_ps1.head_seq == 3002

    assert _cis(ps1) == _cis(ss1) == _cis(cs1)
    assert len(_cis(ss1)) == 3000
    assert ps1.content.categories() == ss1.content.categories() == cs1.content.categories()
    held = {c.update_id: c for c in cs1.content.configuration_items()}
    for item in ss1.content.configuration_items():
        assert item.date_revised == held[item.update_id].date_revised
        assert item.ci_id is not None and item.ci_id < 16777216, "a child's CI ids are its own"
    link = ps1.replication.link("CS1")
    assert link is not None
    assert (link.applied_seq, link.status) == (3002, LinkStatus.HEALTHY)
    assert link.last_success_time is not None and link.last_success_time == link.last_check_time
    assert link.replicated_version() == 1

    lines = [(e.component, e.message) for e in read_cmtrace(ps1_log.path)]
    assert (
        REPLICATION_CONFIGURATION_MONITOR,
        "Replicated 500 changes from CS1 (sequence 500 of 3002)",
    ) in lines
    assert (
        REPLICATION_CONFIGURATION_MONITOR,
        "Replicated 2 changes from CS1 (sequence 3002 of 3002)",
    ) in lines
    assert lines[-1][1].startswith(
        "Replication link to CS1 is healthy: this site holds its changes up to sequence 3002"
    )


def test_a_delta_replicates_only_the_rows_that_changed(
    cs1: SiteDatabase, ps1: SiteDatabase, tmp_path: Path
) -> None:
    cs1.content.apply_ci_batch([_ci(n) for n in range(1200)], categories=CATEGORIES, at=T0)
    log = WatchedLog(tmp_path / "rcmctrl.log")
    with _serve(_app(cs1)) as server, _replicator(ps1, "CS1", server.url, log) as replicator:
        replicator.catch_up(timeout=60)
        ps1_head = ps1.replication.head()
        assert ps1_head == 1202

        change = cs1.content.apply_ci_batch(
            [
                *(_ci(n, is_superseded=True) for n in range(10, 15)),  # 5 changed
                *(_ci(n) for n in range(15, 400)),  # unchanged: not sent again
                *(_ci(n) for n in range(5000, 5003)),  # 3 new
            ],
            categories=[*CATEGORIES[:1], Category(CLASSIFICATION, "UpdateClassification", "Crit")],
        )
        assert (change.updated, change.inserted, change.categories_changed) == (5, 3, 1)
        state = replicator.catch_up(timeout=60)

    assert state.content_version == 2
    assert "Replicated 9 changes from CS1 (sequence 1211 of 1211)" in log.messages
    assert ps1.replication.head() == ps1_head + 9, "PS1 wrote the 9 changed rows, no others"
    assert _cis(ps1) == _cis(cs1)
    assert ps1.content.categories() == cs1.content.categories()


# -- an interrupted replication --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "truncated"])
def test_an_interrupted_replication_resumes_where_it_stopped(
    cs1: SiteDatabase, ps1: SiteDatabase, mode: str
) -> None:
    cs1.content.apply_ci_batch([_ci(n) for n in range(2500)], categories=CATEGORIES, at=T0)
    app = _app(cs1)
    app.fail_after, app.mode = 3, mode
    with _serve(app) as server, _replicator(ps1, "CS1", server.url, page_size=400) as replicator:
        # Time enough for the three pages on a busy machine; the parent fails from then on,
        # so the catch-up still ends on the timeout, retrying until then.
        with pytest.raises(ReplicationTimeout) as failed:
            replicator.catch_up(timeout=5)
        message = str(failed.value)
        assert "parent site CS1" in message and server.url in message
        assert "holds its changes up to sequence 1200 of 2502" in message
        assert ("HTTP 500" if mode == "500" else "cannot read") in message
        assert failed.value.applied_seq == 1200
        link = ps1.replication.link("CS1")
        assert link is not None and link.applied_seq == 1200
        assert link.replicated_versions == {}, "the parent's version is not claimed half-way"
        assert ps1.content.ci_count() == 1198, (
            "three whole pages (2 categories first), nothing more"
        )

        app.fail_after = None
        state = replicator.catch_up(timeout=60)
    assert state.applied_seq == 2502 and state.content_version == 1
    assert _cis(ps1) == _cis(cs1) and ps1.content.ci_count() == 2500
    assert ps1.replication.head() == 2502, "each row was written once at PS1"
    assert app.served == 3 + 4, "the pull resumed after sequence 1200 and asked 4 more pages"


def test_a_stale_or_duplicate_page_is_refused_and_writes_nothing(
    cs1: SiteDatabase, ps1: SiteDatabase
) -> None:
    cs1.content.apply_ci_batch([_ci(n) for n in range(30)], categories=CATEGORIES)
    first = cs1.replication.changes(0, 10)
    second = cs1.replication.changes(first.last_seq, 10)
    assert ps1.replication.apply("CS1", first) == 10

    def held() -> tuple[object, ...]:
        return (
            ps1.content.configuration_items(),
            ps1.replication.link("CS1"),
            ps1.replication.head(),
        )

    before = held()
    for page in (first, cs1.replication.changes(20, 10)):  # a duplicate; a page past a gap
        with pytest.raises(SiteDatabaseError, match="stale or a duplicate") as refused:
            ps1.replication.apply("CS1", page)
        assert "up to sequence 10" in str(refused.value)
        assert held() == before
    with pytest.raises(SiteDatabaseError, match="answered by site CS1"):
        ps1.replication.apply("PS2", second)
    with pytest.raises(SiteDatabaseError, match="cannot replicate from itself"):
        ps1.replication.apply("PS1", second)
    assert held() == before
    assert ps1.replication.apply("CS1", second) == 10


# -- a parent that is down -----------------------------------------------------------------


def test_a_parent_that_is_down_degrades_the_link_and_recovers(
    cs1: SiteDatabase, ps1: SiteDatabase, tmp_path: Path
) -> None:
    cs1.content.apply_ci_batch([_ci(n) for n in range(100)], categories=CATEGORIES, at=T0)
    ps1.sups.set_sync_status(SUPSyncStatus("PS1", "PS1SITE.CONTOSO.COM", "CS1SITE.CONTOSO.COM"))
    clock = Clock()
    log = WatchedLog(tmp_path / "rcmctrl.log")
    app = _app(cs1)
    server = _serve(app).start()
    port, url = server.port, server.url
    replicator = _replicator(ps1, "CS1", url, log, clock=clock, retry_delay=0.1)
    try:
        replicator.catch_up(timeout=60)
        server.stop()
        cs1.content.apply_ci_batch([_ci(n) for n in range(100, 110)])  # meanwhile, at the parent

        clock.now = T0 + timedelta(minutes=1)
        with pytest.raises(ReplicationTimeout) as down:
            replicator.catch_up(timeout=0.5)
        message = str(down.value)
        assert "parent site CS1" in message and url in message
        assert "holds its changes up to sequence 102" in message
        assert "replicated content version 1" in message
        assert "cannot reach parent site CS1" in message and "resumes from sequence 102" in message
        link = ps1.replication.link("CS1")
        assert link is not None
        assert link.status is LinkStatus.DEGRADED and link.consecutive_failures >= 1
        assert link.last_check_time == T0 + timedelta(minutes=1)
        assert link.last_success_time == T0 and link.failing_since == T0 + timedelta(minutes=1)
        assert link.last_error_text is not None and url in link.last_error_text
        (sup,) = ps1.sups.sync_statuses(site_code="PS1")
        assert sup.replication_link_status == 1
        assert sup.last_replication_link_check_time == T0 + timedelta(minutes=1)

        clock.now = T0 + timedelta(minutes=32)  # failing for 31 minutes: an error
        with pytest.raises(ReplicationTimeout):
            replicator.catch_up(timeout=0.2)
        link = ps1.replication.link("CS1")
        assert link is not None and link.status is LinkStatus.ERROR
        assert ps1.sups.sync_statuses(site_code="PS1")[0].replication_link_status == 2

        server = _serve(app, port=port).start()  # the parent is back
        clock.now = T0 + timedelta(minutes=40)
        state = replicator.catch_up(timeout=60)
    finally:
        replicator.stop()
        server.stop()
    assert state.applied_seq == 112 and state.content_version == 2
    assert _cis(ps1) == _cis(cs1)
    link = ps1.replication.link("CS1")
    assert link is not None
    assert (link.status, link.consecutive_failures, link.failing_since) == (0, 0, None)
    assert (link.last_success_time, link.last_error_text) == (T0 + timedelta(minutes=40), None)
    assert ps1.sups.sync_statuses(site_code="PS1")[0].replication_link_status == 0

    entries = list(read_cmtrace(log.path))
    failures = [e for e in entries if "failed" in e.message]
    assert failures[0].severity is Severity.WARNING
    assert f"Replication from CS1 at {url} failed: cannot reach" in failures[0].message
    assert "Replication link to CS1 is degraded" in failures[0].message
    assert failures[-1].severity is Severity.ERROR
    assert "Replication link to CS1 is in error" in failures[-1].message
    assert entries[-1].message.startswith("Replication link to CS1 is healthy")


def test_repeated_failures_make_an_error(cs1: SiteDatabase, ps1: SiteDatabase) -> None:
    app = _app(cs1)
    app.fail_after = 0
    thresholds = LinkThresholds(error_after_failures=3)
    with (
        _serve(app) as server,
        _replicator(ps1, "CS1", server.url, thresholds=thresholds) as replicator,
    ):
        seen = []
        for _ in range(3):  # no time left: each call makes exactly one attempt
            with pytest.raises(ReplicationTimeout, match="replicated content version none yet"):
                replicator.catch_up(timeout=0)
            link = ps1.replication.link("CS1")
            assert link is not None
            seen.append((link.consecutive_failures, link.status))
    assert seen == [(1, LinkStatus.DEGRADED), (2, LinkStatus.DEGRADED), (3, LinkStatus.ERROR)]
    assert link.last_success_time is None and "HTTP 500" in (link.last_error_text or "")


# -- the background puller -------------------------------------------------------------------


def test_the_background_puller_follows_the_parent_when_poked(
    cs1: SiteDatabase, ps1: SiteDatabase, tmp_path: Path
) -> None:
    cs1.content.apply_ci_batch([_ci(n) for n in range(20)], categories=CATEGORIES)
    log = WatchedLog(tmp_path / "rcmctrl.log")
    with (
        _serve(_app(cs1)) as server,
        _replicator(ps1, "CS1", server.url, log, poll_interval=3600) as replicator,
    ):
        replicator.start()
        assert log.wait_for("Replication link to CS1 is healthy"), log.messages
        assert ps1.content.ci_count() == 20

        cs1.content.apply_ci_batch([_ci(n) for n in range(20, 25)])
        replicator.poke()  # the interval is an hour: only the poke pulls
        assert log.wait_for("Replicated 5 changes from CS1 (sequence 27 of 27)"), log.messages
        # catch_up and the thread share one lock: both may run, one after the other.
        assert replicator.catch_up(timeout=60).applied_seq == 27
    assert _cis(ps1) == _cis(cs1)


# -- HTTP: signatures and parameters ------------------------------------------------------------


def test_unsigned_or_forged_calls_are_refused(cs1: SiteDatabase, ps1: SiteDatabase) -> None:
    cs1.content.apply_ci_batch([_ci(1)])
    with _serve(_app(cs1)) as server:
        unsigned = httpx.get(server.url + CHANGES_PATH)
        assert unsigned.status_code == 401 and "no signature" in unsigned.json()["error"]
        forged = httpx.get(
            server.url + CHANGES_PATH, auth=HmacAuth(b"another-secret-another-secret-0000", "PS1")
        )
        assert forged.status_code == 401 and "does not hold" in forged.json()["error"]
        signed = httpx.get(server.url + CHANGES_PATH, auth=HmacAuth(SECRET, "PS1"))
        assert signed.status_code == 200 and len(signed.json()["configuration_items"]) == 1

        wrong = DatabaseReplicator(
            ps1,
            "CS1",
            server.url,
            auth=HmacAuth(b"another-secret-another-secret-0000", "PS1"),
        )
        with (
            wrong,
            pytest.raises(DatabaseReplicationError, match="same hierarchy secret") as refused,
        ):
            wrong.catch_up(timeout=60)
    assert not isinstance(refused.value, ReplicationTimeout), "no retrying a refused signature"
    assert ps1.content.ci_count() == 0
    link = ps1.replication.link("CS1")
    assert link is not None and link.status is LinkStatus.DEGRADED


def test_bad_parameters_get_400_naming_the_parameter(cs1: SiteDatabase) -> None:
    cs1.content.apply_ci_batch([_ci(n) for n in range(MAX_PAGE + 5)])
    with (
        _serve(_app(cs1)) as server,
        httpx.Client(base_url=server.url, auth=HmacAuth(SECRET, "PS1")) as client,
    ):
        for query, name in (("after=-1", "after"), ("after=ten", "after"), ("limit=0", "limit")):
            answer = client.get(f"{CHANGES_PATH}?{query}")
            assert answer.status_code == 400
            assert answer.json()["error"].startswith(f"parameter {name}=")
            assert "whole number" in answer.json()["error"]
        capped = client.get(CHANGES_PATH, params={"after": 0, "limit": 5000}).json()
        assert len(capped["configuration_items"]) == MAX_PAGE
        assert (capped["last_seq"], capped["head_seq"]) == (MAX_PAGE, MAX_PAGE + 5)
        rest = client.get(CHANGES_PATH, params={"after": MAX_PAGE}).json()
        assert len(rest["configuration_items"]) == 5 and rest["last_seq"] == rest["head_seq"]
        beyond = client.get(CHANGES_PATH, params={"after": 10**6}).json()
        assert beyond["configuration_items"] == [] and beyond["last_seq"] == 10**6


def test_a_page_round_trips_through_json(cs1: SiteDatabase) -> None:
    cs1.content.apply_ci_batch(
        [_ci(1, bulletin="MS14-001", is_expired=True)], categories=CATEGORIES
    )
    page = cs1.replication.changes(0, 10)
    assert page.subscription is None  # none stored yet
    assert page_from_json(json.loads(json.dumps(page_to_json(page)))) == page
    cs1.wsus.set_subscription(("a3c2375d-0c8a-42f9-bce0-28333e198407",), (), ("en", "ja"))
    page = cs1.replication.changes(0, 10)
    assert page.subscription is not None and page.subscription.languages == ("en", "ja")
    assert page_from_json(json.loads(json.dumps(page_to_json(page)))) == page
    # A deletion travels too (an expired CI past the cleanup age).
    assert cs1.expiry.delete(datetime.now(UTC) + timedelta(days=1)) == 1
    deleted = cs1.replication.changes(page.last_seq, 10)
    assert deleted.deleted == (_ci(1).update_id,)
    assert page_from_json(json.loads(json.dumps(page_to_json(deleted)))) == deleted
    for broken, what in (
        ([], "not an object"),
        ({"site": "CS1"}, "lacks the field"),
        ({**page_to_json(page), "last_seq": -3}, "last_seq is -3"),
        ({**page_to_json(page), "categories": [7]}, "wrong shape"),
        ({**page_to_json(page), "deleted_items": ["KB123"]}, "not an update id"),
        ({**page_to_json(page), "subscription": {"products": "all"}}, "subscription products"),
        ({**page_to_json(page), "subscription": []}, "subscription is"),
    ):
        with pytest.raises(ValueError, match=what):
            page_from_json(broken)


def test_each_change_of_the_link_status_is_told_once(cs1: SiteDatabase, ps1: SiteDatabase) -> None:
    cs1.content.apply_ci_batch([_ci(n) for n in range(10)], categories=CATEGORIES, at=T0)
    app = _app(cs1)
    told: list[LinkStatus] = []
    thresholds = LinkThresholds(error_after_failures=3)
    with (
        _serve(app) as server,
        _replicator(
            ps1, "CS1", server.url, thresholds=thresholds, on_status_change=told.append
        ) as replicator,
    ):
        replicator.catch_up(timeout=30)
        replicator.catch_up(timeout=30)  # healthy again: nothing new to tell
        app.fail_after = 0
        for _ in range(3):
            with pytest.raises(ReplicationTimeout):
                replicator.catch_up(timeout=0)
        app.fail_after = None
        replicator.catch_up(timeout=30)
    assert told == [LinkStatus.HEALTHY, LinkStatus.DEGRADED, LinkStatus.ERROR, LinkStatus.HEALTHY]


def test_the_background_pulls_of_a_down_parent_back_off_with_jitter_and_say_the_wait(
    ps1: SiteDatabase, tmp_path: Path
) -> None:
    # Every child of a parent that went down used to retry at 0.25, 0.5, 1 ... s in lockstep.
    log = WatchedLog(tmp_path / "rcmctrl.log")
    url = fu.free_port_url()
    replicator = _replicator(
        ps1, "CS1", url, log, retry_delay=0.04, max_retry_delay=0.16, rng=jitter_source(21)
    )
    with replicator.start(), log._written:
        assert log._written.wait_for(
            lambda: len([m for m in log.messages if "will retry in" in m]) >= 5, 30
        )
        retrying = [m for m in log.messages if "will retry in" in m][:5]
    said = [float(m.rsplit("will retry in ", 1)[1].split(" s")[0]) for m in retrying]
    policy = DB_REPLICATION.scaled(0.04, 0.16)
    expected_rng = jitter_source(21)
    expected = [policy.next_delay(n, expected_rng) for n in range(1, 6)]
    assert said == [round(w, 2) for w in expected]  # the line states the wait drawn
    steps = [0.04, 0.08, 0.16, 0.16, 0.16]
    assert all(0 <= w <= s for w, s in zip(expected, steps, strict=True))
    assert len(set(said)) > 1
