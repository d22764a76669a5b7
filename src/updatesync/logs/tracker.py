"""The sync tracker: every sync run of a hierarchy, rebuilt from the logs of its servers.

`track_paths(paths)` finds the logs under the given files and folders (recursively, several
servers at once), reads each in whichever form it is in, rebuilds the sync runs of every
WSyncMgr.log (`updatesync.logs.runs`, `kind: "sync"`) and the configuration runs of every
WCM.log (`updatesync.logs.configuration`, `kind: "configuration"`), and completes them from
the other logs:

- **which logs**: in a folder, the files whose name holds `WSyncMgr`, `WCM` (as a word),
  `SMSDBMON`, `SMSProv` or `SoftwareDistribution` (any case) and ends in `.log`, `.lo_` or
  `.txt`; `X.lo_` is read before `X.log` (rollover). A file named on the command line is read
  whatever its name; its kind then comes from its content: the component of its entries
  (`SMS_WSUS_SYNC_MANAGER`, `SMS_WSUS_CONFIGURATION_MANAGER`, ...), else the lines only
  WCM.log writes (`updatesync.logs.configuration.is_wcm_line`) against the sync manager's.
  Such a file that holds the lines of several components (CMTrace's merged view of WCM.log
  and WSyncMgr.log, or both pasted into one ticket) is read as one log per kind (`read_logs`).
- **forms**: CMTrace (`<![LOG[...]LOG]!><time=... date=...>`), the simple site-server form
  (`message  $$<component><date time+bias><thread=...>`), CMTrace's copied form
  (`message<TAB>component`, no times: only STATMSG GMTDATE gives times), lines pasted from
  an article or a post (`updatesync.logs.pasted`: Learn's `message  COMPONENT`, CMTrace's
  columns, a date prefix, the bare message; taken only when some line is one the tracker
  knows), and the update server's SoftwareDistribution.log.
- **a sync that failed with `WSUS server not configured`** names the failed configuration
  run behind it (`configuration_failure`): the latest failed run of the WCM.log of the same
  site (a WCM.log with no site of its own takes that of a WSyncMgr.log in its folder) that
  is not later than the failure (runs whose times are not in the log are taken in order).
- **site and server of a log**: the log's own STATMSG lines (`SITE=`, `SYS=`); else its name
  (`CS1-WSyncMgr.rendered.txt`: a 3-character prefix is a site code, a longer one such as
  `CS1SITE-SoftwareDistribution.log` a server name); else its folder, or the folder above a
  `logs` folder (`.../CS1/logs/WSyncMgr.log`: a 3-character upper-case folder name is a site
  code; `.../cs1site.contoso.com/logs/...`: a dotted name is a server).
- **SoftwareDistribution.log**: each synchronization of the update server (start
  `StartSubscriptionManually` or event 381/382, end event 384 or 386) is attached to the
  update-server or replica phase of the same server that it falls in (started no earlier
  than a minute before the phase's status message, before the phase's end or the next
  known time), as the phase's `update_server_log`. While a run is open, the update server's
  later lines count as its activity.
- **SMSProv.log and SMSDBMON.log** of the same site: for a run started by a local request,
  the first `SyncNow`, `RCV: UPDATE on Update_SyncStatus ... [SELF|FULL]` or `SND: Dropped
  ...SELF.SYN|FULL.SYN` since the site's previous run gives `requested`; a FULL there makes
  the trigger `full` (WSyncMgr.log says "local request" for both).
- **stuck**: a run with no end whose last activity is more than `stuck_after` before the
  reference time: `now` when given, else the newest time in the logs of its site (its
  WSyncMgr.log, the site's SMSProv/SMSDBMON logs, the SoftwareDistribution.log of its
  servers), the moment those logs were collected.

`Tracker` keeps what it read and rereads a file only when it changed (size, time, identity
of the file or of its `.lo_`), for `--follow`; `Tracker.changed(now)` gives the runs that are
new or different since the previous call.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from updatesync.logs.cmtrace import OPEN, LogEntry, parse_cmtrace, parse_rendered
from updatesync.logs.configuration import (
    ConfigurationRun,
    is_wcm_line,
    rebuild_configuration_runs,
)
from updatesync.logs.configuration import classify as classify_wcm
from updatesync.logs.pasted import parse_pasted
from updatesync.logs.rebuild import rebuild_runs
from updatesync.logs.rollover import read_rolled_lines, rolled_path
from updatesync.logs.runs import (
    FAILED,
    REPLICA,
    RUNNING,
    STUCK,
    SUCCESS,
    UNKNOWN,
    UPDATE_SERVER,
    Activity,
    LogLine,
    SyncRun,
    UpdateServerSync,
    mark_stuck,
)
from updatesync.logs.simple import parse_simple
from updatesync.logs.softwaredistribution import (
    EVENT_MANUAL_SYNC_STARTED,
    EVENT_SCHEDULED_SYNC_STARTED,
    EVENT_SYNC_FAILED,
    EVENT_SYNC_SUCCEEDED,
    MANUAL_SYNC_SOURCE,
    SdEntry,
    parse_softwaredistribution,
)
from updatesync.logs.status_messages import StatusMessage, StatusMessageFormatError, parse_statmsg
from updatesync.logs.sync_lines import classify
from updatesync.vocabulary import (
    DATABASE_NOTIFICATION_MONITOR,
    PROVIDER,
    SYNC_MANAGER,
    WSUS_CONFIGURATION_MANAGER,
)

__all__ = [
    "DEFAULT_STUCK_AFTER",
    "ConfigurationRun",
    "LogFile",
    "Run",
    "SyncRun",
    "Tracker",
    "failed_latest",
    "find_logs",
    "track_paths",
]

Run = SyncRun | ConfigurationRun
"""What the tracker reports: a sync run or a configuration run (`run.kind`)."""

DEFAULT_STUCK_AFTER = timedelta(minutes=60)
CLOCK_SKEW = timedelta(minutes=1)
"""How much earlier than its phase's status message an update server's sync may start (the
site server's and the update server's clocks differ)."""

WSYNCMGR = "wsyncmgr"
WCM = "wcm"
SMSDBMON = "smsdbmon"
SMSPROV = "smsprov"
SOFTWAREDISTRIBUTION = "softwaredistribution"
KINDS = (WSYNCMGR, WCM, SMSDBMON, SMSPROV, SOFTWAREDISTRIBUTION)
SUFFIXES = (".log", ".lo_", ".txt")
_COMPONENT_KINDS = {
    SYNC_MANAGER: WSYNCMGR,
    WSUS_CONFIGURATION_MANAGER: WCM,
    DATABASE_NOTIFICATION_MONITOR: SMSDBMON,
    PROVIDER.upper(): SMSPROV,
}
_WCM_NAME = re.compile(r"(?<![a-z])wcm(?![a-z])")
_SITE_FOLDER = re.compile(r"(?=.*[A-Z])[A-Z0-9]{3}")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)+")
_NAME_PREFIX = re.compile(
    r"(?P<prefix>[A-Za-z0-9][A-Za-z0-9.-]*?)[-_ ]"
    r"(?=(?:wsyncmgr|wcm(?![a-z])|smsdbmon|smsprov|softwaredistribution))",
    re.IGNORECASE,
)
_SYNC_NOW = re.compile(r"SMS_SoftwareUpdate::SyncNow\b")
_DBMON_RCV = re.compile(
    r"RCV: UPDATE on Update_SyncStatus for SyncNotif_WSyncMgr \[(?P<flag>\w+)\]"
)
_DBMON_SND = re.compile(r"SND: Dropped .*?(?P<flag>SELF|FULL)\.SYN\b", re.IGNORECASE)


# --- finding the logs ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogFile:
    """One log to read: `path` is `X.log` (its `X.lo_` is read first) or a copied `.txt`.
    `site` and `server` are what its name and folder say (None: they say nothing)."""

    path: Path
    kind: str | None
    site: str | None = None
    server: str | None = None


def kind_of_name(name: str) -> str | None:
    lowered = name.lower()
    found = next((k for k in KINDS if k != WCM and k in lowered), None)
    if found is None and _WCM_NAME.search(lowered):
        return WCM
    return found


def _current_path(path: Path) -> Path:
    """`X.lo_` → `X.log` (the pair is read from its `.log` name)."""
    return path.with_suffix(".log") if path.suffix.lower() == ".lo_" else path


def path_hints(path: Path) -> tuple[str | None, str | None]:
    """(site code, server) that a log's name and folders give, each None when they do not."""
    site = server = None
    match = _NAME_PREFIX.match(path.name)
    if match is not None:
        prefix = match["prefix"]
        if len(prefix) == 3 and prefix.isalnum():
            site = prefix.upper()
        else:
            server = prefix.lower()
    folders = [path.parent]
    if path.parent.name.lower() in ("logs", "logfiles", "log"):
        folders.append(path.parent.parent)
    for folder in folders:
        name = folder.name
        if site is None and _SITE_FOLDER.fullmatch(name):
            site = name
        elif server is None and _HOST.fullmatch(name) and not name.replace(".", "").isdigit():
            server = name.lower()
    return site, server


def find_logs(paths: Iterable[str | os.PathLike[str]]) -> list[LogFile]:
    """The logs under `paths` (files, or folders searched recursively), each once."""
    found: dict[Path, LogFile] = {}  # by resolved path: each file once however named
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                kind = kind_of_name(candidate.name)
                if kind is None or candidate.suffix.lower() not in SUFFIXES:
                    continue
                if candidate.is_file():
                    current = _current_path(candidate)
                    found.setdefault(
                        current.resolve(), LogFile(current, kind, *path_hints(current))
                    )
        elif path.is_file() or rolled_path(path).is_file():
            current = _current_path(path)
            found.setdefault(
                current.resolve(), LogFile(current, kind_of_name(path.name), *path_hints(current))
            )
        else:
            raise FileNotFoundError(f"no such log file or folder: {path}")
    return list(found.values())


# --- reading one log -----------------------------------------------------------------------


@dataclass(slots=True)
class ReadLog:
    """A log as read: its lines (component logs) or entries (SoftwareDistribution.log)."""

    file: LogFile
    kind: str
    form: str
    lines: list[LogLine] = field(default_factory=list)
    entries: list[SdEntry] = field(default_factory=list)
    site: str | None = None
    server: str | None = None
    newest: datetime | None = None


def _statmsg(message: str) -> StatusMessage | None:
    if not message.startswith("STATMSG:"):
        return None
    try:
        return parse_statmsg(message)
    except StatusMessageFormatError:
        return None


def _component_entries(raw: list[str]) -> tuple[str, list[LogEntry]]:
    if any(OPEN in line for line in raw):
        return "cmtrace", list(parse_cmtrace(raw))
    simple = list(parse_simple(raw))
    nonblank = sum(1 for line in raw if line.strip())
    if simple and len(simple) * 2 >= nonblank:
        return "simple", simple
    if not any("\t" in line for line in raw):
        pasted = list(parse_pasted(raw))
        if any(_known(entry) for entry in pasted):
            return "pasted", pasted
    pairs = parse_rendered(raw)
    return "rendered", [LogEntry(message=m, component=c) for m, c in pairs]


def _known(entry: LogEntry) -> bool:
    """A line the tracker knows: of a known component, or one of its kinds of line."""
    if entry.component.strip().upper() in _COMPONENT_KINDS:
        return True
    text = entry.message
    return (
        classify(text)[0] is not None
        or classify_wcm(text)[0] is not None
        or _statmsg(text.strip()) is not None
        or any(p.search(text) for p in (_SYNC_NOW, _DBMON_RCV, _DBMON_SND))
    )


def _entry_kind(entry: LogEntry) -> str | None:
    """The kind of log one entry belongs to: its component's, else (no component) the kind
    of line it is; None for another component's line or a line of no known kind."""
    component = entry.component.strip()
    if component:
        return _COMPONENT_KINDS.get(component.upper())
    if is_wcm_line(entry.message):
        return WCM
    if classify(entry.message)[0] is not None or entry.message.startswith("STATMSG:"):
        return WSYNCMGR
    if classify_wcm(entry.message)[0] is not None:
        return WCM  # a WCM failure line (`System.Net.WebException: ...`)
    return None


def _kind_of_entries(entries: list[LogEntry]) -> str:
    """The kind of a log named nothing telling: its entries' components, else its lines."""
    counts: dict[str, int] = {}
    for entry in entries:
        found = _COMPONENT_KINDS.get(entry.component.strip().upper())
        if found:
            counts[found] = counts.get(found, 0) + 1
    if not counts:  # the lines only WCM.log writes against the sync manager's
        for entry in entries:
            if is_wcm_line(entry.message):
                counts[WCM] = counts.get(WCM, 0) + 1
            elif classify(entry.message)[0] is not None or entry.message.startswith("STATMSG:"):
                counts[WSYNCMGR] = counts.get(WSYNCMGR, 0) + 1
    if not counts and any(classify_wcm(e.message)[0] is not None for e in entries):
        return WCM  # a WCM failure line alone (`System.Net.WebException: ...`)
    return max(counts, key=lambda k: counts[k]) if counts else WSYNCMGR


def _split_by_kind(entries: list[LogEntry]) -> dict[str, list[LogEntry]] | None:
    """A log that holds the lines of several components (CMTrace's merged view, or WSyncMgr
    and WCM lines pasted together), as one list of entries per kind, in order; None when
    its lines are of one kind. When every entry names its component, that decides; a line
    naming none (a pasted excerpt) goes by what it says, and a line of no known kind (a
    failure's second line, an XML dump) stays with the line before it."""
    named = any(entry.component.strip() for entry in entries)
    kinds = [
        _COMPONENT_KINDS.get(e.component.strip().upper()) if named else _entry_kind(e)
        for e in entries
    ]
    if len({k for k in kinds if k is not None}) < 2:
        return None
    first = next(k for k in kinds if k is not None)
    parts: dict[str, list[LogEntry]] = {}
    current = first
    for entry, kind in zip(entries, kinds, strict=True):
        if kind is not None:
            current = kind
        elif named and entry.component.strip():
            continue  # a component the tracker does not read (SMS_SITE_CONTROL_MANAGER, ...)
        parts.setdefault(current, []).append(entry)
    return parts


def read_logs(file: LogFile) -> list[ReadLog]:
    """Read one log (with its `.lo_`) in whichever form it is in: one `ReadLog`, or one per
    kind when a log named nothing telling holds several components' lines (CMTrace's
    merged view of WSyncMgr.log and WCM.log, or their lines pasted together into one file)."""
    raw = list(read_rolled_lines(file.path))
    kind = file.kind
    if kind == SOFTWAREDISTRIBUTION or (kind is None and _looks_like_sd(raw)):
        entries = list(parse_softwaredistribution(raw))
        newest = max((e.timestamp for e in entries), default=None)
        return [
            ReadLog(
                file,
                SOFTWAREDISTRIBUTION,
                "softwaredistribution",
                entries=entries,
                site=file.site,
                server=file.server,
                newest=newest,
            )
        ]
    form, entries_ = _component_entries(raw)
    if kind is not None:
        return [_component_log(file, kind, form, entries_)]
    parts = _split_by_kind(entries_)
    if parts is None:
        return [_component_log(file, _kind_of_entries(entries_), form, entries_)]
    logs = [_component_log(file, k, form, part) for k, part in parts.items()]
    # a WCM part with no STATMSG of its own takes the site and server the other parts name
    named = next((log for log in logs if log.site is not None), None)
    for log in logs:
        if named is not None and log.site is None:
            log.site, log.server = named.site, named.server
    return logs


def read_log(file: LogFile) -> ReadLog:
    """Read one log (with its `.lo_`) as one kind of log (see `read_logs`)."""
    logs = read_logs(file)
    return logs[0] if len(logs) == 1 else max(logs, key=lambda log: len(log.lines))


def _component_log(file: LogFile, kind: str, form: str, entries: list[LogEntry]) -> ReadLog:
    lines = [LogLine(e.message, e.time, _statmsg(e.message), e.line_number) for e in entries]
    site, server = file.site, file.server
    first = next((line.statmsg for line in lines if line.statmsg is not None), None)
    if first is not None:
        site, server = first.site_code.upper(), first.system.lower()
    times = [line.at for line in lines if line.at is not None]
    return ReadLog(
        file, kind, form, lines=lines, site=site, server=server, newest=max(times, default=None)
    )


def _looks_like_sd(raw: list[str]) -> bool:
    head = [line for line in raw[:20] if line.strip()]
    return (
        bool(head)
        and re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} UTC\t", head[0]) is not None
    )


def _signature(path: Path) -> tuple[Any, ...]:
    parts: list[Any] = []
    for candidate in (rolled_path(path), path):
        try:
            st = os.stat(candidate)
        except FileNotFoundError:
            parts.append(None)
            continue
        parts.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(parts)


# --- the update server's syncs and the sync requests ---------------------------------------


def update_server_syncs(log: ReadLog) -> list[UpdateServerSync]:
    """The synchronizations in a SoftwareDistribution.log, oldest first."""
    syncs: list[UpdateServerSync] = []
    current: dict[str, Any] | None = None

    def close(result: str | None = None) -> None:
        nonlocal current
        if current is not None:
            if result is not None:
                current["result"] = result
            current.pop("only_start")
            syncs.append(UpdateServerSync(**current))
        current = None

    for entry in log.entries:
        event = entry.event_id
        starts = entry.source == MANUAL_SYNC_SOURCE or event in (
            EVENT_MANUAL_SYNC_STARTED,
            EVENT_SCHEDULED_SYNC_STARTED,
        )
        how = None
        if event == EVENT_SCHEDULED_SYNC_STARTED:
            how = "scheduled"
        elif starts:
            how = "manual"
        if starts:
            if current is not None and current["result"] == RUNNING:
                if current["only_start"] and entry.timestamp - current["started"] <= CLOCK_SKEW:
                    current["how"] = current["how"] or how
                    current["last_time"], current["last_message"] = entry.timestamp, entry.message
                    continue
                close("unknown")
            elif current is not None:
                close()
            current = {
                "server": log.server,
                "started": entry.timestamp,
                "ended": None,
                "result": RUNNING,
                "how": how,
                "message": None,
                "last_time": entry.timestamp,
                "last_message": entry.message,
                "log": str(log.file.path),
                "only_start": True,
            }
            continue
        if current is None or current["result"] != RUNNING:
            continue
        current["last_time"], current["last_message"] = entry.timestamp, entry.text
        current["only_start"] = False
        if event in (EVENT_SYNC_SUCCEEDED, EVENT_SYNC_FAILED):
            current["ended"] = entry.timestamp
            current["result"] = "succeeded" if event == EVENT_SYNC_SUCCEEDED else "failed"
            details = entry.event
            current["message"] = details.message if details is not None else entry.message
    close()
    return syncs


def _same_host(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    if "." in a and "." in b:
        return False
    return a.split(".")[0] == b.split(".")[0]


@dataclass(frozen=True, slots=True)
class _Request:
    site: str
    time: datetime
    full: bool


def sync_requests(log: ReadLog) -> list[_Request]:
    """SyncNow calls (SMSProv.log) and inbox drops (SMSDBMON.log) with a time and a site."""
    if log.site is None:
        return []
    found: list[_Request] = []
    for line in log.lines:
        if line.time is None:
            continue
        text = line.message
        if log.kind == SMSPROV and _SYNC_NOW.search(text):
            found.append(_Request(log.site, line.time, False))
            continue
        match = _DBMON_RCV.search(text) or _DBMON_SND.search(text)
        if log.kind == SMSDBMON and match is not None:
            found.append(_Request(log.site, line.time, match["flag"].upper() == "FULL"))
    return found


# --- putting it together -------------------------------------------------------------------


def _attach_update_server_syncs(runs: list[SyncRun], syncs: list[UpdateServerSync]) -> None:
    used: set[int] = set()
    for run in runs:
        for index, phase in enumerate(run.phases):
            if phase.name not in (UPDATE_SERVER, REPLICA) or phase.started is None:
                continue
            upper = phase.ended
            if upper is None:
                later = [p.started for p in run.phases[index + 1 :] if p.started is not None]
                if later:
                    upper = later[0]
                elif run.ended is not None and run.ended >= phase.started:
                    upper = run.ended
            for number, sync in enumerate(syncs):
                if number in used or not _same_host(sync.server, phase.server):
                    continue
                if sync.started < phase.started - CLOCK_SKEW:
                    continue
                if upper is not None and sync.started > upper + CLOCK_SKEW:
                    continue
                used.add(number)
                phase.update_server_log = sync
                if run.result == RUNNING and (
                    run.last_known is None or sync.last_time > run.last_known
                ):
                    run.last_known = sync.last_time
                    run.last_activity = Activity(
                        sync.last_time,
                        f"update server {sync.server}: {sync.last_message}",
                        sync.log,
                    )
                break


def _attach_requests(runs: list[SyncRun], requests: list[_Request]) -> None:
    previous: dict[str | None, datetime] = {}
    for run in sorted(
        (r for r in runs if r.started is not None), key=lambda r: (r.site or "", r.started)
    ):
        assert run.started is not None
        since = previous.get(run.site)
        previous[run.site] = run.started
        if run.trigger not in (None, "local", "full"):
            continue
        mine = [
            q
            for q in requests
            if q.site == run.site and q.time <= run.started and (since is None or q.time > since)
        ]
        if not mine:
            continue
        run.requested = min(q.time for q in mine)
        if any(q.full for q in mine):
            run.trigger = "full"
        elif run.trigger is None:
            run.trigger = "local"


def _wcm_site(log: ReadLog, logs: Sequence[ReadLog]) -> tuple[str | None, str | None]:
    """A WCM.log's site and server: its own (name, folder), else those of a WSyncMgr.log in
    the same folder (WCM.log names neither)."""
    site, server = log.site, log.server
    for other in logs:
        if other.kind == WSYNCMGR and other.file.path.parent == log.file.path.parent:
            site, server = site or other.site, server or other.server
    return site, server


def _link_configuration(runs: list[SyncRun], configurations: list[ConfigurationRun]) -> None:
    """Each `WSUS server not configured` failure gets the failed configuration run behind it:
    the latest failed run of the same site not later than the failure."""
    for run in runs:
        if not run.not_configured:
            continue
        when = run.ended or run.started or run.last_known
        behind: ConfigurationRun | None = None
        for candidate in configurations:  # oldest first
            if candidate.site != run.site or candidate.result != FAILED:
                continue
            at = candidate.first_time
            if when is not None and at is not None and at > when:  # one server, one clock
                continue
            if behind is None or at is None or behind.first_time is None or at >= behind.first_time:
                behind = candidate
        if behind is not None:
            run.configuration_failure = behind.link()


def assemble(logs: Sequence[ReadLog], *, stuck_after: timedelta, now: datetime | None) -> list[Run]:
    """Runs of every WSyncMgr log, completed from the other logs and judged for stuck, and
    the configuration runs of every WCM log."""
    runs_by_log: list[tuple[ReadLog, list[SyncRun]]] = []
    configurations: list[ConfigurationRun] = []
    syncs: list[UpdateServerSync] = []
    requests: list[_Request] = []
    site_newest: dict[str, datetime] = {}
    server_newest: dict[str, datetime] = {}
    for log in logs:
        if log.kind == WCM:
            site, server = _wcm_site(log, logs)
            configurations += rebuild_configuration_runs(
                log.lines, site=site, server=server, log=str(log.file.path)
            )
        if log.kind == SOFTWAREDISTRIBUTION:
            syncs.extend(update_server_syncs(log))
            if log.server and log.newest:
                server_newest[log.server] = max(
                    log.newest, server_newest.get(log.server, log.newest)
                )
            continue
        if log.site and log.newest:
            site_newest[log.site] = max(log.newest, site_newest.get(log.site, log.newest))
        if log.kind == WSYNCMGR:
            runs = rebuild_runs(log.lines, site=log.site, server=log.server, log=str(log.file.path))
            runs_by_log.append((log, runs))
        else:
            requests.extend(sync_requests(log))
    everything: list[SyncRun] = []
    for log, runs in runs_by_log:
        _attach_update_server_syncs(runs, syncs)
        for run in runs:
            reference = now
            if reference is None:
                candidates = [log.newest, site_newest.get(run.site or "")]
                servers = [run.server, *(p.server for p in run.phases)]
                candidates += [
                    t for s, t in server_newest.items() if any(_same_host(s, x) for x in servers)
                ]
                reference = max((c for c in candidates if c is not None), default=None)
            mark_stuck(run, reference, stuck_after)
        everything.extend(runs)
    _attach_requests(everything, requests)
    _link_configuration(everything, configurations)
    return sorted([*everything, *configurations], key=_order)


def failed_latest(runs: Iterable[Run]) -> list[Run]:
    """The runs that are the latest of their site and kind and failed (`runs` in the
    tracker's order: by start, runs with no time last). Runs that name no site go by their
    log."""
    latest: dict[tuple[str, str], Run] = {}
    for run in runs:
        latest[(run.kind, run.site or f"log {run.log}")] = run
    return [run for run in latest.values() if run.result == FAILED]


def _order(run: Run) -> tuple[int, str, str]:
    first = run.first_time
    return (1 if first is None else 0, "" if first is None else first.isoformat(), run.site or "")


class Tracker:
    """The runs in the logs under `paths`, rereading only the logs that changed."""

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.stuck_after = stuck_after
        self._cache: dict[Path, tuple[tuple[Any, ...], list[ReadLog]]] = {}
        self._shown: dict[tuple[Any, ...], dict[str, Any]] = {}

    def logs(self) -> list[ReadLog]:
        """Every log under the paths, read (again only when it changed)."""
        read: list[ReadLog] = []
        files = find_logs(self.paths)
        for file in files:
            signature = _signature(file.path)
            cached = self._cache.get(file.path)
            if cached is None or cached[0] != signature:
                cached = (signature, read_logs(file))
                self._cache[file.path] = cached
            read.extend(cached[1])
        known = {f.path for f in files}
        for gone in [p for p in self._cache if p not in known]:
            del self._cache[gone]
        return read

    def runs(self, now: datetime | None = None) -> list[Run]:
        return assemble(self.logs(), stuck_after=self.stuck_after, now=now)

    def changed(self, now: datetime | None = None) -> list[Run]:
        """The runs that are new or differ from what the previous call returned."""
        out: list[Run] = []
        ordinals: dict[tuple[str | None, str | None], int] = {}
        for run in self.runs(now):
            number = ordinals.get((run.log, run.site), 0)
            ordinals[(run.log, run.site)] = number + 1
            key = (run.log, run.site, run.started or number)
            shown = run.to_json()
            if self._shown.get(key) != shown:
                self._shown[key] = shown
                out.append(run)
        return out


def track_paths(
    paths: Iterable[str | os.PathLike[str]],
    *,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    now: datetime | None = None,
) -> list[Run]:
    """Every sync run and configuration run in the logs under `paths`, ordered by start
    (runs with no known time last). Raises FileNotFoundError for a path that does not
    exist."""
    return Tracker(paths, stuck_after=stuck_after).runs(now)


RESULTS = (SUCCESS, FAILED, RUNNING, STUCK, UNKNOWN)
