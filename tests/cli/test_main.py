"""Tests of the `updatesync` command line (`updatesync.cli.main`) through typer's CliRunner:
the commands `--help` lists, `catalog generate`, and `updateserver import / status / changes /
export` on a small generated catalog; errors end in one red line and exit status 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.metadata.export import read_export
from updatesync.metadata.model import RevisionKey

UPDATES = 5


def _keys(cabinet: Path) -> set[RevisionKey]:
    with read_export(cabinet) as export:
        return {RevisionKey(r.update_id, r.revision) for r in export.records()}


def _squeezed(text: str) -> str:
    """Without white space: the console wraps long lines anywhere, even inside a path."""
    return "".join(text.split())


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    out = tmp_path / "catalog.cab"
    result = CliRunner().invoke(
        app, ["catalog", "generate", "--updates", str(UPDATES), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def data(tmp_path: Path, catalog: Path) -> Path:
    folder = tmp_path / "sup"
    result = CliRunner().invoke(
        app, ["updateserver", "import", str(catalog), "--data", str(folder)]
    )
    assert result.exit_code == 0, result.output
    return folder


def _status(data: Path) -> dict[str, object]:
    result = CliRunner().invoke(app, ["updateserver", "status", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("catalog", "updateserver", "serve", "secret", "logs", "sync-now", "demo"):
        assert command in result.output


def test_no_arguments_shows_the_usage() -> None:
    result = CliRunner().invoke(app, [])
    assert "Usage" in result.output
    assert "updateserver" in result.output


def test_updateserver_help_lists_its_commands() -> None:
    result = CliRunner().invoke(app, ["updateserver", "--help"])
    assert result.exit_code == 0, result.output
    for command in ("import", "export", "status", "changes", "sync", "categories"):
        assert command in result.output


HEAVY = ("fastapi", "alembic", "updatesync.roles", "updatesync.console", "updatesync.site")
"""What a command that runs no role loads for nothing: the SMS Provider's web framework, the
migrations' machinery, the roles, the console, the site server."""


def _loaded_by(*args: str, heavy: tuple[str, ...] = HEAVY) -> set[str]:
    """The `heavy` modules `updatesync ARGS` loads, run as its own process."""
    probe = (
        "import sys\n"
        "from updatesync.cli import main\n"
        f"sys.argv = ['updatesync', *{list(args)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(*sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return set(done.stdout.splitlines()[-1].split()) if done.stdout.strip() else set()


def test_the_command_line_loads_only_what_the_command_runs(data: Path) -> None:
    """A delta sync is mostly the command's start-up: each command loads its own modules
    when it runs, so `updatesync --help` and the update server's commands load no role,
    console, SMS Provider or migrations (a store at the newest schema is checked with one
    query)."""
    assert _loaded_by("--help") == set()
    assert _loaded_by("updateserver", "sync", "--help") == set()
    assert _loaded_by("updateserver", "status", "--data", str(data)) == set()
    assert _loaded_by("serve", "--help") == set()


def test_a_sync_of_an_sqlite_store_loads_nothing_it_does_not_run(
    tmp_path: Path, data: Path
) -> None:
    """`updateserver sync` is a one-shot command, its start-up most of a delta: syncing an
    SQLite store at the newest schema loads no role, web framework, migrations or
    PostgreSQL dialect."""
    import shutil

    from updatesync.roles.serving import BackgroundServer
    from updatesync.updateserver.store import UpdateStore
    from updatesync.updateserver.store_backend import StoreBackend
    from updatesync.wsusss.service import create_app

    down = tmp_path / "down"
    shutil.copytree(data, down)
    heavy = (*HEAVY, "starlette", "sqlalchemy.dialects.postgresql", "psycopg")
    with UpdateStore.open(data) as store, BackgroundServer(create_app(StoreBackend(store))) as up:
        sync = ("updateserver", "sync", "--data", str(down), "--upstream", up.url)
        assert _loaded_by(*sync, heavy=heavy) == set()
    last = _status(down)["last_sync"]
    assert isinstance(last, dict) and (last["kind"], last["result"]) == ("sync", "Succeeded")


def test_a_sync_over_plain_http_loads_no_ca_bundle(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is verified over http://, yet httpx's default loaded its CA bundle (a tenth
    of a delta sync's time): an http upstream is synced without reading one."""
    import ssl

    from updatesync.roles.serving import BackgroundServer
    from updatesync.updateserver.store import UpdateStore
    from updatesync.updateserver.store_backend import StoreBackend
    from updatesync.wsusss.service import create_app

    def no_bundle(*_args: object, **_kwargs: object) -> ssl.SSLContext:
        raise AssertionError("a CA bundle was read for a plain HTTP upstream")

    with UpdateStore.open(data) as store, BackgroundServer(create_app(StoreBackend(store))) as up:
        monkeypatch.setattr(ssl, "create_default_context", no_bundle)
        result = CliRunner().invoke(
            app, ["updateserver", "sync", "--data", str(tmp_path / "down"), "--upstream", up.url]
        )
    assert result.exit_code == 0, result.output
    assert "synced from" in result.output


def test_catalog_generate_writes_the_cabinet_it_reports(catalog: Path) -> None:
    keys = _keys(catalog)
    # the same seed gives the same revisions, written again elsewhere
    again = catalog.with_name("again.cab")
    result = CliRunner().invoke(
        app, ["catalog", "generate", "--updates", str(UPDATES), "--out", str(again)]
    )
    assert result.exit_code == 0, result.output
    assert _squeezed(f"wrote {len(keys)} revisions to {again}") in _squeezed(result.stdout)
    assert _keys(again) == keys
    assert len(keys) > UPDATES  # the categories and detectoids come along


def test_catalog_generate_another_seed_gives_other_updates(catalog: Path) -> None:
    other = catalog.with_name("other.cab")
    result = CliRunner().invoke(
        app,
        ["catalog", "generate", "--updates", str(UPDATES), "--seed", "2", "--out", str(other)],
    )
    assert result.exit_code == 0, result.output
    assert _keys(other) != _keys(catalog)


def test_catalog_generate_refuses_a_negative_count(tmp_path: Path) -> None:
    out = tmp_path / "c.cab"
    result = CliRunner().invoke(app, ["catalog", "generate", "--updates", "-1", "--out", str(out)])
    assert result.exit_code == 2
    assert not out.exists()


def test_import_reports_what_it_stored(tmp_path: Path, catalog: Path) -> None:
    count = len(_keys(catalog))
    data = tmp_path / "sup"
    runner = CliRunner()
    first = runner.invoke(app, ["updateserver", "import", str(catalog), "--data", str(data)])
    assert first.exit_code == 0, first.output
    said = _squeezed(first.stdout)
    assert _squeezed(f"imported {catalog}: {count} records, {count} new, 0 already stored") in said
    assert _squeezed(f"change counter 0 -> {count}") in said
    # importing the same cabinet again stores nothing new
    again = runner.invoke(app, ["updateserver", "import", str(catalog), "--data", str(data)])
    assert again.exit_code == 0, again.output
    said = _squeezed(again.stdout)
    assert _squeezed(f"{count} records, 0 new, {count} already stored") in said
    assert _squeezed(f"change counter {count} -> {count}") in said


def test_status_json_counts_what_was_imported(data: Path, catalog: Path) -> None:
    count = len(_keys(catalog))
    status = _status(data)
    assert status["revisions"] == count
    assert status["last_change"] == count
    by_type = status["by_type"]
    assert isinstance(by_type, dict)
    assert sum(by_type.values()) == count
    assert status["categories"] == by_type["Category"]
    last = status["last_sync"]
    assert isinstance(last, dict)
    assert last["kind"] == "import"
    assert last["result"] == "Succeeded"
    assert last["source"] == str(catalog)


def test_status_as_a_table(data: Path, catalog: Path) -> None:
    result = CliRunner().invoke(app, ["updateserver", "status", "--data", str(data)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "update server" in out
    assert "revisions" in out and "change counter" in out
    assert str(len(_keys(catalog))) in out
    assert "last import" in out and "Succeeded at" in out


def test_changes_since_zero_lists_every_revision(data: Path, catalog: Path) -> None:
    keys = _keys(catalog)
    result = CliRunner().invoke(
        app, ["updateserver", "changes", "--data", str(data), "--since", "0", "--json"]
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert (answer["since"], answer["count"]) == (0, len(keys))
    listed = [RevisionKey(r["update_id"], r["revision"]) for r in answer["revisions"]]
    assert len(listed) == len(keys)
    assert set(listed) == keys


def test_changes_since_a_later_counter_lists_fewer(data: Path, catalog: Path) -> None:
    count = len(_keys(catalog))
    runner = CliRunner()
    some = runner.invoke(
        app, ["updateserver", "changes", "--data", str(data), "--since", str(count - 2)]
    )
    assert some.exit_code == 0, some.output
    lines = some.stdout.strip().splitlines()
    assert lines[-1] == f"2 revisions changed since {count - 2}"
    assert len(lines) == 3
    assert all(" rev " in line for line in lines[:2])
    none = runner.invoke(
        app, ["updateserver", "changes", "--data", str(data), "--since", str(count), "--json"]
    )
    assert none.exit_code == 0, none.output
    assert json.loads(none.stdout) == {"since": count, "count": 0, "revisions": []}


def test_changes_needs_since(data: Path) -> None:
    result = CliRunner().invoke(app, ["updateserver", "changes", "--data", str(data)])
    assert result.exit_code == 2


def test_export_writes_every_stored_revision(tmp_path: Path, data: Path, catalog: Path) -> None:
    out = tmp_path / "export.cab"
    result = CliRunner().invoke(app, ["updateserver", "export", str(out), "--data", str(data)])
    assert result.exit_code == 0, result.output
    keys = _keys(catalog)
    assert _squeezed(f"wrote {len(keys)} revisions to {out}") in _squeezed(result.stdout)
    assert _keys(out) == keys


def test_export_then_import_into_a_new_store(tmp_path: Path, data: Path, catalog: Path) -> None:
    out = tmp_path / "export.cab"
    runner = CliRunner()
    assert (
        runner.invoke(app, ["updateserver", "export", str(out), "--data", str(data)]).exit_code == 0
    )
    other = tmp_path / "other"
    result = runner.invoke(app, ["updateserver", "import", str(out), "--data", str(other)])
    assert result.exit_code == 0, result.output
    assert _status(other)["revisions"] == len(_keys(catalog))


def test_import_of_a_missing_cabinet_is_one_line_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.cab"
    result = CliRunner().invoke(
        app, ["updateserver", "import", str(missing), "--data", str(tmp_path / "sup")]
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    expected = f"error: {missing}: no such file; give the path of a WSUS export cabinet"
    assert _squeezed(expected) in _squeezed(result.output)


def test_import_of_a_file_that_is_not_a_cabinet_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.cab"
    bogus.write_bytes(b"this is not a cabinet at all\n" * 4)
    data = tmp_path / "sup"
    result = CliRunner().invoke(app, ["updateserver", "import", str(bogus), "--data", str(data)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "error:" in result.output
    assert "bogus.cab" in _squeezed(result.output)
    assert _status(data)["revisions"] == 0


def test_evolve_of_a_missing_cabinet_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.cab"
    out = tmp_path / "next.cab"
    result = CliRunner().invoke(app, ["catalog", "evolve", str(missing), "--out", str(out)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert _squeezed(f"error: {missing}: no such file; check the path") == _squeezed(result.output)
    assert not out.exists()
