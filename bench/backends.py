"""The databases a benchmark runs on: SQLite (the default) and PostgreSQL, side by side.

`add_arguments(parser)` adds `--database {sqlite,postgresql,both}` and `--postgresql-url URL`
(a server this user may CREATE DATABASE on; default: UPDATESYNC_BENCH_POSTGRESQL, else
UPDATESYNC_TEST_POSTGRESQL, as `.ci/postgresql` sets it). `throwaway(server, name)` makes a
new, empty database for one run and drops it afterwards, so runs never see each other's rows.
A password in the server's URL goes to the roles through their variables, never in a URL
they are given (`Throwaway.url` has none, `Throwaway.password` is it).
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

KINDS = ("sqlite", "postgresql")
SERVER_VARIABLES = ("UPDATESYNC_BENCH_POSTGRESQL", "UPDATESYNC_TEST_POSTGRESQL")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        choices=(*KINDS, "both"),
        default="sqlite",
        help="the database of the stores and site databases measured (both: one after the "
        "other, printed side by side)",
    )
    parser.add_argument(
        "--postgresql-url",
        help="a PostgreSQL server this user may create databases on, as an SQLAlchemy URL "
        f"(default: {' or '.join(SERVER_VARIABLES)})",
    )


def kinds(args: argparse.Namespace) -> list[str]:
    """The kinds of database to run on, in order."""
    return list(KINDS) if args.database == "both" else [args.database]


def server(args: argparse.Namespace) -> str | None:
    """The PostgreSQL server to make databases on, when a kind needs one; stops with what to
    give when none is known."""
    if "postgresql" not in kinds(args):
        return None
    found = args.postgresql_url or next(
        (os.environ[v] for v in SERVER_VARIABLES if os.environ.get(v)), None
    )
    if not found:
        raise SystemExit(
            "--database postgresql needs a PostgreSQL server: give --postgresql-url URL or set "
            f"{SERVER_VARIABLES[0]} (a user that may CREATE DATABASE)"
        )
    return found


@dataclass(frozen=True)
class Throwaway:
    """One database made for a run: its URL without password, and the password (or None)."""

    url: str
    password: str | None


@contextmanager
def throwaway(server_url: str, name: str) -> Iterator[Throwaway]:
    """A new, empty PostgreSQL database on `server_url`, named `bench_<name>_<random>`,
    dropped (even with sessions still on it) when the block ends."""
    base = make_url(server_url).set(drivername="postgresql+psycopg")
    database = f"bench_{name}_{secrets.token_hex(4)}".lower()
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
        try:
            url = base.set(database=database)._replace(password=None)
            yield Throwaway(url.render_as_string(hide_password=False), base.password)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        admin.dispose()
