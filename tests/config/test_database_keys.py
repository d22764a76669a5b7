"""The `database` key of a site and of a SUP in the hierarchy file: a PostgreSQL or SQLite
URL, normalized, and never one holding a password (as `user:password@` or as a `password=`
parameter of its query string)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hierarchy_text import assert_problem, doc

from updatesync.config import HierarchyError, load_hierarchy, parse_hierarchy

SITE_DB = 'database = "postgresql://cs1@db.contoso.com:5432/cs1"\n'
SUP_DB = 'database = "postgresql+psycopg://wsus@db.contoso.com/wsus_ps1"\n'


def test_a_site_and_a_sup_may_each_name_a_database() -> None:
    text = doc(cas=SITE_DB).replace(
        '[[sites.sups]]\nfqdn = "ps1site.contoso.com"\n',
        '[[sites.sups]]\nfqdn = "ps1site.contoso.com"\n' + SUP_DB,
    )
    hierarchy = parse_hierarchy(text)
    assert hierarchy.site("CS1").database == "postgresql+psycopg://cs1@db.contoso.com:5432/cs1"
    assert hierarchy.site("CS1").sups[0].database is None  # its SQLite file, as before
    assert hierarchy.site("PS1").database is None
    assert hierarchy.site("PS1").sups[0].database == (
        "postgresql+psycopg://wsus@db.contoso.com/wsus_ps1"
    )


def test_a_password_in_a_sites_database_is_refused_naming_the_variable() -> None:
    problem = assert_problem(
        doc(cas='database = "postgresql://cs1:s3cret@db.contoso.com/cs1"\n'),
        "sites[0].database",
        "holds a password",
        "UPDATESYNC_DATABASE_PASSWORD_<ROLE>",
        "the site code",
    )
    assert "s3cret" not in str(problem)


def test_a_password_in_a_sups_database_is_refused_naming_the_variable() -> None:
    text = doc(extra='[[sites.sups]]\nfqdn = "ps1sys.contoso.com"\n')
    text += 'database = "postgresql://wsus:hunter2@db.contoso.com/wsus"\n'
    problem = assert_problem(
        text, "sites[1].sups[1].database", "UPDATESYNC_DATABASE_PASSWORD_<ROLE>", "FQDN"
    )
    assert "hunter2" not in str(problem)


def test_a_password_in_the_query_string_is_refused_with_the_file_and_line(
    tmp_path: Path,
) -> None:
    file = tmp_path / "hierarchy.toml"
    text = doc(extra='[[sites.sups]]\nfqdn = "ps1sys.contoso.com"\n')
    text += 'database = "postgresql://wsus@/wsus?host=/run/postgresql&Password=hunter2"\n'
    file.write_text(text, encoding="utf-8")
    with pytest.raises(HierarchyError) as caught:
        load_hierarchy(file)
    assert caught.value.source == str(file)
    [problem] = caught.value.problems
    assert problem.path == "sites[1].sups[1].database"
    assert problem.line == text.count("\n")  # the line of the key, the file's last
    for fragment in (
        "holds a password in its query string (password=)",
        "UPDATESYNC_DATABASE_PASSWORD_<ROLE>",
        "FQDN",
    ):
        assert fragment in problem.message
    said = str(caught.value)
    assert said.startswith(f"{file}: 1 problem in the hierarchy file:")
    assert f"line {problem.line}, sites[1].sups[1].database: database URL " in said
    assert "Password=***" in said
    assert "hunter2" not in said


def test_a_password_in_a_sites_query_string_is_refused_too() -> None:
    problem = assert_problem(
        doc(cas='database = "postgresql://cs1@db.contoso.com/cs1?password=s3cret"\n'),
        "sites[0].database",
        "holds a password in its query string",
        "UPDATESYNC_DATABASE_PASSWORD_<ROLE>",
        "the site code",
    )
    assert "s3cret" not in str(problem)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('"mysql://cs1@db/cs1"', "not 'mysql'"),
        ('"postgresql://cs1@db.contoso.com"', "names no database"),
        ('"sqlite:///:memory:"', "needs a file"),
        ("5432", "must be a string"),
    ],
)
def test_database_rules(value: str, fragment: str) -> None:
    assert_problem(doc(cas=f"database = {value}\n"), "sites[0].database", fragment)
