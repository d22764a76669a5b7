"""Opening the update server's database: engine, SQLite settings, migrations.

The default is one SQLite file in the server's data folder; any SQLAlchemy URL works
(PostgreSQL in production). Migrations (Alembic) are checked on every open, so a store created
by an older updatesync is brought up to date before it is used: the stored revision is read
with one query and compared with the newest one the migration files name; only a database
behind them (or new, or not readable so) loads Alembic and runs it (`upgrade_to_head`, the
site database's migrations too): loading Alembic costs a command more than the check. A
SQLite file is made private before it is opened (`private_database`: created 0600, an older
one and its `-wal`/`-shm` files brought to 0600); the site database opens through the same
engine.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, SQLAlchemyError

from updatesync.security.private_files import private_database

MIGRATIONS = Path(__file__).with_name("migrations")
DATABASE_FILE = "updateserver.sqlite"
COOKIE_KEY_FILE = "cookie.key"
"""The MS-WSUSSS cookie key, in the data folder (migration 0004 moved it out of the database)."""


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / DATABASE_FILE).resolve()}"


class CookieKeyHomeless(Exception):
    """An older store holds its cookie key, and no data folder was given to move it to."""


class DriverMissing(Exception):
    """The database URL needs a driver that is not installed (psycopg for PostgreSQL)."""


class MigrationError(Exception):
    """Alembic could not bring the database to the newest schema (a revision it does not
    know: a database written by a newer updatesync); the message is Alembic's."""


def _alembic_error(exc: BaseException) -> bool:
    """Whether `exc` is Alembic's CommandError (only raised once Alembic is loaded)."""
    loaded = sys.modules.get("alembic.util.exc")
    return loaded is not None and isinstance(exc, loaded.CommandError)


IMMEDIATE: Final = "updatesync_sqlite_immediate"
"""The execution option that begins a SQLite transaction with `BEGIN IMMEDIATE` (a write
transaction: `SiteStore.begin`); PostgreSQL ignores it."""


def create_store_engine(url: str) -> Engine:
    """An engine for `url`; for SQLite, with WAL, a busy timeout and real transactions; for
    PostgreSQL (psycopg 3), connections checked before use (a server restarted or a link cut
    while the role ran costs one failed check, not a failed sync)."""
    if not url.startswith("sqlite"):
        try:
            return create_engine(url, pool_pre_ping=True)
        except ModuleNotFoundError as exc:
            raise DriverMissing(
                f"the driver for {make_url(url).drivername} is not installed ({exc.name}); "
                "install updatesync with its PostgreSQL extra: pip install 'updatesync[postgresql]'"
            ) from exc
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
        # A write transaction takes the write lock at once (waiting out the busy timeout for
        # it): begun deferred, one that read first could not write when another connection
        # had committed since its first read (SQLite answers "database is locked" at once,
        # without waiting, to keep its snapshot consistent).
        immediate = connection.get_execution_options().get(IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


WRITER_CACHE_KIB: Final = 16 * 1024
"""SQLite page cache, in KiB, of a connection writing a run of batches (an import, a sync's
commit stage). SQLite's default is 2 MiB: once a store's indexes outgrow it, each batch
reads back and rewrites pages the previous batch had; 16 MiB keeps them, which took about a
tenth of a sync's processor time away (docs/architecture.md). Only that connection gets it,
and only while it writes: a serving process's readers keep the default, so its memory does
not grow with the number of connections."""


@contextmanager
def large_page_cache(conn: Connection) -> Iterator[None]:
    """Give `conn` WRITER_CACHE_KIB of page cache on SQLite while the block runs, then its
    own size back (SQLite frees the pages above it). Does nothing on other databases. Works
    inside a transaction or out of one: PRAGMA cache_size is not transactional."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(before)}")


@contextmanager
def writer_connection(engine: Engine) -> Iterator[Connection]:
    """A connection held for a run of write transactions (`with conn.begin():` each), with
    `large_page_cache` while it is held: a sync's batches commit one by one on it."""
    with engine.connect() as conn:
        with large_page_cache(conn):
            conn.commit()  # the PRAGMA's implicit transaction: each batch begins its own
            try:
                yield conn
            finally:
                conn.rollback()  # a batch that failed part-way left nothing open
        conn.commit()


def database_name(url: str) -> str:
    """How a user knows the database at `url`: the file of an SQLite URL, else the URL
    without its password (in `user:password@` or a `password=` query parameter; masked
    too in a URL that cannot be parsed)."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        shown = _USERINFO.sub(r"\1***@", url)
    return _PASSWORD_QUERY.sub(r"\1***", shown)


_USERINFO = re.compile(r"(://)[^@/?#]*@")
_PASSWORD_QUERY = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def describe_database_error(exc: BaseException, where: str, what: str, rebuild: str) -> str:
    """One line for a database that cannot be opened or read: `where` it is (see
    `database_name`), `what` it is ("update server store"), and `rebuild`, how to make a new
    one ("run `updatesync updateserver sync` again"); a line whatever `exc` is."""
    if isinstance(exc, DriverMissing):
        return f"{where}: cannot open the {what}: {exc}"
    orig = getattr(exc, "orig", None) or exc
    reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    lowered = reason.lower()
    if type(orig).__module__.split(".")[0] == "psycopg":
        said = _postgresql_problem(reason, where, what)
        if said is not None:
            return said
    migration = isinstance(exc, MigrationError) or _alembic_error(exc)
    if migration and "revision" in lowered:
        return (
            f"{where}: this {what} was written by a newer updatesync ({reason}); run that "
            "version, or restore a backup made with this one"
        )
    if "not a database" in lowered or "malformed" in lowered or "encrypted" in lowered:
        return (
            f"{where}: not a valid {what}: the file is damaged or is not an updatesync "
            f"database ({reason}); restore it from a backup, or move it aside and {rebuild}"
        )
    if "unable to open" in lowered:
        return (
            f"{where}: cannot open the {what} ({reason}): the path must be a file this user "
            "can read and write, in a folder it can write; check the path and its permissions"
        )
    if "readonly" in lowered or "read-only" in lowered:
        return (
            f"{where}: the {what} is read-only for this user ({reason}); give this user "
            "write access to the file and its folder"
        )
    if "locked" in lowered or "busy" in lowered:
        return (
            f"{where}: the {what} is locked by another process ({reason}); try again when "
            "it is done"
        )
    if isinstance(exc, DatabaseError) or migration:
        return f"{where}: cannot use the {what}: {reason}"
    return f"{where}: cannot use the {what}: {type(orig).__name__}: {reason}"


PASSWORD_HINT = (
    "set its password in UPDATESYNC_DATABASE_PASSWORD (an `updatesync updateserver` command) "
    "or UPDATESYNC_DATABASE_PASSWORD_<ROLE> (a role of the hierarchy), or in ~/.pgpass"
)

_UNREACHABLE = (
    "connection refused",
    "no such file or directory",
    "failed to resolve host",
    "could not translate host name",
    "name or service not known",
    "timeout expired",
    "timed out",
    "network is unreachable",
    "no route to host",
    "server closed the connection",
    "the database system is starting up",
    "the database system is shutting down",
)


def _postgresql_problem(reason: str, where: str, what: str) -> str | None:
    """What a PostgreSQL server's refusal means for the user, or None when it is none of
    the usual ones (a server not reached, a database or role it lacks, a password refused,
    a host it does not let in, a right the user lacks)."""
    said = reason.split("FATAL:", 1)[-1].strip() if "FATAL:" in reason else reason
    said = " ".join(said.split())
    lowered = said.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return f"{where}: the PostgreSQL server refused the login ({said}); {PASSWORD_HINT}"
    if lowered.startswith("database ") and "does not exist" in lowered:
        return (
            f"{where}: cannot open the {what}: {said} on that PostgreSQL server; create it "
            "(as a superuser: createdb --owner USER NAME) or correct the URL"
        )
    if lowered.startswith("role ") and "does not exist" in lowered:
        return (
            f"{where}: cannot open the {what}: {said} on that PostgreSQL server; create it "
            "(as a superuser: createuser USER) or correct the user in the URL"
        )
    if "no pg_hba.conf entry" in lowered:
        return (
            f"{where}: the PostgreSQL server does not let this host in ({said}); add a line "
            "for this host, user and database to its pg_hba.conf and reload it"
        )
    if "permission denied" in lowered:
        return (
            f"{where}: the database user may not do what the {what} needs ({said}); make it "
            "the database's owner (ALTER DATABASE NAME OWNER TO USER)"
        )
    if any(sign in lowered for sign in _UNREACHABLE):
        return (
            f"{where}: cannot reach the PostgreSQL server of the {what} ({said}); check that "
            "it runs and listens at that host and port, and that no firewall stands between"
        )
    return None


OPEN_ERRORS = (DatabaseError, MigrationError, DriverMissing)
"""What opening or migrating a damaged, unreadable or too-new database raises."""

VERSION_TABLE = "alembic_version"
"""Where Alembic keeps the revision the update server's store is at."""

_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*=\s*(None|[\"']([^\"']+)[\"'])", re.MULTILINE)


@cache
def head_of(script_location: Path) -> str | None:
    """The newest revision the migration files under `script_location` name (each file's
    `revision` that no other file revises), read from the files without loading them; None
    when they do not say so plainly (no file, a merge, a branch: Alembic decides then)."""
    revisions: dict[str, str | None] = {}
    for path in sorted((script_location / "versions").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:
            return None
        revisions[revision.group(1)] = down.group(2)
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None


def stored_revision(engine: Engine, version_table: str = VERSION_TABLE) -> str | None:
    """The one revision the database at `engine` records (None: new, or not one)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(version_table):
            return None
        rows = connection.execute(text(f"SELECT version_num FROM {version_table}")).all()
    return rows[0][0] if len(rows) == 1 else None


def upgrade_to_head(
    engine: Engine,
    script_location: Path,
    *,
    version_table: str = VERSION_TABLE,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    """Bring the database at `engine` to the newest revision of the migrations under
    `script_location`: nothing when it records that revision already, else Alembic's
    upgrade on one connection (`attributes` handed to the migrations with it). A revision
    Alembic does not know raises `MigrationError`."""
    head = head_of(script_location)
    if head is not None and stored_revision(engine, version_table) == head:
        return
    from alembic import command
    from alembic.config import Config
    from alembic.util.exc import CommandError

    config = Config()
    config.set_main_option("script_location", str(script_location))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            config.attributes.update(attributes or {})
            command.upgrade(config, "head")
    except CommandError as exc:
        raise MigrationError(str(exc)) from exc


def migrate(engine: Engine, data_dir: Path | None = None) -> None:
    """Bring the database to the newest schema; `data_dir` is the server's data folder
    (migration 0004 moves the cookie key out of the database into a file there)."""
    upgrade_to_head(engine, MIGRATIONS, attributes={"data_dir": data_dir})
