"""Where a role's database is (`config.databases`): the URLs accepted and refused, the
password variable of each role, and the password it puts into the URL."""

from __future__ import annotations

import re

import pytest
from databases import postgresql_database
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from updatesync.config.databases import (
    PASSWORD_VARIABLE,
    DatabaseUrlError,
    check_database_url,
    password_variable,
    with_password,
)
from updatesync.updateserver.store import UpdateStore


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://sup@db.contoso.com/wsus", "postgresql+psycopg://sup@db.contoso.com/wsus"),
        (
            "postgresql+psycopg://sup@db.contoso.com:5433/wsus",
            "postgresql+psycopg://sup@db.contoso.com:5433/wsus",
        ),
        (" sqlite:////srv/updatesync/store.sqlite ", "sqlite:////srv/updatesync/store.sqlite"),
        (
            "postgresql://sup@/wsus?host=/run/postgresql",
            "postgresql+psycopg://sup@/wsus?host=%2Frun%2Fpostgresql",
        ),
    ],
)
def test_urls_accepted_and_normalized(given: str, expected: str) -> None:
    assert check_database_url(given) == expected


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("", "empty database URL"),
        ("db.contoso.com/wsus", "is not a database URL"),
        ("mysql://sup@db/wsus", "not 'mysql'"),
        ("postgresql+asyncpg://sup@db/wsus", "not 'postgresql+asyncpg'"),
        ("sqlite://", "needs a file"),
        ("sqlite:///:memory:", "needs a file"),
        ("postgresql://sup@db.contoso.com", "names no database"),
    ],
)
def test_urls_refused_say_what_to_write(given: str, fragment: str) -> None:
    with pytest.raises(DatabaseUrlError, match=re.escape(fragment)):
        check_database_url(given)


def test_a_password_in_the_url_is_refused_naming_the_variable_and_hidden() -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        check_database_url(
            "postgresql://sup:s3cret@db.contoso.com/wsus",
            variable=password_variable("ps1site.contoso.com"),
        )
    said = str(caught.value)
    assert "UPDATESYNC_DATABASE_PASSWORD_PS1SITE_CONTOSO_COM" in said
    assert "s3cret" not in said
    assert "sup:***@db.contoso.com" in said


@pytest.mark.parametrize(
    "given",
    [
        "postgresql+psycopg://sup@db.contoso.com/wsus?password=s3cret",
        "postgresql://sup@/wsus?host=/run/postgresql&password=s3cret&port=5432",
        "postgresql://sup@db.contoso.com/wsus?sslmode=require&PASSWORD=s3cret",
        "postgresql://sup@db.contoso.com/wsus?Password=s3cret",
        "postgresql://sup@db.contoso.com/wsus?pass%77ord=s3cret",  # the key percent-encoded
        "sqlite:////srv/updatesync/store.sqlite?password=s3cret",
    ],
)
def test_a_password_in_the_query_string_is_refused_naming_the_variable_and_hidden(
    given: str,
) -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        check_database_url(given, variable=password_variable("ps1site.contoso.com"))
    said = str(caught.value)
    assert "holds a password in its query string (password=)" in said
    assert "set the environment variable UPDATESYNC_DATABASE_PASSWORD_PS1SITE_CONTOSO_COM " in said
    assert "s3cret" not in said
    assert re.search(r"[?&]password=\*\*\*", said, re.IGNORECASE), said


def test_an_updateserver_command_is_told_its_own_variable_for_the_query_string_too() -> None:
    with pytest.raises(DatabaseUrlError, match=f"variable {PASSWORD_VARIABLE} "):
        check_database_url("postgresql://sup@db/wsus?password=pw")


def test_other_query_parameters_are_kept_even_a_passfile() -> None:
    given = "postgresql://sup@db/wsus?passfile=/etc/updatesync/pgpass&sslmode=require"
    assert make_url(check_database_url(given)).query == {
        "passfile": "/etc/updatesync/pgpass",
        "sslmode": "require",
    }


def test_an_updateserver_command_is_told_its_own_variable() -> None:
    with pytest.raises(DatabaseUrlError, match=f"variable {PASSWORD_VARIABLE} "):
        check_database_url("postgresql://sup:pw@db/wsus")


@pytest.mark.parametrize(
    ("role", "variable"),
    [
        (None, "UPDATESYNC_DATABASE_PASSWORD"),
        ("CS1", "UPDATESYNC_DATABASE_PASSWORD_CS1"),
        ("ps1", "UPDATESYNC_DATABASE_PASSWORD_PS1"),
        ("ps1site.contoso.com", "UPDATESYNC_DATABASE_PASSWORD_PS1SITE_CONTOSO_COM"),
        ("sup-2.contoso.com", "UPDATESYNC_DATABASE_PASSWORD_SUP_2_CONTOSO_COM"),
    ],
)
def test_each_role_has_its_password_variable(role: str | None, variable: str) -> None:
    assert password_variable(role) == variable


def test_the_roles_variable_supplies_the_password() -> None:
    variable = password_variable("CS1")
    url = "postgresql+psycopg://cs1@db.contoso.com:5432/cs1"
    environ = {variable: "p@ss:w/rd", PASSWORD_VARIABLE: "not this one"}
    parsed = make_url(with_password(url, variable, environ))
    assert parsed.password == "p@ss:w/rd"  # quoted in the URL, whole again when parsed
    assert (parsed.username, parsed.host, parsed.port, parsed.database) == (
        "cs1",
        "db.contoso.com",
        5432,
        "cs1",
    )


def test_without_the_variable_or_for_sqlite_the_url_stays_as_it_is() -> None:
    url = "postgresql+psycopg://cs1@db.contoso.com/cs1"
    assert with_password(url, password_variable("CS1"), {}) == url
    other_role = {"UPDATESYNC_DATABASE_PASSWORD_PS1": "x"}
    assert with_password(url, password_variable("CS1"), other_role) == url
    lite = "sqlite:////srv/store.sqlite"
    assert with_password(lite, PASSWORD_VARIABLE, {PASSWORD_VARIABLE: "x"}) == lite


def test_a_role_with_a_password_opens_its_store_on_postgresql() -> None:
    """A PostgreSQL role with a password owns the database; the store opens on the URL the
    variable completed. (The test server trusts its socket, so this proves the URL works
    with the password in it, not that the server checked it: the test above does that.)"""
    with postgresql_database("pw") as db:
        server = make_url(db.url)
        role = f"sup_{server.database[-12:]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'Tr0ub4dor&3'"))
                conn.execute(text(f'ALTER DATABASE "{server.database}" OWNER TO {role}'))
            url = check_database_url(server.set(username=role).render_as_string())
            variable = password_variable("sup.contoso.com")
            completed = with_password(url, variable, {variable: "Tr0ub4dor&3"})
            assert make_url(completed).password == "Tr0ub4dor&3"
            with UpdateStore.open(url=completed) as store:
                assert store.status().revisions == 0
                with store.engine.connect() as conn:
                    owner = conn.execute(
                        text("SELECT tableowner FROM pg_tables WHERE tablename = 'revision'")
                    ).scalar_one()
            assert owner == role
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{server.database}" OWNER TO CURRENT_USER'))
                conn.execute(text(f"DROP OWNED BY {role}"))
                conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
            admin.dispose()
