"""Alert events to webhooks: a ledger of what each receiver has had, and the delivery.

Every raise and every cancel of an alert of the site is POSTed as JSON to each webhook (the
body is `event_payload`). What was found and sent is kept in the site database
(`SiteDatabase.webhooks`, `site/database/webhook_deliveries.py`), one row per webhook and
event, written before the event is sent: a restart sends nothing twice, and an event whose
receiver was down waits there. A receiver that does not answer 2xx is tried again with
growing pauses (`retry_first`, doubling up to `retry_max`, each pause drawn between half and
all of that: `retry_policy.WEBHOOK_DELIVERY`, so the sites of a hierarchy that lost the same
receiver do not retry it together), events in the order they happened; an event still
undelivered `give_up_after` after it happened is given up and logged. Only if the process
dies between the receiver's answer and the write of "sent" is an event sent again, with the
same `Idempotency-Key` header (`<site>/<database set-up time>/<alert id>/<event>`). A
delivery pass holds its webhook in the database (a claim, renewed at each event), so two
processes sharing one site database (on PostgreSQL, say) never send the same events at
once; the claim of a process that died runs out after the webhook's timeout and a minute.

Each event is signed as the Standard Webhooks specification says (`webhook-id`, the same on
every retry; `webhook-timestamp`; `webhook-signature`, `security/webhook_signing.py`) with
the webhook's secret; a webhook given no secret (the hierarchy file's explicit
`unsigned = true`) is sent unsigned. The event of a sync-failure alert carries the 6703
status message that reported the failure (its id, text and insertion strings) and, apart,
the failure's text and its source (where it arose).

A webhook seen for the first time gets the alerts raised at that moment, not the history of
alerts already canceled; the ledger remembers which site database (its set-up time, the
"epoch") it belongs to, so a new database starts a new record.

Older updatesync kept this record in a SQLite file of its own (`alerting.sqlite` in the
site's data folder). Given that file (`legacy_file`), the ledger reads it into the site
database before it first sends, renames it `alerting.sqlite.migrated` and logs it; until it
is read, nothing is sent (so nothing is sent twice).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.status_messages import StatusMessage, describe
from updatesync.retry_policy import WEBHOOK_DELIVERY
from updatesync.security.webhook_signing import webhook_headers
from updatesync.site.database.store import SiteDatabaseError
from updatesync.site.database.webhook_deliveries import NewEvent, WebhookDeliveries
from updatesync.site.watch.alerts import Alert, AlertState, format_span
from updatesync.vocabulary import SYNC_FAILED

RAISED = "raised"
CANCELED = "canceled"

DEFAULT_RETRY_FIRST = timedelta(seconds=30)
DEFAULT_RETRY_MAX = timedelta(hours=1)
DEFAULT_GIVE_UP_AFTER = timedelta(days=7)

HOLD_MARGIN = timedelta(minutes=1)
"""How much longer than one POST's timeout a delivery pass holds its webhook."""

MIGRATED_SUFFIX = ".migrated"
"""Appended to an older updatesync's `alerting.sqlite` once it is read."""


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    return format_span(span) if seconds >= 60 else f"{seconds} seconds"


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
    """The webhooks of one site and what each has had (in the site database, `deliveries`).
    Not thread-safe: the alert watcher calls it under its round lock. `legacy_file`: where
    an older updatesync kept this record (read once, then renamed). `rng`: the random source
    of the retry pauses' jitter (None: the process's own)."""

    def __init__(
        self,
        deliveries: WebhookDeliveries,
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
        legacy_file: Path | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.deliveries = deliveries
        self.cause = cause
        self.webhooks = tuple(webhooks)
        self.site_code = site_code
        self.hierarchy = hierarchy
        self.log = log
        self.clock = clock
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.retry_policy = WEBHOOK_DELIVERY.scaled(
            retry_first.total_seconds(), retry_max.total_seconds()
        )
        self.rng = rng
        self.give_up_after = give_up_after
        self.legacy_file = legacy_file

    def send(self, alerts: Sequence[Alert], set_up: datetime, now: datetime) -> Delivery:
        """Note every event of `alerts` each webhook has not had, then send what is due.
        `set_up` is when the site database was set up: it tells one database's alert ids
        from a later one's (the ledger's epoch)."""
        self._adopt_legacy_file()
        epoch = _stamp(set_up)
        for webhook in self.webhooks:
            self._record_events(webhook, epoch, alerts, now)
        delivered = given_up = 0
        failed: list[str] = []
        for webhook in self.webhooks:
            sent, dropped, ok = self._deliver(webhook, now)
            delivered += sent
            given_up += dropped
            if not ok:
                failed.append(webhook.shown)
        pending = self.deliveries.pending_count([w.url for w in self.webhooks])
        return Delivery(delivered, given_up, tuple(failed), pending)

    def _adopt_legacy_file(self) -> None:
        """Read an older updatesync's record into the site database, once: then the file is
        renamed, so it is not read again."""
        path = self.legacy_file
        if path is None or not (path.exists() or path.is_symlink()):
            return
        try:
            found = self.deliveries.import_legacy(path)
        except SiteDatabaseError as exc:
            raise AlertingError(
                f"the webhook delivery record of an older updatesync is not read: {exc}. "
                "No alert event is sent until it is: make it readable, or move it away to "
                "start the webhooks' record afresh (the alerts raised now are then sent again)"
            ) from exc
        moved = path.with_name(path.name + MIGRATED_SUFFIX)
        os.replace(path, moved)
        self.log.info(
            f"Webhook delivery record of an older updatesync read into the site database of "
            f"site {self.site_code}: {found.webhooks} webhook(s), {found.events} event(s); "
            f"{path.name} renamed {moved.name} ({moved})"
        )

    def _record_events(
        self, webhook: Webhook, epoch: str, alerts: Sequence[Alert], now: datetime
    ) -> None:
        """Write every event of `alerts` the webhook has not had as pending (in the order
        they happened), in one transaction; the first time a webhook is seen (for this site
        database), the occurrences already canceled are noted as skipped."""
        events = [_Event(a, RAISED) for a in alerts]
        events += [_Event(a, CANCELED) for a in alerts if a.state is AlertState.CANCELED]
        events.sort(key=lambda e: (e.happened_at, e.alert.alert_id, e.event == CANCELED))
        known = self.deliveries.known(webhook.url, epoch)
        new = []
        for item in events:
            if (item.alert.alert_id, item.event) in known:
                continue
            cause = self.cause(item.alert) if self.cause is not None else None
            payload = event_payload(item.alert, item.event, self.hierarchy, cause)
            new.append(
                NewEvent(
                    item.alert.alert_id,
                    item.event,
                    item.happened_at,
                    json.dumps(payload, separators=(",", ":")),
                    item.alert.state is AlertState.CANCELED,
                )
            )
        recorded = self.deliveries.record(webhook.url, epoch, now, new)
        if recorded.first:
            raised = sum(1 for a in alerts if a.is_raised)
            self.log.info(
                f"Webhook {webhook.shown}: first use for site {self.site_code}; it gets the "
                f"{raised} alert(s) raised now and what happens from now on, not the "
                f"{recorded.skipped // 2} alert occurrence(s) already canceled"
            )

    def next_retry(self) -> datetime | None:
        """The earliest time a webhook with events waiting may be tried again."""
        if not self.webhooks:
            return None
        times = self.deliveries.retry_times([w.url for w in self.webhooks])
        if any(t is None for t in times):
            return self.clock()
        return min((t for t in times if t is not None), default=None)

    def _backoff(self, failures: int) -> timedelta:
        """The pause after the `failures`-th refusal in a row (`retry_policy.WEBHOOK_DELIVERY`:
        half to all of `retry_first` doubled per refusal, at most `retry_max`), in the unit
        the log line states it in: whole seconds under a minute, whole minutes above."""
        wait = self.retry_policy.next_delay(failures, self.rng)
        unit = 60 if wait >= 60 else 1
        return timedelta(seconds=max(math.floor(wait / unit) * unit, 1))

    def _hold_until(self, webhook: Webhook, now: datetime) -> datetime:
        return max(now, self.clock()) + timedelta(seconds=webhook.timeout) + HOLD_MARGIN

    def _deliver(self, webhook: Webhook, now: datetime) -> tuple[int, int, bool]:
        """Send the webhook's waiting events in order, if its retry is due and no other
        process is sending to it; stop at the first refusal. Returns (delivered, given up,
        no failure)."""
        failures = self.deliveries.claim(webhook.url, now, self._hold_until(webhook, now))
        if failures is None:
            return 0, 0, True
        try:
            return self._deliver_claimed(webhook, now, failures)
        finally:
            self.deliveries.release(webhook.url)

    def _deliver_claimed(
        self, webhook: Webhook, now: datetime, failures: int
    ) -> tuple[int, int, bool]:
        rows = self.deliveries.pending(webhook.url)
        delivered = given_up = 0
        if not rows:
            return 0, 0, True
        with httpx.Client(timeout=webhook.timeout, follow_redirects=False) as client:
            for row in rows:
                alert_id, event = row.alert_id, row.event
                if now - row.happened_at > self.give_up_after:
                    self.deliveries.give_up(row.seq, now)
                    given_up += 1
                    self.log.error(
                        f"Webhook {webhook.shown}: gave up the {event} event of alert "
                        f"{alert_id} at site {self.site_code}, undelivered for more than "
                        f"{format_span(self.give_up_after)}"
                    )
                    continue
                key = f"{self.site_code}/{row.epoch}/{alert_id}/{event}"
                error = self._post(client, webhook, row.payload, key)
                if error is None:
                    done = self.clock()
                    self.deliveries.sent(webhook.url, row.seq, done, self._hold_until(webhook, now))
                    delivered += 1
                    failures = 0
                    self.log.info(
                        f"Webhook {webhook.shown}: sent the {event} event of alert {alert_id} "
                        f"at site {self.site_code}"
                    )
                    continue
                failures += 1
                retry = now + self._backoff(failures)
                self.deliveries.refused(webhook.url, row.seq, failures, retry, error)
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
