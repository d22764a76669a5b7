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
from alembic.util.exc import CommandError
from sqlalchemy import Engine, create_engine, event
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
        connection.exec_driver_sql("BEGIN")

    return engine


def database_name(url: str) -> str:
    """How a user knows the database at `url`: the file of an SQLite URL, else the URL
    without its password."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return url


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
    if isinstance(exc, CommandError) and "revision" in lowered:
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
    if isinstance(exc, DatabaseError | CommandError):
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


OPEN_ERRORS = (DatabaseError, CommandError, DriverMissing)
"""What opening or migrating a damaged, unreadable or too-new database raises."""


def migrate(engine: Engine, data_dir: Path | None = None) -> None:
    """Bring the database to the newest schema; `data_dir` is the server's data folder
    (migration 0004 moves the cookie key out of the database into a file there)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["data_dir"] = data_dir
        command.upgrade(config, "head")
