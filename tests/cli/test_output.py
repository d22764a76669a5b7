"""`updatesync.cli.output`: text printed as written (never markup), the `error:` and
`warning:` lines, the port check, and the last resort for an unexpected exception."""

from __future__ import annotations

import errno
import importlib
import stat
import threading
from pathlib import Path

import httpx
import pytest
import typer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from updatesync.cli.output import (
    error,
    last_resort,
    os_error_text,
    port_in_range,
    quiet_tracebacks,
    say,
    user_error_text,
    warning,
    write_report,
)
from updatesync.roles.serving import BackgroundServer

cli_main = importlib.import_module("updatesync.cli.main")  # the package's `main` is the function


def test_error_prints_the_message_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    error("x[/x]/[bold]h.toml: add one [[sites]] table " + "long " * 30)
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: x[/x]/[bold]h.toml: add one [[sites]] table " + "long " * 30 + "\n"


def test_warning_and_say_print_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    warning("kept [red]as first[/red] stored")
    say("wrote [/x]")
    out, _ = capsys.readouterr()
    assert out == "warning: kept [red]as first[/red] stored\nwrote [/x]\n"


@pytest.mark.parametrize("port", [0, 1, 8530, 65535])
def test_a_port_in_range_is_kept(port: int) -> None:
    assert port_in_range(port) == port


@pytest.mark.parametrize("port", [-1, 65536, 70000])
def test_a_port_out_of_range_is_a_usage_error(port: int) -> None:
    with pytest.raises(typer.BadParameter, match=f"^{port} is not a port: give one from 0 to"):
        port_in_range(port)


def test_the_last_resort_says_one_line_and_writes_the_traceback_to_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)

    def broken() -> None:
        raise RuntimeError("the unexpected\nsecond line")

    with pytest.raises(SystemExit) as exited:
        last_resort(broken)
    assert exited.value.code == 1
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("internal error: RuntimeError: the unexpected (please report it;")
    report = Path(err.rsplit("details in ", 1)[1].rstrip(")\n"))
    assert report.parent == tmp_path
    assert stat.S_IMODE(report.stat().st_mode) == 0o600
    text = report.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "the unexpected" in text


def test_the_last_resort_lets_exits_and_interrupts_through() -> None:
    def done() -> None:
        raise SystemExit(3)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exited:
        last_resort(done)
    assert exited.value.code == 3
    with pytest.raises(KeyboardInterrupt):
        last_resort(interrupted)


def test_the_updatesync_command_runs_under_the_last_resort(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command's entry point (`updatesync.cli:main`): a bug is one line, not a
    traceback."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)

    def app() -> None:
        raise KeyError("lost")

    monkeypatch.setattr(cli_main, "app", app)
    with pytest.raises(SystemExit) as exited:
        cli_main.main()
    assert exited.value.code == 1
    _, err = capsys.readouterr()
    assert err.startswith("internal error: KeyError: 'lost' (please report it; details in ")


def test_a_report_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    try:
        raise ValueError("bad")
    except ValueError as exc:
        report = write_report(exc, ["updatesync", "updateserver", "status"])
    text = report.read_text(encoding="utf-8")
    assert "command: updatesync updateserver status" in text
    assert "ValueError: bad" in text


def test_os_errors_in_words(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    exists = FileExistsError(errno.EEXIST, "File exists", str(tmp_path / "file"))
    assert os_error_text(exists) == f"{tmp_path / 'file'}: is a file, where a folder is needed"
    renamed = IsADirectoryError(errno.EISDIR, "Is a directory", ".x.part", None, "out.cab")
    assert os_error_text(renamed) == "out.cab: Is a directory"
    assert os_error_text(OSError("cannot listen on 127.0.0.1:1: in use")) == (
        "cannot listen on 127.0.0.1:1: in use"
    )
    assert user_error_text(ValueError("as written")) == "as written"


async def _broken(_request: Request) -> Response:
    raise RuntimeError("the handler broke\nsecond line")


def test_a_failed_request_of_a_running_server_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """uvicorn prints the traceback of a request that failed; under the command, one line
    (the traceback in the process's report file, the same file for every failure)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    undo = quiet_tracebacks()
    try:
        with BackgroundServer(Starlette(routes=[Route("/", _broken)])) as server:
            assert httpx.get(server.url, timeout=30).status_code == 500
            assert httpx.get(server.url, timeout=30).status_code == 500
    finally:
        undo()
    _, err = capfd.readouterr()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "RuntimeError" in line]
    assert len(lines) == 2, err
    assert lines[0].endswith(
        "Exception in ASGI application: RuntimeError: the handler broke (please report it; "
        f"details in {next(tmp_path.glob('updatesync-error-*.txt'))})"
    )
    assert len(list(tmp_path.glob("updatesync-error-*.txt"))) == 1
    report = next(tmp_path.glob("updatesync-error-*.txt")).read_text(encoding="utf-8")
    assert report.count("RuntimeError: the handler broke") == 2


def test_a_thread_that_fails_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)

    def fails() -> None:
        raise ValueError("in the background")

    undo = quiet_tracebacks()
    try:
        thread = threading.Thread(target=fails, name="poller")
        thread.start()
        thread.join()
    finally:
        undo()
    _, err = capfd.readouterr()
    assert "Traceback" not in err
    assert err.startswith("internal error: poller: ValueError: in the background (please")
    assert err.count("\n") == 1
