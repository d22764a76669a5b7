"""Tests of `updatesync logs track` (`updatesync.cli.logs`) through the top-level `updatesync`
app, on a small WSyncMgr.log written here in CMTrace form with the real wording: a failed run
shown as text and as JSON (exit status 1 for it, 0 with `--no-fail` or once a later run of the
site succeeded), a log with no run, and paths that hold no log."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from updatesync.cli import app

_LINE = (
    '<![LOG[{message}]LOG]!><time="{time}.000+480" date="03-12-2024" '
    'component="SMS_WSUS_SYNC_MANAGER" context="" type="{kind}" thread="3404" file="">\r\n'
)
_FAILED_RUN = [
    ("09:00:01", "Wakeup by inbox drop", 1),
    ("09:00:02", "Found local sync request file", 1),
    ("09:00:03", "Starting Sync", 1),
    ("09:00:04", "Performing sync on local request", 1),
    ("09:00:05", "Read SUPs from SCF for CS1SITE.CONTOSO.COM", 1),
    ("09:00:06", "Found 1 SUPs", 1),
    ("09:00:07", "Found active SUP CS1SITE.CONTOSO.COM from SCF File.", 1),
    (
        "09:00:08",
        "Sync failed: WSUS update source not found on site CS1. Please refer to WCM.log for "
        "configuration error details.. Source: getSiteUpdateSource",
        3,
    ),
    ("09:00:09", "Sync failed. Will retry in 60 minutes", 1),
]
_MESSAGE = (
    "WSUS update source not found on site CS1. Please refer to WCM.log for configuration "
    "error details"
)


def _write_log(path: Path, lines: list[tuple[str, str, int]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(_LINE.format(time=t, message=m, kind=k) for t, m, k in lines)
    path.write_text(text, encoding="utf-8")
    return path


def test_track_a_failed_run_as_text(tmp_path: Path) -> None:
    log = _write_log(tmp_path / "WSyncMgr.log", _FAILED_RUN)
    result = CliRunner().invoke(app, ["logs", "track", str(log)])
    assert result.exit_code == 1, result.output  # the site's latest run failed
    out = result.output
    assert "cs1site.contoso.com (log WSyncMgr.log) · local request · failed" in out
    # the log's local times (bias +480) are shown in UTC
    assert "2024-03-12 17:00:03.000 → 17:00:08.000 UTC (5.0s)" in out
    assert f"error: {_MESSAGE}" in out
    assert "source: getSiteUpdateSource" in out
    assert "next retry: 2024-03-12 18:00:08.000 UTC (60 minutes after the failure)" in out
    reported = CliRunner().invoke(app, ["logs", "track", str(log), "--no-fail"])
    assert reported.exit_code == 0, reported.output
    assert reported.output == out


def test_track_a_failed_run_as_json(tmp_path: Path) -> None:
    log = _write_log(tmp_path / "CS1" / "logs" / "WSyncMgr.log", _FAILED_RUN)
    result = CliRunner().invoke(app, ["logs", "track", str(tmp_path), "--json", "--no-fail"])
    assert result.exit_code == 0, result.output
    [run] = json.loads(result.output)
    assert run["kind"] == "sync"
    assert run["result"] == "failed"
    assert run["trigger"] == "local"
    assert run["server"] == "cs1site.contoso.com"
    assert run["started"] == "2024-03-12T17:00:03.000Z"
    assert run["ended"] == "2024-03-12T17:00:08.000Z"
    assert run["duration_s"] == 5.0
    assert run["error"] == {"source": "getSiteUpdateSource", "message": _MESSAGE, "code": None}
    assert run["retry_after_minutes"] == 60
    assert run["next_retry"] == "2024-03-12T18:00:08.000Z"
    assert run["log"] == str(log)


def test_track_a_log_without_runs(tmp_path: Path) -> None:
    log = _write_log(
        tmp_path / "WSyncMgr.log",
        [("09:00:01", "SMS_EXECUTIVE started SMS_WSUS_SYNC_MANAGER as thread ID 3404", 1)],
    )
    runner = CliRunner()
    result = runner.invoke(app, ["logs", "track", str(log)])
    assert result.exit_code == 0, result.output
    assert "no sync runs in these logs" in result.output
    result = runner.invoke(app, ["logs", "track", str(log), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == []


def test_track_a_missing_path_fails_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = CliRunner().invoke(app, ["logs", "track", str(missing)])
    assert result.exit_code == 1
    # one message (rich may wrap it anywhere, even in the path), and no traceback
    expected = f"error: no such log file or folder: {missing}"
    assert "".join(result.output.split()) == "".join(expected.split())
    assert "Traceback" not in result.output


def test_track_a_folder_of_other_files_names_the_logs_it_looks_for(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["logs", "track", str(tmp_path)])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "no WSyncMgr, WCM, SMSDBMON, SMSProv or SoftwareDistribution log" in text
    assert "Traceback" not in result.output


def test_track_needs_a_path() -> None:
    result = CliRunner().invoke(app, ["logs", "track"])
    assert result.exit_code == 2


def test_track_names_a_run_on_the_retry_schedule_in_words(tmp_path: Path) -> None:
    retry = [
        ("10:00:01", "Wakeup by inbox drop", 1),
        ("10:00:02", "Starting Sync", 1),
        ("10:00:03", "Performing sync on retry schedule", 1),
    ]
    log = _write_log(tmp_path / "WSyncMgr.log", [*_FAILED_RUN, *retry])
    result = CliRunner().invoke(app, ["logs", "track", str(log)])
    assert result.exit_code == 0, result.output  # the latest run is the retry, still running
    assert " · retry schedule · " in result.output
    assert " · retry · " not in result.output


def test_the_exit_status_follows_the_latest_run_of_each_site(tmp_path: Path) -> None:
    """A failure followed by a successful retry exits 0; a second site whose latest run
    failed makes it 1 again; `--help` says so and names `--no-fail`."""
    retry = [
        ("10:00:01", "Wakeup for a polling cycle", 1),
        ("10:00:02", "Starting Sync", 1),
        ("10:00:03", "Performing sync on retry schedule", 1),
        ("10:00:04", "Sync succeeded. Setting sync alert to canceled state on site CS1", 1),
    ]
    _write_log(tmp_path / "CS1" / "WSyncMgr.log", [*_FAILED_RUN, *retry])
    runner = CliRunner()
    result = runner.invoke(app, ["logs", "track", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert [(r["trigger"], r["result"]) for r in json.loads(result.output)] == [
        ("local", "failed"),
        ("retry", "success"),
    ]
    _write_log(tmp_path / "PS1" / "WSyncMgr.log", _FAILED_RUN)
    result = runner.invoke(app, ["logs", "track", str(tmp_path), "--json"])
    assert result.exit_code == 1, result.output
    assert [(r["site"], r["result"]) for r in json.loads(result.output)] == [
        ("CS1", "failed"),
        ("PS1", "failed"),
        ("CS1", "success"),
    ]
    assert runner.invoke(app, ["logs", "track", str(tmp_path), "--no-fail"]).exit_code == 0
    shown = " ".join(runner.invoke(app, ["logs", "track", "--help"]).output.split())
    assert "--no-fail" in shown and "Exits 1 when the latest sync run" in shown
