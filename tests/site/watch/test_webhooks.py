"""Tests of webhooks.py directly: Webhook URL checks and `shown`, the event payload, and
WebhookLedger.send against a small local receiver (order, retries, give-up, no resends),
its record kept in a site database on SQLite and on PostgreSQL, two processes sharing it,
and the record of an older updatesync (`alerting.sqlite`) read in once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from databases import Database
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from updatesync.logs.cmtrace import CMTraceLog, Severity, read_cmtrace
from updatesync.logs.status_messages import sync_failed
from updatesync.retry_policy import WEBHOOK_DELIVERY, jitter_source
from updatesync.roles.serving import BackgroundServer
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alerts import Alert, AlertState, AlertType, format_span
from updatesync.site.watch.webhooks import (
    CANCELED,
    RAISED,
    AlertingError,
    Delivery,
    Webhook,
    WebhookLedger,
    event_payload,
    message_id,
)

T0 = datetime(2026, 5, 1, 8, 0, 0, tzinfo=UTC)
SET_UP = datetime(2026, 4, 1, tzinfo=UTC)
EPOCH = "2026-04-01T00:00:00+00:00"  # SET_UP as the Idempotency-Key writes it


def clock() -> datetime:
    return T0


class Receiver:
    """Records every POST; answers `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.posts: list[tuple[dict[str, Any], dict[str, str]]] = []
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hook/secret", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.posts.append((body, dict(request.headers)))
            status = self.status
        return Response(status_code=status)

    def events(self) -> list[tuple[str, int]]:
        with self._lock:
            return [(body["event"], body["alert"]["id"]) for body, _ in self.posts]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, Webhook]]:
    r = Receiver()
    with BackgroundServer(r.app) as server:
        yield r, Webhook(f"{server.url}/hook/secret", timeout=30.0)


@pytest.fixture
def site_db(database: Database) -> Iterator[SiteDatabase]:
    """Site CS1's database, on SQLite and on PostgreSQL."""
    with SiteDatabase.open(url=database.url, site_code="CS1") as db:
        yield db


@pytest.fixture
def log(tmp_path: Path) -> CMTraceLog:
    return CMTraceLog(tmp_path / "alerts.log", component="SMS_ALERT_WATCHER", now=clock)


def _alert(alert_id: int, raised: datetime, canceled: datetime | None = None) -> Alert:
    return Alert(
        alert_id=alert_id,
        alert_type=AlertType.SYNC_FAILURE,
        site_code="CS1",
        instance=f"sup{alert_id}.contoso.com",
        state=AlertState.RAISED if canceled is None else AlertState.CANCELED,
        raised_at=raised,
        canceled_at=canceled,
        text=f"Synchronization failure alert for software update point: sup{alert_id}",
    )


def _ledger(db: SiteDatabase, webhook: Webhook, log: CMTraceLog, **extra: Any) -> WebhookLedger:
    return WebhookLedger(
        db.webhooks,
        [webhook],
        site_code="CS1",
        hierarchy="Contoso",
        log=log,
        clock=clock,
        **extra,
    )


# -- Webhook -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://host/x", "host:8080/x", "http:///path", "", "mailto:a@b"])
def test_webhook_refuses_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(AlertingError, match="is not an http"):
        Webhook(url)


def test_webhook_refuses_a_timeout_that_is_not_positive() -> None:
    with pytest.raises(AlertingError, match=r"https://hooks\.example\.com/…: timeout"):
        Webhook("https://hooks.example.com/T0KEN", timeout=0)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.example.com/services/T0KEN", "https://hooks.example.com/…"),
        ("http://hooks.example.com:8080/", "http://hooks.example.com:8080"),
        ("http://hooks.example.com?token=x", "http://hooks.example.com/…"),
        ("HTTP://[::1]:9000/hook", "http://[::1]:9000/…"),
    ],
)
def test_webhook_shown_hides_path_and_query(url: str, shown: str) -> None:
    assert Webhook(url).shown == shown


# -- event_payload -------------------------------------------------------------------------


def test_event_payload_shape() -> None:
    canceled = T0 + timedelta(hours=1)
    alert = _alert(4, T0, canceled)
    assert event_payload(alert, CANCELED, "Contoso") == {
        "event": "canceled",
        "alert": {
            "id": 4,
            "type": "sync_failure",
            "site": "CS1",
            "instance": "sup4.contoso.com",
            "text": alert.text,
            "raised_at": T0.isoformat(),
            "canceled_at": canceled.isoformat(),
        },
        "hierarchy": "Contoso",
        "status_message": None,
        "failure": None,
    }


def test_event_payload_carries_the_failure_its_6703_reported() -> None:
    alert = _alert(4, T0, None)
    message = sync_failed(
        site_code="CS1",
        system="CS1SITE.CONTOSO.COM",
        where="UpdateServer http://sup4.contoso.com:8530",
        what="/api/sync: Connection refused",
        last_error=0x80072EFD,
        time=T0,
    )
    payload = event_payload(alert, RAISED, "Contoso", message)
    assert payload["failure"] == {
        "text": "/api/sync: Connection refused",
        "source": "UpdateServer http://sup4.contoso.com:8530",
    }
    cause = payload["status_message"]
    assert (cause["id"], cause["severity"], cause["last_error"]) == (6703, "E", "0x80072EFD")
    assert cause["text"] == (
        "WSUS Synchronization failed.\nMessage: /api/sync: Connection refused.\n"
        "Source: UpdateServer http://sup4.contoso.com:8530."
    )
    assert cause["insertion_strings"] == [
        "UpdateServer http://sup4.contoso.com:8530",
        "/api/sync: Connection refused",
    ]


def test_the_message_id_is_the_same_for_every_retry_and_has_no_dot() -> None:
    key = "CS1/2026-11-20T10:00:00.123+00:00/4/raised"
    assert message_id(key) == message_id(key) != message_id(key + "x")
    assert message_id(key).startswith("msg_") and "." not in message_id(key)


def test_event_payload_of_a_raise_shows_no_cancel() -> None:
    alert = _alert(4, T0, T0 + timedelta(hours=1))
    assert event_payload(alert, RAISED, "Contoso")["alert"]["canceled_at"] is None
    assert event_payload(alert, RAISED, "Contoso")["event"] == "raised"


# -- WebhookLedger -------------------------------------------------------------------------


def test_send_posts_each_event_once_in_order(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, site_db: SiteDatabase
) -> None:
    r, webhook = receiver
    ledger = _ledger(site_db, webhook, log)
    first = _alert(1, T0 - timedelta(minutes=5))
    second = _alert(2, T0 - timedelta(minutes=3))
    assert ledger.send([second, first], SET_UP, T0) == Delivery(delivered=2)
    closed = _alert(1, first.raised_at, T0 + timedelta(minutes=1))
    later = T0 + timedelta(minutes=2)
    assert ledger.send([closed, second], SET_UP, later) == Delivery(delivered=1)
    assert ledger.send([closed, second], SET_UP, later) == Delivery()
    assert r.events() == [("raised", 1), ("raised", 2), ("canceled", 1)]
    keys = [headers["idempotency-key"] for _, headers in r.posts]
    assert keys == [f"CS1/{EPOCH}/1/raised", f"CS1/{EPOCH}/2/raised", f"CS1/{EPOCH}/1/canceled"]
    assert all(h["content-type"] == "application/json" for _, h in r.posts)
    assert r.posts[0][0]["hierarchy"] == "Contoso"


def test_first_use_skips_alerts_already_canceled(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, site_db: SiteDatabase
) -> None:
    r, webhook = receiver
    ledger = _ledger(site_db, webhook, log)
    old = _alert(1, T0 - timedelta(days=1), T0 - timedelta(hours=20))
    current = _alert(2, T0 - timedelta(hours=1))
    assert ledger.send([old, current], SET_UP, T0) == Delivery(delivered=1)
    assert r.events() == [("raised", 2)]
    messages = [e.message for e in read_cmtrace(log.path)]
    assert any(
        "first use for site CS1" in m and "1 alert(s) raised now" in m and "the 1 alert" in m
        for m in messages
    )


def test_a_refusal_waits_for_retry_first_then_sends_in_order(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, site_db: SiteDatabase
) -> None:
    r, webhook = receiver
    ledger = _ledger(site_db, webhook, log, retry_first=timedelta(seconds=30), rng=jitter_source(3))
    alerts = [_alert(1, T0 - timedelta(minutes=2)), _alert(2, T0 - timedelta(minutes=1))]
    r.status = 500
    refused = ledger.send(alerts, SET_UP, T0)
    assert refused == Delivery(failed=(webhook.shown,), pending=2)
    assert len(r.posts) == 1  # stops at the first refusal
    # The pause: half to all of retry_first (jitter), in whole seconds, as the line says.
    pause = int(WEBHOOK_DELIVERY.scaled(30.0, 3600.0).next_delay(1, jitter_source(3)))
    assert 15 <= pause <= 30
    assert ledger.next_retry() == T0 + timedelta(seconds=pause)

    r.status = 200
    early = ledger.send(alerts, SET_UP, T0 + timedelta(seconds=pause - 1))
    assert early == Delivery(pending=2)
    assert len(r.posts) == 1  # nothing sent before the pause ends

    due = ledger.send(alerts, SET_UP, T0 + timedelta(seconds=pause))
    assert due == Delivery(delivered=2)
    assert ledger.next_retry() is None
    assert r.events() == [("raised", 1), ("raised", 1), ("raised", 2)]
    warnings = [e.message for e in read_cmtrace(log.path) if e.severity is Severity.WARNING]
    assert warnings == [
        f"Webhook {webhook.shown}: the raised event of alert 1 at site CS1 was not accepted "
        f"(HTTP 500); 2 event(s) waiting, next attempt in {pause} seconds"
    ]


def test_the_retry_pause_doubles_up_to_retry_max_with_jitter(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, site_db: SiteDatabase
) -> None:
    r, webhook = receiver
    r.status = 500
    ledger = _ledger(
        site_db,
        webhook,
        log,
        retry_first=timedelta(seconds=30),
        retry_max=timedelta(minutes=4),
        rng=jitter_source(8),
    )
    alerts = [_alert(1, T0)]
    now = T0
    pauses = []
    for _ in range(5):
        ledger.send(alerts, SET_UP, now)
        due = ledger.next_retry()
        assert due is not None
        pauses.append(due - now)
        now = due
    assert len(r.posts) == 5
    # Half to all of 30 s doubling up to 4 minutes, in the unit its line states it in.
    for pause, step in zip(pauses, [30, 60, 120, 240, 240], strict=True):
        unit = 60 if pause >= timedelta(minutes=1) else 1
        assert timedelta(seconds=step // 2 // unit * unit) <= pause <= timedelta(seconds=step)
        assert pause.total_seconds() % unit == 0
    said = [
        e.message.rsplit("next attempt in ", 1)[1]
        for e in read_cmtrace(log.path)
        if e.severity is Severity.WARNING
    ]
    assert said[0] == f"{int(pauses[0].total_seconds())} seconds"
    assert said[-1] == format_span(pauses[-1])


def test_an_event_undelivered_too_long_is_given_up(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, site_db: SiteDatabase
) -> None:
    r, webhook = receiver
    r.status = 500
    ledger = _ledger(site_db, webhook, log, give_up_after=timedelta(hours=1))
    alerts = [_alert(1, T0)]
    ledger.send(alerts, SET_UP, T0)
    r.status = 200
    later = T0 + timedelta(hours=2)
    assert ledger.send(alerts, SET_UP, later) == Delivery(given_up=1)
    assert ledger.send(alerts, SET_UP, later) == Delivery()
    assert len(r.posts) == 1
    errors = [e.message for e in read_cmtrace(log.path) if e.severity is Severity.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith(f"Webhook {webhook.shown}: gave up the raised event of alert 1")


def test_after_a_restart_nothing_is_sent_twice(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, database: Database
) -> None:
    r, webhook = receiver
    alerts = [_alert(1, T0 - timedelta(minutes=1))]
    with SiteDatabase.open(url=database.url, site_code="CS1") as before:
        assert _ledger(before, webhook, log).send(alerts, SET_UP, T0).delivered == 1
    with SiteDatabase.open(url=database.url, site_code="CS1") as after:
        again = _ledger(after, webhook, log)
        assert again.send(alerts, SET_UP, T0 + timedelta(minutes=1)) == Delivery()
        canceled = [_alert(1, alerts[0].raised_at, T0 + timedelta(minutes=2))]
        assert again.send(canceled, SET_UP, T0 + timedelta(minutes=3)) == Delivery(delivered=1)
    assert r.events() == [("raised", 1), ("canceled", 1)]


def test_a_new_epoch_starts_a_new_record(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, site_db: SiteDatabase
) -> None:
    r, webhook = receiver
    ledger = _ledger(site_db, webhook, log)
    alerts = [_alert(1, T0)]
    ledger.send(alerts, SET_UP, T0)
    ledger.send(alerts, datetime(2026, 5, 1, tzinfo=UTC), T0)
    assert [h["idempotency-key"] for _, h in r.posts] == [
        f"CS1/{EPOCH}/1/raised",
        "CS1/2026-05-01T00:00:00+00:00/1/raised",
    ]


def test_a_receiver_that_is_down_is_a_failure(log: CMTraceLog, site_db: SiteDatabase) -> None:
    r = Receiver()
    with BackgroundServer(r.app) as server:
        webhook = Webhook(f"{server.url}/hook/secret", timeout=30.0)
    ledger = _ledger(site_db, webhook, log)
    result = ledger.send([_alert(1, T0)], SET_UP, T0)
    assert result == Delivery(failed=(webhook.shown,), pending=1)
    assert r.posts == []


def test_next_retry_before_any_send_is_none(log: CMTraceLog, site_db: SiteDatabase) -> None:
    ledger = _ledger(site_db, Webhook("http://127.0.0.1:9/hook"), log)
    assert ledger.next_retry() is None


def test_the_ledger_keeps_no_file_of_its_own(
    receiver: tuple[Receiver, Webhook], tmp_path: Path, site_db: SiteDatabase
) -> None:
    _r, webhook = receiver
    folder = tmp_path / "site"
    folder.mkdir()
    log = CMTraceLog(folder / "alerts.log", component="SMS_ALERT_WATCHER", now=clock)
    ledger = WebhookLedger(
        site_db.webhooks,
        [webhook],
        site_code="CS1",
        hierarchy="Contoso",
        log=log,
        clock=clock,
        legacy_file=folder / "alerting.sqlite",
    )
    assert ledger.send([_alert(1, T0 - timedelta(minutes=5))], SET_UP, T0).delivered == 1
    assert sorted(p.name for p in folder.iterdir()) == ["alerts.log"]


# -- two processes on one site database --------------------------------------------------


def test_two_processes_sharing_the_database_send_each_event_once(
    receiver: tuple[Receiver, Webhook], tmp_path: Path, database: Database
) -> None:
    r, webhook = receiver
    alerts = [_alert(i, T0 - timedelta(minutes=30 - i)) for i in range(1, 21)]
    ready = threading.Barrier(2)
    failures: list[BaseException] = []
    # Two site servers of one site on one database: each its own engine and connections
    # (opened one after the other: migrations run in one thread at a time in a process).
    opened = [SiteDatabase.open(url=database.url, site_code="CS1") for _ in range(2)]

    def process(name: str, db: SiteDatabase) -> None:
        log = CMTraceLog(tmp_path / f"{name}.log", component="SMS_ALERT_WATCHER", now=clock)
        try:
            ledger = _ledger(db, webhook, log)
            ready.wait(timeout=30)
            for raised in range(1, len(alerts) + 1):  # one more alert at each round
                ledger.send(alerts[:raised], SET_UP, T0)
        except BaseException as exc:  # reported by the test below
            failures.append(exc)

    threads = [
        threading.Thread(target=process, args=(name, db))
        for name, db in zip(("one", "two"), opened, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for db in opened:
        db.close()
    assert failures == []
    assert sorted(r.events()) == [("raised", i) for i in range(1, 21)]
    assert r.events() == [("raised", i) for i in range(1, 21)]  # and in order


# -- the record of an older updatesync ---------------------------------------------------

OLD_DDL = (
    "CREATE TABLE webhook (url TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0, "
    "next_attempt_at TEXT, last_error TEXT)",
    "CREATE TABLE baseline (url TEXT NOT NULL, epoch TEXT NOT NULL, taken_at TEXT NOT NULL, "
    "PRIMARY KEY (url, epoch))",
    "CREATE TABLE delivery (seq INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL, "
    "epoch TEXT NOT NULL, alert_id INTEGER NOT NULL, event TEXT NOT NULL, payload TEXT NOT NULL, "
    "happened_at TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
    "done_at TEXT, UNIQUE (url, epoch, alert_id, event))",
    "CREATE INDEX ix_delivery_pending ON delivery (url, state, seq)",
)


def _old_file(path: Path, url: str, next_attempt: datetime | None) -> None:
    """An `alerting.sqlite` as an older updatesync left it: alert 1 raised and sent, its
    cancel and alert 2's raise waiting after two refusals, alert 3's raise given up."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    stamp = None if next_attempt is None else next_attempt.isoformat()
    rows = [
        (1, "raised", T0 - timedelta(hours=3), "sent", 1, T0 - timedelta(hours=3)),
        (3, "raised", T0 - timedelta(days=9), "given_up", 7, T0 - timedelta(days=2)),
        (1, "canceled", T0 - timedelta(hours=2), "pending", 2, None),
        (2, "raised", T0 - timedelta(hours=1), "pending", 0, None),
    ]
    with engine.begin() as conn:
        for statement in OLD_DDL:
            conn.execute(text(statement))
        conn.execute(
            text("INSERT INTO webhook VALUES (:url, 2, :next, 'HTTP 503')"),
            {"url": url, "next": stamp},
        )
        conn.execute(
            text("INSERT INTO baseline VALUES (:url, :epoch, :taken)"),
            {"url": url, "epoch": EPOCH, "taken": (T0 - timedelta(days=10)).isoformat()},
        )
        for alert_id, event, happened, state, attempts, done in rows:
            canceled = happened if event == "canceled" else None
            payload = event_payload(_alert(alert_id, happened, canceled), event, "Contoso")
            conn.execute(
                text(
                    "INSERT INTO delivery (url, epoch, alert_id, event, payload, happened_at, "
                    "state, attempts, done_at) VALUES (:url, :epoch, :alert_id, :event, "
                    ":payload, :happened, :state, :attempts, :done)"
                ),
                {
                    "url": url,
                    "epoch": EPOCH,
                    "alert_id": alert_id,
                    "event": event,
                    "payload": json.dumps(payload),
                    "happened": happened.isoformat(),
                    "state": state,
                    "attempts": attempts,
                    "done": None if done is None else done.isoformat(),
                },
            )
    engine.dispose()


def test_an_older_alerting_file_is_read_once_and_renamed(
    receiver: tuple[Receiver, Webhook], tmp_path: Path, database: Database, log: CMTraceLog
) -> None:
    r, webhook = receiver
    old = tmp_path / "CS1" / "alerting.sqlite"
    _old_file(old, webhook.url, next_attempt=T0 + timedelta(minutes=10))
    alerts = [
        _alert(1, T0 - timedelta(hours=3), T0 - timedelta(hours=2)),
        _alert(2, T0 - timedelta(hours=1)),
        _alert(3, T0 - timedelta(days=9)),
    ]
    with SiteDatabase.open(url=database.url, site_code="CS1") as db:
        ledger = _ledger(db, webhook, log, legacy_file=old)
        assert ledger.send(alerts, SET_UP, T0) == Delivery(pending=2)  # its retry is not due
        assert ledger.next_retry() == T0 + timedelta(minutes=10)
        assert not old.exists()
        assert (tmp_path / "CS1" / "alerting.sqlite.migrated").is_file()
    assert r.posts == []
    assert any(
        "Webhook delivery record of an older updatesync read into the site database of site "
        "CS1: 1 webhook(s), 4 event(s); alerting.sqlite renamed alerting.sqlite.migrated" in m
        for m in (e.message for e in read_cmtrace(log.path))
    )
    with SiteDatabase.open(url=database.url, site_code="CS1") as db:
        ledger = _ledger(db, webhook, log, legacy_file=old)
        due = T0 + timedelta(minutes=10)
        assert ledger.send(alerts, SET_UP, due) == Delivery(delivered=2)
        assert ledger.send(alerts, SET_UP, due) == Delivery()
    assert r.events() == [("canceled", 1), ("raised", 2)]  # in the order of the old record
    assert [h["idempotency-key"] for _, h in r.posts] == [
        f"CS1/{EPOCH}/1/canceled",
        f"CS1/{EPOCH}/2/raised",
    ]
    messages = [e.message for e in read_cmtrace(log.path)]
    assert not any("first use" in m for m in messages)  # the old baseline was kept
    assert sum("read into the site database" in m for m in messages) == 1


def test_an_older_alerting_file_that_cannot_be_read_stops_the_sending(
    receiver: tuple[Receiver, Webhook], tmp_path: Path, site_db: SiteDatabase, log: CMTraceLog
) -> None:
    r, webhook = receiver
    old = tmp_path / "CS1" / "alerting.sqlite"
    old.parent.mkdir()
    old.write_bytes(b"not a database, but a file of the same name" * 100)
    ledger = _ledger(site_db, webhook, log, legacy_file=old)
    with pytest.raises(AlertingError) as refused:
        ledger.send([_alert(1, T0)], SET_UP, T0)
    message = str(refused.value)
    assert str(old) in message
    assert "No alert event is sent until it is" in message
    assert "move it away to start the webhooks' record afresh" in message
    assert old.is_file() and r.posts == []
    old.unlink()
    assert ledger.send([_alert(1, T0)], SET_UP, T0) == Delivery(delivered=1)
