"""`updatesync pki init` and `pki issue`: the files they write, their modes, where they say
they wrote, and one error line instead of a traceback."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509
from typer.testing import CliRunner

from updatesync.cli import app


def said(output: str) -> str:
    return re.sub(r"\s+", " ", output).strip()


def test_init_then_issue_write_private_files_and_say_where(tmp_path: Path) -> None:
    folder = tmp_path / "pki"
    init = CliRunner().invoke(app, ["pki", "init", str(folder)])
    assert init.exit_code == 0, init.output
    assert f"created the hierarchy's CA in {folder}: {folder / 'ca.pem'}" in said(init.output)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "ca.key").stat().st_mode & 0o777 == 0o600

    args = ["pki", "issue", str(folder), "--host", "ss1site.contoso.com"]
    issue = CliRunner().invoke(app, [*args, "--ip", "127.0.0.1", "--ip", "10.0.0.5"])
    assert issue.exit_code == 0, issue.output
    cert, key = folder / "ss1site.contoso.com.pem", folder / "ss1site.contoso.com.key"
    text = said(issue.output)
    assert "issued a certificate for ss1site.contoso.com, 127.0.0.1, 10.0.0.5" in text
    assert f"{cert} and its key {key}" in text
    assert cert.stat().st_mode & 0o777 == key.stat().st_mode & 0o777 == 0o600
    names = (
        x509.load_pem_x509_certificate(cert.read_bytes())
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert names.get_values_for_type(x509.DNSName) == ["ss1site.contoso.com"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "10.0.0.5",
    ]

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1
    assert said(again.output) == f"error: {cert} exists; remove it first to issue a new certificate"


def test_issue_without_a_ca_is_one_line_naming_the_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["pki", "issue", str(tmp_path), "--host", "a.contoso.com"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert said(result.output) == (
        f"error: {tmp_path / 'ca.pem'} does not exist: {tmp_path} holds no CA; create one "
        f"with `updatesync pki init {tmp_path}`"
    )


def test_a_bad_ip_address_is_one_line(tmp_path: Path) -> None:
    CliRunner().invoke(app, ["pki", "init", str(tmp_path)])
    args = ["pki", "issue", str(tmp_path), "--host", "a.contoso.com", "--ip", "300.1.1.1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert said(result.output).startswith("error: '300.1.1.1' does not appear to be an IPv4")
    assert not (tmp_path / "a.contoso.com.key").exists()


def test_init_refuses_a_folder_holding_a_ca(tmp_path: Path) -> None:
    assert CliRunner().invoke(app, ["pki", "init", str(tmp_path)]).exit_code == 0
    result = CliRunner().invoke(app, ["pki", "init", str(tmp_path)])
    assert result.exit_code == 1
    assert said(result.output).startswith(f"error: {tmp_path / 'ca.pem'} exists")
