"""The site database's Alembic history on SQLite and on PostgreSQL: every revision upgrades
from an empty database to the head one step at a time, every downgrade goes back to empty,
and `current_revision` is the head afterwards, with the schema the code expects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from databases import Database
from sqlalchemy import Engine, inspect

from updatesync.site.database.engine import (
    MIGRATIONS,
    VERSION_TABLE,
    create_site_engine,
    current_revision,
    head_revision,
    migrate,
)
from updatesync.site.database.schema import metadata


def _revisions() -> list[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    return [s.revision for s in reversed(list(script.walk_revisions("base", "heads")))]


def _step(engine: Engine, to: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, to)


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    made = create_site_engine(database.url)
    yield made
    made.dispose()


def test_every_revision_upgrades_from_empty_to_head_and_back(engine: Engine) -> None:
    revisions = _revisions()
    assert revisions[-1] == head_revision() and len(revisions) >= 3
    assert current_revision(engine) is None
    for revision in revisions:
        _step(engine, revision)
        assert current_revision(engine) == revision
    for previous in [*reversed(revisions[:-1]), "base"]:
        _step(engine, previous, down=True)
        assert current_revision(engine) == (None if previous == "base" else previous)
    assert set(inspect(engine).get_table_names()) <= {VERSION_TABLE}
    migrate(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
