"""`updatesync logs track`: every sync run of a hierarchy, from its servers' logs.

    updatesync logs track PATH... [--json] [--follow] [--stuck-after MINUTES]

PATH is a log file or a folder searched recursively (several servers' folders at once):
WSyncMgr.log with its WSyncMgr.lo_, in the CMTrace, simple or copied form, and SMSDBMON.log,
SMSProv.log and SoftwareDistribution.log when present (see `updatesync.logs.tracker`).
Without `--json` each run is shown as a short summary and a table of its phases; with
`--json` the runs are printed as one JSON list (`SyncRun.to_json`). `--follow` keeps
polling the files (every `--interval` seconds) and prints each run again when it changes,
one line per run (one JSON object per line with `--json`), until Ctrl-C.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from updatesync.cli.output import error
from updatesync.logs.rollover import LogReadError
from updatesync.logs.runs import FAILED, RUNNING, STUCK, SUCCESS, Phase, SyncRun
from updatesync.logs.tracker import Tracker, find_logs
from updatesync.vocabulary import RUN_PHASES

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

PHASE_LABELS = {name: phase.table_label for name, phase in RUN_PHASES.items() if phase.table_label}
RESULT_STYLES = {SUCCESS: "green", FAILED: "bold red", RUNNING: "cyan", STUCK: "bold yellow"}


@logs_app.callback()
def _logs() -> None:
    """Read the sync logs of a hierarchy (WSyncMgr.log and the logs around it)."""


# --- text ----------------------------------------------------------------------------------


def _when(moment: datetime | None, *, date: bool = True) -> str:
    if moment is None:
        return "—"
    moment = moment.astimezone(UTC)
    text = f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d}"
    return f"{moment:%Y-%m-%d} {text}" if date else text


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    tenths = f"{seconds - whole:.1f}"[1:] if seconds - whole < 0.95 else ".9"
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}{tenths}s"
    return f"{secs}{tenths}s"


def _trigger(run: SyncRun) -> str:
    match run.trigger:
        case "local":
            return "local request"
        case "full":
            return "full sync request"
        case "parent":
            return f"parent request from {run.parent}" if run.parent else "parent request"
        case "schedule":
            return "schedule"
        case None:
            return "trigger not in the log"
        case other:
            return str(other)


def _items(phase: Phase) -> str:
    if phase.items_total is None:
        return "—"
    return f"{phase.items_done}/{phase.items_total}"


def _result(run: SyncRun) -> str:
    return f"[{RESULT_STYLES.get(run.result, 'white')}]{run.result}[/]"


def _short_day(moment: datetime | None, reference: datetime | None) -> str:
    """A time, with its date only when it is not the reference's day."""
    if moment is None:
        return "—"
    same_day = reference is not None and moment.date() == reference.date()
    return _when(moment, date=not same_day)


def render_run(run: SyncRun, out: Console) -> None:
    """One run: a header, its phases, then versions, replicas, children, error, retry."""
    site = escape(run.site or "site ?")
    server = escape(run.server or "server ?")
    if run.site is None and run.log:
        server += f" (log {escape(Path(run.log).name)})"
    out.print(
        f"[bold]{site}[/] {server} · {escape(_trigger(run))} · {_result(run)}",
        highlight=False,
        soft_wrap=True,
    )
    day = run.started or run.ended
    if run.started is None and run.ended is None:
        times = "  times not in the log"
    elif run.started is None:
        times = f"  ended {_when(run.ended)} UTC (start not in the log)"
    else:
        times = f"  {_when(run.started)} → {_short_day(run.ended, run.started)} UTC"
    if run.duration_s is not None:
        times += f" ({_span(run.duration_s)})"
    if run.requested is not None:
        times += f", requested {_short_day(run.requested, day)}"
    out.print(times, highlight=False, soft_wrap=True)
    if run.phases:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1))
        table.add_column("phase", no_wrap=True)
        table.add_column("msg", no_wrap=True)
        table.add_column("server", no_wrap=True, overflow="ellipsis", min_width=7)
        table.add_column("started", no_wrap=True)
        table.add_column("ended", no_wrap=True)
        table.add_column("items", justify="right", no_wrap=True)
        table.add_column("status", no_wrap=True)
        for phase in run.phases:
            table.add_row(
                PHASE_LABELS.get(phase.name, phase.name),
                str(phase.status_message or ""),
                escape(_short_host(phase.server)),
                _short_day(phase.started, day),
                _short_day(phase.ended, day),
                _items(phase),
                phase.status,
            )
        out.print(table)
    facts: list[str] = []
    if run.content_versions:
        facts.append("content version " + " → ".join(str(v) for v in run.content_versions))
    elif run.content_version is not None:
        facts.append(f"content version {run.content_version}")
    for replica in run.replicas:
        items = "?" if replica["items"] is None else replica["items"]
        facts.append(f"replica {replica['server']}: {items} items, {replica['status']}")
    if run.children:
        facts.append("notified " + ", ".join(run.children))
    for fact in facts:
        out.print(f"  {escape(fact)}", highlight=False)
    for phase in run.phases:
        sync = phase.update_server_log
        if sync is not None:
            span = f"{_short_day(sync.started, day)} → {_short_day(sync.ended, day)}"
            out.print(
                f"  update server {escape(_short_host(sync.server) or '?')}: sync {span}, "
                f"{escape(sync.result)}",
                highlight=False,
            )
    if run.error is not None:
        error = run.error
        text = error.message or "(no message)"
        if error.code is not None:
            text += f" (0x{error.code:08x})"
        out.print(f"  [red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
        if error.source:
            out.print(f"  source: {escape(error.source)}", highlight=False, soft_wrap=True)
    if run.retry_after_minutes is not None:
        when = run.next_retry
        at = f"{_when(when)} UTC" if when is not None else "time unknown"
        out.print(
            f"  next retry: {at} ({run.retry_after_minutes} minutes after the failure)",
            highlight=False,
        )
    if run.result in (RUNNING, STUCK) and run.last_activity is not None:
        last = run.last_activity
        label = "stuck since" if run.result == STUCK else "last activity"
        out.print(
            f"  [yellow]{label} {_short_day(last.time, day)}:[/] {escape(last.message)}",
            highlight=False,
            soft_wrap=True,
        )
    for warning in run.warnings:
        out.print(f"  [yellow]warning:[/] {escape(warning)}", highlight=False)


def _short_host(server: str | None) -> str:
    """`cs1site.contoso.com` → `cs1site` (the full names are in the header and the facts)."""
    return (server or "").split(".")[0]


def one_line(run: SyncRun) -> str:
    """A run in one line, for `--follow`."""
    parts = [
        run.site or "?",
        run.server or "?",
        _trigger(run),
        run.result,
        f"{_when(run.started)} → {_short_day(run.ended, run.started)}",
    ]
    current = run.phases[-1] if run.phases else None
    if current is not None:
        parts.append(f"{PHASE_LABELS.get(current.name, current.name)} {_items(current)}")
    if run.content_versions:
        parts.append("version " + "→".join(str(v) for v in run.content_versions))
    if run.children:
        parts.append("notified " + ",".join(run.children))
    if run.error is not None and run.error.message:
        parts.append(f"error: {run.error.message}")
    if run.result in (RUNNING, STUCK) and run.last_activity is not None:
        parts.append(f"last: {run.last_activity.message}")
    return " · ".join(parts)


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
) -> None:
    """Rebuild every sync run (site, trigger, phases, versions, replicas, children, result)
    from WSyncMgr.log and the logs around it."""
    tracker = Tracker(paths, stuck_after=timedelta(minutes=stuck_after))
    try:
        if not find_logs(paths):
            error(
                "no WSyncMgr, SMSDBMON, SMSProv or SoftwareDistribution log "
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
        return
    if not runs:
        console.print("no sync runs in these logs", highlight=False)
        return
    for number, run in enumerate(runs):
        if number:
            console.print()
        render_run(run, console)


def _follow(tracker: Tracker, *, as_json: bool, interval: float) -> None:
    """Poll until Ctrl-C; print each run that is new or changed since the previous poll."""
    try:
        while True:
            for run in tracker.changed(_now()):
                if as_json:
                    typer.echo(json.dumps(run.to_json(), ensure_ascii=False))
                else:
                    console.print(escape(one_line(run)), highlight=False, soft_wrap=True)
            _sleep(interval)
    except KeyboardInterrupt:
        return
