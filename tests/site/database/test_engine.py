"""Tests of the site database engine: its URL, and migrating a fresh database to the head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from updatesync.site.database.engine import (
    DATABASE_FILE,
    VERSION_TABLE,
    create_site_engine,
    current_revision,
    head_revision,
    migrate,
    sqlite_url,
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    site_engine = create_site_engine(sqlite_url(tmp_path))
    yield site_engine
    site_engine.dispose()


def test_sqlite_url_names_the_database_file_in_the_data_folder(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    assert url == f"sqlite:///{(tmp_path / DATABASE_FILE).resolve()}"
    assert url.endswith("/site.sqlite")


def test_sqlite_url_is_absolute_for_a_relative_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_url(Path("data")) == f"sqlite:///{(tmp_path / 'data' / DATABASE_FILE).resolve()}"


def test_head_revision_is_a_known_revision() -> None:
    head = head_revision()
    assert isinstance(head, str)
    assert head


def test_a_fresh_database_has_no_revision(engine: Engine) -> None:
    assert current_revision(engine) is None


def test_migrate_brings_a_fresh_database_to_the_head(engine: Engine, tmp_path: Path) -> None:
    migrate(engine)
    assert current_revision(engine) == head_revision()
    assert (tmp_path / DATABASE_FILE).is_file()
    tables = set(inspect(engine).get_table_names())
    assert VERSION_TABLE in tables
    assert {"site_identity", "update_sync_status", "configuration_item"} <= tables


def test_migrate_twice_leaves_the_database_at_the_head(engine: Engine) -> None:
    migrate(engine)
    migrate(engine)
    assert current_revision(engine) == head_revision()
