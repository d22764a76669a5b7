"""`updatesync logs track`: every sync run of a hierarchy, from its servers' logs.

    updatesync logs track PATH... [--json] [--follow] [--stuck-after MINUTES] [--no-fail]

PATH is a log file or a folder searched recursively (several servers' folders at once):
WSyncMgr.log with its WSyncMgr.lo_ and WCM.log, in the CMTrace, simple, copied or pasted
form, and SMSDBMON.log, SMSProv.log and SoftwareDistribution.log when present (see
`updatesync.logs.tracker`). Without `--json` each run is shown as a short summary (and a
sync run with a table of its phases); with `--json` the runs are printed as one JSON list
(`SyncRun.to_json`, `kind: "sync"`; `ConfigurationRun.to_json`, `kind: "configuration"`).
The exit status is 1 when the latest sync run or the latest configuration run of any site
failed (`--no-fail`: 0 whatever the runs say), so a script or a scheduled task can act on
it. `--follow` keeps polling the files (every `--interval` seconds) and prints each run
again when it changes, one line per run (one JSON object per line with `--json`), until
Ctrl-C (then 0).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from updatesync.cli.output import error

if TYPE_CHECKING:
    from updatesync.logs.tracker import Tracker

logs_app = typer.Typer(
    help="Read the sync logs of a hierarchy (WSyncMgr.log and the logs around it).",
    no_args_is_help=True,
)
console = Console()
"""Runs are rendered with markup (styles); every text from a log is escaped."""

_sleep: Callable[[float], None] = time.sleep
"""How `--follow` waits between polls (replaced in tests)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


_now: Callable[[], datetime] = _utc_now
"""The time `--follow` judges stuck runs against (replaced in tests)."""


@logs_app.callback()
def _logs() -> None:
    """Read the sync logs of a hierarchy (WSyncMgr.log and the logs around it)."""


# --- the command ---------------------------------------------------------------------------


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@logs_app.command("track")
def track(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Log files, or folders searched recursively (several servers at once).",
            show_default=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs as a JSON list.")] = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", help="Keep reading appended lines and print runs as they change."),
    ] = False,
    stuck_after: Annotated[
        float,
        typer.Option(
            "--stuck-after",
            min=0.0,
            help="Minutes without progress after which a run with no end is 'stuck'.",
        ),
    ] = 60.0,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.1, help="Seconds between two polls with --follow."),
    ] = 2.0,
    no_fail: Annotated[
        bool,
        typer.Option(
            "--no-fail",
            help="Exit 0 even when the latest sync or configuration run of a site failed "
            "(without it the exit status is then 1).",
        ),
    ] = False,
) -> None:
    """Rebuild every sync run (site, trigger, phases, versions, replicas, children, result)
    from WSyncMgr.log and the logs around it, and every configuration run (state,
    subscriptions, error) from WCM.log. Exits 1 when the latest sync run or configuration
    run of any site failed, unless --no-fail."""
    from updatesync.cli.log_view import render_any
    from updatesync.logs.rollover import LogReadError
    from updatesync.logs.tracker import Tracker, failed_latest, find_logs

    tracker = Tracker(paths, stuck_after=timedelta(minutes=stuck_after))
    try:
        if not find_logs(paths):
            error(
                "no WSyncMgr, WCM, SMSDBMON, SMSProv or SoftwareDistribution log "
                f"under {', '.join(str(p) for p in paths)}"
            )
            raise typer.Exit(1)
        if follow:
            _follow(tracker, as_json=as_json, interval=interval)
            return
        runs = tracker.runs()
    except (OSError, LogReadError) as exc:
        error(str(exc))
        raise typer.Exit(1) from exc
    if as_json:
        _print_json([run.to_json() for run in runs])
    elif not runs:
        console.print("no sync runs in these logs", highlight=False)
    else:
        for number, run in enumerate(runs):
            if number:
                console.print()
            render_any(run, console)
    if failed_latest(runs) and not no_fail:
        raise typer.Exit(1)


def _follow(tracker: Tracker, *, as_json: bool, interval: float) -> None:
    """Poll until Ctrl-C; print each run that is new or changed since the previous poll."""
    from rich.markup import escape

    from updatesync.cli.log_view import one_line_any

    try:
        while True:
            for run in tracker.changed(_now()):
                if as_json:
                    typer.echo(json.dumps(run.to_json(), ensure_ascii=False))
                else:
                    console.print(escape(one_line_any(run)), highlight=False, soft_wrap=True)
            _sleep(interval)
    except KeyboardInterrupt:
        return
