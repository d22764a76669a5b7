"""Where an `updatesync updateserver` command finds its store: `--data DIR` (the data folder,
its SQLite file by default) and `--database URL` (or UPDATESYNC_DATABASE: the store on
PostgreSQL, or on an SQLite file elsewhere; its password from UPDATESYNC_DATABASE_PASSWORD).

A URL updatesync cannot use (one holding a password, another database than SQLite or
PostgreSQL) is one `error:` line naming the option or its variable, exit status 2, before
anything is made. `--data` is needed only where the server keeps files of its own
(`needs_data`: sync and serve); with neither, the command says to give one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from updatesync.cli.output import error
from updatesync.config.databases import (
    PASSWORD_VARIABLE,
    DatabaseUrlError,
    check_database_url,
    password_variable,
    with_password,
)

if TYPE_CHECKING:
    from updatesync.updateserver.store import UpdateStore

DATABASE_VARIABLE = "UPDATESYNC_DATABASE"
"""The environment variable an `updateserver` command reads its `--database` from."""


def database_url(ctx: typer.Context, value: str | None) -> str | None:
    """`--database` checked (see `config.databases.check_database_url`): a bad URL is one
    `error:` line naming the option (or its variable) and exit status 2."""
    if value is None:
        return None
    try:
        return check_database_url(value)
    except DatabaseUrlError as exc:
        source = ctx.get_parameter_source("database")
        from_env = source is not None and source.name == "ENVIRONMENT"
        where = DATABASE_VARIABLE if from_env else "--database"
        error(f"{where}: {exc}")
        raise typer.Exit(2) from exc


DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="The update server's data folder (created if missing); its store is the SQLite "
        "file there unless --database names another.",
        show_default=False,
    ),
]
Database = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar=DATABASE_VARIABLE,
        callback=database_url,
        help="The store's database instead of the data folder's SQLite file: "
        "postgresql+psycopg://USER@HOST:PORT/NAME (its password from "
        f"{PASSWORD_VARIABLE}, never in the URL) or sqlite:///PATH.",
        show_default=False,
    ),
]


def needs_store(data: Path | None, database: str | None) -> None:
    """A command of the store needs its data folder or its database: else a usage error."""
    if data is None and database is None:
        error(
            "give the update server's data folder (--data DIR) or its database "
            f"(--database URL, or {DATABASE_VARIABLE})"
        )
        raise typer.Exit(2)


def needs_data(data: Path | None, command: str, kept: str) -> Path:
    """`updateserver sync` and `serve` keep files of their own (`kept`) in the data folder."""
    if data is None:
        error(
            f"updateserver {command} needs the update server's data folder (--data DIR): "
            f"{kept} there, even with the store on --database"
        )
        raise typer.Exit(2)
    return data


@contextmanager
def open_store(
    data: Path | None, database: str | None = None, *, existing: bool = False
) -> Iterator[UpdateStore]:
    """The update server's store: in `data`'s SQLite file, or in the database at `database`
    (its password from UPDATESYNC_DATABASE_PASSWORD); a database error while it is used (a
    page damaged past the first ones, a server gone) names the database and what to do.
    `existing`: a command that only reads the store refuses one that is not there (a
    mistyped --data) instead of making an empty one."""
    from sqlalchemy.exc import DatabaseError

    from updatesync.updateserver.errors import StoreUnreadable
    from updatesync.updateserver.store import UpdateStore, store_problem

    needs_store(data, database)
    url = with_password(database, password_variable()) if database is not None else None
    with UpdateStore.open(data, url=url, existing=existing) as store:
        try:
            yield store
        except DatabaseError as exc:
            raise StoreUnreadable(store_problem(exc, str(store.engine.url))) from exc
