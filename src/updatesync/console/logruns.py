"""The tracker's view of uploaded logs, for the console's `/logs` page.

`track_stored(stored, stuck_after)` reads the uploaded logs as `updatesync logs track` does
(`updatesync.logs.tracker`: `find_logs`, `read_logs` for each, `assemble`; the same steps as
`track_paths`, with the reference time of stuck runs taken from the logs themselves), except
that a file the tracker cannot read, or in which it finds no log entry, becomes a warning
instead of stopping the whole. It returns plain data (`LogsReport`): the runs as the page
shows them (a sync run as `RunView`, a WCM.log configuration run as `ConfigurationView`),
what each file gave, and the warnings; nothing in it points into the scratch folder, which
can go as soon as it returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from updatesync.console.timeline import format_duration
from updatesync.console.uploads import Stored
from updatesync.logs.configuration import ConfigurationRun
from updatesync.logs.rollover import rolled_path
from updatesync.logs.runs import (
    FAILED,
    RUNNING,
    STUCK,
    SUCCESS,
    Phase,
    SyncRun,
)
from updatesync.logs.tracker import (
    SMSDBMON,
    SMSPROV,
    SOFTWAREDISTRIBUTION,
    WCM,
    WSYNCMGR,
    ReadLog,
    Run,
    assemble,
    find_logs,
    read_logs,
    sync_requests,
    update_server_syncs,
)
from updatesync.vocabulary import (
    DATABASE_MONITOR_LOG,
    PROVIDER_LOG,
    RUN_PHASES,
    SYNC_MANAGER_LOG,
    UPDATE_SERVER_LOG,
    WSUS_CONFIGURATION_LOG,
)

LOG = logging.getLogger(__name__)

STATES = {SUCCESS: "done", FAILED: "failed", RUNNING: "running", STUCK: "stuck"}
"""A run's result → the console's colour (green, red, blue, amber)."""
PHASES = {
    name: (phase.page_label, phase.message_id or 0)
    for name, phase in RUN_PHASES.items()
    if phase.page_label
}
"""A run phase's name → its label on the page and the status message that marks it."""
KINDS = {
    WSYNCMGR: SYNC_MANAGER_LOG,
    WCM: WSUS_CONFIGURATION_LOG,
    SMSDBMON: DATABASE_MONITOR_LOG,
    SMSPROV: PROVIDER_LOG,
    SOFTWAREDISTRIBUTION: UPDATE_SERVER_LOG,
}
FORMS = {
    "cmtrace": "CMTrace",
    "simple": "simple (site server)",
    "rendered": "copied from CMTrace",
    "pasted": "pasted lines",
    "softwaredistribution": "update server",
}


@dataclass(frozen=True, slots=True)
class Bar:
    """A span on a run's time axis, in percent of the axis."""

    left: float
    width: float
    title: str


class UpdateServerView(BaseModel):
    """An update server's own sync (`UpdateServerSync`) as the page shows it: read from its
    attributes, with "?" for an unknown server and "" for what the log does not say."""

    model_config = ConfigDict(from_attributes=True)

    server: str
    started: datetime
    ended: datetime | None
    result: str
    how: str
    message: str
    bar: Bar | None = None

    @field_validator("server", mode="before")
    @classmethod
    def _unknown_server(cls, value: str | None) -> str:
        return value or "?"

    @field_validator("how", "message", mode="before")
    @classmethod
    def _unsaid(cls, value: str | None) -> str:
        return value or ""


@dataclass(slots=True)
class PhaseView:
    name: str
    label: str
    message_id: int
    server: str
    started: datetime | None
    ended: datetime | None
    items: str
    status: str
    error: str | None = None
    bar: Bar | None = None
    update_server: UpdateServerView | None = None


@dataclass(slots=True)
class RunView:
    run: SyncRun
    state: str
    title: str
    trigger: str
    log: str
    duration: str | None
    versions: str | None
    phases: list[PhaseView] = field(default_factory=list)
    axis: tuple[datetime, datetime] | None = None
    error_code: str | None = None
    next_retry: str | None = None
    cause: str | None = None
    """The failed configuration run behind a `WSUS server not configured` failure."""
    kind: str = "sync"


@dataclass(slots=True)
class ConfigurationView:
    """A WCM.log configuration run as the page shows it."""

    run: ConfigurationRun
    state: str
    title: str
    trigger: str
    log: str
    duration: str | None
    config_state: str
    servers: list[str]
    subscriptions: str | None
    errors: list[str]
    kind: str = "configuration"


@dataclass(slots=True)
class FileView:
    name: str
    kind: str = "—"
    form: str = "—"
    site: str | None = None
    server: str | None = None
    entries: int = 0
    gave: str = ""
    problem: str | None = None


@dataclass(slots=True)
class LogsReport:
    runs: list[RunView | ConfigurationView] = field(default_factory=list)
    files: list[FileView] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((SUCCESS, FAILED, RUNNING, STUCK), 0)
        for view in self.runs:
            counts[view.run.result] = counts.get(view.run.result, 0) + 1
        return counts

    @property
    def sync_runs(self) -> int:
        return sum(1 for view in self.runs if view.kind == "sync")

    @property
    def configuration_runs(self) -> int:
        return sum(1 for view in self.runs if view.kind == "configuration")


def track_stored(stored: Stored, *, stuck_after: timedelta) -> LogsReport:
    """The runs in the stored upload, with a line per file and the warnings. Blocking."""
    report = LogsReport(warnings=list(stored.warnings), skipped=list(stored.skipped))
    good: list[tuple[list[ReadLog], FileView]] = []
    for file in find_logs(stored.paths):
        view = FileView(_file_name(stored, file.path))
        report.files.append(view)
        try:
            logs = read_logs(file)
        except Exception as exc:  # any file, however odd, is a warning, never an error page
            LOG.warning("console: cannot read uploaded log %s", view.name, exc_info=True)
            view.problem = f"the tracker could not read it ({type(exc).__name__}: {exc})"
            report.warnings.append(f"{view.name}: {view.problem}; it was left out.")
            continue
        view.entries = sum(len(log.lines) + len(log.entries) for log in logs)
        if view.entries:
            view.kind = " + ".join(KINDS.get(log.kind, log.kind) for log in logs)
            view.form = FORMS.get(logs[0].form, logs[0].form)
            view.site, view.server = logs[0].site, logs[0].server
        else:
            view.problem = "no log entry in it"
            report.warnings.append(
                f"{view.name}: the tracker found no log entry in it (it is not in the CMTrace, "
                "simple, copied-from-CMTrace or SoftwareDistribution.log form); it was left out."
            )
            continue
        good.append((logs, view))
    runs = assemble([log for logs, _ in good for log in logs], stuck_after=stuck_after, now=None)
    for logs, view in good:
        view.gave = "; ".join(_gave(log, runs) for log in logs)
    report.runs = [
        _configuration_view(run, stored)
        if isinstance(run, ConfigurationRun)
        else _run_view(run, stored)
        for run in runs
    ]
    return report


def _file_name(stored: Stored, path: Path) -> str:
    name = stored.shown(path)
    if path.exists() and rolled_path(path).exists():
        name += " (with its .lo_)"
    return name


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _gave(log: ReadLog, runs: list[Run]) -> str:
    if log.kind in (WSYNCMGR, WCM):
        kind = "sync" if log.kind == WSYNCMGR else "configuration"
        mine = sum(1 for run in runs if run.log == str(log.file.path) and run.kind == kind)
        noun = f"{kind} run"
        return _plural(mine, noun) if mine else f"no {noun}"
    if log.kind == SOFTWAREDISTRIBUTION:
        syncs = len(update_server_syncs(log))
        return _plural(syncs, "update server sync") if syncs else "no update server sync"
    requests = len(sync_requests(log))
    if requests:
        return _plural(requests, "sync request")
    return "no sync request with a time" if log.site else "no site named in or around it"


# --- one run ---------------------------------------------------------------------------------


def _run_view(run: SyncRun, stored: Stored) -> RunView:
    view = RunView(
        run=run,
        state=STATES.get(run.result, "idle"),
        title=run.site or "site ?",
        trigger=run.trigger_text(),
        log=stored.shown(run.log),
        duration=None if run.duration_s is None else format_duration(run.duration_s),
        versions=" → ".join(str(v) for v in run.content_versions) or None,
    )
    if view.versions is None and run.content_version is not None:
        view.versions = str(run.content_version)
    if run.error is not None and run.error.code is not None:
        view.error_code = f"0x{run.error.code & 0xFFFFFFFF:08x}"
    if run.retry_after_minutes is not None:
        when = run.next_retry
        at = "time unknown" if when is None else _utc(when)
        view.next_retry = f"{at} ({run.retry_after_minutes} minutes after the failure)"
    cause = run.configuration_failure
    if cause is not None:
        said = (cause["error"] or {}).get("message") or cause["state_name"] or "no error line"
        when = cause["ended"] or cause["started"]
        at = f" ({_utc(datetime.fromisoformat(when))})" if when else ""
        view.cause = f"WCM.log: the WSUS configuration failed{at}: {said}"
    view.phases = [_phase_view(phase) for phase in run.phases]
    _draw(view)
    return view


def _configuration_view(run: ConfigurationRun, stored: Stored) -> ConfigurationView:
    servers = []
    for connection in run.servers:
        where = connection.server + ("" if connection.port is None else f":{connection.port}")
        if connection.ssl is not None:
            where += " (SSL)" if connection.ssl else " (no SSL)"
        servers.append(where + ("" if connection.connected else ": could not connect"))
    subscriptions = None
    if run.subscriptions is not None:
        titles = [c["title"] or c["id"] or "?" for c in run.subscriptions]
        subscriptions = ", ".join(titles[:5]) + (
            f" and {len(titles) - 5} more" if len(titles) > 5 else ""
        )
    errors = []
    for error in run.errors:
        text = error.message or "(no message)"
        if error.code is not None:
            text += f" (0x{error.code & 0xFFFFFFFF:08x})"
        errors.append(text)
    config_state = "—"
    if run.state is not None:
        config_state = f"{run.state} ({run.state_name})" if run.state_name else str(run.state)
    return ConfigurationView(
        run=run,
        state=STATES.get(run.result, "idle"),
        title=run.site or "site ?",
        trigger=run.trigger_text(),
        log=stored.shown(run.log),
        duration=None if run.duration_s is None else format_duration(run.duration_s),
        config_state=config_state,
        servers=servers,
        subscriptions=subscriptions,
        errors=errors,
    )


def _utc(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} UTC"


def _phase_view(phase: Phase) -> PhaseView:
    label, message_id = PHASES.get(phase.name, (phase.name, 0))
    items = "—" if phase.items_total is None else f"{phase.items_done} / {phase.items_total}"
    view = PhaseView(
        name=phase.name,
        label=label,
        message_id=phase.status_message or message_id,
        server=phase.server or "—",
        started=phase.started,
        ended=phase.ended,
        items=items,
        status=phase.status,
    )
    if phase.error is not None:
        parts = [phase.error.message or "(no message)"]
        if phase.error.code is not None:
            parts.append(f"0x{phase.error.code & 0xFFFFFFFF:08x}")
        if phase.error.source:
            parts.append(f"source: {phase.error.source}")
        view.error = " · ".join(parts)
    if phase.update_server_log is not None:
        view.update_server = UpdateServerView.model_validate(phase.update_server_log)
    return view


def _draw(view: RunView) -> None:
    """Bars of the phases (and of the update server's own syncs) on the run's time axis."""
    run = view.run
    known = [t for t in (run.started, run.ended) if t is not None]
    for phase in view.phases:
        known += [t for t in (phase.started, phase.ended) if t is not None]
        if phase.update_server is not None:
            sync = phase.update_server
            known += [t for t in (sync.started, sync.ended) if t is not None]
    if run.result in (RUNNING, STUCK) and run.last_activity and run.last_activity.time:
        known.append(run.last_activity.time)
    if len(known) < 2 or max(known) <= min(known):
        return
    first, last = min(known), max(known)
    view.axis = (first, last)
    span = (last - first).total_seconds()

    def bar(start: datetime, end: datetime, title: str) -> Bar:
        left = (start - first).total_seconds() / span * 100
        width = max((end - start).total_seconds() / span * 100, 0.8)
        return Bar(round(min(left, 99.2), 2), round(min(width, 100 - min(left, 99.2)), 2), title)

    for index, phase in enumerate(view.phases):
        if phase.started is not None:
            # its own end; else the next phase's start or the run's end, whichever is first
            following = [p.started for p in view.phases[index + 1 :] if p.started is not None]
            ends = [phase.ended] if phase.ended else [*following[:1], run.ended]
            ends = [t for t in ends if t is not None and t >= phase.started]
            open_end = last if run.result in (RUNNING, STUCK) else phase.started
            end = min(ends) if ends else open_end
            seconds = (end - phase.started).total_seconds()
            phase.bar = bar(
                phase.started,
                end,
                f"{phase.label}: {_utc(phase.started)} → {_utc(end)} ({format_duration(seconds)})",
            )
        sync = phase.update_server
        if sync is not None:
            end = sync.ended or last
            sync.bar = bar(
                sync.started,
                end,
                f"update server {sync.server}: {sync.result}, {_utc(sync.started)} → "
                f"{_utc(end) if sync.ended else 'no end in the log'}",
            )
