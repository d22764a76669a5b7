"""Configuration runs rebuilt from the WSUS configuration manager's log (WCM.log, component
`SMS_WSUS_CONFIGURATION_MANAGER`): `rebuild_configuration_runs` turns its lines into
`ConfigurationRun`s, which the tracker (`updatesync.logs.tracker`) reports beside the sync
runs (`kind: "configuration"`).

The lines are those of the reference's WCM.log section (`../shared/reference/
configmgr-log-lines.md`, 1.1 to 1.8) and those updatesync writes (docs/log-ledger.md). Real
logs end many lines with a single `~` and fold multi-line values with `~~` (or ` ~`); both
are read. A run:

- **start**: a trigger line: `File notification triggered WCM Inbox.` (trigger `file`),
  `SCF change notification triggered.` (`scf`), `Timed Out...` (`timeout`, also when only
  `Wait timed out after N minutes ...` came before), `Configuration requested by
  SMS_WSUS_SYNC_MANAGER.` (`sync`: a sync found its SUP not configured); or, when no
  trigger line opened a run still waiting for it, the version check `Checking for supported
  version of WSUS ...` or `Populating config from SCF` (`start`). Any other line of a cycle
  with no run open opens one whose trigger the log does not say (None).
- **end**: `Waiting for changes for N minutes`, or the next run's start.
- what it holds: the final **state** (`Setting new configuration state to N (NAME)`, 0..4,
  named as MS-SUPINST's table names them) and every state in order; the **servers**
  connected to (`Attempting connection to WSUS server: X, port: P, useSSL: B` / `Successfully
  connected to server: ...`; `local WSUS server` gives the server `local`); the
  **subscriptions** (`Subscribed Update Categories <xml>`: each `<Category Id="Kind:id">`
  with its CDATA title) and the **languages** (`Subscribed Update Languages ...`); the
  **error**: the first failure line (`Failed to ...`, `System.<...>Exception: ...`,
  `HandleSMSClientPublication failed.`, `Supported WSUS version not found`, `WSUS
  configuration cycle failed: ...`), every one in `errors`.
- **result**: `failed` when a failure line or state 3 is in it; `success` when state 2 is its
  last state, or `Configuration successful`, `Successfully refreshed categories from WSUS
  server` or `No changes - WSUS Server settings are correctly configured` is in it, or it
  ended with the wait after a successful connection and no pending state; `running` for the
  last run of a log with times that has none of these and no end yet; `unknown` otherwise
  (an excerpt that does not say).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from updatesync.logs.runs import FAILED, RUNNING, SUCCESS, UNKNOWN, LogLine, SyncError, iso

CONFIGURATION = "configuration"
STATES = (
    "WSUS_CONFIG_NONE",
    "WSUS_CONFIG_PENDING",
    "WSUS_CONFIG_SUCCESS",
    "WSUS_CONFIG_FAILED",
    "WSUS_CONFIG_SUBSCRIPTION_PENDING",
)
"""WCM's configuration states by value (MS-SUPINST's table)."""
CONFIG_SUCCESS, CONFIG_FAILED = 2, 3
PENDING_STATES = (1, 4)
TRIGGERS = {
    "file": "file notification (WSUSMgr.box)",
    "scf": "site control change",
    "timeout": "hourly timeout",
    "start": "start",
    "sync": "sync manager request",
}

_ADDRESS = r"(?P<server>[^,]+?), port: (?P<port>\d+)(?:, useSSL: (?P<ssl>\w+))?"
_ATTEMPT = rf"Attempting connection to (?:WSUS server: {_ADDRESS}|(?P<local>local WSUS server))"
_CONNECTED = rf"Successfully connected to (?:server: {_ADDRESS}|(?P<local>local WSUS server))"
_OK = (
    r"(?:Configuration successful\b|Successfully refreshed categories from WSUS server"
    r"|No changes - WSUS Server settings are correctly configured)"
)
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (k, re.compile(p, re.IGNORECASE | re.DOTALL))
    for k, p in (
        ("trigger_file", r"File notification triggered WCM Inbox\b"),
        ("trigger_scf", r"SCF change notification triggered\b"),
        ("trigger_timeout", r"Timed Out\.\.\.$"),
        ("trigger_sync", r"Configuration requested by SMS_WSUS_SYNC_MANAGER\b"),
        ("wait_timed_out", r"Wait timed out after \d+ minutes?"),
        ("populating", r"Populating config from SCF\b"),
        ("version_check", r"Checking for supported version of WSUS\b"),
        ("version_missing", r".*\bSupported WSUS version not found\b"),
        ("state", r"Setting new configuration state to (?P<n>\d+)(?: \((?P<name>\w+)\))?"),
        ("attempt", _ATTEMPT),
        ("connected", _CONNECTED),
        ("categories", r"Subscribed Update Categories\b(?P<xml>.*)"),
        ("languages", r"Subscribed Update Languages (?P<list>.*)"),
        ("ok", _OK),
        ("waiting", r"Waiting for changes for (?P<n>\d+) minutes?"),
        ("publication_failed", r"HandleSMSClientPublication failed\b"),
        ("cycle_failed", r"WSUS configuration cycle failed: (?P<rest>.*)"),
        ("exception", r"(?P<rest>System\.[\w.]*Exception: .*)"),
        ("failure", r"(?P<rest>Failed to .*)"),
        (
            "activity",
            r"(?:Checking runtime\b|Found supported assembly\b|Did not find supported version\b"
            r"|Supported WSUS version found\b|Verify Upstream Server settings\b"
            r"|Changes in active SUP list detected\b|SUP\d+: |Updating active SUP groups\b"
            r"|WSUS Server configuration has been updated\b"
            r"|for \S+, no connection account is available)",
        ),
    )
]
FAILURES = frozenset(
    {"version_missing", "publication_failed", "cycle_failed", "exception", "failure"}
)
DISTINCTIVE = frozenset(k for k, _ in PATTERNS) - {"failure", "exception", "activity"}
"""Kinds of line only WCM.log writes: what recognises a WCM.log pasted without its name or
component."""
_CATEGORY = re.compile(
    r"<Category\s+Id\s*=\s*(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)')\s*>(?P<body>.*?)</Category>",
    re.IGNORECASE | re.DOTALL,
)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
_CODE = re.compile(r"\b0x([0-9A-Fa-f]{8})\b")


def normalise(message: str) -> str:
    """A WCM line as matched: the folds (`~~`) as line breaks, without the leading `?` of a
    pasted BOM, the leading or trailing single `~` and surrounding blanks."""
    text = message.replace("~~", "\n").strip().lstrip("\ufeff?~").rstrip("~").strip()
    return text


def classify(message: str) -> tuple[str | None, re.Match[str] | None]:
    """The kind of a WCM line and its match, or (None, None)."""
    text = normalise(message)
    for kind, pattern in PATTERNS:
        match = pattern.match(text)
        if match is not None:
            return kind, match
    return None, None


def parse_categories(xml: str) -> list[dict[str, str | None]]:
    """`<Category Id="Product:<id>"><![CDATA[title]]></Category>` entries → `{id, kind,
    title}` (kind None when the id has no `Kind:` prefix; blanks inside an id, which a wrapped
    line leaves, are dropped). Tolerant of folds and of a shortened XML."""
    found: list[dict[str, str | None]] = []
    for match in _CATEGORY.finditer(xml):
        ident = html.unescape(match["dq"] if match["dq"] is not None else match["sq"] or "")
        ident = re.sub(r"\s+", "", ident)
        kind: str | None = None
        if ":" in ident:
            kind, ident = ident.split(":", 1)
        body = match["body"]
        pieces = _CDATA.findall(body)
        title = "".join(pieces) if pieces else html.unescape(body).strip()
        found.append({"id": ident, "kind": kind, "title": title.strip() or None})
    return found


@dataclass(frozen=True, slots=True)
class ServerConnection:
    """A WSUS server a configuration run connected to (or tried to)."""

    server: str
    port: int | None = None
    ssl: bool | None = None
    connected: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "port": self.port,
            "ssl": self.ssl,
            "connected": self.connected,
        }


@dataclass(slots=True)
class ConfigurationRun:
    """One cycle of the WSUS configuration manager, as WCM.log tells it."""

    site: str | None = None
    server: str | None = None
    trigger: str | None = None
    result: str = UNKNOWN
    started: datetime | None = None
    ended: datetime | None = None
    states: list[int] = field(default_factory=list)
    servers: list[ServerConnection] = field(default_factory=list)
    subscriptions: list[dict[str, str | None]] | None = None
    languages: list[str] | None = None
    errors: list[SyncError] = field(default_factory=list)
    wait_minutes: int | None = None
    last_known: datetime | None = None
    last_message: str | None = None
    log: str | None = None
    # bookkeeping of the rebuild
    version_checked: bool = field(default=False, repr=False)
    ok_line: bool = field(default=False, repr=False)
    closed: bool = field(default=False, repr=False)
    lines: int = field(default=0, repr=False)

    kind = CONFIGURATION

    @property
    def state(self) -> int | None:
        return self.states[-1] if self.states else None

    @property
    def state_name(self) -> str | None:
        state = self.state
        if state is None:
            return None
        return STATES[state] if 0 <= state < len(STATES) else None

    @property
    def error(self) -> SyncError | None:
        return self.errors[0] if self.errors else None

    @property
    def first_time(self) -> datetime | None:
        return self.started or self.ended or self.last_known

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return round((self.ended - self.started).total_seconds(), 3)

    def trigger_text(self) -> str:
        if self.trigger is None:
            return "trigger not in the log"
        return TRIGGERS.get(self.trigger, self.trigger)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": CONFIGURATION,
            "site": self.site,
            "server": self.server,
            "trigger": self.trigger,
            "result": self.result,
            "started": iso(self.started),
            "ended": iso(self.ended),
            "duration_s": self.duration_s,
            "state": self.state,
            "state_name": self.state_name,
            "states": list(self.states),
            "servers": [s.to_json() for s in self.servers],
            "subscriptions": self.subscriptions,
            "languages": self.languages,
            "error": None if self.error is None else self.error.to_json(),
            "errors": [e.to_json() for e in self.errors],
            "wait_minutes": self.wait_minutes,
            "last_activity": {"time": iso(self.last_known), "message": self.last_message},
            "log": self.log,
        }

    def link(self) -> dict[str, Any]:
        """What a sync run that failed because of this run names (`configuration_failure`)."""
        return {
            "site": self.site,
            "started": iso(self.started),
            "ended": iso(self.ended),
            "state": self.state,
            "state_name": self.state_name,
            "error": None if self.error is None else self.error.to_json(),
            "log": self.log,
        }


def _failure(kind: str, match: re.Match[str], text: str) -> SyncError:
    if kind == "publication_failed":
        message = "HandleSMSClientPublication failed"
    elif kind == "version_missing":
        message = "Supported WSUS version not found"
    else:
        message = (match["rest"].strip().splitlines() or [""])[0].strip().rstrip(".")
    code = _CODE.search(text)
    return SyncError(None, message or None, int(code[1], 16) if code else None)


class _Rebuild:
    def __init__(self, site: str | None, server: str | None, log: str | None) -> None:
        self.site, self.server, self.log = site, server, log
        self.runs: list[ConfigurationRun] = []
        self.timed_out = False

    @property
    def cur(self) -> ConfigurationRun | None:
        run = self.runs[-1] if self.runs else None
        return None if run is None or run.closed else run

    def open(self, trigger: str | None) -> ConfigurationRun:
        self.close()
        if trigger in (None, "start") and self.timed_out:
            trigger = "timeout"
        self.timed_out = False
        run = ConfigurationRun(site=self.site, server=self.server, trigger=trigger, log=self.log)
        self.runs.append(run)
        return run

    def close(self, line: LogLine | None = None) -> None:
        run = self.cur
        if run is None:
            return
        run.closed = True
        if line is not None:
            run.ended = line.time
        elif run.last_known is not None:
            run.ended = run.last_known
        run.result = _verdict(run, ended=line is not None)

    def feed(self, line: LogLine) -> None:
        kind, match = classify(line.message)
        if kind is None or match is None:
            return
        if kind == "wait_timed_out":
            self.timed_out = True
            return
        if kind == "waiting":
            run = self.cur
            if run is not None:
                run.wait_minutes = int(match["n"])
                self.touch(run, line)
                self.close(line)
            return
        run = self.cur
        if kind.startswith("trigger_"):
            run = self.open(kind.removeprefix("trigger_"))
        elif kind == "populating":
            fresh = run is not None and run.trigger == "scf" and run.lines == 1
            if not fresh:
                run = self.open("start")
        elif kind == "version_check":
            if run is None or run.version_checked:
                run = self.open("start")
            run.version_checked = True
        elif run is None:
            run = self.open(None)
        if run.started is None and run.lines == 0:
            run.started = line.time
        self.touch(run, line)
        self.apply(run, kind, match, line)

    @staticmethod
    def touch(run: ConfigurationRun, line: LogLine) -> None:
        run.lines += 1
        if line.time is not None:
            run.last_known = line.time
        run.last_message = normalise(line.message).splitlines()[0] if line.message.strip() else ""

    def apply(self, run: ConfigurationRun, kind: str, match: re.Match[str], line: LogLine) -> None:
        if kind == "state":
            run.states.append(int(match["n"]))
        elif kind in ("attempt", "connected"):
            _connection(run, match, connected=kind == "connected")
        elif kind == "categories":
            run.subscriptions = parse_categories(match["xml"])
        elif kind == "languages":
            listed = match["list"].strip()
            run.languages = [x.strip() for x in re.split(r"[,;]\s*|\s+", listed) if x.strip()]
        elif kind == "ok":
            run.ok_line = True
        elif kind in FAILURES:
            run.errors.append(_failure(kind, match, normalise(line.message)))


def _connection(run: ConfigurationRun, match: re.Match[str], *, connected: bool) -> None:
    if match["local"]:
        server, port, ssl = "local", None, None
    else:
        server = match["server"].strip().rstrip(".").lower()
        port = int(match["port"])
        ssl = None if match["ssl"] is None else match["ssl"].lower() == "true"
    for index, known in enumerate(run.servers):
        if known.server == server and (port is None or known.port in (None, port)):
            run.servers[index] = ServerConnection(
                server,
                port if port is not None else known.port,
                ssl if ssl is not None else known.ssl,
                known.connected or connected,
            )
            return
    run.servers.append(ServerConnection(server, port, ssl, connected))


def _verdict(run: ConfigurationRun, *, ended: bool) -> str:
    if run.errors or CONFIG_FAILED in run.states:
        return FAILED
    if run.state == CONFIG_SUCCESS or run.ok_line:
        return SUCCESS
    connected = any(s.connected for s in run.servers)
    if ended and connected and run.state not in PENDING_STATES:
        return SUCCESS
    return UNKNOWN


def rebuild_configuration_runs(
    lines: list[LogLine],
    *,
    site: str | None = None,
    server: str | None = None,
    log: str | None = None,
) -> list[ConfigurationRun]:
    """The configuration runs in one WCM.log, oldest first (see the module notes)."""
    rebuild = _Rebuild(site.upper() if site else None, server.lower() if server else None, log)
    for line in lines:
        rebuild.feed(line)
    last = rebuild.cur
    if last is not None:
        last.closed = True
        verdict = _verdict(last, ended=False)
        running = verdict == UNKNOWN and last.last_known is not None
        last.result = RUNNING if running else verdict
        last.ended = None if running else last.last_known
    return rebuild.runs


def is_wcm_line(message: str) -> bool:
    """Whether a line is one only WCM.log writes."""
    kind, _ = classify(message)
    return kind in DISTINCTIVE
