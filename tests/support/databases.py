"""Databases for the tests: SQLite (the default) and PostgreSQL, one fresh database each.

`UPDATESYNC_TEST_POSTGRESQL` names a PostgreSQL server the tests may create databases on (a
URL with a user allowed to CREATE DATABASE, such as the throwaway cluster `.ci/postgresql`
starts for `.ci/run`). Without it, the PostgreSQL half of a parametrised test skips and says
why. Every database made here is new and empty, named `updatesync_test_<random>`, and is
dropped when the test ends, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

VARIABLE = "UPDATESYNC_TEST_POSTGRESQL"
KINDS = ("sqlite", "postgresql")
SKIP_REASON = (
    f"no PostgreSQL server for the tests: set {VARIABLE} to the URL of one this user may "
    "create databases on (`.ci/run` starts a throwaway cluster and sets it)"
)


@dataclass(frozen=True)
class Database:
    """One test database: `kind` is "sqlite" or "postgresql"; `url` its SQLAlchemy URL."""

    kind: str
    url: str

    @property
    def is_postgresql(self) -> bool:
        return self.kind == "postgresql"


def server_url() -> str | None:
    """The PostgreSQL server the tests may use, or None."""
    return os.environ.get(VARIABLE) or None


def require_server() -> str:
    """The PostgreSQL server's URL; skips the test when there is none."""
    url = server_url()
    if url is None:
        pytest.skip(SKIP_REASON)
    return url


@contextmanager
def postgresql_database(name_hint: str = "") -> Iterator[Database]:
    """A new, empty PostgreSQL database on the test server, dropped afterwards."""
    server = make_url(require_server())
    name = f"updatesync_test_{name_hint}{secrets.token_hex(6)}".lower()
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
        try:
            yield Database("postgresql", url)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def database_of_kind(kind: str, folder: Path, name: str = "test") -> Iterator[Database]:
    """A new database of `kind`: an SQLite file `name`.sqlite in `folder`, or a PostgreSQL
    database on the test server."""
    if kind == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        yield Database("sqlite", f"sqlite:///{(folder / f'{name}.sqlite').resolve()}")
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database kind {kind!r}: expected one of {', '.join(KINDS)}")
    with postgresql_database() as db:
        yield db


class Databases:
    """Makes fresh databases of one kind for a test (several roles need one each)."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.folder = folder
        self._stack: list[object] = []
        self._count = 0

    def new(self, name: str = "") -> Database:
        self._count += 1
        manager = database_of_kind(self.kind, self.folder, name or f"db{self._count}")
        db = manager.__enter__()
        self._stack.append(manager)
        return db

    def close(self) -> None:
        while self._stack:
            manager = self._stack.pop()
            manager.__exit__(None, None, None)  # type: ignore[attr-defined]
