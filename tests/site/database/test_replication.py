"""The replication sequence (migration 0002), pages of changes, and the links of a child
site (`db.replication`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from databases import Database, Databases
from site_samples import CLASSIFICATION, PRODUCT, T0, sample_ci

from updatesync.site.database.engine import current_revision, head_revision
from updatesync.site.database.models import MICROSOFT_UPDATE, Category, LocalizedProperty
from updatesync.site.database.schema import metadata
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError

HOUR = timedelta(hours=1)


def test_migration_0002_numbers_the_rows_a_0001_database_holds(database: Database) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from updatesync.site.database.engine import MIGRATIONS, create_site_engine

    engine = create_site_engine(database.url)
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
                    "date_revised) VALUES (:ci, :u, 100, 't', '[]', '[]', false, false, 'x', :d)"
                ),
                {"ci": ci_id, "u": sample_ci(ci_id).update_id, "d": T0.replace(tzinfo=None)},
            )
    engine.dispose()

    with SiteDatabase.open(url=database.url, site_code="CS1") as db:
        assert current_revision(db.engine) == head_revision()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": "schema_version"})
            assert compare_metadata(context, metadata) == []
        page = db.replication.changes(0, 100)
        # Categories first (by id), then CIs in CI id order, above them.
        assert [c.category_id for c in page.categories] == [PRODUCT, CLASSIFICATION]
        assert [c.update_id for c in page.items] == [sample_ci(3).update_id, sample_ci(7).update_id]
        assert page.head_seq == page.last_seq == db.replication.head() == 2 + 7
        db.content.apply_ci_batch([sample_ci(9)])
        assert db.replication.changes(9, 10).items[0].update_id == sample_ci(9).update_id
        assert db.replication.head() == 10


def test_each_write_of_a_ci_or_category_takes_the_next_sequence(db: SiteDatabase) -> None:
    assert db.replication.head() == 0
    db.content.apply_ci_batch(
        [sample_ci(1), sample_ci(2)], categories=[Category(PRODUCT, "Product", "Windows")]
    )
    assert db.replication.head() == 3
    db.content.apply_ci_batch([sample_ci(1), sample_ci(2)])  # unchanged: not written, no new number
    assert db.replication.head() == 3
    db.content.apply_ci_batch([sample_ci(2, title="revised")])
    db.content.upsert_categories(
        [Category(PRODUCT, "Product", "Windows 8.1")]
    )  # outside a sync too
    assert db.replication.head() == 5
    page = db.replication.changes(3, 10)
    assert [i.update_id for i in page.items] == [sample_ci(2).update_id]
    assert [c.title for c in page.categories] == ["Windows 8.1"]
    assert page.items[0].ci_id is None, "a CI travels without its id: the child gives its own"

    with pytest.raises(RuntimeError), db.content.update() as content:
        content.upsert_cis([sample_ci(3), sample_ci(4)])
        raise RuntimeError("phase 2 failed")
    assert db.replication.head() == 5, "a rolled-back write gives no numbers away"


def test_a_page_is_cut_in_sequence_order_across_cis_and_categories(db: SiteDatabase) -> None:
    db.content.apply_ci_batch([sample_ci(1)])  # 1
    db.content.upsert_categories([Category(PRODUCT, "Product", "Windows")])  # 2
    db.content.apply_ci_batch([sample_ci(2), sample_ci(3)])  # 3, 4
    db.content.upsert_categories(
        [Category(CLASSIFICATION, "UpdateClassification", "Critical")]
    )  # 5
    db.content.set_version(33)
    first = db.replication.changes(0, 3)
    assert (first.after, first.last_seq, first.head_seq, first.size) == (0, 3, 5, 3)
    assert [i.update_id for i in first.items] == [sample_ci(1).update_id, sample_ci(2).update_id]
    assert [c.category_id for c in first.categories] == [PRODUCT]
    assert not first.reaches_head
    assert [(s.unique_id, s.content_version) for s in first.update_sources] == [
        (MICROSOFT_UPDATE, 33)
    ]
    rest = db.replication.changes(3, 3)
    assert (rest.last_seq, rest.size, rest.reaches_head) == (5, 2, True)
    empty = db.replication.changes(5, 3)
    assert (empty.last_seq, empty.size, empty.reaches_head) == (5, 0, True)
    for after, limit in ((-1, 10), (0, 0)):
        with pytest.raises(SiteDatabaseError, match="give"):
            db.replication.changes(after, limit)


def test_replication_link_checks_record_health(database: Database) -> None:
    from updatesync.site.database.models import LinkStatus

    with SiteDatabase.open(url=database.url, site_code="PS1") as ps1:
        assert ps1.replication.link("CS1") is None
        failed = ps1.replication.record_check("cs1", 1, "cannot reach CS1", at=T0)
        assert (failed.status, failed.consecutive_failures, failed.failing_since) == (
            LinkStatus.DEGRADED,
            1,
            T0,
        )
        again = ps1.replication.record_check("CS1", LinkStatus.ERROR, "still down", at=T0 + HOUR)
        assert (again.consecutive_failures, again.failing_since, again.last_error_text) == (
            2,
            T0,
            "still down",
        )
        assert again.last_success_time is None and again.applied_seq == 0
        ok = ps1.replication.record_check("CS1", 0, at=T0 + 2 * HOUR)
        assert (ok.status, ok.consecutive_failures, ok.failing_since, ok.last_error_text) == (
            LinkStatus.HEALTHY,
            0,
            None,
            None,
        )
        assert ok.last_success_time == ok.last_check_time == T0 + 2 * HOUR
        assert ps1.replication.links() == [ok]
        for status, error in ((0, "an error"), (1, None), (3, "x")):
            with pytest.raises(SiteDatabaseError, match="replication link to CS1"):
                ps1.replication.record_check("CS1", status, error)
        with pytest.raises(SiteDatabaseError, match="cannot replicate from itself"):
            ps1.replication.record_check("PS1", 0)
        assert ps1.replication.link("CS1") == ok


def test_a_link_reset_replicates_everything_again(db: SiteDatabase, databases: Databases) -> None:
    db.content.apply_ci_batch([sample_ci(n) for n in range(5)])
    with SiteDatabase.open(url=databases.new().url, site_code="PS1") as ps1:
        ps1.replication.apply("CS1", db.replication.changes(0, 10))
        link = ps1.replication.link("CS1")
        assert link is not None and link.applied_seq == 5 and link.replicated_version() == 1
        reset = ps1.replication.reset_link("CS1")
        assert (reset.applied_seq, reset.replicated_versions) == (0, {})
        assert ps1.replication.apply("CS1", db.replication.changes(0, 10)) == 0, "all unchanged"
        assert ps1.content.ci_count() == 5


def test_a_child_inherits_the_parents_subscription(db: SiteDatabase, databases: Databases) -> None:
    """Each page carries the parent's subscription; the child's own becomes the same (its
    version rises, which wakes its WSUS configuration manager), and passes it on; an
    unchanged one changes nothing, and a page without one (an older parent) leaves it."""
    products, security = (
        ("a3c2375d-0c8a-42f9-bce0-28333e198407",),
        ("0fa1201d-4330-4fa8-8ae9-b877473b6441",),
    )
    db.wsus.set_subscription(products, security, ("en",))
    with (
        SiteDatabase.open(url=databases.new().url, site_code="PS1") as ps1,
        SiteDatabase.open(url=databases.new().url, site_code="SS1") as ss1,
    ):
        ps1.wsus.set_subscription((), (), ())  # what it had before
        page = db.replication.changes(0, 10)
        assert page.size == 0 and page.subscription is not None
        assert ps1.replication.apply("CS1", page) == 1
        held = ps1.wsus.subscription()
        assert (held.products, held.classifications, held.languages, held.version) == (
            products,
            security,
            ("en",),
            2,
        )
        assert ps1.replication.apply("CS1", db.replication.changes(0, 10)) == 0
        assert ps1.wsus.subscription().version == 2
        ss1.replication.apply("PS1", ps1.replication.changes(0, 10))
        assert ss1.wsus.subscription().languages == ("en",)
        db.wsus.set_subscription(products, security, ("en", "ja"))
        older = replace(db.replication.changes(0, 10), subscription=None)
        assert ps1.replication.apply("CS1", older) == 0
        assert ps1.wsus.subscription().languages == ("en",)
        ps1.replication.apply("CS1", db.replication.changes(0, 10))
        assert ps1.wsus.subscription().languages == ("en", "ja")


def test_localized_properties_replicate_with_their_cis(
    db: SiteDatabase, databases: Databases
) -> None:
    """A CI's titles in the subscribed languages travel with it to every child; a change of
    the texts alone (a language added at the top) renumbers the CI, so the children get the
    new texts, without changing the CI's row (its date_revised is its expiry time)."""
    en = LocalizedProperty("en", 1033, "Update 1", "An update")
    ja = LocalizedProperty("ja", 1041, "更新 1", None)
    db.content.apply_ci_batch([sample_ci(1, localized=(en,)), sample_ci(2)], at=T0)
    with (
        SiteDatabase.open(url=databases.new().url, site_code="PS1") as ps1,
        SiteDatabase.open(url=databases.new().url, site_code="SS1") as ss1,
    ):
        page = db.replication.changes(0, 10)
        assert [c.localized for c in page.items] == [(en,), ()]
        ps1.replication.apply("CS1", page)
        assert ps1.content.localized([sample_ci(1).update_id], "en") == {sample_ci(1).update_id: en}
        before = db.replication.head()
        revised = db.content.configuration_item(sample_ci(1).update_id)
        db.content.apply_ci_batch([sample_ci(1, localized=(en, ja))], at=T0 + timedelta(days=3))
        assert db.replication.head() == before + 1
        assert db.content.configuration_item(sample_ci(1).update_id) == replace(
            revised, ci_id=revised.ci_id
        )
        # the same texts again: nothing moves
        db.content.apply_ci_batch([sample_ci(1, localized=(ja, en))], at=T0 + timedelta(days=4))
        assert db.replication.head() == before + 1
        ps1.replication.apply("CS1", db.replication.changes(page.last_seq, 10))
        ss1.replication.apply("PS1", ps1.replication.changes(0, 10))
        for site in (ps1, ss1):
            assert site.content.localized([sample_ci(1).update_id], "ja") == {
                sample_ci(1).update_id: ja
            }
            assert site.content.localized_count() == 2
