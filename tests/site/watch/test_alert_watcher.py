"""The alert watcher: overdue syncs and degraded replication links raised and canceled in a
real site database; every raise and cancel POSTed once to a real webhook receiver on
loopback (a sync failure of a real sync manager included), retried while the receiver is
down, and never sent twice across restarts. The clock is moved by hand."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from top_site import top_level_site

from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.roles.serving import BackgroundServer, bind
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.sync_manager import SyncManager
from updatesync.site.watch.alert_watcher import AlertingError, AlertWatcher
from updatesync.site.watch.alerts import (
    AlertState,
    AlertType,
    format_span,
    overdue_text,
    replication_link_text,
)
from updatesync.site.watch.webhooks import Webhook, event_payload
from updatesync.vocabulary import SYNC_DONE

SECURITY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
CRITICAL = "e6cf1350-c01b-414d-a61f-263d14d133b4"
SUP = "cs1site.contoso.com"
TWO_DAYS = timedelta(days=2)


class Clock:
    """A clock moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class Receiver:
    """A webhook receiver: records each POST it accepts; answers `status` (200 by default)."""

    def __init__(self) -> None:
        self.status = 200
        self.accepted: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.requests = 0
        self._changed = threading.Condition()
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.json()
        with self._changed:
            self.requests += 1
            status = self.status
            if 200 <= status < 300:
                assert request.headers["content-type"] == "application/json"
                self.accepted.append(body)
                self.keys.append(request.headers["idempotency-key"])
            self._changed.notify_all()
        return Response(status_code=status)

    def wait_for(self, count: int, timeout: float = 20.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.accepted) >= count, timeout)

    def events(self) -> list[tuple[str, str, str]]:
        return [(p["event"], p["alert"]["type"], p["alert"]["instance"]) for p in self.accepted]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    r = Receiver()
    with BackgroundServer(r.app) as server:
        yield r, f"{server.url}/hook"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SiteDatabase]:
    with SiteDatabase.open(tmp_path / "PS1", site_code="PS1") as site_db:
        yield site_db


@pytest.fixture
def log(tmp_path: Path) -> CMTraceLog:
    return CMTraceLog(tmp_path / "logs" / "alerts.log", component="ALERTS", bias_minutes=0)


@pytest.fixture
def clock(db: SiteDatabase) -> Clock:
    """An hour after the site database was set up."""
    return Clock(db.set_up_time() + timedelta(hours=1))


WatcherFactory = Callable[..., AlertWatcher]


@pytest.fixture
def make_watcher(
    db: SiteDatabase, log: CMTraceLog, clock: Clock, tmp_path: Path
) -> Iterator[WatcherFactory]:
    made: list[AlertWatcher] = []

    def make(*urls: str, **options: Any) -> AlertWatcher:
        values: dict[str, Any] = {
            "overdue_after": TWO_DAYS,
            "log": log,
            "clock": clock,
            "webhooks": [Webhook(u, timeout=5) for u in urls],
            "hierarchy": "Contoso",
        }
        values.update(options)
        watcher = AlertWatcher(db, "PS1", **values)
        made.append(watcher)
        return watcher

    yield make
    for watcher in made:
        watcher.stop()


def _raised(db: SiteDatabase, kind: AlertType) -> list[Any]:
    return db.alerts.find(alert_type=kind, state=AlertState.RAISED)


# -- texts -------------------------------------------------------------------------------------


def test_alert_texts_say_what_and_since_when() -> None:
    last = datetime(2026, 11, 20, 10, 0, 41, tzinfo=UTC)
    assert overdue_text("PS1", TWO_DAYS, last_success=last) == (
        "Software update synchronization is overdue at site PS1: last successful sync "
        "2026-11-20 10:00 UTC, more than 2 days ago"
    )
    assert overdue_text("PS1", timedelta(hours=36), last_success=None, set_up=last) == (
        "Software update synchronization is overdue at site PS1: no successful sync since the "
        "site was set up 2026-11-20 10:00 UTC, more than 1 day 12 hours ago"
    )
    assert replication_link_text(
        "PS1", "CS1", 2, failures=10, failing_since=last, error="connection refused"
    ) == (
        "Database replication link from parent site CS1 to site PS1 is in error "
        "(ReplicationLinkStatus 2): 10 failed pulls in a row, failing since 2026-11-20 10:00 "
        "UTC; last error: connection refused"
    )
    assert format_span(timedelta(minutes=90)) == "1 hour 30 minutes"
    assert format_span(timedelta(days=1, minutes=1)) == "1 day 1 minute"


# -- overdue -------------------------------------------------------------------------------


def test_overdue_is_raised_once_and_canceled_by_a_successful_sync(
    db: SiteDatabase, clock: Clock, make_watcher: WatcherFactory
) -> None:
    synced = clock.now
    db.sync.record_state(SYNC_DONE, at=synced)
    watcher = make_watcher()
    clock.advance(days=2)
    assert watcher.check_now().raised == ()  # exactly 2 days: not more than 2 days

    clock.advance(minutes=1)
    (alert,) = watcher.check_now().raised
    assert (alert.alert_type, alert.site_code, alert.instance) == (
        AlertType.SYNC_OVERDUE,
        "PS1",
        "PS1",
    )
    assert alert.raised_at == clock.now
    assert alert.text == overdue_text("PS1", TWO_DAYS, last_success=synced)
    assert "last successful sync" in alert.text and "more than 2 days ago" in alert.text

    for _ in range(3):  # one raised occurrence, however often it is judged
        clock.advance(hours=6)
        assert watcher.check_now().raised == ()
    assert _raised(db, AlertType.SYNC_OVERDUE) == [alert]

    db.sync.record_state(SYNC_DONE, at=clock.advance(minutes=5))
    clock.advance(minutes=1)
    round_ = watcher.check_now()
    assert [(a.alert_id, a.state, a.canceled_at) for a in round_.canceled] == [
        (alert.alert_id, AlertState.CANCELED, clock.now)
    ]
    assert _raised(db, AlertType.SYNC_OVERDUE) == []
    assert watcher.check_now().canceled == ()

    clock.advance(days=3)  # overdue again: a new occurrence
    (again,) = watcher.check_now().raised
    assert again.alert_id != alert.alert_id
    assert len(db.alerts.find(alert_type=AlertType.SYNC_OVERDUE)) == 2


def test_a_site_that_never_synced_is_overdue_only_after_its_first_chance(
    db: SiteDatabase, clock: Clock, make_watcher: WatcherFactory, log: CMTraceLog
) -> None:
    set_up = db.set_up_time()
    watcher = make_watcher()
    clock.now = set_up + timedelta(days=1, hours=23)
    assert watcher.check_now().raised == ()
    clock.now = set_up + TWO_DAYS + timedelta(seconds=1)
    (alert,) = watcher.check_now().raised
    assert alert.text == (
        "Software update synchronization is overdue at site PS1: no successful sync since the "
        f"site was set up {set_up:%Y-%m-%d %H:%M} UTC, more than 2 days ago"
    )
    entries = list(read_cmtrace(log.path))
    assert [e.message for e in entries] == [f"Raised alert sync_overdue at site PS1: {alert.text}"]


# -- replication link -------------------------------------------------------------------------


def test_a_degraded_replication_link_is_raised_and_canceled_when_healthy(
    db: SiteDatabase, clock: Clock, make_watcher: WatcherFactory
) -> None:
    db.sync.record_state(SYNC_DONE, at=clock.now)
    watcher = make_watcher()
    db.replication.record_check("CS1", 0, at=clock.now)
    assert watcher.check_now().raised == ()

    failed_at = clock.advance(minutes=10)
    db.replication.record_check(
        "CS1", 1, "parent CS1 did not answer: connection refused", at=failed_at
    )
    (alert,) = watcher.check_now().raised
    assert (alert.alert_type, alert.instance) == (AlertType.REPLICATION_LINK_DEGRADED, "CS1")
    assert alert.text == (
        "Database replication link from parent site CS1 to site PS1 is degraded "
        f"(ReplicationLinkStatus 1): 1 failed pull in a row, failing since "
        f"{failed_at:%Y-%m-%d %H:%M} UTC; last error: parent CS1 did not answer: connection "
        "refused"
    )

    db.replication.record_check("CS1", 2, "still refused", at=clock.advance(minutes=30))
    assert watcher.check_now().raised == ()  # degraded, then error: the same occurrence
    assert _raised(db, AlertType.REPLICATION_LINK_DEGRADED) == [alert]

    db.replication.record_check("CS1", 0, at=clock.advance(minutes=1))
    (canceled,) = watcher.check_now().canceled
    assert (canceled.alert_id, canceled.canceled_at) == (alert.alert_id, clock.now)
    assert _raised(db, AlertType.REPLICATION_LINK_DEGRADED) == []


def test_a_top_level_site_has_no_replication_link_alert(tmp_path: Path, log: CMTraceLog) -> None:
    with SiteDatabase.open(tmp_path / "CS1", site_code="CS1") as cs1:
        clock = Clock(cs1.set_up_time() + timedelta(minutes=5))
        watcher = AlertWatcher(cs1, "CS1", overdue_after=TWO_DAYS, log=log, clock=clock)
        round_ = watcher.check_now()
        assert (round_.raised, round_.canceled, round_.pending) == ((), (), 0)
        assert cs1.alerts.find() == []


# -- webhooks --------------------------------------------------------------------------------


@dataclass
class TopSite:
    db: SiteDatabase
    manager: SyncManager
    use_sup: Callable[[bool], None]


@pytest.fixture
def top_site(tmp_path: Path) -> Iterator[TopSite]:
    """CS1 with its SUP's update server, which syncs from a stand-in Microsoft Update; the
    sync manager reaches the SUP, or a port where nothing listens."""
    dead = bind("127.0.0.1", 0)
    dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"
    dead.close()
    with top_level_site(tmp_path, updates=40, seed=61) as site:
        yield TopSite(site.db, site.manager, lambda on: site.redirect(None if on else dead_url))


def test_a_sync_failure_and_its_recovery_are_posted_once_each(
    top_site: TopSite, receiver: tuple[Receiver, str], tmp_path: Path, log: CMTraceLog
) -> None:
    hook, url = receiver
    clock = Clock(top_site.db.set_up_time() + timedelta(minutes=1))
    watcher = AlertWatcher(
        top_site.db,
        "CS1",
        overdue_after=TWO_DAYS,
        log=log,
        clock=clock,
        webhooks=[Webhook(url)],
        hierarchy="Contoso",
    )
    try:
        assert watcher.check_now().delivered == 0
        top_site.use_sup(False)
        failed = top_site.manager.run("SELF")
        assert not failed.succeeded
        round_ = watcher.check_now()
        assert (round_.delivered, round_.failed, round_.pending, round_.errors) == (1, (), 0, ())
        (raised,) = hook.accepted
        (alert,) = top_site.db.alerts.find(alert_type=AlertType.SYNC_FAILURE)
        (reported,) = top_site.db.messages.find(message_id=6703)
        cause = raised.pop("status_message")
        assert raised.pop("failure") == {"text": reported.strings[1], "source": reported.strings[0]}
        assert (cause["id"], cause["severity"], cause["last_error"]) == (
            6703,
            "E",
            f"0x{reported.last_error:08X}",
        )
        assert cause["insertion_strings"] == list(reported.strings[:2])
        assert reported.strings[1] in cause["text"] and reported.strings[0] in cause["text"]
        assert raised == {
            "event": "raised",
            "alert": {
                "id": alert.alert_id,
                "type": "sync_failure",
                "site": "CS1",
                "instance": SUP,
                "text": f"Synchronization failure alert for software update point: {SUP}",
                "raised_at": alert.raised_at.isoformat(),
                "canceled_at": None,
            },
            "hierarchy": "Contoso",
        }
        assert watcher.check_now().delivered == 0  # nothing new: nothing sent

        top_site.use_sup(True)
        recovered = top_site.manager.run("SELF")
        assert recovered.succeeded, recovered.error
        assert watcher.check_now().delivered == 1
        (canceled_alert,) = top_site.db.alerts.find(alert_type=AlertType.SYNC_FAILURE)
        assert hook.events() == [
            ("raised", "sync_failure", SUP),
            ("canceled", "sync_failure", SUP),
        ]
        assert hook.accepted[1]["alert"]["canceled_at"] == canceled_alert.canceled_at.isoformat()
        assert watcher.check_now().delivered == 0
        assert hook.requests == 2
        assert len(set(hook.keys)) == 2
    finally:
        watcher.stop()


def test_overdue_and_link_alerts_are_posted_too(
    db: SiteDatabase,
    clock: Clock,
    make_watcher: WatcherFactory,
    receiver: tuple[Receiver, str],
) -> None:
    hook, url = receiver
    watcher = make_watcher(url)
    db.replication.record_check("CS1", 1, "refused", at=clock.now)
    clock.advance(days=3)
    assert watcher.check_now().delivered == 2
    db.replication.record_check("CS1", 0, at=clock.now)
    db.sync.record_state(SYNC_DONE, at=clock.now)
    assert watcher.check_now().delivered == 2
    assert sorted(hook.events()) == [
        ("canceled", "replication_link_degraded", "CS1"),
        ("canceled", "sync_overdue", "PS1"),
        ("raised", "replication_link_degraded", "CS1"),
        ("raised", "sync_overdue", "PS1"),
    ]
    assert [e for e, _, _ in hook.events()] == ["raised", "raised", "canceled", "canceled"]


def test_a_receiver_down_at_first_gets_the_events_when_it_comes_up(
    db: SiteDatabase, clock: Clock, make_watcher: WatcherFactory, log: CMTraceLog
) -> None:
    db.sync.record_state(SYNC_DONE, at=clock.now)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there until the receiver comes up
    url = f"http://127.0.0.1:{port}/hook"
    watcher = make_watcher(url)

    start = clock.now
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "ps1site.contoso.com", at=start)
    first = watcher.check_now()
    assert (first.delivered, first.failed, first.pending) == (0, (f"http://127.0.0.1:{port}/…",), 1)

    db.alerts.cancel_alert(AlertType.SYNC_FAILURE, at=clock.advance(seconds=10))
    waiting = watcher.check_now()  # the retry is due 30 s after the failure
    assert (waiting.delivered, waiting.failed, waiting.pending) == (0, (), 2)

    clock.now = start + timedelta(seconds=31)
    assert watcher.check_now().failed  # second failure: next try 30 to 60 s later (jitter)
    clock.now = start + timedelta(seconds=60)
    assert watcher.check_now().failed == ()  # not due yet
    r = Receiver()
    with BackgroundServer(r.app, port=port):
        clock.now = start + timedelta(seconds=92)
        done = watcher.check_now()
        assert (done.delivered, done.failed, done.pending) == (2, (), 0)
        assert r.events() == [
            ("raised", "sync_failure", "ps1site.contoso.com"),
            ("canceled", "sync_failure", "ps1site.contoso.com"),
        ]
        assert r.accepted[0]["alert"]["canceled_at"] is None  # as it was when raised
        clock.advance(hours=1)
        assert watcher.check_now().delivered == 0
        assert r.requests == 2
    messages = [e.message for e in read_cmtrace(log.path)]
    pauses = [
        m.rsplit("next attempt in ", 1)[1] for m in messages if "was not accepted (Connect" in m
    ]
    assert len(pauses) == 2
    first, second = (int(p.split()[0]) * (60 if "minute" in p else 1) for p in pauses)
    assert 15 <= first <= 30 and 30 <= second <= 60  # half to all of 30 s, then of 60 s


def test_a_refusing_receiver_is_retried_and_counted_once_it_accepts(
    db: SiteDatabase,
    clock: Clock,
    make_watcher: WatcherFactory,
    receiver: tuple[Receiver, str],
) -> None:
    hook, url = receiver
    db.sync.record_state(SYNC_DONE, at=clock.now)
    watcher = make_watcher(url)
    hook.status = 503
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "ps1site.contoso.com", at=clock.now)
    assert watcher.check_now().failed
    assert (hook.requests, hook.accepted) == (1, [])
    hook.status = 204
    clock.advance(seconds=30)
    assert watcher.check_now().delivered == 1
    clock.advance(seconds=30)
    assert watcher.check_now().delivered == 0
    assert (hook.requests, hook.events()) == (
        2,
        [("raised", "sync_failure", "ps1site.contoso.com")],
    )


def test_a_restarted_watcher_does_not_send_again(
    db: SiteDatabase,
    clock: Clock,
    make_watcher: WatcherFactory,
    receiver: tuple[Receiver, str],
) -> None:
    hook, url = receiver
    db.sync.record_state(SYNC_DONE, at=clock.now)
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "ps1site.contoso.com", at=clock.now)
    first = make_watcher(url)
    assert first.check_now().delivered == 1
    first.stop()

    db.alerts.cancel_alert(AlertType.SYNC_FAILURE, at=clock.advance(minutes=5))
    second = make_watcher(url)
    assert second.check_now().delivered == 1  # the cancel only
    second.stop()

    third = make_watcher(url)
    assert third.check_now().delivered == 0
    assert hook.events() == [
        ("raised", "sync_failure", "ps1site.contoso.com"),
        ("canceled", "sync_failure", "ps1site.contoso.com"),
    ]
    assert hook.requests == 2


def test_a_new_webhook_gets_the_alerts_raised_now_not_the_history(
    db: SiteDatabase,
    clock: Clock,
    make_watcher: WatcherFactory,
    receiver: tuple[Receiver, str],
    log: CMTraceLog,
) -> None:
    hook, url = receiver
    db.sync.record_state(SYNC_DONE, at=clock.now)
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "ps1site.contoso.com", at=clock.now)
    db.alerts.cancel_alert(AlertType.SYNC_FAILURE, at=clock.advance(minutes=1))
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "ps1sys.contoso.com", at=clock.advance(minutes=1))
    watcher = make_watcher(url)
    assert watcher.check_now().delivered == 1
    assert hook.events() == [("raised", "sync_failure", "ps1sys.contoso.com")]
    assert any(
        "it gets the 1 alert(s) raised now" in e.message
        and "not the 1 alert occurrence(s)" in e.message
        for e in read_cmtrace(log.path)
    )


def test_every_webhook_gets_every_event(
    db: SiteDatabase,
    clock: Clock,
    make_watcher: WatcherFactory,
    receiver: tuple[Receiver, str],
) -> None:
    hook, url = receiver
    other = Receiver()
    db.sync.record_state(SYNC_DONE, at=clock.now)
    with BackgroundServer(other.app) as server:
        watcher = make_watcher(url, f"{server.url}/hook")
        db.alerts.raise_alert(AlertType.SYNC_FAILURE, "ps1site.contoso.com", at=clock.now)
        assert watcher.check_now().delivered == 2
    assert hook.events() == other.events() == [("raised", "sync_failure", "ps1site.contoso.com")]


def test_an_event_undelivered_for_too_long_is_given_up(
    db: SiteDatabase, clock: Clock, make_watcher: WatcherFactory, log: CMTraceLog
) -> None:
    db.sync.record_state(SYNC_DONE, at=clock.now)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    url = f"http://127.0.0.1:{port}/hook"
    watcher = make_watcher(url, give_up_after=timedelta(days=1))
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "ps1site.contoso.com", at=clock.now)
    assert watcher.check_now().pending == 1
    db.sync.record_state(SYNC_DONE, at=clock.advance(days=1, minutes=1))
    round_ = watcher.check_now()
    assert (round_.given_up, round_.pending) == (1, 0)
    assert any(
        e.message.startswith(f"Webhook http://127.0.0.1:{port}/…: gave up the raised event")
        for e in read_cmtrace(log.path)
    )


def test_the_running_watcher_sends_at_once_when_poked(
    db: SiteDatabase,
    clock: Clock,
    make_watcher: WatcherFactory,
    receiver: tuple[Receiver, str],
) -> None:
    hook, url = receiver
    db.sync.record_state(SYNC_DONE, at=clock.now)
    watcher = make_watcher(url, check_interval=3600).start()
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "ps1site.contoso.com", at=clock.now)
    watcher.poke()
    assert hook.wait_for(1)
    db.alerts.cancel_alert(AlertType.SYNC_FAILURE, at=clock.advance(minutes=1))
    watcher.poke()
    assert hook.wait_for(2)
    watcher.stop()
    assert hook.events() == [
        ("raised", "sync_failure", "ps1site.contoso.com"),
        ("canceled", "sync_failure", "ps1site.contoso.com"),
    ]


def test_settings_are_checked(db: SiteDatabase, log: CMTraceLog, tmp_path: Path) -> None:
    with pytest.raises(AlertingError, match="not an http"):
        Webhook("ftp://alerts.contoso.com/x")
    with pytest.raises(AlertingError, match="overdue_after must be positive"):
        AlertWatcher(db, "PS1", overdue_after=timedelta(0), log=log)
    assert Webhook("https://hooks.contoso.com/services/T0/B0/secret?x=1").shown == (
        "https://hooks.contoso.com/…"
    )


def test_the_payload_of_a_raise_sent_after_the_cancel_shows_it_raised(db: SiteDatabase) -> None:
    raised = db.alerts.raise_alert(AlertType.SYNC_FAILURE, "x.contoso.com")
    (canceled,) = db.alerts.cancel_alert(AlertType.SYNC_FAILURE)
    assert event_payload(canceled, "raised", "H")["alert"]["canceled_at"] is None
    assert event_payload(canceled, "canceled", "H")["alert"]["canceled_at"] == (
        canceled.canceled_at.isoformat()  # type: ignore[union-attr]
    )
    assert (
        event_payload(raised, "raised", "H")["alert"]["raised_at"] == raised.raised_at.isoformat()
    )


def test_a_part_that_fails_does_not_stop_the_others(
    db: SiteDatabase, clock: Clock, make_watcher: WatcherFactory, tmp_path: Path, log: CMTraceLog
) -> None:
    folder = tmp_path / "not-a-file"
    folder.mkdir()
    watcher = make_watcher("http://127.0.0.1:9/hook", legacy_state_file=folder)
    clock.advance(days=3)
    round_ = watcher.check_now()
    (overdue,) = round_.raised
    assert overdue.alert_type is AlertType.SYNC_OVERDUE
    (error,) = round_.errors
    assert error.startswith("sending alert events to the webhooks of site PS1 failed:")
    assert any(
        e.message.startswith("Sending alert events to the webhooks of site PS1 failed:")
        and e.message.endswith("; trying again at the next round")
        for e in read_cmtrace(log.path)
    )
