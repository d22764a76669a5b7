"""`updatesync service unit` and the systemd unit template shipped in the package: the file
is package data, its ExecStart runs a real role of a hierarchy file for a site instance and
a SUP instance (and stops cleanly on SIGTERM, as systemd stops it), and `systemd-analyze
verify` finds nothing to say about it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import pytest
from typer.testing import CliRunner

from updatesync.cli import app, service
from updatesync.cli.service import TEMPLATE_COMMAND, UNIT_NAME, unit_template
from updatesync.roles import free_port
from updatesync.roles.supervisor import updatesync_command

ROOT = Path(__file__).resolve().parents[2]
ONE_SITE = """
[hierarchy]
name = "One"
data_dir = "data"
secret_file = "hierarchy.secret"

[hierarchy.upstream]
kind = "none"

[[sites]]
code = "CS1"
fqdn = "cs1site.contoso.com"
type = "cas"
address = "127.0.0.1"
port = {site}

[[sites.sups]]
fqdn = "cs1site.contoso.com"
address = "127.0.0.1"
port = {sup}
"""


def _exec_start(unit: str) -> str:
    (line,) = re.findall(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    return line


@pytest.fixture
def hierarchy_file(tmp_path: Path) -> Path:
    file = tmp_path / "hierarchy.toml"
    file.write_text(ONE_SITE.format(site=free_port(), sup=free_port()), encoding="utf-8")
    assert (
        CliRunner().invoke(app, ["secret", "new", str(tmp_path / "hierarchy.secret")]).exit_code
        == 0
    )
    return file


def test_the_unit_template_is_package_data() -> None:
    shipped = resources.files("updatesync") / "deploy" / UNIT_NAME
    assert shipped.is_file()
    with (ROOT / "pyproject.toml").open("rb") as stream:
        patterns = tomllib.load(stream)["tool"]["setuptools"]["package-data"]["updatesync"]
    assert any(fnmatch(f"deploy/{UNIT_NAME}", pattern) for pattern in patterns), patterns
    unit = unit_template()
    assert _exec_start(unit) == (
        f"{TEMPLATE_COMMAND} serve --hierarchy /etc/updatesync/hierarchy.toml --role %i"
    )
    for hardening in (
        "User=updatesync",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/updatesync",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "EnvironmentFile=-/etc/updatesync/database.env",
        "Environment=TMPDIR=/var/cache/updatesync",
    ):
        assert f"\n{hardening}\n" in unit, hardening


def test_service_unit_names_this_installation_and_the_hierarchy(hierarchy_file: Path) -> None:
    result = subprocess.run(
        [*updatesync_command(), "service", "unit", "--hierarchy", str(hierarchy_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    command = shlex.split(_exec_start(result.stdout))
    assert Path(command[0]).is_file() and os.access(command[0], os.X_OK), command
    assert Path(command[0]).parent == Path(sys.executable).absolute().parent
    assert command[1:] == ["serve", "--hierarchy", str(hierarchy_file), "--role", "%i"]
    assert f"\nReadWritePaths={hierarchy_file.parent / 'data'}\n" in result.stdout
    assert result.stderr == ""


def test_service_unit_warns_of_a_hierarchy_file_the_service_cannot_see(
    hierarchy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file under /home (or /root) is hidden from the service by ProtectHome=yes."""
    monkeypatch.setattr(service, "HIDDEN_FROM_SERVICES", (hierarchy_file.parent,))
    result = CliRunner().invoke(app, ["service", "unit", "--hierarchy", str(hierarchy_file)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert f"warning: the hierarchy file ({hierarchy_file}) is under" in said
    assert "(ProtectHome=yes): install updatesync in a venv at /opt/updatesync" in said
    assert "[Service]" in result.stdout


def test_service_unit_refuses_a_hierarchy_file_it_cannot_read(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["service", "unit", "--hierarchy", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "cannot read the file: No such file or directory" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("instance", ["CS1", "cs1site.contoso.com"])
def test_exec_start_runs_the_role_of_its_instance(
    hierarchy_file: Path, tmp_path: Path, instance: str
) -> None:
    """What systemd runs for `updatesync@CS1` and `updatesync@cs1site.contoso.com`: the
    role answers, then ends with status 0 on SIGTERM."""
    unit = subprocess.run(
        [*updatesync_command(), "service", "unit", "--hierarchy", str(hierarchy_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    command = [part.replace("%i", instance) for part in shlex.split(_exec_start(unit))]
    output = tmp_path / f"{instance}.out"
    expected = "site:CS1" if instance == "CS1" else "sup:cs1site.contoso.com"
    with output.open("wb") as stream:
        process = subprocess.Popen(
            command,
            stdout=stream,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 120
        while f"role {expected} at http://127.0.0.1:" not in output.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, output.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in output.read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path, hierarchy_file: Path) -> None:
    unit = subprocess.run(
        [*updatesync_command(), "service", "unit", "--hierarchy", str(hierarchy_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    units = tmp_path / "units"
    units.mkdir()
    (units / UNIT_NAME).write_text(unit, encoding="utf-8")
    for instance in ("CS1", "ps1site.contoso.com", "console"):
        checked = subprocess.run(
            [
                "systemd-analyze",
                "verify",
                "--man=no",
                str(units / f"updatesync@{instance}.service"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        said = (checked.stdout + checked.stderr).strip()
        assert checked.returncode == 0 and said == "", said
