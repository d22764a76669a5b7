"""The update server store's Alembic history on SQLite and on PostgreSQL: every revision
upgrades from an empty database to the head one step at a time, every downgrade goes back
to empty, and the head it reaches again is the schema the code expects."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from databases import Database
from sqlalchemy import Connection, Engine, inspect

from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.updateserver.database import MIGRATIONS, create_store_engine
from updatesync.updateserver.digest import RevisionDigest, recompute, stored
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.schema import metadata
from updatesync.updateserver.store import Subscription as UpdateStoreSubscription
from updatesync.updateserver.store import UpdateStore


def _config(connection: Connection, data_dir: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["data_dir"] = data_dir
    return config


def _revisions() -> list[str]:
    """Every revision, oldest first."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    return [s.revision for s in reversed(list(script.walk_revisions("base", "heads")))]


def _current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _step(engine: Engine, data_dir: Path, to: str, *, down: bool = False) -> None:
    with engine.begin() as conn:
        (command.downgrade if down else command.upgrade)(_config(conn, data_dir), to)


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    made = create_store_engine(database.url)
    yield made
    made.dispose()


def test_every_revision_upgrades_from_empty_to_head_and_back(
    engine: Engine, tmp_path: Path
) -> None:
    revisions = _revisions()
    assert len(revisions) >= 4
    assert _current(engine) is None
    for revision in revisions:
        _step(engine, tmp_path, revision)
        assert _current(engine) == revision
    for previous in [*reversed(revisions[:-1]), "base"]:
        _step(engine, tmp_path, previous, down=True)
        assert _current(engine) == (None if previous == "base" else previous)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    _step(engine, tmp_path, "head")
    assert _current(engine) == revisions[-1]
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_a_store_opened_on_the_database_is_at_head_and_keeps_its_rows(
    database: Database, tmp_path: Path
) -> None:
    with UpdateStore.open(tmp_path / "sup", url=database.url) as store:
        assert _current(store.engine) == _revisions()[-1]
        before = store.status().target_groups
    with UpdateStore.open(tmp_path / "sup", url=database.url) as again:
        assert _current(again.engine) == _revisions()[-1]
        assert again.status().target_groups == before == 2  # the built-in groups, once


def test_bundled_updates_move_between_relation_rows_and_lists_both_ways(
    database: Database, tmp_path: Path
) -> None:
    """Migration 0006 turns a store's bundled-update relation rows into one list per
    bundle, and its downgrade turns them back: nothing a bundle names is lost either way."""
    engine = _imported_store(database, tmp_path, seed=6)
    try:
        lists = _bundled(engine)
        assert sum(len(members) for members in lists.values()) > 100  # bundles of many
        _step(engine, tmp_path, "0005", down=True)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT update_id, revision_number, target_update_id, target_revision "
                "FROM revision_relation WHERE kind = 'bundle'"
            ).all()
        as_rows: dict[tuple[str, int], list[list[object]]] = {}
        for uid, number, target, target_number in rows:
            as_rows.setdefault((uid, number), []).append([target, target_number])
        assert {k: sorted(v) for k, v in as_rows.items()} == lists
        _step(engine, tmp_path, "head")
        assert _bundled(engine) == lists
        with engine.connect() as conn:
            left = conn.exec_driver_sql(
                "SELECT count(*) FROM revision_relation WHERE kind = 'bundle'"
            ).scalar_one()
        assert left == 0
    finally:
        engine.dispose()


def _imported_store(database: Database, tmp_path: Path, *, seed: int) -> Engine:
    """An engine on `database` holding a store with a generated catalog of 300 updates."""
    cabinet = tmp_path / "m1.cab"
    write_export(cabinet, generate_catalog(300, seed=seed))
    with UpdateStore.open(tmp_path / "sup", url=database.url) as store:
        import_export_cabinet(store, cabinet)
    return create_store_engine(database.url)


def _bundled(engine: Engine) -> dict[tuple[str, int], list[list[object]]]:
    """Each bundle's list of (update id, revision number), sorted."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT update_id, revision_number, bundled FROM revision WHERE bundled IS NOT NULL"
        ).all()
    return {
        (uid, number): sorted(json.loads(members) if isinstance(members, str) else members)
        for uid, number, members in rows
    }


def test_the_latest_revisions_digests_are_computed_for_a_store_that_had_none(
    database: Database, tmp_path: Path
) -> None:
    """Migration 0007 gives every update of a store stored before it the SHA-256 digest of
    its latest revision's document (what a site's pages report), as an import writes it."""
    engine = _imported_store(database, tmp_path, seed=7)
    try:
        imported = _digests(engine)
        assert len(imported) > 300 and None not in imported.values()
        _step(engine, tmp_path, "0006", down=True)
        _step(engine, tmp_path, "head")
        assert _digests(engine) == imported
    finally:
        engine.dispose()


def _digests(engine: Engine) -> dict[str, str | None]:
    """Each update's stored digest, checked against its latest revision's document."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT update_item.update_id, latest_xml_sha256, xml FROM update_item "
            "JOIN revision ON revision.update_id = update_item.update_id "
            "AND revision.revision_number = update_item.latest_revision"
        ).all()
    for _uid, digest, xml in rows:
        assert digest == hashlib.sha256(xml.encode("utf-8")).hexdigest()
    return {uid: digest for uid, digest, _xml in rows}


def test_languages_and_subscribed_texts_are_filled_for_a_store_stored_before(
    database: Database, tmp_path: Path
) -> None:
    """Migration 0008 writes, for the revisions stored before it, the languages of the
    language-specific ones and the texts of the subscribed languages, as an import does."""
    write_export(tmp_path / "packs.cab", generate_catalog(80, seed=9, language_packs=5))
    with UpdateStore.open(tmp_path / "store", url=database.url) as store:
        store.set_subscription(UpdateStoreSubscription(languages=("fr",)))
        import_export_cabinet(store, tmp_path / "packs.cab")
    engine = create_store_engine(database.url)
    try:
        imported = _language_rows(engine)
        assert len(imported[0]) == 5 and len(imported[1]) > 80
        _step(engine, tmp_path, "0007", down=True)
        _step(engine, tmp_path, "head")
        assert _language_rows(engine) == imported
    finally:
        engine.dispose()


def _language_rows(engine: Engine) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    with engine.connect() as conn:
        languages = conn.exec_driver_sql("SELECT * FROM revision_language").all()
        texts = conn.exec_driver_sql(
            "SELECT update_id, revision_number, language, title, description "
            "FROM revision_localized"
        ).all()
    return {tuple(r) for r in languages}, {tuple(r) for r in texts}


def test_the_revision_digest_is_computed_for_a_store_that_had_none(
    database: Database, tmp_path: Path
) -> None:
    """Migration 0010 gives a store stored before it the digest of its revision set and its
    count (`digest.py`), as the batches that wrote the revisions keep it."""
    engine = _imported_store(database, tmp_path, seed=10)
    try:
        with engine.connect() as conn:
            kept, _counter = stored(conn)
            assert kept == recompute(conn) and kept.count > 300
        _step(engine, tmp_path, "0007", down=True)
        _step(engine, tmp_path, "head")
        with engine.connect() as conn:
            assert stored(conn)[0] == kept
            keys = conn.exec_driver_sql("SELECT update_id, revision_number FROM revision").all()
        assert kept == RevisionDigest.of((uid, number) for uid, number in keys)
    finally:
        engine.dispose()
