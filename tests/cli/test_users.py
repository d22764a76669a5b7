"""`updatesync user` and `updatesync token` (`updatesync.cli.users`) without a provider to
reach: where the token comes from (--token-file, the environment, the top-level site's
admin.token), where the provider is, and the one-line errors when either is missing. The
commands against a running hierarchy are in tests/security/test_access.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.cli.users import TOKEN_ENV, TOKEN_FILE_ENV, resolve_token

HIERARCHY = """
[hierarchy]
name = "Test"
data_dir = "data"
upstream = {{ kind = "microsoft-update" }}

[[sites]]
code = "CS1"
fqdn = "cs1.example.com"
type = "cas"
address = "127.0.0.1"
port = {port}
"""


@pytest.fixture
def hierarchy(tmp_path: Path) -> Path:
    file = tmp_path / "hierarchy.toml"
    file.write_text(HIERARCHY.format(port=9))  # port 9 (discard): nothing answers there
    return file


def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TOKEN_FILE_ENV, raising=False)


def test_the_token_comes_from_the_option_then_the_environment_then_admin_token(
    tmp_path: Path, hierarchy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clean(monkeypatch)
    given, from_env = tmp_path / "given.token", tmp_path / "env.token"
    given.write_text("from-option\n")
    given.chmod(0o600)  # a token file is private, as every secret file
    from_env.write_text("from-env-file\n")
    from_env.chmod(0o600)  # a token file is private, as every secret file
    admin = tmp_path / "data" / "CS1" / "admin.token"

    assert resolve_token(None, hierarchy) is None
    admin.parent.mkdir(parents=True)
    admin.write_text("the-admin\n")
    admin.chmod(0o600)  # a token file is private, as every secret file
    assert resolve_token(None, hierarchy) == "the-admin"
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert resolve_token(None, hierarchy) == "from-env"
    monkeypatch.setenv(TOKEN_FILE_ENV, str(from_env))
    assert resolve_token(None, hierarchy) == "from-env-file"
    assert resolve_token(given, hierarchy) == "from-option"


def test_a_missing_token_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean(monkeypatch)
    missing = tmp_path / "[bold]no.token"
    result = CliRunner().invoke(
        app, ["token", "list", "--provider", "http://127.0.0.1:9", "--token-file", str(missing)]
    )

    assert result.exit_code == 1
    assert f"the token file {missing} does not exist" in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_the_provider_must_be_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean(monkeypatch)
    result = CliRunner().invoke(app, ["user", "list"])
    assert result.exit_code == 1
    assert "--hierarchy FILE or --provider URL" in result.stderr


def test_a_provider_that_does_not_answer_is_one_line(
    hierarchy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clean(monkeypatch)
    result = CliRunner().invoke(app, ["token", "revoke", "abc", "--hierarchy", str(hierarchy)])
    assert result.exit_code == 1
    assert "the SMS Provider at http://127.0.0.1:9 did not answer" in result.stderr


def test_the_admin_token_file_is_the_one_the_site_server_writes() -> None:
    from updatesync.cli import users
    from updatesync.site.api import auth

    assert users.ADMIN_TOKEN_FILE == auth.ADMIN_TOKEN_FILE
