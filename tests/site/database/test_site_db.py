"""The site database: schema by migrations, sync requests, content version with CIs in one
transaction, status messages, alerts, SUPs and their sync status."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from updatesync.logs.status_messages import StatusMessage, new_status_message
from updatesync.site.database.engine import current_revision, head_revision, sqlite_url
from updatesync.site.database.schema import metadata
from updatesync.site.database.site_db import (
    MICROSOFT_UPDATE,
    Category,
    ConfigurationItem,
    SiteDatabase,
    SiteDatabaseError,
    SoftwareUpdatePoint,
    SUPSyncStatus,
    SyncStatus,
)
from updatesync.site.watch.alerts import AlertState, AlertType
from updatesync.vocabulary import MessageSeverity

T0 = datetime(2014, 1, 16, 18, 53, 52, 608000, tzinfo=UTC)
T = TypeVar("T")
PRODUCT = "11111111-0000-4000-8000-000000000001"
CLASSIFICATION = "11111111-0000-4000-8000-000000000002"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SiteDatabase]:
    with SiteDatabase.open(tmp_path / "cs1", site_code="CS1") as site_db:
        yield site_db


def _ci(n: int, title: str | None = None, **changes: object) -> ConfigurationItem:
    values: dict[str, object] = {
        "update_id": f"af5eb87e-cdd6-40bf-984f-{n:012x}",
        "revision": 100,
        "title": title or f"Definition Update for Microsoft Endpoint Protection - KB{2461484 + n}",
        "xml_sha256": f"{n:064x}",
        "kb_article": str(2461484 + n),
        "severity": "Critical",
        "creation_date": "2014-01-16T00:00:00Z",
        "products": (PRODUCT,),
        "classifications": (CLASSIFICATION,),
    }
    values.update(changes)
    return ConfigurationItem(**values)  # type: ignore[arg-type]


# -- schema ----------------------------------------------------------------------------------


def test_migrations_create_the_schema_the_code_expects(db: SiteDatabase) -> None:
    assert current_revision(db.engine) == head_revision() == "0002"
    tables = set(inspect(db.engine).get_table_names())
    assert tables == set(metadata.tables) | {"schema_version"}
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": "schema_version"})
        assert compare_metadata(context, metadata) == []


def test_a_database_remembers_its_site(tmp_path: Path) -> None:
    with pytest.raises(SiteDatabaseError, match="give the site code"):
        SiteDatabase.open(tmp_path / "new")
    SiteDatabase.open(tmp_path / "ps1", site_code="ps1").close()
    with SiteDatabase.open(tmp_path / "ps1") as again:
        assert again.site_code == "PS1"
    with pytest.raises(SiteDatabaseError, match="belongs to site PS1, not CS1"):
        SiteDatabase.open(tmp_path / "ps1", site_code="CS1")
    with pytest.raises(SiteDatabaseError, match="not three letters"):
        SiteDatabase.open(tmp_path / "bad", site_code="CENTRAL")


def test_open_by_url(tmp_path: Path) -> None:
    tmp_path.joinpath("x").mkdir()
    with SiteDatabase.open(url=sqlite_url(tmp_path / "x"), site_code="SS1") as site_db:
        assert site_db.content_version() == 0
    assert (tmp_path / "x" / "site.sqlite").is_file()


# -- sync requests and status ------------------------------------------------------------------


def test_a_sync_request_is_taken_once(db: SiteDatabase) -> None:
    assert db.take_sync_request() is None
    assert db.request_sync("self", at=T0) == "SELF"
    status = db.sync_status()
    assert (status.sync_now, status.sync_now_requested_at) == ("SELF", T0)
    assert db.take_sync_request() == "SELF"
    assert db.take_sync_request() is None
    assert db.sync_status().sync_now is None


def test_a_full_request_is_not_lowered_to_a_delta(db: SiteDatabase) -> None:
    db.request_sync("FULL")
    assert db.request_sync("SELF") == "FULL"
    assert db.take_sync_request() == "FULL"
    db.request_sync("SELF")
    assert db.request_sync("FULL") == "FULL"


def test_a_parent_request_names_the_parent(tmp_path: Path) -> None:
    with SiteDatabase.open(tmp_path, site_code="PS1") as ps1:
        assert ps1.request_sync("CS1") == "CS1"
        assert ps1.take_sync_request() == "CS1"
        for wrong in ("PS1", "CS10", "C 1"):
            with pytest.raises(SiteDatabaseError, match="use SELF, FULL or the parent"):
                ps1.request_sync(wrong)


def _race(callers: int, call: Callable[[], T]) -> list[T]:
    """What `call` returned in each of `callers` threads started at the same moment."""
    start = threading.Barrier(callers)
    results: list[T] = []

    def run() -> None:
        start.wait()
        results.append(call())

    threads = [threading.Thread(target=run) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == callers, "a racing thread failed"
    return results


def test_threads_racing_for_one_request_only_one_gets_it(db: SiteDatabase) -> None:
    for _ in range(5):
        db.request_sync("SELF")
        got = _race(6, db.take_sync_request)
        assert got.count("SELF") == 1
        assert got.count(None) == 5


def test_sync_states_record_progress_failure_and_success(db: SiteDatabase) -> None:
    assert db.record_sync_state(6701, at=T0).in_progress
    failed = db.record_sync_state(
        6703,
        at=T0 + timedelta(minutes=1),
        error_code=0x8013150A,
        error_text="Request for principal permission failed",
    )
    assert not failed.in_progress
    assert (failed.last_error_code, failed.last_sync_state) == (0x8013150A, 6703)
    assert failed.last_successful_sync_time is None
    done = db.record_sync_state(6702, at=T0 + timedelta(hours=1), catalog_version=34)
    assert done.last_successful_sync_time == T0 + timedelta(hours=1)
    assert (done.last_error_code, done.last_error_text) == (None, None)
    assert done.sync_catalog_version == 34
    db.record_sync_state(6701, at=T0 + timedelta(hours=2))
    assert db.sync_status().sync_catalog_version == 34


def test_sync_status_set_and_get_leaves_the_request_alone(db: SiteDatabase) -> None:
    db.request_sync("FULL")
    status = SyncStatus(
        "CS1",
        last_sync_state=6702,
        last_sync_state_time=T0,
        last_successful_sync_time=T0,
        sync_catalog_version=7,
    )
    db.set_sync_status(status)
    read = db.sync_status()
    assert read.sync_now == "FULL"
    assert (read.last_sync_state, read.last_sync_state_time, read.sync_catalog_version) == (
        6702,
        T0,
        7,
    )
    with pytest.raises(SiteDatabaseError, match="no time zone"):
        db.set_sync_status(SyncStatus("CS1", last_sync_state_time=datetime(2014, 1, 16)))


# -- update sources, CIs and content version ---------------------------------------------------


def test_content_version_of_an_update_source(db: SiteDatabase) -> None:
    assert db.content_version() == 0
    db.set_content_version(33)
    assert db.content_version(MICROSOFT_UPDATE.lower()) == 33
    with pytest.raises(SiteDatabaseError, match=r"update source .* is not registered"):
        db.content_version("{00000000-0000-0000-0000-000000000000}")
    with pytest.raises(SiteDatabaseError, match="not registered"):
        db.set_content_version(1, source_id="{00000000-0000-0000-0000-000000000000}")
    source = db.add_update_source("{00000000-0000-0000-0000-00000000000a}", "Contoso WSUS")
    assert (source.name, source.content_version) == ("Contoso WSUS", 0)
    assert len(db.update_sources()) == 2


def test_a_batch_that_changes_the_site_raises_the_content_version_once(db: SiteDatabase) -> None:
    db.set_content_version(33)
    change = db.apply_ci_batch([_ci(1), _ci(2), _ci(3)], at=T0)
    assert (change.inserted, change.updated, change.unchanged) == (3, 0, 0)
    assert (change.content_version_before, change.content_version) == (33, 34)
    assert db.content_version() == 34
    assert db.ci_count() == 3
    ids = {ci.update_id: ci.ci_id for ci in db.configuration_items()}

    again = db.apply_ci_batch([_ci(1), _ci(2), _ci(3)], at=T0 + timedelta(days=1))
    assert (again.inserted, again.updated, again.unchanged, again.changed) == (0, 0, 3, False)
    assert db.content_version() == 34

    later = T0 + timedelta(days=2)
    revised = db.apply_ci_batch([_ci(2, is_superseded=True), _ci(4)], at=later)
    assert (revised.inserted, revised.updated, revised.content_version) == (1, 1, 35)
    item = db.configuration_item(_ci(2).update_id.upper())
    assert item is not None
    assert item.is_superseded and item.date_revised == later
    assert item.ci_id == ids[item.update_id], "a CI keeps its id when its update changes"
    assert {ci.update_id: ci.ci_id for ci in db.configuration_items()} | ids == {
        ci.update_id: ci.ci_id for ci in db.configuration_items()
    }


def test_a_failure_inside_the_batch_keeps_nothing(db: SiteDatabase) -> None:
    db.apply_ci_batch([_ci(1)], at=T0)
    before = (db.configuration_items(), db.categories(), db.content_version())

    def items() -> Iterator[ConfigurationItem]:
        yield _ci(1, title="changed")
        yield _ci(2)
        raise ConnectionError("update server went away")

    with pytest.raises(ConnectionError):
        db.apply_ci_batch(items(), categories=[Category(PRODUCT, "Product", "Windows 8.1")])
    assert (db.configuration_items(), db.categories(), db.content_version()) == before

    with pytest.raises(RuntimeError), db.update_content() as content:
        # Each batch names what it wrote: new CIs, and changed ones (not the unchanged).
        assert content.upsert_cis([_ci(5), _ci(6)]) == [_ci(5).update_id, _ci(6).update_id]
        assert content.upsert_cis([_ci(1, title="changed again"), _ci(5)]) == [_ci(1).update_id]
        raise RuntimeError("phase 2 failed after two batches")
    assert (db.configuration_items(), db.categories(), db.content_version()) == before


def test_a_conflicting_ci_id_fails_the_whole_update(db: SiteDatabase) -> None:
    db.apply_ci_batch([_ci(1)])
    held = db.configuration_item(_ci(1).update_id)
    assert held is not None and held.ci_id is not None
    with pytest.raises(SiteDatabaseError, match=f"holds it as CI {held.ci_id}"):
        db.apply_ci_batch([_ci(2), _ci(1, ci_id=held.ci_id + 1000)])
    assert db.ci_count() == 1 and db.content_version() == 1
    with pytest.raises(SiteDatabaseError, match="appears twice"):
        db.apply_ci_batch([_ci(3), _ci(3)])


def test_replicated_cis_keep_their_ids(db: SiteDatabase) -> None:
    db.apply_ci_batch([_ci(1, ci_id=16777300), _ci(2)])
    by_update = {ci.update_id: ci.ci_id for ci in db.configuration_items()}
    assert by_update[_ci(1).update_id] == 16777300
    assert db.configuration_item("no-such-update") is None


def test_many_batches_in_one_update_raise_the_version_once(db: SiteDatabase) -> None:
    with db.update_content(at=T0) as content:
        assert content.upsert_categories([Category(PRODUCT, "Product", "Windows 8.1")]) == 1
        for start in range(0, 1200, 400):
            content.upsert_cis(_ci(n) for n in range(start, start + 400))
    assert content.change.content_version == 1
    assert content.change.inserted == 1200
    assert db.content_version() == 1 and db.ci_count() == 1200

    with db.update_content() as only_categories:
        only_categories.upsert_categories([Category(PRODUCT, "Product", "Windows 8.1 (x64)")])
    assert only_categories.change.changed and db.content_version() == 2


def test_categories_upsert_and_list(db: SiteDatabase) -> None:
    company = "56309036-4c77-4dd9-951a-99ee9c246a94"
    family = "6964aab4-c5b5-43bd-a17d-ffb4346a8e1d"
    cats = [
        Category(company, "Company", "Microsoft Corporation"),
        Category(family, "ProductFamily", "Windows", company.upper()),
        Category(PRODUCT, "Product", "Windows 8.1", family),
        Category(CLASSIFICATION, "UpdateClassification", "Definition Updates"),
    ]
    assert db.upsert_categories(cats) == 4
    assert db.upsert_categories(cats) == 0
    assert db.content_version() == 0, "categories alone, outside a sync, leave it"
    assert [c.title for c in db.categories("Product")] == ["Windows 8.1"]
    assert {c.category_id: c.parent_id for c in db.categories()}[family] == company
    assert len(db.categories()) == 4


# -- status messages -----------------------------------------------------------------------


def _message(message_id: int, minutes: int, site: str = "CS1", **kw: object) -> StatusMessage:
    return new_status_message(
        message_id,
        site_code=site,
        system=f"{site}SITE.CONTOSO.COM",
        time=T0 + timedelta(minutes=minutes),
        **kw,  # type: ignore[arg-type]
    )


def test_status_messages_round_trip_and_filters(db: SiteDatabase) -> None:
    sent = [
        _message(6701, 0),
        _message(6704, 1),
        _message(6705, 4),
        _message(6702, 5),
        _message(6701, 6, site="PS1"),
        _message(6703, 7, site="PS1", strings=("Where", "What"), last_error=0x8013150A),
    ]
    for msg in sent:
        db.add_status_message(msg)
    newest_first = list(reversed(sent))
    assert db.status_messages() == newest_first
    assert db.status_messages(site_code="ps1") == newest_first[:2]
    assert db.status_messages(message_id=6701) == [sent[4], sent[0]]
    assert db.status_messages(message_id={6704, 6705}) == [sent[2], sent[1]]
    assert db.status_messages(severity=MessageSeverity.ERROR) == [sent[5]]
    assert db.status_messages(severity="E")[0].last_error == 0x8013150A
    assert db.status_messages(component="SMS_WSUS_SYNC_MANAGER", limit=2) == newest_first[:2]
    assert db.status_messages(component="SMS_PROVIDER") == []
    window = db.status_messages(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=5))
    assert window == [sent[2], sent[1]]


# -- alerts ----------------------------------------------------------------------------------


def test_sync_failure_alert_raise_is_idempotent_and_cancel_records_the_time(
    db: SiteDatabase,
) -> None:
    first = db.raise_alert(AlertType.SYNC_FAILURE, "CS1SITE.CONTOSO.COM", at=T0)
    assert (
        first.text == "Synchronization failure alert for software update point: CS1SITE.CONTOSO.COM"
    )
    assert first.is_raised and first.canceled_at is None
    again = db.raise_alert("sync_failure", "CS1SITE.CONTOSO.COM", at=T0 + timedelta(hours=1))
    assert again == first
    assert db.alerts(state="raised") == [first]

    (canceled,) = db.cancel_alert(AlertType.SYNC_FAILURE, at=T0 + timedelta(hours=2))
    assert canceled.alert_id == first.alert_id
    assert canceled.state is AlertState.CANCELED
    assert canceled.canceled_at == T0 + timedelta(hours=2)
    assert db.cancel_alert(AlertType.SYNC_FAILURE) == []

    second = db.raise_alert(AlertType.SYNC_FAILURE, "CS1SITE.CONTOSO.COM", at=T0 + timedelta(1))
    assert second.alert_id != first.alert_id
    other = db.raise_alert(AlertType.SYNC_FAILURE, "CS1SYS.CONTOSO.COM", at=T0 + timedelta(2))
    assert [a.alert_id for a in db.alerts()] == [other.alert_id, second.alert_id, first.alert_id]
    assert db.alerts(state=AlertState.CANCELED) == [canceled]
    assert db.cancel_alert(AlertType.SYNC_FAILURE, "CS1SYS.CONTOSO.COM")[0].instance == (
        "CS1SYS.CONTOSO.COM"
    )
    assert [a.instance for a in db.alerts(state="raised")] == ["CS1SITE.CONTOSO.COM"]
    assert db.alerts(site_code="PS1") == []


def test_racing_raises_make_one_alert(db: SiteDatabase) -> None:
    got = _race(4, lambda: db.raise_alert(AlertType.SYNC_FAILURE, "CS1SITE.CONTOSO.COM"))
    assert len({a.alert_id for a in got}) == 1
    assert len(db.alerts()) == 1


# -- site control and SUP sync status --------------------------------------------------------


def test_sups_in_install_order_the_first_is_default(db: SiteDatabase) -> None:
    sups = db.replace_sups(
        [
            SoftwareUpdatePoint("PS1SITE.CONTOSO.COM"),
            SoftwareUpdatePoint("PS1SYS.CONTOSO.COM", port=8531, https=True, internet_facing=True),
        ],
        site_code="PS1",
    )
    assert [(s.fqdn, s.is_default) for s in sups] == [
        ("PS1SITE.CONTOSO.COM", True),
        ("PS1SYS.CONTOSO.COM", False),
    ]
    assert sups[1].https and sups[1].internet_facing and sups[1].port == 8531
    assert db.sups() == []
    db.replace_sups([SoftwareUpdatePoint("CS1SITE.CONTOSO.COM")])
    assert [s.fqdn for s in db.sups()] == ["CS1SITE.CONTOSO.COM"]
    db.replace_sups([SoftwareUpdatePoint("PS1SYS.CONTOSO.COM")], site_code="PS1")
    assert db.sups(site_code="PS1") == [
        SoftwareUpdatePoint("PS1SYS.CONTOSO.COM", 8530, is_default=True)
    ]
    with pytest.raises(SiteDatabaseError, match="listed twice"):
        db.replace_sups(
            [SoftwareUpdatePoint("a.contoso.com"), SoftwareUpdatePoint("A.contoso.com")]
        )
    assert [s.fqdn for s in db.sups()] == ["CS1SITE.CONTOSO.COM"]


def test_sup_sync_status_upsert_and_list(db: SiteDatabase) -> None:
    top = SUPSyncStatus(
        "CS1",
        "CS1SITE.CONTOSO.COM",
        "Microsoft Update",
        last_sync_state=6701,
        last_sync_state_time=T0,
    )
    child = SUPSyncStatus("PS1", "PS1SITE.CONTOSO.COM", "CS1SITE.CONTOSO.COM")
    db.upsert_supsync_status(top)
    db.upsert_supsync_status(child)
    assert db.supsync_statuses() == [top, child]
    done = SUPSyncStatus(
        "CS1",
        "CS1SITE.CONTOSO.COM",
        "Microsoft Update",
        last_sync_state=6702,
        last_sync_state_time=T0 + timedelta(minutes=4),
        last_successful_sync_time=T0 + timedelta(minutes=4),
        sync_catalog_version=34,
        replication_link_status=1,
        last_replication_link_check_time=T0,
    )
    db.upsert_supsync_status(done)
    assert db.supsync_statuses(site_code="cs1") == [done]
    assert len(db.supsync_statuses()) == 2


# -- replication sequence (migration 0002) -----------------------------------------------------

HOUR = timedelta(hours=1)


def test_migration_0002_numbers_the_rows_a_0001_database_holds(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from updatesync.site.database.engine import MIGRATIONS, create_site_engine

    folder = tmp_path / "old"
    folder.mkdir()
    engine = create_site_engine(sqlite_url(folder))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        for cat_id in (CLASSIFICATION, PRODUCT):
            conn.execute(
                text("INSERT INTO category VALUES (:id, 'Product', 'Windows 8.1', NULL)"),
                {"id": cat_id},
            )
        for ci_id in (7, 3):
            conn.execute(
                text(
                    "INSERT INTO configuration_item (ci_id, update_id, revision, title, "
                    "products, classifications, is_superseded, is_expired, xml_sha256, "
                    "date_revised) VALUES (:ci, :u, 100, 't', '[]', '[]', 0, 0, 'x', :d)"
                ),
                {"ci": ci_id, "u": _ci(ci_id).update_id, "d": T0.replace(tzinfo=None)},
            )
    engine.dispose()

    with SiteDatabase.open(folder, site_code="CS1") as db:
        assert current_revision(db.engine) == "0002"
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": "schema_version"})
            assert compare_metadata(context, metadata) == []
        page = db.replication_changes(0, 100)
        # Categories first (by id), then CIs in CI id order, above them.
        assert [c.category_id for c in page.categories] == [PRODUCT, CLASSIFICATION]
        assert [c.update_id for c in page.items] == [_ci(3).update_id, _ci(7).update_id]
        assert page.head_seq == page.last_seq == db.replication_head() == 2 + 7
        db.apply_ci_batch([_ci(9)])
        assert db.replication_changes(9, 10).items[0].update_id == _ci(9).update_id
        assert db.replication_head() == 10


def test_each_write_of_a_ci_or_category_takes_the_next_sequence(db: SiteDatabase) -> None:
    assert db.replication_head() == 0
    db.apply_ci_batch([_ci(1), _ci(2)], categories=[Category(PRODUCT, "Product", "Windows")])
    assert db.replication_head() == 3
    db.apply_ci_batch([_ci(1), _ci(2)])  # unchanged: not written, no new number
    assert db.replication_head() == 3
    db.apply_ci_batch([_ci(2, title="revised")])
    db.upsert_categories([Category(PRODUCT, "Product", "Windows 8.1")])  # outside a sync too
    assert db.replication_head() == 5
    page = db.replication_changes(3, 10)
    assert [i.update_id for i in page.items] == [_ci(2).update_id]
    assert [c.title for c in page.categories] == ["Windows 8.1"]
    assert page.items[0].ci_id is None, "a CI travels without its id: the child gives its own"

    with pytest.raises(RuntimeError), db.update_content() as content:
        content.upsert_cis([_ci(3), _ci(4)])
        raise RuntimeError("phase 2 failed")
    assert db.replication_head() == 5, "a rolled-back write gives no numbers away"


def test_a_page_is_cut_in_sequence_order_across_cis_and_categories(db: SiteDatabase) -> None:
    db.apply_ci_batch([_ci(1)])  # 1
    db.upsert_categories([Category(PRODUCT, "Product", "Windows")])  # 2
    db.apply_ci_batch([_ci(2), _ci(3)])  # 3, 4
    db.upsert_categories([Category(CLASSIFICATION, "UpdateClassification", "Critical")])  # 5
    db.set_content_version(33)
    first = db.replication_changes(0, 3)
    assert (first.after, first.last_seq, first.head_seq, first.size) == (0, 3, 5, 3)
    assert [i.update_id for i in first.items] == [_ci(1).update_id, _ci(2).update_id]
    assert [c.category_id for c in first.categories] == [PRODUCT]
    assert not first.reaches_head
    assert [(s.unique_id, s.content_version) for s in first.update_sources] == [
        (MICROSOFT_UPDATE, 33)
    ]
    rest = db.replication_changes(3, 3)
    assert (rest.last_seq, rest.size, rest.reaches_head) == (5, 2, True)
    empty = db.replication_changes(5, 3)
    assert (empty.last_seq, empty.size, empty.reaches_head) == (5, 0, True)
    for after, limit in ((-1, 10), (0, 0)):
        with pytest.raises(SiteDatabaseError, match="give"):
            db.replication_changes(after, limit)


def test_replication_link_checks_record_health(tmp_path: Path) -> None:
    from updatesync.site.database.site_db import LinkStatus

    with SiteDatabase.open(tmp_path, site_code="PS1") as ps1:
        assert ps1.replication_link("CS1") is None
        failed = ps1.record_replication_check("cs1", 1, "cannot reach CS1", at=T0)
        assert (failed.status, failed.consecutive_failures, failed.failing_since) == (
            LinkStatus.DEGRADED,
            1,
            T0,
        )
        again = ps1.record_replication_check("CS1", LinkStatus.ERROR, "still down", at=T0 + HOUR)
        assert (again.consecutive_failures, again.failing_since, again.last_error_text) == (
            2,
            T0,
            "still down",
        )
        assert again.last_success_time is None and again.applied_seq == 0
        ok = ps1.record_replication_check("CS1", 0, at=T0 + 2 * HOUR)
        assert (ok.status, ok.consecutive_failures, ok.failing_since, ok.last_error_text) == (
            LinkStatus.HEALTHY,
            0,
            None,
            None,
        )
        assert ok.last_success_time == ok.last_check_time == T0 + 2 * HOUR
        assert ps1.replication_links() == [ok]
        for status, error in ((0, "an error"), (1, None), (3, "x")):
            with pytest.raises(SiteDatabaseError, match="replication link to CS1"):
                ps1.record_replication_check("CS1", status, error)
        with pytest.raises(SiteDatabaseError, match="cannot replicate from itself"):
            ps1.record_replication_check("PS1", 0)
        assert ps1.replication_link("CS1") == ok


def test_a_link_reset_replicates_everything_again(tmp_path: Path, db: SiteDatabase) -> None:
    db.apply_ci_batch([_ci(n) for n in range(5)])
    with SiteDatabase.open(tmp_path / "ps1", site_code="PS1") as ps1:
        ps1.apply_replicated("CS1", db.replication_changes(0, 10))
        link = ps1.replication_link("CS1")
        assert link is not None and link.applied_seq == 5 and link.replicated_version() == 1
        reset = ps1.reset_replication_link("CS1")
        assert (reset.applied_seq, reset.replicated_versions) == (0, {})
        assert ps1.apply_replicated("CS1", db.replication_changes(0, 10)) == 0, "all unchanged"
        assert ps1.ci_count() == 5


# -- client policy -----------------------------------------------------------------------------


def test_the_client_policy_is_published_and_replaced(db: SiteDatabase) -> None:
    assert db.client_policy() is None
    locations = [
        {
            "fqdn": "PS1SITE.CONTOSO.COM",
            "intranet_url": "http://PS1SITE.CONTOSO.COM:8530",
            "internet_url": None,
        },
        {
            "fqdn": "PS1SYS.CONTOSO.COM",
            "intranet_url": "https://PS1SYS.CONTOSO.COM:8531",
            "internet_url": "https://PS1SYS.CONTOSO.COM:8531",
        },
    ]
    published = db.publish_client_policy(content_version=34, locations=locations, published_at=T0)
    assert db.client_policy() == published
    assert published.locations == tuple(locations)
    assert (published.update_source_id, published.content_version) == (MICROSOFT_UPDATE, 34)

    db.replace_sups(
        [
            SoftwareUpdatePoint("CS1SITE.CONTOSO.COM"),
            SoftwareUpdatePoint("CS1SYS.CONTOSO.COM", 8531, https=True, internet_facing=True),
            SoftwareUpdatePoint("OLD.CONTOSO.COM", active=False),
        ]
    )
    again = db.publish_client_policy(content_version=35, published_at=T0 + HOUR)
    assert db.client_policy() == again and again.published_at == T0 + HOUR
    assert again.locations == (
        {
            "fqdn": "CS1SITE.CONTOSO.COM",
            "intranet_url": "http://CS1SITE.CONTOSO.COM:8530",
            "internet_url": None,
        },
        {
            "fqdn": "CS1SYS.CONTOSO.COM",
            "intranet_url": "https://CS1SYS.CONTOSO.COM:8531",
            "internet_url": "https://CS1SYS.CONTOSO.COM:8531",
        },
    )
    with pytest.raises(SiteDatabaseError, match="not registered"):
        db.publish_client_policy(content_version=1, update_source_id="{00000000-0000-0000-0000-0}")
    with pytest.raises(SiteDatabaseError, match="needs an fqdn and an intranet_url"):
        db.publish_client_policy(content_version=1, locations=[{"fqdn": "x"}])
    assert db.client_policy() == again
