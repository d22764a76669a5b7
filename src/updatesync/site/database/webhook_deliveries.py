"""What each alert webhook of a site has had, kept in the site database.

The alert watcher's webhook ledger (`updatesync.site.watch.webhooks.WebhookLedger`) decides
what to send and sends it; this module keeps its record (tables `alert_webhook`,
`alert_webhook_baseline` and `alert_delivery`, migration 0004):

- `record()` writes the events a webhook has not had yet as pending, in one transaction
  that first locks the webhook's row (the SQLite write lock; a row lock on PostgreSQL), so
  two recorders never both take a webhook's first use or write an event twice;
- `claim()` starts a delivery pass when the webhook's retry is due and no other pass holds
  it (a compare-and-set of `claimed_until`; `sent()` extends the hold, `refused()` and
  `release()` end it), so two processes sharing the database never send the same event;
- `import_legacy()` reads the `alerting.sqlite` file of an older updatesync (through
  SQLAlchemy) into these tables, keeping every row's state and the order of events.

Times are stored in UTC; the epoch is the site database's set-up time as text, as it appears
in each event's `Idempotency-Key`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, create_engine, func, inspect, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from updatesync.site.database import schema as t
from updatesync.site.database.store import SiteDatabaseError, SiteStore, read_time, utc

PENDING = "pending"
SENT = "sent"
SKIPPED = "skipped"
GIVEN_UP = "given_up"

LEGACY_TABLES = ("webhook", "baseline", "delivery")
"""The tables of an older updatesync's `alerting.sqlite`."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An alert event to note for a webhook; `of_canceled_alert`: the alert was canceled
    already (such events are skipped when the webhook is used for the first time)."""

    alert_id: int
    event: str
    happened_at: datetime
    payload: str
    of_canceled_alert: bool


@dataclass(frozen=True, slots=True)
class Recorded:
    """What `record()` did: `first` when the webhook was seen for the first time with this
    epoch, and how many events it noted as skipped then."""

    first: bool
    skipped: int


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event waiting for its webhook, in the order it is to be sent (`seq`)."""

    seq: int
    alert_id: int
    event: str
    payload: str
    happened_at: datetime
    epoch: str


@dataclass(frozen=True, slots=True)
class LegacyImport:
    """What `import_legacy()` found in an old file."""

    webhooks: int
    events: int


def _insert_new(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    """INSERT the row unless its key is there already; 1 when it was inserted."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    result = conn.execute(statement.execution_options(preserve_rowcount=True))
    return max(int(result.rowcount), 0)


class WebhookDeliveries:
    """The webhook delivery record of a site database (`SiteDatabase.webhooks`)."""

    def __init__(self, store: SiteStore) -> None:
        self._store = store

    # -- noting events -----------------------------------------------------------------------

    def known(self, url: str, epoch: str) -> set[tuple[int, str]]:
        """The (alert id, event) pairs noted for the webhook in this epoch, in any state."""
        d = t.alert_delivery
        query = select(d.c.alert_id, d.c.event).where(d.c.url == url, d.c.epoch == epoch)
        with self._store.read() as conn:
            return {(int(a), str(e)) for a, e in conn.execute(query)}

    def record(
        self, url: str, epoch: str, taken_at: datetime, events: Sequence[NewEvent]
    ) -> Recorded:
        """Note `events` (in their order) that the webhook has not had as pending, in one
        transaction; the first time the webhook is seen in this epoch, the events of alerts
        already canceled are noted as skipped."""
        w, b, d = t.alert_webhook, t.alert_webhook_baseline, t.alert_delivery
        with self._store.begin() as conn:
            _insert_new(conn, w, {"url": url})  # on SQLite: the write lock, before any read
            conn.execute(select(w.c.url).where(w.c.url == url).with_for_update())
            taken = utc(taken_at, f"webhook {url} baseline")
            first = _insert_new(conn, b, {"url": url, "epoch": epoch, "taken_at": taken}) == 1
            known = {
                (int(a), str(e))
                for a, e in conn.execute(
                    select(d.c.alert_id, d.c.event).where(d.c.url == url, d.c.epoch == epoch)
                )
            }
            skipped = 0
            for item in events:
                if (item.alert_id, item.event) in known:
                    continue
                state = PENDING
                if first and item.of_canceled_alert:
                    state, skipped = SKIPPED, skipped + 1
                conn.execute(
                    d.insert().values(
                        url=url,
                        epoch=epoch,
                        alert_id=item.alert_id,
                        event=item.event,
                        payload=item.payload,
                        happened_at=utc(item.happened_at, f"alert {item.alert_id}"),
                        state=state,
                    )
                )
                known.add((item.alert_id, item.event))
        return Recorded(first, skipped)

    # -- a delivery pass ---------------------------------------------------------------------

    def claim(self, url: str, now: datetime, until: datetime) -> int | None:
        """Start a delivery pass for the webhook: when its retry is due at `now` and no
        other pass holds it, hold it until `until` and return its consecutive failures;
        else None."""
        w = t.alert_webhook
        moment = utc(now, f"webhook {url}")
        with self._store.begin() as conn:
            taken = conn.execute(
                update(w)
                .where(
                    w.c.url == url,
                    or_(w.c.next_attempt_at.is_(None), w.c.next_attempt_at <= moment),
                    or_(w.c.claimed_until.is_(None), w.c.claimed_until <= moment),
                )
                .values(claimed_until=utc(until, f"webhook {url}"))
            ).rowcount
            if not taken:
                return None
            failures = conn.execute(select(w.c.failures).where(w.c.url == url)).scalar_one()
        return int(failures)

    def pending(self, url: str) -> list[PendingEvent]:
        """The webhook's events waiting to be sent, oldest noted first."""
        d = t.alert_delivery
        query = (
            select(d.c.seq, d.c.alert_id, d.c.event, d.c.payload, d.c.happened_at, d.c.epoch)
            .where(d.c.url == url, d.c.state == PENDING)
            .order_by(d.c.seq)
        )
        with self._store.read() as conn:
            return [
                PendingEvent(
                    int(r.seq),
                    int(r.alert_id),
                    r.event,
                    r.payload,
                    read_time(r.happened_at),  # type: ignore[arg-type]  # NOT NULL column
                    r.epoch,
                )
                for r in conn.execute(query)
            ]

    def sent(self, url: str, seq: int, at: datetime, hold_until: datetime) -> None:
        """The receiver accepted event `seq`: it is sent, the webhook's failures are over,
        and the pass holds the webhook until `hold_until` for its next event."""
        w, d = t.alert_webhook, t.alert_delivery
        with self._store.begin() as conn:
            conn.execute(
                update(d)
                .where(d.c.seq == seq)
                .values(attempts=d.c.attempts + 1, state=SENT, done_at=utc(at, "sent"))
            )
            conn.execute(
                update(w)
                .where(w.c.url == url)
                .values(
                    failures=0,
                    next_attempt_at=None,
                    last_error=None,
                    claimed_until=utc(hold_until, "hold"),
                )
            )

    def refused(self, url: str, seq: int, failures: int, retry_at: datetime, error: str) -> None:
        """The receiver did not accept event `seq`: the webhook is tried again at
        `retry_at`, and the pass ends."""
        w, d = t.alert_webhook, t.alert_delivery
        with self._store.begin() as conn:
            conn.execute(update(d).where(d.c.seq == seq).values(attempts=d.c.attempts + 1))
            conn.execute(
                update(w)
                .where(w.c.url == url)
                .values(
                    failures=failures,
                    next_attempt_at=utc(retry_at, "retry"),
                    last_error=error,
                    claimed_until=None,
                )
            )

    def give_up(self, seq: int, at: datetime) -> None:
        """Event `seq` waited too long: it is given up, not sent."""
        d = t.alert_delivery
        with self._store.begin() as conn:
            conn.execute(
                update(d).where(d.c.seq == seq).values(state=GIVEN_UP, done_at=utc(at, "give up"))
            )

    def release(self, url: str) -> None:
        """End the webhook's delivery pass (another may start at once)."""
        w = t.alert_webhook
        with self._store.begin() as conn:
            conn.execute(update(w).where(w.c.url == url).values(claimed_until=None))

    # -- questions ---------------------------------------------------------------------------

    def pending_count(self, urls: Collection[str]) -> int:
        """How many events wait for these webhooks."""
        d = t.alert_delivery
        query = select(func.count()).where(d.c.state == PENDING, d.c.url.in_(list(urls)))
        with self._store.read() as conn:
            return int(conn.execute(query).scalar_one())

    def retry_times(self, urls: Collection[str]) -> list[datetime | None]:
        """For each of these webhooks with events waiting: when it may be tried next (the
        later of its retry time and the end of a pass holding it), None when at once."""
        w, d = t.alert_webhook, t.alert_delivery
        waiting = select(d.c.seq).where(d.c.url == w.c.url, d.c.state == PENDING).exists()
        query = select(w.c.next_attempt_at, w.c.claimed_until).where(
            w.c.url.in_(list(urls)), waiting
        )
        with self._store.read() as conn:
            rows = conn.execute(query).all()
        times = []
        for next_attempt, claimed in rows:
            known = [m for m in (read_time(next_attempt), read_time(claimed)) if m is not None]
            times.append(max(known) if known else None)
        return times

    # -- an older updatesync's file ----------------------------------------------------------

    def import_legacy(self, path: Path) -> LegacyImport:
        """Read an older updatesync's `alerting.sqlite` at `path` into the site database, in
        one transaction, keeping each row's state and the order of each webhook's events.
        Rows the site database has already (an import that was cut short) are left as they
        are. A file that cannot be read is a SiteDatabaseError naming it."""
        webhooks, baselines, deliveries = _read_legacy(path)
        w, b, d = t.alert_webhook, t.alert_webhook_baseline, t.alert_delivery
        added = 0
        with self._store.begin() as conn:
            for row in webhooks:
                _insert_new(conn, w, row)
            for row in baselines:
                _insert_new(conn, b, row)
            for row in deliveries:
                added += _insert_new(conn, d, row)
        return LegacyImport(len(webhooks), added)


def _when(value: Any, where: str) -> datetime | None:
    """A time of the old file (ISO 8601 text, UTC)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise SiteDatabaseError(f"{where}: {value!r} is not an ISO 8601 time") from exc
    return utc(moment, where)


def _read_legacy(
    path: Path,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of an old `alerting.sqlite`, as rows of the site database's tables."""
    engine = create_engine(f"sqlite:///{path.resolve()}")
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            if not set(LEGACY_TABLES) <= tables:
                raise SiteDatabaseError(
                    f"{path}: not the alert delivery record of an older updatesync (it has "
                    f"no tables {', '.join(sorted(set(LEGACY_TABLES) - tables))})"
                )
            webhooks = [
                {
                    "url": r.url,
                    "failures": int(r.failures),
                    "next_attempt_at": _when(r.next_attempt_at, f"{path}: webhook"),
                    "last_error": r.last_error,
                }
                for r in conn.execute(
                    text("SELECT url, failures, next_attempt_at, last_error FROM webhook")
                )
            ]
            baselines = [
                {"url": r.url, "epoch": r.epoch, "taken_at": _when(r.taken_at, f"{path}: baseline")}
                for r in conn.execute(text("SELECT url, epoch, taken_at FROM baseline"))
            ]
            deliveries = [
                {
                    "url": r.url,
                    "epoch": r.epoch,
                    "alert_id": int(r.alert_id),
                    "event": r.event,
                    "payload": r.payload,
                    "happened_at": _when(r.happened_at, f"{path}: delivery {r.seq}"),
                    "state": r.state,
                    "attempts": int(r.attempts),
                    "done_at": _when(r.done_at, f"{path}: delivery {r.seq}"),
                }
                for r in conn.execute(
                    text(
                        "SELECT seq, url, epoch, alert_id, event, payload, happened_at, state, "
                        "attempts, done_at FROM delivery ORDER BY seq"
                    )
                )
            ]
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise SiteDatabaseError(f"{path}: cannot be read ({reason})") from exc
    finally:
        engine.dispose()
    return webhooks, baselines, deliveries
