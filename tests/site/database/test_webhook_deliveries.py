"""Tests of the webhook delivery record in the site database (`db.webhooks`), on SQLite and on
PostgreSQL: the tables migration 0004 makes, noting events once, the claim of a delivery
pass, and reading a file that is not an older updatesync's record. The ledger that uses it
(sending, retries, restarts, the older `alerting.sqlite`) is tested in
tests/site/watch/test_webhooks.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from databases import Database
from sqlalchemy import create_engine, inspect, text

from updatesync.site.database.engine import current_revision, head_revision
from updatesync.site.database.schema import metadata
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError
from updatesync.site.database.webhook_deliveries import NewEvent, Recorded

URL = "https://hooks.contoso.com/services/T0KEN"
EPOCH = "2026-04-01T00:00:00+00:00"
T0 = datetime(2026, 5, 1, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
def db(database: Database) -> Iterator[SiteDatabase]:
    with SiteDatabase.open(url=database.url, site_code="CS1") as site_db:
        yield site_db


def _event(alert_id: int, event: str = "raised", canceled: bool = False) -> NewEvent:
    return NewEvent(
        alert_id, event, T0 + timedelta(minutes=alert_id), f'{{"id":{alert_id}}}', canceled
    )


TABLES = {"alert_webhook", "alert_webhook_baseline", "alert_delivery"}


def _tables_of(difference: object) -> set[str]:
    """The names of the tables an Alembic schema difference is about."""
    found: set[str] = set()
    for part in difference if isinstance(difference, list) else [difference]:
        for item in part if isinstance(part, tuple) else (part,):
            name = getattr(item, "name", None) if not isinstance(item, str) else item
            table = getattr(item, "table", None)
            found.update(n for n in (name, getattr(table, "name", None)) if n in TABLES)
    return found


def test_the_migration_makes_the_three_tables_as_the_code_expects(db: SiteDatabase) -> None:
    assert current_revision(db.engine) == head_revision()
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": "schema_version"})
        differences = compare_metadata(context, metadata)
    assert [d for d in differences if _tables_of(d)] == []


def test_a_first_use_skips_the_events_of_canceled_alerts_and_nothing_is_noted_twice(
    db: SiteDatabase,
) -> None:
    events = [_event(1, canceled=True), _event(1, "canceled", canceled=True), _event(2)]
    assert db.webhooks.record(URL, EPOCH, T0, events) == Recorded(first=True, skipped=2)
    assert db.webhooks.record(URL, EPOCH, T0, [*events, _event(3)]) == Recorded(False, 0)
    pending = db.webhooks.pending(URL)
    assert [(p.alert_id, p.event) for p in pending] == [(2, "raised"), (3, "raised")]
    assert pending[0].happened_at == T0 + timedelta(minutes=2)
    assert db.webhooks.known(URL, EPOCH) == {
        (1, "raised"),
        (1, "canceled"),
        (2, "raised"),
        (3, "raised"),
    }
    assert db.webhooks.pending_count([URL]) == 2
    assert db.webhooks.record(URL, "2026-05-01T00:00:00+00:00", T0, events).first


def test_a_pass_holds_the_webhook_until_it_ends_or_its_hold_runs_out(db: SiteDatabase) -> None:
    db.webhooks.record(URL, EPOCH, T0, [_event(1)])
    hold = T0 + timedelta(minutes=2)
    assert db.webhooks.claim(URL, T0, hold) == 0
    assert db.webhooks.claim(URL, T0 + timedelta(minutes=1), hold) is None  # another process
    assert db.webhooks.retry_times([URL]) == [hold]
    db.webhooks.release(URL)
    assert db.webhooks.claim(URL, T0 + timedelta(minutes=1), hold) == 0
    # the process holding it died: once the hold has run out, another takes over
    assert db.webhooks.claim(URL, hold, hold + timedelta(minutes=2)) == 0


def test_a_refusal_sets_the_retry_and_ends_the_pass(db: SiteDatabase) -> None:
    db.webhooks.record(URL, EPOCH, T0, [_event(1), _event(2)])
    assert db.webhooks.claim(URL, T0, T0 + timedelta(minutes=2)) == 0
    first = db.webhooks.pending(URL)[0]
    retry = T0 + timedelta(seconds=30)
    db.webhooks.refused(URL, first.seq, 1, retry, "HTTP 503")
    assert db.webhooks.retry_times([URL]) == [retry]
    assert db.webhooks.claim(URL, retry - timedelta(seconds=1), retry) is None
    assert db.webhooks.claim(URL, retry, retry + timedelta(minutes=2)) == 1
    db.webhooks.sent(URL, first.seq, retry, retry + timedelta(minutes=2))
    (left,) = db.webhooks.pending(URL)
    db.webhooks.give_up(left.seq, retry)
    db.webhooks.release(URL)
    assert db.webhooks.pending(URL) == []
    assert db.webhooks.retry_times([URL]) == []


def test_a_file_that_is_not_an_older_record_is_refused_by_name(
    db: SiteDatabase, tmp_path: Path
) -> None:
    other = tmp_path / "alerting.sqlite"
    engine = create_engine(f"sqlite:///{other}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE webhook (url TEXT PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(SiteDatabaseError) as refused:
        db.webhooks.import_legacy(other)
    assert str(refused.value) == (
        f"{other}: not the alert delivery record of an older updatesync (it has no tables "
        "baseline, delivery)"
    )
