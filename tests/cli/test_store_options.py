"""Where the `updatesync updateserver` commands find their store (`cli.store_options`): the
store on PostgreSQL or on an SQLite file by URL, `--data` needed only where the server keeps
files of its own, and every problem of the URL or the server one line saying what to do."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from databases import Database, postgresql_database
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result
from upstream import stand_in_upstream

from updatesync.cli import app
from updatesync.metadata.export import read_export
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.supervisor import updatesync_command
from updatesync.updateserver.database import DATABASE_FILE

UPDATES = 5
CLEAN = {"UPDATESYNC_DATABASE": None, "UPDATESYNC_DATABASE_PASSWORD": None}
COMMANDS = {
    "import": ["import", "catalog.cab"],
    "export": ["export", "out.cab"],
    "status": ["status"],
    "changes": ["changes", "--since", "0"],
    "sync": ["sync"],
    "serve": ["serve"],
    "categories": ["categories"],
    "subscription": ["subscription"],
}


def _invoke(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, ["updateserver", *args], env={**CLEAN, **(env or {})})


def _one_error_line(result: Result) -> str:
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    out = tmp_path / "catalog.cab"
    result = CliRunner().invoke(
        app, ["catalog", "generate", "--updates", str(UPDATES), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_refuses_a_url_with_a_password(command: str, tmp_path: Path) -> None:
    url = "postgresql://wsus:s3cret@db.contoso.com/wsus"
    result = _invoke([*COMMANDS[command], "--data", str(tmp_path / "d"), "--database", url])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert line.startswith("error: --database: database URL 'postgresql://wsus:***@db.contoso")
    assert "set the environment variable UPDATESYNC_DATABASE_PASSWORD " in line
    assert "s3cret" not in result.output
    assert not (tmp_path / "d").exists()  # refused before anything was made


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_refuses_a_password_in_the_query_string(command: str, tmp_path: Path) -> None:
    url = f"postgresql+psycopg://wsus@/wsus?host={tmp_path}&password=s3cret"
    result = _invoke([*COMMANDS[command], "--data", str(tmp_path / "d"), "--database", url])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert line.startswith("error: --database: database URL 'postgresql+psycopg://wsus@/wsus?")
    assert "password=***" in line
    assert "holds a password in its query string (password=)" in line
    assert "set the environment variable UPDATESYNC_DATABASE_PASSWORD " in line
    assert "s3cret" not in result.output
    assert not (tmp_path / "d").exists()  # refused before anything was made


def test_a_password_in_the_query_string_of_the_variable_names_the_variable() -> None:
    url = "postgresql://wsus@db.contoso.com/wsus?sslmode=require&PASSWORD=s3cret"
    result = _invoke(["status"], {"UPDATESYNC_DATABASE": url})
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert line.startswith("error: UPDATESYNC_DATABASE: database URL ")
    assert "PASSWORD=***" in line
    assert "set the environment variable UPDATESYNC_DATABASE_PASSWORD " in line
    assert "s3cret" not in result.output


def test_a_bad_url_in_the_environment_names_the_variable(tmp_path: Path) -> None:
    result = _invoke(["status"], {"UPDATESYNC_DATABASE": "mysql://wsus@db/wsus"})
    assert result.exit_code == 2
    assert _one_error_line(result).startswith(
        "error: UPDATESYNC_DATABASE: database URL 'mysql://wsus@db/wsus': updatesync works with "
        "SQLite (sqlite:///PATH) and PostgreSQL"
    )


@pytest.mark.parametrize("command", ["import", "export", "status", "changes", "categories"])
def test_without_data_or_database_a_command_says_to_give_one(command: str) -> None:
    result = _invoke(COMMANDS[command])
    assert result.exit_code == 2
    assert _one_error_line(result) == (
        "error: give the update server's data folder (--data DIR) or its database "
        "(--database URL, or UPDATESYNC_DATABASE)"
    )


@pytest.mark.parametrize(
    ("command", "kept"),
    [("sync", "its sync lock"), ("serve", "its cookie key, admin token and sync lock")],
)
def test_sync_and_serve_need_the_data_folder_even_with_a_database(
    command: str, kept: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    result = _invoke([*COMMANDS[command], "--database", url])
    assert result.exit_code == 2
    line = _one_error_line(result)
    assert line.startswith(
        f"error: updateserver {command} needs the update server's data folder (--data DIR): {kept}"
    )
    assert not (tmp_path / "store.sqlite").exists()


def test_every_reading_command_works_on_the_database_alone(
    database: Database, catalog: Path, tmp_path: Path
) -> None:
    where = ["--database", database.url]
    imported = _invoke(["import", str(catalog), *where])
    assert imported.exit_code == 0, imported.output
    status = _invoke(["status", "--json", *where])
    assert status.exit_code == 0, status.output
    revisions = json.loads(status.stdout)["revisions"]
    assert revisions > UPDATES  # the updates and their categories

    changes = _invoke(["changes", "--since", "0", "--json", *where])
    assert json.loads(changes.stdout)["count"] == revisions
    categories = json.loads(_invoke(["categories", "--json", *where]).stdout)
    assert categories
    product = next(c["id"] for c in categories if c["type"] == "Product")
    chosen = _invoke(["subscription", "--product", product, "--json", *where])
    assert json.loads(chosen.stdout)["products"] == [product]
    kept = _invoke(["subscription", "--json"], {"UPDATESYNC_DATABASE": database.url})
    assert json.loads(kept.stdout)["products"] == [product]
    out = tmp_path / "out.cab"
    assert _invoke(["export", str(out), *where]).exit_code == 0
    with read_export(out) as export:
        assert export.count == revisions

    assert not list(tmp_path.glob(f"**/{DATABASE_FILE}"))  # no store beside the database


def test_sync_keeps_its_lock_in_data_and_its_revisions_on_the_database(
    database: Database, tmp_path: Path
) -> None:
    records = list(generate_catalog(UPDATES, 3))
    with stand_in_upstream(tmp_path, records) as (_, upstream):
        data = tmp_path / "sup"
        where = ["--data", str(data), "--database", database.url]
        synced = _invoke(["sync", "--upstream", upstream.url, *where])
        assert synced.exit_code == 0, synced.output
    assert "synced from" in synced.stdout
    status = _invoke(["status", "--json", "--database", database.url])
    assert json.loads(status.stdout)["revisions"] == len(records)
    assert data.is_dir() and not (data / DATABASE_FILE).exists()


def test_an_unreachable_server_is_one_line_with_the_password_hidden(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://wsus@/wsus?host={tmp_path}/no-server&port=5432"
    result = _invoke(["status", "--database", url], {"UPDATESYNC_DATABASE_PASSWORD": "s3cret"})
    assert result.exit_code == 1
    line = _one_error_line(result)
    # The password from the variable went into the URL, and is hidden when it is shown.
    assert line.startswith("error: postgresql+psycopg://wsus:***@/wsus?host=")
    assert "cannot reach the PostgreSQL server of the update server store" in line
    assert line.endswith(
        "check that it runs and listens at that host and port, and that no firewall stands between"
    )
    assert "s3cret" not in result.output


def test_a_database_the_server_lacks_is_one_line_saying_to_create_it() -> None:
    with postgresql_database() as db:
        url = make_url(db.url).set(database=f"{make_url(db.url).database}_missing")
        result = _invoke(["status", "--database", url.render_as_string(hide_password=False)])
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert f'database "{url.database}" does not exist on that PostgreSQL server' in line
    assert line.endswith(
        "create it (as a superuser: createdb --owner USER NAME) or correct the URL"
    )


def test_serve_answers_from_the_database_and_keeps_its_token_in_data(
    database: Database, catalog: Path, tmp_path: Path
) -> None:
    assert _invoke(["import", str(catalog), "--database", database.url]).exit_code == 0
    data = tmp_path / "sup"
    env = {k: v for k, v in os.environ.items() if k not in CLEAN}
    serve = ["serve", "--data", str(data), "--database", database.url, "--port", "0"]
    process = subprocess.Popen(
        [*updatesync_command(), "updateserver", *serve],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "COLUMNS": "300"},
    )
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "admin API's token" in line:
                break
        found = re.search(r"listening on (http://\S+):", "".join(lines))
        assert found, "".join(lines)
        token = (data / "admin.token").read_text(encoding="utf-8").strip()
        status = httpx.get(
            f"{found.group(1)}/api/status", headers={"authorization": f"Bearer {token}"}
        )
    finally:
        process.terminate()
        process.wait(30)
    assert status.status_code == 200
    shown = _invoke(["status", "--json", "--database", database.url])
    assert status.json()["revisions"] == json.loads(shown.stdout)["revisions"] > UPDATES
    assert not (data / DATABASE_FILE).exists()


def test_a_user_without_rights_on_the_database_is_told_to_make_it_the_owner() -> None:
    with postgresql_database("rights") as db:
        server = make_url(db.url)
        role = f"nobody_{server.database[-12:]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f"CREATE ROLE {role} LOGIN"))
                conn.execute(text(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}"))
            url = server.set(username=role).render_as_string(hide_password=False)
            # a command that makes the store (a reading one says there is none: see
            # tests/cli/test_scriptable.py)
            result = _invoke(["import", "never-read.cab", "--database", url])
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP OWNED BY {role}"))
                conn.execute(text(f"DROP ROLE IF EXISTS {role}"))
            admin.dispose()
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert f"error: postgresql+psycopg://{role}@/" in line
    assert "the database user may not do what the update server store needs (permission " in line
    assert line.endswith("make it the database's owner (ALTER DATABASE NAME OWNER TO USER)")
