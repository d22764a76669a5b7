"""Errors, never tracebacks: the `updatesync` command, run as a user runs it (a child process,
`python -m updatesync`), answers bad input with one line naming the thing and what to do,
and a non-zero exit status.

Findings of the hostile test (issue "Secure by default", item 10), each a test below:
- CLI text was read as Rich markup: a path with `[/x]` gave a `MarkupError` traceback,
  `[bold]` silently changed the file name shown, hierarchy-file hints lost their `[table]`
  names (`[[sites]]`, `[hierarchy.upstream]`);
- `--port 70000` (and -1) gave an `OverflowError` traceback;
- a truncated, random or unreadable `updateserver.sqlite`, and a damaged site database under
  `serve --role site:X`, gave SQLAlchemy tracebacks;
- found while trying the commands: a hierarchy file that is not UTF-8 (or any wrong file)
  under `demo`, a hierarchy name with `[/x]` in the demo, `secret new` and `serve --role`
  with brackets, `logs track` of a folder with brackets, a store damaged past its first
  pages, a store written by a newer updatesync, a data folder that is a file, and the
  temporary file named instead of the target when a cabinet cannot be written.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.serving import BackgroundServer
from updatesync.security.signing import create_secret
from updatesync.site.database.site_db import SiteDatabase
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore

STORE_FILE = "updateserver.sqlite"


def run(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`updatesync ARGS` in a child process, as a user runs it; an unexpected error's report
    goes to `cwd` (its TMPDIR)."""
    env = {**os.environ, "TMPDIR": str(cwd), "COLUMNS": "80", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "updatesync", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], *, status: int = 1) -> str:
    """The command failed with `status`, no traceback, and said why in one `error:` line on
    standard error; that line."""
    both = result.stdout + result.stderr
    assert "Traceback" not in both, both
    assert result.returncode == status, both
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- markup ----------------------------------------------------------------------------------


def test_a_path_with_a_closing_tag_is_named_as_written(tmp_path: Path) -> None:
    """Finding: a path with `[/x]` gave a `MarkupError` traceback."""
    line = assert_one_error_line(run("serve", "x[/x]/hierarchy.toml", cwd=tmp_path))
    assert line.startswith("error: x[/x]/hierarchy.toml: 1 problem in the hierarchy file")


def test_a_path_with_a_style_tag_is_named_as_written(tmp_path: Path) -> None:
    """Finding: `[bold]` in a file name was taken as a style and left out of the name shown."""
    line = assert_one_error_line(run("serve", "[bold]hierarchy.toml", cwd=tmp_path))
    assert line.startswith("error: [bold]hierarchy.toml: ")


def test_hierarchy_hints_keep_their_table_names(tmp_path: Path) -> None:
    """Finding: hints naming `[[sites]]` or `[hierarchy.upstream]` printed without them."""
    file = tmp_path / "hierarchy.toml"
    file.write_text('[hierarchy]\nname = "lab"\n', encoding="utf-8")
    result = run("serve", file, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "add one [[sites]] table per site" in result.stderr
    assert "add [hierarchy.upstream] with kind" in result.stderr


def test_secret_new_names_a_path_with_brackets(tmp_path: Path) -> None:
    """Found: `secret new 'x[/x]/s'` wrote the secret, then failed with a traceback when
    saying where."""
    result = run("secret", "new", "x[/x]/hierarchy.secret", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote a new shared secret to x[/x]/hierarchy.secret" in result.stdout


def test_serve_names_an_unknown_role_with_brackets(tmp_path: Path) -> None:
    """Found: `serve FILE --role 'sup:x[/x]'` gave a `MarkupError` traceback."""
    file = _one_site_file(tmp_path)
    line = assert_one_error_line(run("serve", file, "--role", "sup:x[/x]", cwd=tmp_path))
    assert "no software update point 'x[/x]'" in line


def test_logs_track_names_a_folder_with_brackets(tmp_path: Path) -> None:
    """Found: `logs track` of a folder with `[/x]` and no logs gave a `MarkupError`."""
    (tmp_path / "logs[/x]").mkdir(parents=True)
    line = assert_one_error_line(run("logs", "track", "logs[/x]", cwd=tmp_path))
    assert line.endswith("log under logs[/x]")


def test_the_demo_shows_a_hierarchy_name_with_brackets(tmp_path: Path) -> None:
    """Found: the demo failed with a `MarkupError` traceback on a hierarchy named
    `lab [/x] [bold]` (names and log lines are data, not markup)."""
    file = tmp_path / "hierarchy.toml"
    file.write_text(
        '[hierarchy]\nname = "lab [/x] [bold]"\n[hierarchy.upstream]\nkind = "microsoft-update"\n'
        '[[sites]]\ncode = "CS1"\nfqdn = "cs1.example"\ntype = "cas"\n'
        '[[sites.sups]]\nfqdn = "cs1.example"\n',
        encoding="utf-8",
    )
    result = run(
        "demo",
        "--once",
        "--updates",
        "20",
        "--data",
        tmp_path / "demo",
        "--hierarchy",
        file,
        "--port",
        "0",
        "--console-port",
        "0",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hierarchy 'lab [/x] [bold]'" in " ".join(result.stdout.split())


# -- ports -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option", "said"),
    [
        (["updateserver", "serve", "--data", "store", "--port", "70000"], "--port", "70000"),
        (["updateserver", "serve", "--data", "store", "--port", "-1"], "--port", "-1"),
        (["serve", "hierarchy.toml", "--console-port", "70000"], "--console-port", "70000"),
        (["demo", "--port", "70000"], "--port", "70000"),
        (["demo", "--console-port", "99999"], "--console-port", "99999"),
    ],
)
def test_a_port_out_of_range_is_a_usage_error(
    tmp_path: Path, args: list[str], option: str, said: str
) -> None:
    """Finding: `--port 70000` gave an `OverflowError` traceback when binding."""
    _one_site_file(tmp_path)
    result = run(*args, cwd=tmp_path)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 2, result.stderr
    text = " ".join(result.stderr.replace("│", " ").split())
    assert f"Invalid value for '{option}': {said} is not a port: give one from 0 to 65535" in text


def test_a_port_that_is_not_a_number_is_a_usage_error(tmp_path: Path) -> None:
    """`--port abc`: typer's usage error naming the option (exit status 2)."""
    result = run("updateserver", "serve", "--data", "store", "--port", "abc", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Invalid value for '--port'" in result.stderr


# -- the update server's store -----------------------------------------------------------


def _real_store(data: Path, updates: int = 0) -> Path:
    """A real store at `data` (with `updates` generated updates imported); its file."""
    with UpdateStore.open(data) as store:
        if updates:
            cabinet = data.parent / "catalog.cab"
            write_export(cabinet, generate_catalog(updates, 3))
            import_export_cabinet(store, cabinet)
    for leftover in data.glob(f"{STORE_FILE}-*"):
        leftover.unlink()  # the write-ahead log, checkpointed on close
    return data / STORE_FILE


def _truncated(data: Path) -> str:
    file = _real_store(data)
    file.write_bytes(file.read_bytes()[:100])
    return "not a valid update server store"


def _random(data: Path) -> str:
    data.mkdir()
    (data / STORE_FILE).write_bytes(os.urandom(8192))
    return "not a valid update server store"


def _folder_in_its_place(data: Path) -> str:
    (data / STORE_FILE).mkdir(parents=True)
    return "cannot open the update server store"


def _command(name: str, tmp_path: Path, data: Path) -> list[str | Path]:
    match name:
        case "status":
            return ["updateserver", "status", "--data", data]
        case "sync":
            return ["updateserver", "sync", "--data", data, "--upstream", "http://127.0.0.1:9"]
        case "serve":
            return ["updateserver", "serve", "--data", data, "--port", "0"]
        case _:
            cabinet = tmp_path / "tiny.cab"
            write_export(cabinet, generate_catalog(1, 1))
            return ["updateserver", "import", cabinet, "--data", data]


@pytest.mark.parametrize("damage", [_truncated, _random, _folder_in_its_place])
@pytest.mark.parametrize("command", ["status", "sync", "serve", "import"])
def test_a_damaged_store_is_named_with_what_to_do(tmp_path: Path, damage, command: str) -> None:
    """Finding: a truncated (the first 100 bytes of a real store) or random
    `updateserver.sqlite`, or a folder in its place, gave a SQLAlchemy traceback on
    `updateserver status`, `sync`, `serve` and `import`."""
    data = tmp_path / "store"
    said = damage(data)
    line = assert_one_error_line(run(*_command(command, tmp_path, data), cwd=tmp_path))
    assert line.startswith(f"error: {(data / STORE_FILE).resolve()}: {said}"), line
    if said.startswith("not a valid"):
        assert "restore it from a backup, or move it aside and run `updatesync updateserver" in (
            line
        )
    else:
        assert "check the path and its permissions" in line


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root reads a file of mode 000: the folder-in-its-place case covers unreadable",
)
def test_an_unreadable_store_is_named_with_what_to_do(tmp_path: Path) -> None:
    """Finding: a store this user cannot read (mode 000) gave a traceback."""
    file = _real_store(tmp_path / "store")
    file.chmod(0)
    line = assert_one_error_line(run("updateserver", "status", "--data", file.parent, cwd=tmp_path))
    assert str(file.resolve()) in line and "check the path and its permissions" in line


def test_a_store_damaged_past_its_first_pages_is_named(tmp_path: Path) -> None:
    """Found: a store that opens but whose later pages are damaged failed with a traceback
    at the first query (`status`)."""
    file = _real_store(tmp_path / "store", updates=150)
    size = file.stat().st_size
    with file.open("r+b") as handle:
        handle.seek(size // 2)
        handle.write(os.urandom(size - size // 2))
    line = assert_one_error_line(run("updateserver", "status", "--data", file.parent, cwd=tmp_path))
    assert line.startswith(f"error: {file.resolve()}: not a valid update server store"), line
    assert "malformed" in line and "move it aside" in line


def test_a_store_of_a_newer_updatesync_is_named(tmp_path: Path) -> None:
    """Found: a store whose schema revision this updatesync does not know gave alembic's
    traceback."""
    file = _real_store(tmp_path / "store")
    with sqlite3.connect(file) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    conn.close()
    line = assert_one_error_line(run("updateserver", "status", "--data", file.parent, cwd=tmp_path))
    assert line.startswith(f"error: {file.resolve()}: this update server store was written by")
    assert "a newer updatesync" in line


def test_a_data_folder_that_is_a_file_is_named(tmp_path: Path) -> None:
    """Found: `--data FILE` said only `[Errno 17] File exists: 'FILE'`."""
    (tmp_path / "notes.txt").write_text("not a folder", encoding="utf-8")
    line = assert_one_error_line(run("updateserver", "status", "--data", "notes.txt", cwd=tmp_path))
    assert line == "error: notes.txt: is a file, not a folder; give the update server's data folder"


# -- the site database under `serve --role site:X` ------------------------------------------


def _one_site_file(tmp_path: Path) -> Path:
    """A one-site hierarchy on loopback ports, with its secret."""
    file = tmp_path / "hierarchy.toml"
    file.write_text(
        '[hierarchy]\nname = "one"\ndata_dir = "data"\n[hierarchy.upstream]\nkind = "none"\n'
        f'[[sites]]\ncode = "CS1"\nfqdn = "cs1.example"\ntype = "cas"\naddress = "127.0.0.1"\n'
        f"port = {free_port()}\n"
        f'[[sites.sups]]\nfqdn = "cs1.example"\naddress = "127.0.0.1"\nport = {free_port()}\n',
        encoding="utf-8",
    )
    create_secret(tmp_path / "data" / "hierarchy.secret")
    return file


@pytest.mark.parametrize("processes", [False, True], ids=["in-process", "processes"])
def test_a_damaged_site_database_stops_the_site_role_in_one_line(
    tmp_path: Path, processes: bool
) -> None:
    """Finding: `serve --role site:CS1` on a damaged `site.sqlite` gave a traceback (with
    `--processes`, as the end of the child's output)."""
    file = _one_site_file(tmp_path)
    with SiteDatabase.open(tmp_path / "data" / "CS1", site_code="CS1"):
        pass
    database = tmp_path / "data" / "CS1" / "site.sqlite"
    database.write_bytes(database.read_bytes()[:100])
    for leftover in database.parent.glob("site.sqlite-*"):
        leftover.unlink()
    args = ["serve", file, "--role", "site:CS1", *(["--processes"] if processes else [])]
    result = run(*args, cwd=tmp_path)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode == 1
    said = f"error: site:CS1: {database.resolve()}: not a valid site database: the file is damaged"
    lines = [line for line in result.stderr.splitlines() if line.startswith(said)]
    assert len(lines) == 1, result.stderr
    assert "restore it from a backup, or move it aside and start the site again" in lines[0]


# -- other wrong input -----------------------------------------------------------------------


def test_the_demo_names_a_hierarchy_file_that_is_not_utf8(tmp_path: Path) -> None:
    """Found: `demo --hierarchy FILE` with a file that is not UTF-8 (or any wrong file) gave
    the hierarchy error as a traceback, after generating the demo's catalogs."""
    file = tmp_path / "latin1.toml"
    file.write_bytes(b'\xff\xfe[hierarchy]\nname = "caf\xe9"\n')
    result = run("demo", "--once", "--data", tmp_path / "demo", "--hierarchy", file, cwd=tmp_path)
    line = assert_one_error_line(result)
    assert line.startswith(f"error: {file}: 1 problem in the hierarchy file")
    assert "'utf-8' codec can't decode" in result.stderr
    assert not (tmp_path / "demo" / "catalog-month1.cab").exists()


@pytest.mark.parametrize("given", ["missing.toml", "folder.toml"])
def test_serve_names_a_hierarchy_file_it_cannot_read(tmp_path: Path, given: str) -> None:
    """A missing hierarchy file, or a folder given as one: one error naming it."""
    (tmp_path / "folder.toml").mkdir()
    result = run("serve", given, cwd=tmp_path)
    line = assert_one_error_line(result)
    assert line.startswith(f"error: {given}: 1 problem in the hierarchy file")
    assert "check the path and its permissions" in result.stderr


def test_sync_now_names_an_unknown_site_without_quotes(tmp_path: Path) -> None:
    """Found: `sync-now --hierarchy FILE --site XX` printed the message as a quoted repr."""
    file = _one_site_file(tmp_path)
    line = assert_one_error_line(run("sync-now", "--site", "XX", "--hierarchy", file, cwd=tmp_path))
    assert line == "error: no site 'XX' in hierarchy 'one' (sites: CS1)"


def test_a_cabinet_that_cannot_be_written_is_named_not_its_temporary_file(
    tmp_path: Path,
) -> None:
    """Found: `catalog generate --out FOLDER` named a hidden `.part` file, `[Errno 21]`."""
    (tmp_path / "out.cab").mkdir()
    result = run("catalog", "generate", "--updates", "2", "--out", "out.cab", cwd=tmp_path)
    line = assert_one_error_line(result)
    assert line == "error: out.cab: Is a directory"


def test_a_cabinet_in_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    """Found: `catalog generate --out nofolder/x.cab` named a temporary folder, `[Errno 2]`."""
    result = run("catalog", "generate", "--updates", "2", "--out", "nofolder/x.cab", cwd=tmp_path)
    line = assert_one_error_line(result)
    assert line == "error: nofolder: no such folder; create it first"


def test_a_file_name_with_a_style_tag_is_shown_as_written(tmp_path: Path) -> None:
    """Found: `catalog generate --out '[bold]c.cab'` said it wrote `c.cab` (the progress bar
    and the result line read the name as markup)."""
    result = run("catalog", "generate", "--updates", "2", "--out", "[bold]c.cab", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "generating [bold]c.cab" in result.stderr
    assert result.stdout.strip().endswith("revisions to [bold]c.cab")
    assert (tmp_path / "[bold]c.cab").is_file()


async def _not_json(request: Request) -> Response:
    status = int(request.path_params["status"])
    return Response("<html>\n<b>proxy</b> error\n</html>", status, media_type="application/json")


@pytest.fixture(scope="module")
def odd_provider() -> Iterator[str]:
    """A provider that answers `POST /<status>/api/sites/CS1/sync` with `status` and a body
    that is not JSON, whatever its Content-Type says."""
    app = Starlette(
        routes=[Route("/{status:int}/api/sites/{site}/sync", _not_json, methods=["POST"])]
    )
    with BackgroundServer(app) as server:
        yield server.url


@pytest.mark.parametrize("status", [202, 502])
def test_sync_now_names_an_answer_that_is_not_json(
    tmp_path: Path, odd_provider: str, status: int
) -> None:
    """Found: `sync-now` against a provider (or a proxy before it) whose answer is not JSON
    failed with a `JSONDecodeError` traceback."""
    provider = f"{odd_provider}/{status}"
    result = run("sync-now", "--site", "CS1", "--provider", provider, cwd=tmp_path)
    line = assert_one_error_line(result)
    assert line == (
        f"error: {provider}/api/sites/CS1/sync: HTTP {status}: <html> <b>proxy</b> error </html>"
    )


def test_a_data_folder_that_is_a_file_stops_serve_and_the_demo(tmp_path: Path) -> None:
    """Found: a hierarchy's data folder (or the demo's `--data`) that is a file said only
    `[Errno 17] File exists: '...'`."""
    file = _one_site_file(tmp_path)
    for leftover in sorted((tmp_path / "data").rglob("*"), reverse=True):
        leftover.unlink() if leftover.is_file() else leftover.rmdir()
    (tmp_path / "data").rmdir()
    (tmp_path / "data").write_text("a file", encoding="utf-8")
    line = assert_one_error_line(run("serve", file, "--role", "all", cwd=tmp_path))
    assert line == f"error: {tmp_path / 'data'}: is a file, where a folder is needed"
    line = assert_one_error_line(run("demo", "--once", "--data", "data", cwd=tmp_path))
    assert line == f"error: {tmp_path / 'data'}: is a file, where a folder is needed"


def test_titles_from_the_catalog_are_shown_as_written(tmp_path: Path) -> None:
    """Found: a category title holding `[/x]` (titles come from the upstream's catalog)
    failed `updateserver categories` and `subscription` with a `MarkupError` traceback."""
    file = _real_store(tmp_path / "store", updates=5)
    with sqlite3.connect(file) as conn:
        (product,) = conn.execute(
            "SELECT update_id FROM update_item WHERE category_type = 'Product' LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE revision SET title = 'Lab [/x] [bold]OS' WHERE update_id = ?", [product]
        )
    conn.close()
    listed = run("updateserver", "categories", "--data", file.parent, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "Lab [/x] [bold]OS" in listed.stdout
    chosen = run(
        "updateserver", "subscription", "--data", file.parent, "--product", product, cwd=tmp_path
    )
    assert chosen.returncode == 0, chosen.stderr
    assert f"products: Lab [/x] [bold]OS ({product})" in chosen.stdout


def test_an_address_that_cannot_be_parsed_is_named(tmp_path: Path) -> None:
    """Found: `sync-now --provider 'http://[::1'` and `updateserver sync --upstream
    'http://[::1'` ended in httpx's `InvalidURL` (a traceback, now the last resort's line)."""
    line = assert_one_error_line(
        run("sync-now", "--site", "CS1", "--provider", "http://[::1", cwd=tmp_path)
    )
    assert line.startswith("error: the provider address 'http://[::1' is not valid (")
    line = assert_one_error_line(
        run("updateserver", "sync", "--data", "store", "--upstream", "http://[::1", cwd=tmp_path),
        status=2,  # a wrong command line: nothing ran
    )
    assert "upstream URL 'http://[::1' is not a valid address" in line
    assert not (tmp_path / "store").exists()


def test_a_site_database_that_cannot_be_opened_stops_the_site_role_in_one_line(
    tmp_path: Path,
) -> None:
    """Finding: a site database this user cannot open (here a folder in its place: root
    reads a file of mode 000) gave a traceback under `serve --role site:CS1`."""
    file = _one_site_file(tmp_path)
    database = tmp_path / "data" / "CS1" / "site.sqlite"
    database.mkdir(parents=True)
    line = assert_one_error_line(run("serve", file, "--role", "site:CS1", cwd=tmp_path))
    assert line.startswith(f"error: site:CS1: {database.resolve()}: cannot open the site database")
    assert line.endswith("check the path and its permissions")
