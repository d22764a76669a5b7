"""How `updatesync logs track` shows a sync run: a header and a table of its phases
(`render_run`), or one line (`one_line`, for `--follow`); and a configuration run of WCM.log
(`render_configuration`, `one_line_configuration`). `render_any` and `one_line_any` take
either. Every text read from a log is escaped before Rich reads the markup around it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from updatesync.logs.configuration import ConfigurationRun
from updatesync.logs.runs import (
    FAILED,
    RUNNING,
    STUCK,
    SUCCESS,
    UNKNOWN,
    Phase,
    SyncError,
    SyncRun,
)
from updatesync.vocabulary import RUN_PHASES

PHASE_LABELS = {name: phase.table_label for name, phase in RUN_PHASES.items() if phase.table_label}
RESULT_STYLES = {
    SUCCESS: "green",
    FAILED: "bold red",
    RUNNING: "cyan",
    STUCK: "bold yellow",
    UNKNOWN: "yellow",
}


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
    return "trigger not in the log" if run.trigger is None else run.trigger_text()


def _items(phase: Phase) -> str:
    if phase.items_total is None:
        return "—"
    return f"{phase.items_done}/{phase.items_total}"


def _result(run: SyncRun | ConfigurationRun) -> str:
    shown = f"[{RESULT_STYLES.get(run.result, 'white')}]{run.result}[/]"
    if getattr(run, "license_terms_pending", False):
        shown += " [yellow](with pending license terms downloads, 6708)[/]"
    return shown


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
    times = _times(run)
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
        _print_error(run.error, out)
    cause = run.configuration_failure
    if cause is not None:
        when = cause["ended"] or cause["started"]
        said = (cause["error"] or {}).get("message") or cause["state_name"] or "no error line"
        out.print(
            f"  [red]cause:[/] the WSUS configuration run of {escape(when or 'unknown time')}"
            f" failed: {escape(said)} ({escape(Path(cause['log'] or '?').name)})",
            highlight=False,
            soft_wrap=True,
        )
    for failure in run.update_failures:
        text = f"{failure.update_id}: {failure.message or '(no message)'}"
        if failure.source:
            text += f" (source: {failure.source})"
        out.print(f"  [red]update failed:[/] {escape(text)}", highlight=False, soft_wrap=True)
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


def _print_error(error: SyncError, out: Console) -> None:
    text = error.message or "(no message)"
    if error.code is not None:
        text += f" (0x{error.code:08x})"
    out.print(f"  [red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
    if error.source:
        out.print(f"  source: {escape(error.source)}", highlight=False, soft_wrap=True)


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


def one_line_any(run: SyncRun | ConfigurationRun) -> str:
    if isinstance(run, ConfigurationRun):
        return one_line_configuration(run)
    return one_line(run)


def render_any(run: SyncRun | ConfigurationRun, out: Console) -> None:
    if isinstance(run, ConfigurationRun):
        render_configuration(run, out)
    else:
        render_run(run, out)


# --- configuration runs (WCM.log) --------------------------------------------------------


def _state(run: ConfigurationRun) -> str | None:
    if run.state is None:
        return None
    return f"state {run.state}" + (f" ({run.state_name})" if run.state_name else "")


def _subscribed(run: ConfigurationRun) -> str | None:
    """`subscribed: 2 products (A, B); 1 classification (C)`: three titles a kind at most."""
    if run.subscriptions is None:
        return None
    kinds: dict[str, list[str]] = {}
    for category in run.subscriptions:
        kind = {"Product": "product", "UpdateClassification": "classification"}.get(
            category["kind"] or "", "category"
        )
        kinds.setdefault(kind, []).append(category["title"] or category["id"] or "?")
    parts = []
    for kind, titles in kinds.items():
        shown = ", ".join(titles[:3]) + (f" and {len(titles) - 3} more" if len(titles) > 3 else "")
        parts.append(f"{len(titles)} {kind}{'' if len(titles) == 1 else 's'} ({shown})")
    return "subscribed: " + ("; ".join(parts) or "no category in the log")


def render_configuration(run: ConfigurationRun, out: Console) -> None:
    """A configuration run: a header, its times, its state, servers, subscriptions, error."""
    site = escape(run.site or "site ?")
    server = escape(run.server or "server ?")
    if run.site is None and run.log:
        server += f" (log {escape(Path(run.log).name)})"
    out.print(
        f"[bold]{site}[/] {server} · WSUS configuration · {escape(run.trigger_text())} · "
        f"{_result(run)}",
        highlight=False,
        soft_wrap=True,
    )
    out.print(_times(run), highlight=False, soft_wrap=True)
    facts = [f for f in (_state(run), _subscribed(run)) if f]
    for connection in run.servers:
        where = connection.server
        if connection.port is not None:
            where += f":{connection.port}"
        if connection.ssl is not None:
            where += " (SSL)" if connection.ssl else " (no SSL)"
        facts.append(("connected to " if connection.connected else "could not connect to ") + where)
    if run.languages is not None:
        facts.append("languages: " + (", ".join(run.languages) or "none"))
    for fact in facts:
        out.print(f"  {escape(fact)}", highlight=False, soft_wrap=True)
    for error in run.errors:
        _print_error(error, out)
    if run.wait_minutes is not None:
        minutes = f"{run.wait_minutes} minute{'' if run.wait_minutes == 1 else 's'}"
        out.print(f"  then waited for changes ({minutes})", highlight=False)


def one_line_configuration(run: ConfigurationRun) -> str:
    """A configuration run in one line, for `--follow`."""
    parts = [
        run.site or "?",
        run.server or "?",
        "WSUS configuration",
        run.trigger_text(),
        run.result,
        f"{_when(run.started)} → {_short_day(run.ended, run.started)}",
    ]
    state = _state(run)
    if state:
        parts.append(state)
    if run.error is not None and run.error.message:
        parts.append(f"error: {run.error.message}")
    return " · ".join(parts)


def _times(run: SyncRun | ConfigurationRun) -> str:
    """When a run began and ended (and how long it took), as far as its log says."""
    if run.started is None and run.ended is None:
        times = "  times not in the log"
    elif run.started is None:
        times = f"  ended {_when(run.ended)} UTC (start not in the log)"
    else:
        times = f"  {_when(run.started)} → {_short_day(run.ended, run.started)} UTC"
    if run.duration_s is not None:
        times += f" ({_span(run.duration_s)})"
    return times
