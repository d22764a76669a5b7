"""Naming the roles to run (`updatesync serve FILE --role ...`) and the shared secret they
need (`updatesync secret new FILE`)."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.config import Hierarchy, load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.roles import RoleError, loopback_file, on_loopback, parse_role
from updatesync.security.signing import MIN_SECRET_CHARS, load_secret


@pytest.fixture(scope="module")
def hierarchy() -> Hierarchy:
    return load_hierarchy(example_hierarchy())


def test_all_names_every_sup_then_every_site_top_down(hierarchy: Hierarchy) -> None:
    expected = [
        "sup:cs1site.contoso.com",
        "sup:ps1site.contoso.com",
        "sup:ps1sys.contoso.com",
        "sup:ps2site.contoso.com",
        "sup:ss1site.contoso.com",
        "site:CS1",
        "site:PS1",
        "site:PS2",
        "site:SS1",
    ]
    assert parse_role(hierarchy, "all") == expected
    assert parse_role(hierarchy, " ALL ") == expected


@pytest.mark.parametrize("text", ["site:PS1", "site:ps1", "SITE:Ps1", " site:PS1 "])
def test_a_site_role_takes_its_code_in_any_case(hierarchy: Hierarchy, text: str) -> None:
    assert parse_role(hierarchy, text) == ["site:PS1"]


@pytest.mark.parametrize("text", ["sup:ps1sys.contoso.com", "SUP:PS1SYS.Contoso.Com"])
def test_a_sup_role_takes_its_fqdn_in_any_case(hierarchy: Hierarchy, text: str) -> None:
    assert parse_role(hierarchy, text) == ["sup:ps1sys.contoso.com"]


@pytest.mark.parametrize("text", ["XX9", "server:PS1", "site PS1", "", "everything"])
def test_a_malformed_role_is_refused_with_the_forms_allowed(
    hierarchy: Hierarchy, text: str
) -> None:
    with pytest.raises(RoleError) as caught:
        parse_role(hierarchy, text)
    message = str(caught.value)
    assert repr(text) in message
    for form in ("all", "site:<CODE>", "sup:<FQDN>"):
        assert form in message


@pytest.mark.parametrize(
    ("text", "name"),
    [("PS1", "site:PS1"), ("ss1", "site:SS1"), ("PS1SYS.contoso.com", "sup:ps1sys.contoso.com")],
)
def test_a_site_code_or_a_sup_fqdn_alone_names_it(
    hierarchy: Hierarchy, text: str, name: str
) -> None:
    """As the instance name of the systemd unit: `updatesync@PS1`,
    `updatesync@ps1sys.contoso.com` run `serve FILE --role %i`."""
    assert parse_role(hierarchy, text) == [name]


def test_an_unknown_site_or_sup_is_refused_with_what_the_hierarchy_has(
    hierarchy: Hierarchy,
) -> None:
    with pytest.raises(RoleError) as site:
        parse_role(hierarchy, "site:XX9")
    assert "XX9" in str(site.value)
    assert "CS1, PS1, PS2, SS1" in str(site.value)
    with pytest.raises(RoleError) as sup:
        parse_role(hierarchy, "sup:wsus.fabrikam.com")
    assert "wsus.fabrikam.com" in str(sup.value)


def _squeezed(text: str) -> str:
    """Without white space: the console wraps long lines wherever it likes."""
    return "".join(text.split())


def test_serve_refuses_to_start_without_the_secret_file_and_says_how_to_make_it(
    tmp_path: Path,
) -> None:
    file = tmp_path / "hierarchy.toml"
    shutil.copyfile(example_hierarchy(), file)
    secret = load_hierarchy(file).secret_path
    assert not secret.exists()
    result = CliRunner().invoke(app, ["serve", str(file), "--role", "site:CS1"])
    assert result.exit_code == 1, result.output
    said = _squeezed(result.output)
    assert _squeezed(f"{secret} does not exist") in said
    assert _squeezed(f"updatesync secret new {secret}") in said
    # Nothing was started or created.
    assert not secret.exists()
    assert not (tmp_path / "data" / "CS1").exists()


def test_secret_new_writes_a_private_secret_and_never_overwrites_one(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "hierarchy.secret"
    first = CliRunner().invoke(app, ["secret", "new", str(path)])
    assert first.exit_code == 0, first.output
    value = load_secret(path)
    assert len(value) >= MIN_SECRET_CHARS
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    again = CliRunner().invoke(app, ["secret", "new", str(path)])
    assert again.exit_code == 1
    assert "exists" in again.output
    assert load_secret(path) == value


# -- TLS on loopback ---------------------------------------------------------------------------


def test_loopback_keeps_tls_its_paths_and_the_plain_http_port(tmp_path: Path) -> None:
    """`serve --role all` and `--processes` on one machine keep TLS on (they used to strip
    `https`): the copy names the same certificate files, the plain port moves too."""
    source = tmp_path / "hosts" / "hierarchy.toml"
    source.parent.mkdir()
    text = example_hierarchy().read_text(encoding="utf-8")
    text = text.replace(
        "[hierarchy.logs]", '[hierarchy.tls]\nca = "pki/ca.pem"\n\n[hierarchy.logs]', 1
    )
    text = text.replace(
        'fqdn = "ps1sys.contoso.com"',
        'fqdn = "ps1sys.contoso.com"\nhttp_port = 8530\ncert = "own/sys.pem"\nkey = "own/sys.key"',
    )
    source.write_text(text, encoding="utf-8")
    ports = loopback_file(source, tmp_path / "copy" / "hierarchy.toml")
    copy = load_hierarchy(tmp_path / "copy" / "hierarchy.toml")
    assert copy.tls is not None and copy.tls.ca == source.parent / "pki" / "ca.pem"
    assert copy.site("CS1").url == f"https://127.0.0.1:{ports['site:CS1']}"
    _, replica = copy.find_sup("ps1sys.contoso.com")
    assert replica.url == f"https://127.0.0.1:{ports['sup:ps1sys.contoso.com']}"
    assert replica.http_port == ports["http:sup:ps1sys.contoso.com"]
    assert replica.cert == source.parent / "own" / "sys.pem"

    placed, socks = on_loopback(load_hierarchy(source))
    try:
        assert placed.site("PS1").url.startswith("https://127.0.0.1:")
        _, moved = placed.find_sup("ps1sys.contoso.com")
        assert (
            moved.https and moved.http_port == socks["http:sup:ps1sys.contoso.com"].getsockname()[1]
        )
    finally:
        for sock in socks.values():
            sock.close()
