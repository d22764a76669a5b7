"""A role's database password comes from its own environment variable: a site server's from
`UPDATESYNC_DATABASE_PASSWORD_<SITE CODE>`, a SUP's from `UPDATESYNC_DATABASE_PASSWORD_<FQDN>`.

Each role is started against a PostgreSQL URL without a password whose server is not there
(a socket in an empty folder): the connection the driver is asked to make carries the
variable's value, the start fails with one message naming the database, and the password is
in no message, no log record and no file the role wrote. No server is needed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from updatesync.config import Hierarchy, load_hierarchy
from updatesync.config.databases import PASSWORD_VARIABLE, password_variable
from updatesync.demo import example_hierarchy
from updatesync.roles import Role, RoleContext, SiteRole, SupRole
from updatesync.roles.context import RoleError

SECRET = "Tr0ub4dor&3 p@ss/w:rd"
"""A password with the characters a URL must quote."""
SEEN = "Tr0ub4dor"
"""What the password shows in any of its forms (as it is, or quoted in a URL)."""
OTHER = "not-this-one"
SITE = "CS1"
SUP = "ps1site.contoso.com"


@pytest.fixture
def hierarchy(tmp_path: Path) -> Hierarchy:
    """The example hierarchy with CS1's site database and ps1site's store on PostgreSQL
    servers that do not run."""
    lines = []
    for line in example_hierarchy().read_text(encoding="utf-8").splitlines():
        lines.append(line)
        if line in (f'code = "{SITE}"', f'fqdn = "{SUP}"') and lines[-2].startswith("[["):
            user = "cs1" if "code" in line else "wsus"
            url = f"postgresql+psycopg://{user}@/{user}?host={tmp_path / 'no-server'}&port=5432"
            lines.append(f'database = "{url}"')
    file = tmp_path / "hierarchy.toml"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    loaded = load_hierarchy(file)
    assert loaded.site(SITE).database is not None
    assert loaded.find_sup(SUP)[1].database is not None
    return replace(loaded, data_dir=tmp_path / "data", secret_file=tmp_path / "secret")


@pytest.fixture
def connections() -> Iterator[list[dict[str, Any]]]:
    """The keyword arguments of every connection the driver is asked to make meanwhile."""
    made: list[dict[str, Any]] = []

    def record(_dialect: object, _record: object, _args: object, params: dict) -> None:
        made.append(dict(params))

    event.listen(Engine, "do_connect", record)
    try:
        yield made
    finally:
        event.remove(Engine, "do_connect", record)


def _role(context: RoleContext, kind: str) -> Role:
    return SiteRole(context, SITE) if kind == "site" else SupRole(context, SUP)


@pytest.mark.parametrize(("kind", "role"), [("site", SITE), ("sup", SUP)])
def test_a_role_connects_with_the_password_of_its_own_variable_and_never_shows_it(
    kind: str,
    role: str,
    hierarchy: Hierarchy,
    connections: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    variable = password_variable(role)
    monkeypatch.setenv(variable, SECRET)
    monkeypatch.setenv(PASSWORD_VARIABLE, OTHER)  # an `updateserver` command's, not a role's
    other_role = password_variable(SUP if kind == "site" else SITE)
    monkeypatch.setenv(other_role, OTHER)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(RoleError) as caught:
        _role(RoleContext(hierarchy, b"s" * 32), kind).start()

    assert connections, "the role never asked the driver for a connection"
    assert {c.get("password") for c in connections} == {SECRET}
    assert {c.get("host") for c in connections} == {str(tmp_path / "no-server")}
    said = str(caught.value)
    assert said.startswith(f"{kind}:{role}: ")
    assert ":***@/" in said  # the database named, its password hidden
    assert "cannot reach the PostgreSQL server" in said
    for shown in (said, caplog.text, *capsys.readouterr()):
        assert SEEN not in shown
        assert OTHER not in shown
    for path in (p for p in hierarchy.data_dir.rglob("*") if p.is_file()):
        assert SEEN.encode() not in path.read_bytes(), path


def test_without_its_variable_a_role_connects_without_a_password(
    hierarchy: Hierarchy,
    connections: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(password_variable(SITE), raising=False)
    monkeypatch.setenv(PASSWORD_VARIABLE, OTHER)
    with pytest.raises(RoleError):
        SiteRole(RoleContext(hierarchy, b"s" * 32), SITE).start()
    assert connections
    assert all(not c.get("password") for c in connections)
