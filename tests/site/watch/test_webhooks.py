"""Tests of webhooks.py directly: Webhook URL checks and `shown`, the event payload, and
WebhookLedger.send against a small local receiver (order, retries, give-up, no resends)."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from updatesync.logs.cmtrace import CMTraceLog, Severity, read_cmtrace
from updatesync.logs.status_messages import sync_failed
from updatesync.roles.serving import BackgroundServer
from updatesync.site.watch.alerts import Alert, AlertState, AlertType
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


def _ledger(tmp_path: Path, webhook: Webhook, log: CMTraceLog, **extra: Any) -> WebhookLedger:
    return WebhookLedger(
        tmp_path / "state" / "webhooks.sqlite",
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
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, tmp_path: Path
) -> None:
    r, webhook = receiver
    ledger = _ledger(tmp_path, webhook, log)
    first = _alert(1, T0 - timedelta(minutes=5))
    second = _alert(2, T0 - timedelta(minutes=3))
    try:
        assert ledger.send([second, first], SET_UP, T0) == Delivery(delivered=2)
        closed = _alert(1, first.raised_at, T0 + timedelta(minutes=1))
        later = T0 + timedelta(minutes=2)
        assert ledger.send([closed, second], SET_UP, later) == Delivery(delivered=1)
        assert ledger.send([closed, second], SET_UP, later) == Delivery()
    finally:
        ledger.close()
    assert r.events() == [("raised", 1), ("raised", 2), ("canceled", 1)]
    keys = [headers["idempotency-key"] for _, headers in r.posts]
    assert keys == [f"CS1/{EPOCH}/1/raised", f"CS1/{EPOCH}/2/raised", f"CS1/{EPOCH}/1/canceled"]
    assert all(h["content-type"] == "application/json" for _, h in r.posts)
    assert r.posts[0][0]["hierarchy"] == "Contoso"


def test_first_use_skips_alerts_already_canceled(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, tmp_path: Path
) -> None:
    r, webhook = receiver
    ledger = _ledger(tmp_path, webhook, log)
    old = _alert(1, T0 - timedelta(days=1), T0 - timedelta(hours=20))
    current = _alert(2, T0 - timedelta(hours=1))
    try:
        assert ledger.send([old, current], SET_UP, T0) == Delivery(delivered=1)
    finally:
        ledger.close()
    assert r.events() == [("raised", 2)]
    messages = [e.message for e in read_cmtrace(log.path)]
    assert any(
        "first use for site CS1" in m and "1 alert(s) raised now" in m and "the 1 alert" in m
        for m in messages
    )


def test_a_refusal_waits_for_retry_first_then_sends_in_order(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, tmp_path: Path
) -> None:
    r, webhook = receiver
    ledger = _ledger(tmp_path, webhook, log, retry_first=timedelta(seconds=30))
    alerts = [_alert(1, T0 - timedelta(minutes=2)), _alert(2, T0 - timedelta(minutes=1))]
    try:
        r.status = 500
        refused = ledger.send(alerts, SET_UP, T0)
        assert refused == Delivery(failed=(webhook.shown,), pending=2)
        assert len(r.posts) == 1  # stops at the first refusal
        assert ledger.next_retry() == T0 + timedelta(seconds=30)

        r.status = 200
        early = ledger.send(alerts, SET_UP, T0 + timedelta(seconds=29))
        assert early == Delivery(pending=2)
        assert len(r.posts) == 1  # nothing sent before retry_first

        due = ledger.send(alerts, SET_UP, T0 + timedelta(seconds=30))
        assert due == Delivery(delivered=2)
        assert ledger.next_retry() is None
    finally:
        ledger.close()
    assert r.events() == [("raised", 1), ("raised", 1), ("raised", 2)]
    warnings = [e.message for e in read_cmtrace(log.path) if e.severity is Severity.WARNING]
    assert warnings == [
        f"Webhook {webhook.shown}: the raised event of alert 1 at site CS1 was not accepted "
        "(HTTP 500); 2 event(s) waiting, next attempt in 30 seconds"
    ]


def test_the_retry_pause_doubles_up_to_retry_max(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, tmp_path: Path
) -> None:
    r, webhook = receiver
    r.status = 500
    ledger = _ledger(
        tmp_path, webhook, log, retry_first=timedelta(seconds=30), retry_max=timedelta(minutes=1)
    )
    alerts = [_alert(1, T0)]
    now = T0
    pauses = []
    try:
        for _ in range(3):
            ledger.send(alerts, SET_UP, now)
            due = ledger.next_retry()
            assert due is not None
            pauses.append(due - now)
            now = due
    finally:
        ledger.close()
    assert pauses == [timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=1)]
    assert len(r.posts) == 3


def test_an_event_undelivered_too_long_is_given_up(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, tmp_path: Path
) -> None:
    r, webhook = receiver
    r.status = 500
    ledger = _ledger(tmp_path, webhook, log, give_up_after=timedelta(hours=1))
    alerts = [_alert(1, T0)]
    try:
        ledger.send(alerts, SET_UP, T0)
        r.status = 200
        later = T0 + timedelta(hours=2)
        assert ledger.send(alerts, SET_UP, later) == Delivery(given_up=1)
        assert ledger.send(alerts, SET_UP, later) == Delivery()
    finally:
        ledger.close()
    assert len(r.posts) == 1
    errors = [e.message for e in read_cmtrace(log.path) if e.severity is Severity.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith(f"Webhook {webhook.shown}: gave up the raised event of alert 1")


def test_a_new_ledger_on_the_same_state_file_sends_nothing_twice(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, tmp_path: Path
) -> None:
    r, webhook = receiver
    alerts = [_alert(1, T0 - timedelta(minutes=1))]
    ledger = _ledger(tmp_path, webhook, log)
    try:
        assert ledger.send(alerts, SET_UP, T0).delivered == 1
    finally:
        ledger.close()
    again = _ledger(tmp_path, webhook, log)
    try:
        assert again.send(alerts, SET_UP, T0 + timedelta(minutes=1)) == Delivery()
        canceled = [_alert(1, alerts[0].raised_at, T0 + timedelta(minutes=2))]
        assert again.send(canceled, SET_UP, T0 + timedelta(minutes=3)) == Delivery(delivered=1)
    finally:
        again.close()
    assert r.events() == [("raised", 1), ("canceled", 1)]


def test_a_new_epoch_starts_a_new_record(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, tmp_path: Path
) -> None:
    r, webhook = receiver
    ledger = _ledger(tmp_path, webhook, log)
    alerts = [_alert(1, T0)]
    try:
        ledger.send(alerts, SET_UP, T0)
        ledger.send(alerts, datetime(2026, 5, 1, tzinfo=UTC), T0)
    finally:
        ledger.close()
    assert [h["idempotency-key"] for _, h in r.posts] == [
        f"CS1/{EPOCH}/1/raised",
        "CS1/2026-05-01T00:00:00+00:00/1/raised",
    ]


def test_a_receiver_that_is_down_is_a_failure(log: CMTraceLog, tmp_path: Path) -> None:
    r = Receiver()
    with BackgroundServer(r.app) as server:
        webhook = Webhook(f"{server.url}/hook/secret", timeout=30.0)
    ledger = _ledger(tmp_path, webhook, log)
    try:
        result = ledger.send([_alert(1, T0)], SET_UP, T0)
    finally:
        ledger.close()
    assert result == Delivery(failed=(webhook.shown,), pending=1)
    assert r.posts == []


def test_next_retry_before_any_send_is_none(log: CMTraceLog, tmp_path: Path) -> None:
    ledger = _ledger(tmp_path, Webhook("http://127.0.0.1:9/hook"), log)
    assert ledger.next_retry() is None
    ledger.close()


def test_the_state_file_and_its_folder_are_private(
    receiver: tuple[Receiver, Webhook], log: CMTraceLog, tmp_path: Path
) -> None:
    _r, webhook = receiver
    ledger = _ledger(tmp_path, webhook, log)
    try:
        assert ledger.send([_alert(1, T0 - timedelta(minutes=5))], SET_UP, T0).delivered == 1
        state = tmp_path / "state"
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir()}
    finally:
        ledger.close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert modes and set(modes.values()) == {0o600}, modes
