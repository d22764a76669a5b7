"""Opening a site database: engine, SQLite settings, migrations.

The engine settings are the update server's (`create_store_engine`: SQLite in WAL mode with
a busy timeout and transactions begun by SQLAlchemy); the migrations are the site's own,
recorded in the `schema_version` table. By default the site database is one SQLite file in
the site server's data folder; any SQLAlchemy URL works.
"""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from updatesync.updateserver.database import create_store_engine, upgrade_to_head

MIGRATIONS = Path(__file__).with_name("migrations")
DATABASE_FILE = "site.sqlite"
VERSION_TABLE = "schema_version"


def sqlite_url(data_dir: Path) -> str:
    """The URL of the site database file in `data_dir`."""
    return f"sqlite:///{(data_dir / DATABASE_FILE).resolve()}"


def create_site_engine(url: str) -> Engine:
    """An engine for the site database at `url` (same settings as the update server's)."""
    return create_store_engine(url)


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the site database to the newest schema (nothing when it is there already)."""
    upgrade_to_head(engine, MIGRATIONS, version_table=VERSION_TABLE)


def head_revision() -> str:
    """The newest schema revision this updatesync knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no site database migrations found in {MIGRATIONS}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database at `engine` is at (None: never migrated)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
