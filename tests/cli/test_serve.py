"""Tests of `updatesync serve` and `updatesync secret new/rotate` (`updatesync.cli.serve`)
that need no running server: the secret file's messages and refusals (an existing file, a file
others can read, a rotation under way), and `serve` refusing a bad hierarchy file or an unknown
role with a one-line reason and exit status 1, before anything is started; `serve --role all`
refusing a file with roles here and elsewhere, or two roles at one port."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.config import load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.roles import free_port
from updatesync.roles.serving import bind
from updatesync.security.shared_secret import load_secret
from updatesync.security.webhook_signing import load_webhook_secret


def _squeezed(text: str) -> str:
    """Without white space: the console wraps long lines anywhere, even inside a path."""
    return "".join(text.split())


@pytest.fixture
def hierarchy_file(tmp_path: Path) -> Path:
    file = tmp_path / "hierarchy.toml"
    shutil.copyfile(example_hierarchy(), file)
    return file


def test_secret_new_says_where_it_wrote_and_makes_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "hierarchy.secret"
    result = CliRunner().invoke(app, ["secret", "new", str(path)])
    assert result.exit_code == 0, result.output
    assert _squeezed(result.output) == _squeezed(
        f"wrote a new shared secret to {path} (readable by you only)"
    )
    assert path.is_file()
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_secret_new_refuses_an_existing_file_and_leaves_it_alone(tmp_path: Path) -> None:
    path = tmp_path / "hierarchy.secret"
    path.write_text("kept as it is\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["secret", "new", str(path)])
    assert result.exit_code == 1
    assert _squeezed(result.output) == _squeezed(
        f"error: {path} exists; remove it first to replace it"
    )
    assert path.read_text(encoding="utf-8") == "kept as it is\n"


def test_secret_new_needs_a_path() -> None:
    assert CliRunner().invoke(app, ["secret", "new"]).exit_code == 2


def test_secret_rotate_keeps_the_old_secret_until_finish(tmp_path: Path) -> None:
    path = tmp_path / "hierarchy.secret"
    assert CliRunner().invoke(app, ["secret", "new", str(path)]).exit_code == 0
    old = load_secret(path)
    result = CliRunner().invoke(app, ["secret", "rotate", str(path)])
    assert result.exit_code == 0, result.output
    assert "Copy the file to every host" in result.output
    assert _squeezed(f"rotate --finish {path}") in _squeezed(result.output)
    rotating = load_secret(path)
    assert rotating != old and rotating.previous == old
    again = CliRunner().invoke(app, ["secret", "rotate", str(path)])
    assert again.exit_code == 1
    assert "already under way" in again.output
    result = CliRunner().invoke(app, ["secret", "rotate", "--finish", str(path)])
    assert result.exit_code == 0, result.output
    assert "dropped the previous secret" in result.output
    finished = load_secret(path)
    assert finished == rotating and finished.previous is None


def test_secret_rotate_refuses_a_file_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "hierarchy.secret"
    assert CliRunner().invoke(app, ["secret", "new", str(path)]).exit_code == 0
    path.chmod(0o644)
    result = CliRunner().invoke(app, ["secret", "rotate", str(path)])
    assert result.exit_code == 1
    assert _squeezed(f"chmod 600 {path}") in _squeezed(result.output)


def test_secret_webhook_writes_a_private_standard_webhooks_secret(tmp_path: Path) -> None:
    path = tmp_path / "hooks" / "alerts.secret"
    result = CliRunner().invoke(app, ["secret", "webhook", str(path)])
    assert result.exit_code == 0, result.output
    assert "[[hierarchy.alerts.webhooks]]" in result.output
    assert path.read_text().startswith("whsec_")
    assert len(load_webhook_secret(path)) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = CliRunner().invoke(app, ["secret", "webhook", str(path)])
    assert again.exit_code == 1
    assert "exists" in again.output


def test_serve_refuses_a_secret_file_others_can_read(hierarchy_file: Path) -> None:
    """Finding: `secret_file` was accepted whatever its mode (even /etc/passwd)."""
    secret = load_hierarchy(hierarchy_file).secret_path
    assert CliRunner().invoke(app, ["secret", "new", str(secret)]).exit_code == 0
    secret.chmod(0o644)
    result = CliRunner().invoke(app, ["serve", str(hierarchy_file), "--role", "site:CS1"])
    assert result.exit_code == 1, result.output
    said = _squeezed(result.output)
    assert _squeezed(f"{secret} has mode 0644") in said
    assert _squeezed(f"chmod 600 {secret}") in said
    assert "Traceback" not in result.output


def test_serve_names_the_unknown_key_and_its_line(tmp_path: Path) -> None:
    file = tmp_path / "hierarchy.toml"
    file.write_text('[hierarchy]\nname = "X"\ndata_dri = "data"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", str(file), "--role", "site:CS1"])
    assert result.exit_code == 1
    said = _squeezed(result.output)
    assert said.startswith(_squeezed(f"error: {file}: "))
    assert _squeezed("problems in the hierarchy file") in said
    assert _squeezed("line 3, hierarchy.data_dri: unknown key 'data_dri'") in said
    assert _squeezed("did you mean 'data_dir'?") in said
    assert "Traceback" not in result.output
    assert not (tmp_path / "data").exists()


def test_serve_reports_invalid_toml_with_its_line(tmp_path: Path) -> None:
    file = tmp_path / "hierarchy.toml"
    file.write_text("[hierarchy\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", str(file)])
    assert result.exit_code == 1
    said = _squeezed(result.output)
    assert _squeezed(f"error: {file}: 1 problem in the hierarchy file:") in said
    assert _squeezed("line 1: not valid TOML") in said
    assert "Traceback" not in result.output


def test_serve_reports_a_missing_hierarchy_file(tmp_path: Path) -> None:
    file = tmp_path / "missing.toml"
    result = CliRunner().invoke(app, ["serve", str(file)])
    assert result.exit_code == 1
    assert _squeezed("cannot read the file: No such file or directory") in _squeezed(result.output)


@pytest.mark.parametrize("processes", [False, True], ids=["in-process", "processes"])
def test_serve_an_unknown_site_lists_the_sites(hierarchy_file: Path, processes: bool) -> None:
    args = ["serve", str(hierarchy_file), "--role", "site:XX9"]
    result = CliRunner().invoke(app, [*args, "--processes"] if processes else args)
    assert result.exit_code == 1
    assert _squeezed(result.output) == _squeezed(
        "error: role 'site:XX9': no site 'XX9' in hierarchy 'Contoso' (sites: CS1, PS1, PS2, SS1)"
    )
    assert not (hierarchy_file.parent / "data").exists()


def test_serve_an_unknown_sup_lists_the_sups(hierarchy_file: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(hierarchy_file), "--role", "sup:nope.example"])
    assert result.exit_code == 1
    said = _squeezed(result.output)
    assert _squeezed("no software update point 'nope.example' in hierarchy 'Contoso'") in said
    assert _squeezed("SUPs: cs1site.contoso.com, ps1site.contoso.com, ps1sys.contoso.com") in said


def test_serve_a_malformed_role_shows_the_forms(hierarchy_file: Path) -> None:
    result = CliRunner().invoke(app, ["serve", str(hierarchy_file), "--role", "bogus"])
    assert result.exit_code == 1
    said = _squeezed(result.output)
    assert said.startswith(_squeezed("error: role 'bogus' is not one of: all, site:<CODE>"))
    assert "Traceback" not in result.output


TWO_SITES = """
[hierarchy]
name = "Two"
data_dir = "data"

[hierarchy.upstream]
kind = "none"

[[sites]]
code = "CS1"
fqdn = "cs1site.contoso.com"
type = "cas"
address = "127.0.0.1"
port = {cs1}

[[sites.sups]]
fqdn = "cs1site.contoso.com"
address = "127.0.0.1"
port = {sup1}

[[sites]]
code = "PS1"
fqdn = "ps1site.contoso.com"
type = "primary"
parent = "CS1"
address = "{ps1_address}"
port = {ps1}

[[sites.sups]]
fqdn = "ps1site.contoso.com"
address = "127.0.0.1"
port = {sup2}
"""


def _two_sites(tmp_path: Path, **given: object) -> Path:
    ports = iter(free_port() for _ in range(4))
    values = {"cs1": next(ports), "sup1": next(ports), "ps1": next(ports), "sup2": next(ports)}
    values |= {"ps1_address": "127.0.0.1", **given}
    file = tmp_path / "hierarchy.toml"
    file.write_text(TWO_SITES.format(**values), encoding="utf-8")
    return file


@pytest.mark.parametrize("processes", [False, True], ids=["in-process", "processes"])
def test_serve_all_refuses_a_file_with_roles_here_and_elsewhere(
    tmp_path: Path, processes: bool
) -> None:
    """Half a hierarchy on this host and half on its own hosts is not a hierarchy: `--role
    all` names the role that is elsewhere and what to run instead, and starts nothing."""
    file = _two_sites(tmp_path, ps1_address="192.0.2.10")  # TEST-NET-1: nobody's address
    args = ["serve", str(file), "--role", "all", "--console-port", "0"]
    result = CliRunner().invoke(app, [*args, "--processes"] if processes else args)
    assert result.exit_code == 1, result.output
    said = _squeezed(result.output)
    assert said.startswith(_squeezed(f"error: {file}: --role all runs every role of the file"))
    assert _squeezed("site:PS1 is elsewhere (192.0.2.10 is not an address of this host)") in said
    assert _squeezed(f"updatesync serve --hierarchy {file} --role sup:cs1site.contoso.com") in said
    assert "sup:ps1site" not in said, "its SUP is at 127.0.0.1: here"
    assert not (tmp_path / "data" / "loopback").exists()
    assert "Traceback" not in result.output


def test_serve_all_names_two_roles_of_the_file_at_one_port(tmp_path: Path) -> None:
    port = free_port()
    file = _two_sites(tmp_path, cs1=port, ps1=port)
    result = CliRunner().invoke(app, ["serve", str(file), "--role", "all"])
    assert result.exit_code == 1, result.output
    assert _squeezed(result.output) == _squeezed(
        f"error: site:PS1: 127.0.0.1:{port} is also where site:CS1 listens in {file}; give "
        "every site and SUP of this host a `port` of its own (site PS1)"
    )


def test_serve_all_says_which_role_cannot_listen_at_its_port(tmp_path: Path) -> None:
    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        file = _two_sites(tmp_path, ps1=port)
        result = CliRunner().invoke(app, ["serve", str(file), "--role", "all"])
    finally:
        taken.close()
    assert result.exit_code == 1, result.output
    assert _squeezed(result.output) == _squeezed(
        f"error: site:PS1: cannot listen on 127.0.0.1:{port} (Address already in use); stop "
        f"what uses it, or give site PS1 another `port` in {file}"
    )


def test_sync_now_points_at_the_loopback_copy_when_the_provider_does_not_answer(
    tmp_path: Path,
) -> None:
    """`serve FILE --role all` on a file for many hosts runs it from a copy; `sync-now
    --hierarchy FILE` then finds nobody at the file's address, and says where to look."""
    file = _two_sites(tmp_path)  # CS1 at a free port of 127.0.0.1: nobody answers there
    copy = tmp_path / "data" / "loopback" / "hierarchy.toml"
    copy.parent.mkdir(parents=True)
    copy.write_text(file.read_text(encoding="utf-8"), encoding="utf-8")
    token = tmp_path / "admin.token"
    token.write_text("x" * 40, encoding="utf-8")
    token.chmod(0o600)
    args = ["sync-now", "--site", "CS1", "--hierarchy", str(file), "--token-file", str(token)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    said = _squeezed(result.output)
    assert _squeezed("did not answer") in said
    assert _squeezed(f"runs it from {copy}: give --hierarchy {copy}") in said
    copy.unlink()
    result = CliRunner().invoke(app, args)
    assert "--hierarchy" not in result.output, "no copy, no hint"
