"""Where a role's database is: an SQLAlchemy URL, and its password from the environment.

Every role has one database: a site server its site database, a SUP's update server its
store. The default is an SQLite file in the role's data folder; `database =
"postgresql+psycopg://user@host:5432/name"` in the hierarchy file (or `--database URL` on an
`updatesync updateserver` command) puts it on a PostgreSQL server instead.

A password never goes in the hierarchy file or on a command line (where `ps` shows it): a URL
that holds one, as `user:password@` or as a `password=` parameter of its query string (in any
case), is refused. The role takes it from its own environment variable,
`UPDATESYNC_DATABASE_PASSWORD_<ROLE>` (`password_variable`: the site code, such as CS1, or the
SUP's FQDN in capitals with `_` for every other character, such as PS1SITE_CONTOSO_COM), an
`updateserver` command from `UPDATESYNC_DATABASE_PASSWORD`; libpq's own ways (a `~/.pgpass`
file, `PGPASSFILE`, a client certificate) work too, since psycopg goes through libpq.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = [
    "PASSWORD_VARIABLE",
    "DatabaseUrlError",
    "check_database_url",
    "password_variable",
    "with_password",
]

PASSWORD_VARIABLE: Final = "UPDATESYNC_DATABASE_PASSWORD"
"""The password of an `updatesync updateserver` command's `--database`; a role of a
hierarchy reads `PASSWORD_VARIABLE + "_" + <ROLE>` (see `password_variable`)."""

_DRIVERS: Final = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}
"""The URL schemes accepted, and what each means (PostgreSQL always through psycopg 3)."""


class DatabaseUrlError(ValueError):
    """A database URL that updatesync cannot use; the message says why and what to do."""


def password_variable(role: str | None = None) -> str:
    """The environment variable holding the database password of `role` (a site code or a
    SUP's FQDN), or of an `updateserver` command when `role` is None."""
    if role is None:
        return PASSWORD_VARIABLE
    return f"{PASSWORD_VARIABLE}_{re.sub(r'[^A-Za-z0-9]', '_', role).upper()}"


def check_database_url(value: str, *, variable: str = PASSWORD_VARIABLE) -> str:
    """`value` as a database URL updatesync can open, normalized (`postgresql://` becomes
    `postgresql+psycopg://`); `DatabaseUrlError` says what is wrong. `variable` is where the
    password belongs instead (named in the error for a URL that holds one)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = value.strip()
    if not text:
        raise DatabaseUrlError(
            "empty database URL: give sqlite:///PATH or postgresql+psycopg://..."
        )
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise DatabaseUrlError(
            f"{_shown(text)!r} is not a database URL: expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DATABASE"
        ) from exc
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise DatabaseUrlError(
            f"database URL {_shown(text)!r}: updatesync works with SQLite (sqlite:///PATH) and "
            "PostgreSQL (postgresql+psycopg://USER@HOST:PORT/DATABASE), not "
            f"{url.drivername!r}"
        )
    if url.password:
        raise DatabaseUrlError(
            f"database URL {_shown(text)!r} holds a password: take it out of the URL and set "
            f"the environment variable {variable} (or use a ~/.pgpass file)"
        )
    if any(key.lower() == "password" for key in url.query):
        raise DatabaseUrlError(
            f"database URL {_shown(text)!r} holds a password in its query string (password=): "
            f"take it out of the URL and set the environment variable {variable} (or use a "
            "~/.pgpass file)"
        )
    if driver == "sqlite":
        if not url.database or url.database == ":memory:":
            raise DatabaseUrlError(
                f"database URL {text!r}: an SQLite URL needs a file, as sqlite:///PATH "
                "(an in-memory database would lose everything when the role stops)"
            )
    elif not url.database:
        raise DatabaseUrlError(
            f"database URL {_shown(text)!r} names no database: end it with /DATABASE, as "
            "postgresql+psycopg://USER@HOST:5432/DATABASE"
        )
    return url.set(drivername=driver).render_as_string(hide_password=False)


def with_password(url: str, variable: str, environ: Mapping[str, str] | None = None) -> str:
    """`url` with the password that `variable` holds in `environ` (the process's own by
    default); `url` as it is when the variable is unset or the URL is SQLite's."""
    from sqlalchemy.engine import make_url

    env = os.environ if environ is None else environ
    password = env.get(variable)
    parsed: URL = make_url(url)
    if not password or parsed.drivername.startswith("sqlite"):
        return url
    return parsed.set(password=password).render_as_string(hide_password=False)


_QUERY_PASSWORD: Final = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)
"""A `password=` parameter of a URL's query string, its value to hide."""


def _shown(text: str) -> str:
    """`text` with any password in it hidden (for messages): the one of `user:password@` and
    the value of a `password=` parameter."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        shown = make_url(text).render_as_string(hide_password=True)
    except ArgumentError:
        shown = re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", text)
    return _QUERY_PASSWORD.sub(r"\1***", shown)
