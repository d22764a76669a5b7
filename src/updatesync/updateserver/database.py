"""Opening the update server's database: engine, SQLite settings, migrations.

The default is one SQLite file in the server's data folder; any SQLAlchemy URL works
(PostgreSQL in production). Migrations (Alembic) run on every open, so a store created by
an older updatesync is brought up to date before it is used. A SQLite file is made private
before it is opened (`private_database`: created 0600, an older one and its `-wal`/`-shm`
files brought to 0600); the site database opens through the same engine.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url

from updatesync.security.private_files import private_database

MIGRATIONS = Path(__file__).with_name("migrations")
DATABASE_FILE = "updateserver.sqlite"
COOKIE_KEY_FILE = "cookie.key"
"""The MS-WSUSSS cookie key, in the data folder (migration 0004 moved it out of the database)."""


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / DATABASE_FILE).resolve()}"


def create_store_engine(url: str) -> Engine:
    """An engine for `url`; for SQLite, with WAL, a busy timeout and real transactions."""
    if not url.startswith("sqlite"):
        return create_engine(url, future=True)
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        private_database(database)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the driver, decide where transactions begin (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN")

    return engine


def migrate(engine: Engine, data_dir: Path | None = None) -> None:
    """Bring the database to the newest schema; `data_dir` is the server's data folder
    (migration 0004 moves the cookie key out of the database into a file there)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["data_dir"] = data_dir
        command.upgrade(config, "head")
