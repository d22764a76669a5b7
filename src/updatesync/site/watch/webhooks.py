"""Alert events to webhooks: a ledger of what each receiver has had, and the delivery.

Every raise and every cancel of an alert of the site is POSTed as JSON to each webhook (the
body is `event_payload`). What was found and sent is kept in a small SQLite file of its own
(the alert watcher's `state_file`), one row per webhook and event, written before the event
is sent: a restart sends nothing twice, and an event whose receiver was down waits there. A
receiver that does not answer 2xx is tried again with growing pauses (`retry_first`,
doubling up to `retry_max`), events in the order they happened; an event still undelivered
`give_up_after` after it happened is given up and logged. Only if the process dies between
the receiver's answer and the write of "sent" is an event sent again, with the same
`Idempotency-Key` header (`<site>/<database set-up time>/<alert id>/<event>`).

Each event is signed as the Standard Webhooks specification says (`webhook-id`, the same on
every retry; `webhook-timestamp`; `webhook-signature`, `security/webhook_signing.py`) with
the webhook's secret; a webhook given no secret (the hierarchy file's explicit
`unsigned = true`) is sent unsigned. The event of a sync-failure alert carries the 6703
status message that reported the failure (its id, text and insertion strings) and, apart,
the failure's text and its source (where it arose).

A webhook seen for the first time gets the alerts raised at that moment, not the history of
alerts already canceled; the ledger remembers which site database (its set-up time, the
"epoch") it belongs to, so a new database starts a new record.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.status_messages import StatusMessage, describe
from updatesync.security.private_files import private_database
from updatesync.security.webhook_signing import webhook_headers
from updatesync.site.watch.alerts import Alert, AlertState, format_span
from updatesync.vocabulary import SYNC_FAILED

RAISED = "raised"
CANCELED = "canceled"

DEFAULT_RETRY_FIRST = timedelta(seconds=30)
DEFAULT_RETRY_MAX = timedelta(hours=1)
DEFAULT_GIVE_UP_AFTER = timedelta(days=7)

_PENDING = "pending"
_SENT = "sent"
_SKIPPED = "skipped"
_GIVEN_UP = "given_up"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook (
    url TEXT PRIMARY KEY,
    failures INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS baseline (
    url TEXT NOT NULL,
    epoch TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    PRIMARY KEY (url, epoch)
);
CREATE TABLE IF NOT EXISTS delivery (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    epoch TEXT NOT NULL,
    alert_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    happened_at TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    done_at TEXT,
    UNIQUE (url, epoch, alert_id, event)
);
CREATE INDEX IF NOT EXISTS ix_delivery_pending ON delivery (url, state, seq);
"""


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return format_span(span) if seconds >= 60 else f"{seconds} seconds"


def _read(stamp: str | None) -> datetime | None:
    return None if stamp is None else datetime.fromisoformat(stamp)


class AlertingError(Exception):
    """The watcher or a webhook cannot be set up as asked; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """A receiver of alert events: an http(s) URL, how long one POST may take, and the
    secret each event is signed with (None: sent unsigned)."""

    url: str
    timeout: float = 10.0
    secret: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise AlertingError(
                f"webhook {self.url!r} is not an http(s) URL; write it as "
                "http://host:port/path or https://host/path"
            )
        if self.timeout <= 0:
            raise AlertingError(f"webhook {self.shown}: timeout must be positive")

    @property
    def shown(self) -> str:
        """The URL as logs show it: scheme and host only (paths and queries of webhook URLs
        often hold a token)."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        more = "/…" if parts.path.strip("/") or parts.query else ""
        return f"{parts.scheme}://{host}{port}{more}"


@dataclass(slots=True)
class _Event:
    alert: Alert
    event: str
    happened_at: datetime = field(init=False)

    def __post_init__(self) -> None:
        moment = self.alert.raised_at if self.event == RAISED else self.alert.canceled_at
        self.happened_at = moment or self.alert.raised_at


def message_json(message: StatusMessage) -> dict[str, Any]:
    """A status message as an event carries it: id, severity, text as the console shows it,
    insertion strings, and where and when it was reported."""
    strings = list(message.strings)
    while strings and not strings[-1]:
        strings.pop()
    return {
        "id": message.message_id,
        "severity": message.severity.value,
        "text": describe(message),
        "insertion_strings": strings,
        "component": message.component,
        "system": message.system,
        "site": message.site_code,
        "time": message.time.isoformat(),
        "last_error": None if message.last_error is None else f"0x{message.last_error:08X}",
    }


def failure_of(message: StatusMessage | None) -> dict[str, str] | None:
    """The failure a 6703 status message reports: its text (ISTR1) and source (ISTR0)."""
    if message is None or message.message_id != SYNC_FAILED:
        return None
    strings = (*message.strings, "", "")
    return {"text": strings[1], "source": strings[0]}


def message_id(key: str) -> str:
    """The `webhook-id` of an event: derived from its idempotency key, so every retry of it
    has the same id (and the id has no `.`, which separates the signed parts)."""
    return "msg_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def event_payload(
    alert: Alert, event: str, hierarchy: str, cause: StatusMessage | None = None
) -> dict[str, Any]:
    """The JSON body POSTed for one event. A `raised` event shows the alert as it was when
    raised (`canceled_at` null), even when it is sent after the cancel. `cause`: the status
    message that reported what raised the alert (for a sync failure, the 6703), given as
    `status_message` and its `failure` (text and source); null when there is none."""
    return {
        "event": event,
        "alert": {
            "id": alert.alert_id,
            "type": alert.alert_type.value,
            "site": alert.site_code,
            "instance": alert.instance,
            "text": alert.text,
            "raised_at": alert.raised_at.isoformat(),
            "canceled_at": (
                alert.canceled_at.isoformat()
                if event == CANCELED and alert.canceled_at is not None
                else None
            ),
        },
        "hierarchy": hierarchy,
        "status_message": None if cause is None else message_json(cause),
        "failure": failure_of(cause),
    }


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one pass of the ledger did."""

    delivered: int = 0
    given_up: int = 0
    failed: tuple[str, ...] = ()
    pending: int = 0


class WebhookLedger:
    """The webhooks of one site and what each has had (in `state_file`). Not thread-safe:
    the alert watcher calls it under its round lock."""

    def __init__(
        self,
        state_file: Path,
        webhooks: Sequence[Webhook],
        *,
        site_code: str,
        hierarchy: str,
        log: CMTraceLog,
        clock: Callable[[], datetime],
        retry_first: timedelta = DEFAULT_RETRY_FIRST,
        retry_max: timedelta = DEFAULT_RETRY_MAX,
        give_up_after: timedelta = DEFAULT_GIVE_UP_AFTER,
        cause: Callable[[Alert], StatusMessage | None] | None = None,
    ) -> None:
        self.state_file = state_file
        self.cause = cause
        self.webhooks = tuple(webhooks)
        self.site_code = site_code
        self.hierarchy = hierarchy
        self.log = log
        self.clock = clock
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.give_up_after = give_up_after
        self._conn: sqlite3.Connection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def send(self, alerts: Sequence[Alert], set_up: datetime, now: datetime) -> Delivery:
        """Note every event of `alerts` each webhook has not had, then send what is due.
        `set_up` is when the site database was set up: it tells one database's alert ids
        from a later one's (the ledger's epoch)."""
        epoch = _stamp(set_up)
        ledger = self._open()
        for webhook in self.webhooks:
            self._record_events(ledger, webhook, epoch, alerts, now)
        delivered = given_up = 0
        failed: list[str] = []
        for webhook in self.webhooks:
            sent, dropped, ok = self._deliver(ledger, webhook, now)
            delivered += sent
            given_up += dropped
            if not ok:
                failed.append(webhook.shown)
        pending = ledger.execute(
            "SELECT COUNT(*) FROM delivery WHERE state = ? AND url IN "
            f"({', '.join('?' for _ in self.webhooks)})",
            (_PENDING, *(w.url for w in self.webhooks)),
        ).fetchone()[0]
        return Delivery(delivered, given_up, tuple(failed), int(pending))

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            private_database(self.state_file)  # 0600, in a 0700 folder
            conn = sqlite3.connect(self.state_file, isolation_level=None, check_same_thread=False)
            try:
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @staticmethod
    @contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _record_events(
        self,
        conn: sqlite3.Connection,
        webhook: Webhook,
        epoch: str,
        alerts: Sequence[Alert],
        now: datetime,
    ) -> None:
        """Write every event of `alerts` the webhook has not had as pending (in the order
        they happened), in one transaction; the first time a webhook is seen (for this site
        database), the occurrences already canceled are noted as skipped."""
        events = [_Event(a, RAISED) for a in alerts]
        events += [_Event(a, CANCELED) for a in alerts if a.state is AlertState.CANCELED]
        events.sort(key=lambda e: (e.happened_at, e.alert.alert_id, e.event == CANCELED))
        with self._transaction(conn):
            conn.execute("INSERT OR IGNORE INTO webhook (url) VALUES (?)", (webhook.url,))
            first = conn.execute(
                "INSERT OR IGNORE INTO baseline (url, epoch, taken_at) VALUES (?, ?, ?)",
                (webhook.url, epoch, _stamp(now)),
            ).rowcount
            known = {
                (alert_id, event)
                for alert_id, event in conn.execute(
                    "SELECT alert_id, event FROM delivery WHERE url = ? AND epoch = ?",
                    (webhook.url, epoch),
                )
            }
            skipped = 0
            for item in events:
                key = (item.alert.alert_id, item.event)
                if key in known:
                    continue
                state = _PENDING
                if first and item.alert.state is AlertState.CANCELED:
                    state, skipped = _SKIPPED, skipped + 1
                cause = self.cause(item.alert) if self.cause is not None else None
                payload = event_payload(item.alert, item.event, self.hierarchy, cause)
                conn.execute(
                    "INSERT INTO delivery (url, epoch, alert_id, event, payload, happened_at, "
                    "state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        webhook.url,
                        epoch,
                        item.alert.alert_id,
                        item.event,
                        json.dumps(payload, separators=(",", ":")),
                        _stamp(item.happened_at),
                        state,
                    ),
                )
        if first:
            raised = sum(1 for a in alerts if a.is_raised)
            self.log.info(
                f"Webhook {webhook.shown}: first use for site {self.site_code}; it gets the "
                f"{raised} alert(s) raised now and what happens from now on, not the "
                f"{skipped // 2} alert occurrence(s) already canceled"
            )

    def next_retry(self) -> datetime | None:
        """The earliest time a webhook with events waiting may be tried again."""
        if not self.webhooks:
            return None
        if self._conn is None:
            return None
        rows = self._conn.execute(
            "SELECT w.next_attempt_at FROM webhook w WHERE w.url IN "
            f"({', '.join('?' for _ in self.webhooks)}) AND EXISTS (SELECT 1 FROM delivery "
            "d WHERE d.url = w.url AND d.state = ?)",
            (*(w.url for w in self.webhooks), _PENDING),
        ).fetchall()
        times = [_read(r[0]) for r in rows]
        if any(t is None for t in times):
            return self.clock()
        return min((t for t in times if t is not None), default=None)

    def _backoff(self, failures: int) -> timedelta:
        step = self.retry_first * (2 ** min(max(failures - 1, 0), 30))
        return min(step, self.retry_max)

    def _deliver(
        self, conn: sqlite3.Connection, webhook: Webhook, now: datetime
    ) -> tuple[int, int, bool]:
        """Send the webhook's waiting events in order, if its retry is due; stop at the first
        refusal. Returns (delivered, given up, no failure)."""
        failures, next_attempt = conn.execute(
            "SELECT failures, next_attempt_at FROM webhook WHERE url = ?", (webhook.url,)
        ).fetchone()
        due = _read(next_attempt)
        if due is not None and due > now:
            return 0, 0, True
        rows = conn.execute(
            "SELECT seq, alert_id, event, payload, happened_at, epoch FROM delivery "
            "WHERE url = ? AND state = ? ORDER BY seq",
            (webhook.url, _PENDING),
        ).fetchall()
        delivered = given_up = 0
        if not rows:
            return 0, 0, True
        with httpx.Client(timeout=webhook.timeout, follow_redirects=False) as client:
            for seq, alert_id, event, payload, happened_at, epoch in rows:
                happened = _read(happened_at)
                if happened is not None and now - happened > self.give_up_after:
                    conn.execute(
                        "UPDATE delivery SET state = ?, done_at = ? WHERE seq = ?",
                        (_GIVEN_UP, _stamp(now), seq),
                    )
                    given_up += 1
                    self.log.error(
                        f"Webhook {webhook.shown}: gave up the {event} event of alert "
                        f"{alert_id} at site {self.site_code}, undelivered for more than "
                        f"{format_span(self.give_up_after)}"
                    )
                    continue
                key = f"{self.site_code}/{epoch}/{alert_id}/{event}"
                error = self._post(client, webhook, payload, key)
                conn.execute("UPDATE delivery SET attempts = attempts + 1 WHERE seq = ?", (seq,))
                if error is None:
                    conn.execute(
                        "UPDATE delivery SET state = ?, done_at = ? WHERE seq = ?",
                        (_SENT, _stamp(self.clock()), seq),
                    )
                    conn.execute(
                        "UPDATE webhook SET failures = 0, next_attempt_at = NULL, "
                        "last_error = NULL WHERE url = ?",
                        (webhook.url,),
                    )
                    delivered += 1
                    failures = 0
                    self.log.info(
                        f"Webhook {webhook.shown}: sent the {event} event of alert {alert_id} "
                        f"at site {self.site_code}"
                    )
                    continue
                failures += 1
                retry = now + self._backoff(failures)
                conn.execute(
                    "UPDATE webhook SET failures = ?, next_attempt_at = ?, last_error = ? "
                    "WHERE url = ?",
                    (failures, _stamp(retry), error, webhook.url),
                )
                waiting = len(rows) - delivered - given_up
                self.log.warning(
                    f"Webhook {webhook.shown}: the {event} event of alert {alert_id} at site "
                    f"{self.site_code} was not accepted ({error}); {waiting} event(s) waiting, "
                    f"next attempt in {_span(retry - now)}"
                )
                return delivered, given_up, False
        return delivered, given_up, True

    def _post(self, client: httpx.Client, webhook: Webhook, payload: str, key: str) -> str | None:
        """POST one event, signed when the webhook has a secret; None when the receiver
        answered 2xx, else what went wrong."""
        body = payload.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "User-Agent": "updatesync-alerts",
        }
        if webhook.secret is not None:
            headers |= webhook_headers(webhook.secret, message_id(key), body)
        try:
            response = client.post(webhook.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"
