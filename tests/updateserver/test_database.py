"""Opening the update server's database: the SQLite file and settings, migrations."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from databases import Database
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError, OperationalError

from updatesync.site.database import engine as site_engine
from updatesync.updateserver.database import (
    DATABASE_FILE,
    MIGRATIONS,
    WRITER_CACHE_KIB,
    CookieKeyHomeless,
    create_store_engine,
    database_name,
    describe_database_error,
    head_of,
    migrate,
    sqlite_url,
    writer_connection,
)
from updatesync.updateserver.deployments import BUILTIN_GROUPS
from updatesync.updateserver.errors import StoreUnreadable
from updatesync.updateserver.peers import UpstreamState, save_upstream_state, upstream_state
from updatesync.updateserver.store import UpdateStore


def test_the_sqlite_file_and_its_settings(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    assert url == f"sqlite:///{(tmp_path / DATABASE_FILE).resolve()}"
    engine = create_store_engine(url)
    try:
        migrate(engine)
        migrate(engine)  # a second run has nothing to do
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        engine.dispose()
    assert (tmp_path / DATABASE_FILE).is_file()


def test_a_writer_has_a_large_page_cache_only_while_it_writes(tmp_path: Path) -> None:
    engine = create_store_engine(sqlite_url(tmp_path))
    cache = text("PRAGMA cache_size")
    try:
        migrate(engine)
        with engine.connect() as conn:
            default = conn.execute(cache).scalar_one()
        with writer_connection(engine) as writer:
            held = writer.connection.dbapi_connection
            assert not writer.in_transaction()  # each batch begins its own
            with writer.begin():
                assert writer.execute(cache).scalar_one() == -WRITER_CACHE_KIB
                writer.execute(text("UPDATE store_state SET change_counter = 7"))
            with pytest.raises(RuntimeError), writer.begin():
                writer.execute(text("UPDATE store_state SET change_counter = 8"))
                raise RuntimeError("a batch fails part-way")
        # Back in the pool at its own size (a serving process's connections do not keep the
        # writer's pages); the failed batch left nothing, the committed one is there.
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection is held
            assert conn.execute(cache).scalar_one() == default
            counter = conn.execute(text("SELECT change_counter FROM store_state")).scalar_one()
            assert counter == 7
    finally:
        engine.dispose()


def test_a_new_store_is_at_the_newest_migration(tmp_path: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    with UpdateStore.open(tmp_path / "sup") as store, store.engine.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalar_one() == head
    # Opening again does not migrate twice or fail.
    with UpdateStore.open(tmp_path / "sup") as store:
        assert store.change_counter() == 0


@pytest.mark.parametrize("location", [MIGRATIONS, site_engine.MIGRATIONS], ids=["store", "site"])
def test_the_newest_revision_read_from_the_files_is_alembics(location: Path) -> None:
    config = Config()
    config.set_main_option("script_location", str(location))
    assert head_of(location) == ScriptDirectory.from_config(config).get_current_head()


def test_a_store_at_the_newest_schema_opens_without_loading_alembic(database: Database) -> None:
    """Every command opens the store; one already migrated is checked with one query, and
    Alembic (a fifth of a command's start-up) is not even loaded."""
    UpdateStore.open(url=database.url).close()  # new: migrated
    opened = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from updatesync.updateserver.store import UpdateStore\n"
            f"with UpdateStore.open(url={database.url!r}) as store:\n"
            "    print(store.change_counter(), 'alembic' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert opened.stdout.split() == ["0", "False"]


def test_a_store_of_a_newer_schema_is_refused_as_a_newer_updatesyncs(database: Database) -> None:
    UpdateStore.open(url=database.url).close()
    engine = create_store_engine(database.url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    engine.dispose()
    with pytest.raises(StoreUnreadable, match="was written by a newer updatesync"):
        UpdateStore.open(url=database.url)


def test_a_store_of_the_previous_schema_is_upgraded_with_the_builtin_groups(
    tmp_path: Path,
) -> None:
    data = tmp_path / "old"
    data.mkdir()
    engine = create_store_engine(sqlite_url(data))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    engine.dispose()
    with UpdateStore.open(data) as store:
        save_upstream_state(store, UpstreamState("http://old.example", update_list_anchor="1,x"))
        assert store.target_groups() == list(BUILTIN_GROUPS)
        state = upstream_state(store, "http://old.example")
        assert (state.update_list_anchor, state.deployment_anchor) == ("1,x", None)


def test_the_database_file_is_private_and_made_so_on_open(tmp_path: Path) -> None:
    engine = create_store_engine(sqlite_url(tmp_path))
    try:
        migrate(engine, tmp_path)
        files = list(tmp_path.glob(f"{DATABASE_FILE}*"))
        assert files and {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    finally:
        engine.dispose()
    (tmp_path / DATABASE_FILE).chmod(0o644)  # as an older updatesync left it
    create_store_engine(sqlite_url(tmp_path)).dispose()
    assert stat.S_IMODE((tmp_path / DATABASE_FILE).stat().st_mode) == 0o600


def test_a_key_in_the_database_is_not_moved_without_a_data_folder(tmp_path: Path) -> None:
    engine = create_store_engine(sqlite_url(tmp_path))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0003")
            connection.execute(
                text("INSERT INTO server_identity VALUES (1, 'x', 'a2V5', '2026-12-01')")
            )
        with pytest.raises(CookieKeyHomeless, match=r"--data DIR beside --database"):
            migrate(engine)
    finally:
        engine.dispose()
    assert not (tmp_path / "cookie.key").exists()


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("file is not a database", "/d/x.sqlite: not a valid update server store: the file is"),
        ("database disk image is malformed", "/d/x.sqlite: not a valid update server store"),
        ("unable to open database file", "/d/x.sqlite: cannot open the update server store"),
        ("attempt to write a readonly database", "/d/x.sqlite: the update server store is read"),
        ("database is locked", "/d/x.sqlite: the update server store is locked by another"),
        ("disk I/O error", "/d/x.sqlite: cannot use the update server store: disk I/O error"),
        (
            'connection failed: FATAL:  database "wsus" does not exist',
            '/d/x.sqlite: cannot open the update server store: database "wsus" does not exist '
            "on that PostgreSQL server",
        ),
        (
            'connection failed: FATAL:  role "wsus" does not exist',
            '/d/x.sqlite: cannot open the update server store: role "wsus" does not exist on '
            "that PostgreSQL server",
        ),
        (
            'connection failed: FATAL:  password authentication failed for user "wsus"',
            "/d/x.sqlite: the PostgreSQL server refused the login",
        ),
        (
            'connection failed: connection to server at "db" (10.0.0.5), port 5432 failed: '
            "Connection refused",
            "/d/x.sqlite: cannot reach the PostgreSQL server of the update server store",
        ),
    ],
)
def test_a_database_error_in_one_line_with_what_to_do(reason: str, said: str) -> None:
    # PostgreSQL's refusals come from psycopg, SQLite's from sqlite3, as in a real run.
    driver_error = (
        psycopg.OperationalError(reason)
        if reason.startswith("connection failed")
        else sqlite3.DatabaseError(reason)
    )
    exc = DatabaseError("SELECT 1", {}, driver_error)
    line = describe_database_error(exc, "/d/x.sqlite", "update server store", "sync again")
    assert line.startswith(said) and "\n" not in line
    if "not a valid" in said:
        assert line.endswith("restore it from a backup, or move it aside and sync again")


@pytest.mark.parametrize(
    ("reason", "said", "what_to_do"),
    [
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
            "Connection refused\n\tIs the server running on that host and accepting TCP/IP?",
            "cannot reach the PostgreSQL server of the update server store (connection failed",
            "check that it runs and listens at that host and port",
        ),
        (
            "failed to resolve host 'db.invalid': [Errno -2] Name or service not known",
            "cannot reach the PostgreSQL server",
            "no firewall stands between",
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
            'password authentication failed for user "wsus"',
            "the PostgreSQL server refused the login (password authentication failed for user",
            "UPDATESYNC_DATABASE_PASSWORD_<ROLE>",
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
            "fe_sendauth: no password supplied",
            "the PostgreSQL server refused the login",
            "set its password in UPDATESYNC_DATABASE_PASSWORD",
        ),
        (
            'connection failed: connection to server on socket "/run/postgresql/.s.PGSQL.5432" '
            'failed: FATAL:  database "wsus" does not exist',
            'cannot open the update server store: database "wsus" does not exist on that',
            "createdb --owner USER NAME",
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
            'role "wsus" does not exist',
            'cannot open the update server store: role "wsus" does not exist on that PostgreSQL',
            "createuser USER",
        ),
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
            'no pg_hba.conf entry for host "10.0.0.9", user "wsus", database "wsus", no encryption',
            "the PostgreSQL server does not let this host in",
            "pg_hba.conf",
        ),
        (
            "permission denied for schema public",
            "the database user may not do what the update server store needs",
            "OWNER TO USER",
        ),
    ],
)
def test_a_postgresql_refusal_in_one_line_with_what_to_do(
    reason: str, said: str, what_to_do: str
) -> None:
    exc = OperationalError("SELECT 1", {}, psycopg.OperationalError(reason))
    where = "postgresql+psycopg://wsus@10.0.0.5/wsus"
    line = describe_database_error(exc, where, "update server store", "sync again")
    assert line.startswith(f"{where}: {said}"), line
    assert what_to_do in line and "\n" not in line


def test_a_revision_this_version_does_not_know_is_a_newer_updatesync() -> None:
    exc = CommandError("Can't locate revision identified by 'ffffffffffff'")
    line = describe_database_error(exc, "/d/x.sqlite", "update server store", "sync again")
    assert line.startswith("/d/x.sqlite: this update server store was written by a newer")


def test_database_names_hide_passwords() -> None:
    assert database_name("sqlite:////srv/wsus/updateserver.sqlite") == (
        "/srv/wsus/updateserver.sqlite"
    )
    shown = database_name("postgresql://wsus:s3cret@db.example/wsus")
    assert "s3cret" not in shown and "db.example/wsus" in shown
    # a password given as a query parameter, and in a URL that cannot be parsed
    shown = database_name("postgresql://wsus@db.example/wsus?Password=s3cret&sslmode=require")
    assert shown == "postgresql://wsus@db.example/wsus?Password=***&sslmode=require"
    shown = database_name("postgresql://wsus:s3cret@db.example:port/wsus?password=s3cret")
    assert "s3cret" not in shown and "db.example:port/wsus" in shown
