"""The alert watcher of a site: overdue syncs, degraded replication links, and webhooks.

ConfigMgr alerts only when a sync fails (the sync manager raises that alert itself). The
watcher adds what administrators ask for (SPEC section 5): on its interval it judges

- **sync_overdue**: the site's last successful sync is older than `overdue_after`. A site
  that never synced is judged from the time its site database was set up, so a new site is
  not overdue before it has had `overdue_after` to sync. Canceled once a sync succeeded
  within `overdue_after`.
- **replication_link_degraded**: at a child site, its database replication link to the
  parent is degraded (1) or in error (2); canceled when it is healthy (0) again.

Each is one raised occurrence at a time in the site database (`db.alerts.raise_alert`),
with a text that says what and since when (`alerts.overdue_text`,
`alerts.replication_link_text`).

**Webhooks.** Every raise and every cancel of any alert of the site, the sync-failure alert
included, is sent to each configured URL by `webhooks.WebhookLedger` (what each receiver has
had is kept in the site database, `db.webhooks`). The watcher finds the events in the site
database (each alert occurrence has an id; a raise is one event, its cancel another), so it
needs no hook in whatever raised them. A sync-failure alert's events carry the 6703 status
message that reported the failure (`failure_message`): the newest one of the site up to the
moment the alert was raised, for the SUP the alert is about.

The watcher waits on an Event between rounds (`check_interval`, or sooner when a retry is
due); `poke()` wakes it, e.g. after a sync ends, so a sync-failure alert goes out at once.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.status_messages import StatusMessage
from updatesync.site.database.models import LinkStatus
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alerts import (
    Alert,
    AlertState,
    AlertType,
    format_span,
    overdue_text,
    replication_link_text,
)
from updatesync.site.watch.webhooks import (
    DEFAULT_GIVE_UP_AFTER,
    DEFAULT_RETRY_FIRST,
    DEFAULT_RETRY_MAX,
    AlertingError,
    Delivery,
    Webhook,
    WebhookLedger,
)
from updatesync.vocabulary import REPLICA_FAILURE, SYNC_FAILED

_REPORTED_WITHIN = timedelta(seconds=5)
"""How long after its 6703 a sync-failure alert may have been raised (the sync manager sends
the message, then raises the alert)."""


def _what(message: StatusMessage) -> str:
    """A 6703's error text (ISTR1)."""
    return message.strings[1] if len(message.strings) > 1 else ""


def failure_message(db: SiteDatabase, alert: Alert) -> StatusMessage | None:
    """The 6703 that reported the failure behind a sync-failure alert: the newest of the
    alert's site up to its raise, about a replica when the alert is about one (its text
    starts `Replica WSUS server <fqdn>:`), else about the site's own sync. None for another
    kind of alert (its text says why), or when no such message is kept."""
    if alert.alert_type is not AlertType.SYNC_FAILURE:
        return None
    found = db.messages.find(
        site_code=alert.site_code,
        message_id=SYNC_FAILED,
        until=alert.raised_at + _REPORTED_WITHIN,
        limit=20,
    )
    replica = f"{REPLICA_FAILURE}{alert.instance}:"
    about = [m for m in found if _what(m).startswith(replica)]
    if about:
        return about[0]
    own = [m for m in found if not _what(m).startswith(REPLICA_FAILURE)]
    return own[0] if own else None


DEFAULT_CHECK_INTERVAL = 60.0
"""Seconds between two rounds of the watcher."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class WatchRound:
    """What one round of the watcher did."""

    raised: tuple[Alert, ...] = ()
    """Alerts the watcher raised (overdue, replication link)."""
    canceled: tuple[Alert, ...] = ()
    """Alerts the watcher canceled."""
    delivered: int = 0
    """Events a webhook accepted (2xx) in this round."""
    failed: tuple[str, ...] = ()
    """Webhooks (as `Webhook.shown`) that did not accept an event in this round."""
    pending: int = 0
    """Events still waiting for a webhook after this round."""
    given_up: int = 0
    """Events given up in this round (older than `give_up_after`)."""
    errors: tuple[str, ...] = ()
    """Parts of the round that failed (also logged); the next round tries again."""


class AlertWatcher:
    """Judges a site's overdue sync and replication links, and sends its alerts' events to
    webhooks. `start()` runs it in a thread (a round at once, then every `check_interval`
    seconds); `check_now()` runs one round in the caller's thread; `stop()` ends it.

    `clock` gives "now" (aware, UTC) for the judgments, the alerts' times and the webhooks'
    retry times. `legacy_state_file`: where an older updatesync kept the webhooks' delivery
    record (`<site data>/alerting.sqlite`): read into the site database once, then renamed.
    `rng`: the random source of the webhooks' retry jitter (None: the process's own)."""

    def __init__(
        self,
        db: SiteDatabase,
        site_code: str,
        *,
        overdue_after: timedelta,
        log: CMTraceLog,
        clock: Callable[[], datetime] = _utc_now,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        webhooks: Sequence[Webhook] = (),
        hierarchy: str = "",
        legacy_state_file: Path | str | None = None,
        retry_first: timedelta = DEFAULT_RETRY_FIRST,
        retry_max: timedelta = DEFAULT_RETRY_MAX,
        give_up_after: timedelta = DEFAULT_GIVE_UP_AFTER,
        rng: random.Random | None = None,
    ) -> None:
        code = site_code.strip().upper()
        if overdue_after <= timedelta(0):
            raise AlertingError(f"alert watcher of site {code}: overdue_after must be positive")
        if check_interval <= 0:
            raise AlertingError(
                f"alert watcher of site {code}: check_interval must be positive seconds"
            )
        if retry_first <= timedelta(0) or retry_max < retry_first:
            raise AlertingError(
                f"alert watcher of site {code}: retry_first must be positive and retry_max at "
                "least retry_first"
            )
        urls = [w.url for w in webhooks]
        if len(set(urls)) != len(urls):
            raise AlertingError(f"alert watcher of site {code}: a webhook is listed twice")
        self.db = db
        self.site_code = code
        self.overdue_after = overdue_after
        self.log = log
        self.clock = clock
        self.check_interval = check_interval
        self.webhooks = tuple(webhooks)
        self.hierarchy = hierarchy
        self.legacy_state_file = Path(legacy_state_file) if legacy_state_file is not None else None
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.give_up_after = give_up_after
        self._round = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._ledger = (
            WebhookLedger(
                db.webhooks,
                self.webhooks,
                site_code=code,
                hierarchy=hierarchy,
                log=log,
                clock=clock,
                retry_first=retry_first,
                retry_max=retry_max,
                give_up_after=give_up_after,
                cause=self.failure_message,
                legacy_file=self.legacy_state_file,
                rng=rng,
            )
            if self.webhooks
            else None
        )

    def failure_message(self, alert: Alert) -> StatusMessage | None:
        """The 6703 behind `alert` (`failure_message` of this watcher's site database)."""
        return failure_message(self.db, alert)

    # -- running ---------------------------------------------------------------------------

    def start(self) -> AlertWatcher:
        if self._thread is not None:
            return self
        self._stopping = False
        self._wake.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"alert watcher {self.site_code}", daemon=True
        )
        self._thread.start()
        return self

    def poke(self) -> None:
        """Run a round now (after a sync, say) instead of at the end of the interval."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def __enter__(self) -> AlertWatcher:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopping:
            try:
                self.check_now()
            except Exception as exc:  # the next round tries again
                self.log.error(f"Alert check of site {self.site_code} failed: {exc}")
            if self._stopping:
                break
            self._wake.wait(self._seconds_to_next_round())
            self._wake.clear()

    def _seconds_to_next_round(self) -> float:
        wait = self.check_interval
        try:
            with self._round:
                due = self._ledger.next_retry() if self._ledger is not None else None
        except Exception:
            return wait
        if due is not None:
            wait = min(wait, (due - self.clock()).total_seconds())
        return max(wait, 0.05)

    # -- one round -------------------------------------------------------------------------

    def check_now(self) -> WatchRound:
        """One round: judge the overdue sync and the replication links (raising and
        canceling their alerts), then send the events of every alert of the site that the
        webhooks have not had yet, and the retries that are due. A part that fails is logged
        and named in `errors`; the other parts still run."""
        with self._round:
            now = self.clock()
            raised: list[Alert] = []
            canceled: list[Alert] = []
            errors: list[str] = []
            for what, judge in (
                ("the overdue check", self._judge_overdue),
                ("the replication link check", self._judge_links),
            ):
                try:
                    judge(now, raised, canceled)
                except Exception as exc:
                    errors.append(self._failed(what, exc))
            if self._ledger is None:
                return WatchRound(tuple(raised), tuple(canceled), errors=tuple(errors))
            sent = Delivery()
            try:
                alerts = self.db.alerts.find(site_code=self.site_code)
                sent = self._ledger.send(alerts, self.db.set_up_time(), now)
            except Exception as exc:
                errors.append(self._failed("sending alert events to the webhooks", exc))
            return WatchRound(
                tuple(raised),
                tuple(canceled),
                sent.delivered,
                sent.failed,
                sent.pending,
                sent.given_up,
                tuple(errors),
            )

    def _failed(self, what: str, exc: Exception) -> str:
        text = f"{what} of site {self.site_code} failed: {type(exc).__name__}: {exc}"
        self.log.error(text[:1].upper() + text[1:] + "; trying again at the next round")
        return text

    # -- judging -----------------------------------------------------------------------------

    def _raised_now(self, kind: AlertType, instance: str) -> bool:
        return any(
            a.instance == instance
            for a in self.db.alerts.find(
                site_code=self.site_code, alert_type=kind, state=AlertState.RAISED
            )
        )

    def _raise(
        self, kind: AlertType, instance: str, text: str, now: datetime, raised: list[Alert]
    ) -> None:
        if self._raised_now(kind, instance):
            return
        alert = self.db.alerts.raise_alert(
            kind, instance, site_code=self.site_code, at=now, text=text
        )
        raised.append(alert)
        self.log.warning(f"Raised alert {kind.value} at site {self.site_code}: {alert.text}")

    def _cancel(
        self, kind: AlertType, instance: str, now: datetime, why: str, canceled: list[Alert]
    ) -> None:
        if not self._raised_now(kind, instance):
            return
        done = self.db.alerts.cancel_alert(kind, instance, site_code=self.site_code, at=now)
        canceled.extend(done)
        for alert in done:
            self.log.info(
                f"Canceled alert {kind.value} at site {self.site_code} ({alert.instance}): {why}"
            )

    def _judge_overdue(self, now: datetime, raised: list[Alert], canceled: list[Alert]) -> None:
        status = self.db.sync.status(site_code=self.site_code)
        last = status.last_successful_sync_time
        if last is not None:
            overdue = now - last > self.overdue_after
            text = overdue_text(self.site_code, self.overdue_after, last_success=last)
        else:
            set_up = self.db.set_up_time()
            overdue = now - set_up > self.overdue_after
            text = overdue_text(
                self.site_code, self.overdue_after, last_success=None, set_up=set_up
            )
        if overdue:
            self._raise(AlertType.SYNC_OVERDUE, self.site_code, text, now, raised)
        elif last is not None:
            self._cancel(
                AlertType.SYNC_OVERDUE,
                self.site_code,
                now,
                f"the last successful sync ({last.isoformat(timespec='seconds')}) is less "
                f"than {format_span(self.overdue_after)} old",
                canceled,
            )

    def _judge_links(self, now: datetime, raised: list[Alert], canceled: list[Alert]) -> None:
        if self.db.site_code != self.site_code:
            return  # the links in this database are those of its own site
        for link in self.db.replication.links():
            kind = AlertType.REPLICATION_LINK_DEGRADED
            if link.status is LinkStatus.HEALTHY:
                self._cancel(
                    kind, link.parent_site, now, "the replication link is healthy", canceled
                )
                continue
            text = replication_link_text(
                self.site_code,
                link.parent_site,
                int(link.status),
                failures=link.consecutive_failures,
                failing_since=link.failing_since,
                error=link.last_error_text,
            )
            self._raise(kind, link.parent_site, text, now, raised)
