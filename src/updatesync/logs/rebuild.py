"""Sync runs rebuilt from the sync manager's log (WSyncMgr.log): `rebuild_runs` turns the
log's lines into runs (the model is `updatesync.logs.runs`).

Input is a list of `LogLine`: the message of one entry, the entry's own UTC time (None in the
form CMTrace copies to the clipboard, which has no times) and, for a `STATMSG:` line, the
status message it carries. The lines are those of SPEC sections 2 to 4, as ConfigMgr and
updatesync write them; see `updatesync.logs.tracker` for how the logs are found and read.

A run, and what ends up in it:

- **start**: `Starting Sync`, or status message 6701 when no `Starting Sync` opened a run
  still waiting for it. The wake-up lines before it (`Wakeup for scheduled regular sync`,
  `Found local sync request file`, `Found parent sync notification file CS1.SYN.`, a line
  naming `FULL.SYN`) and `Performing sync on local request | parent request | regular
  schedule` give the **trigger**: `schedule`, `local`, `full`, `parent`, and `retry` (`Wakeup
  for a polling cycle`, `Performing sync on retry schedule`); None when the log does not say.
- **phases**, in the order they ran, each `{name, status_message, server, started, ended,
  items_done, items_total, status}` (status `running`, `done`, `failed`):
  `update_server` (6704; the default SUP's update server; items: the last `processed a out
  of b` line, updates or, for a replica-type sync, other items), `site_database_categories`
  (6705; `sync: SMS synchronizing categories, processed a out of b`), `site_database_updates`
  (6705; `sync: SMS synchronizing updates, processed a out of b`), one `replica` per replica
  SUP (6706; `sync: Replica WSUS synchronizing other items, processed a out of b`).
- **end**: 6702 (`success`), 6703 (`failed`: ISTR0 the source, ISTR1 the message, LE= the
  code; the line `Sync failed: <message>. Source: <source>` gives the same when 6703 is
  missing), `Sync failed. Will retry in N minutes` (the retry). A 6703 that follows
  `Failed to synchronize replica WSUS server ...` (or whose ISTR1 starts with `Replica WSUS
  server`) fails that replica, not the run. A run still open when the next one starts never
  ended: it is `failed` with that as its error. `Too many consecutive failures. Aborting
  sync.` fails it too. A run still open at the end of the log is `running` (`mark_stuck`
  turns it `stuck` when nothing happened in it for too long), except a run with no start
  (`Starting Sync`, 6701) and either no phase or no time (an excerpt of lines from inside a
  run, such as update failures only): `unknown`. Lines that end a run (a failure line, 6703,
  the retry notice) open one when none is open, so an excerpt that holds only them is still
  a (failed) run.
- **update failures**: `Failed to sync update <id>. Error: <message>. Source: <source>`
  (MS-DOTNET), each `{update_id, message, source}`; the sync goes on.
- lines after the end (`Sync succeeded ...`, `Updated N items ...`, `Sync time: ...`, the
  replicas of a top-level site, which sync after 6702, `Sending sync notification to child
  site(s): PS1, PS2`) still belong to the run, until the next run starts.

Times: a STATMSG line's time is its GMTDATE (UTC, the status message's own time, as the
site database records it); any other line's time is the entry's time. `started` is the 6701
time (else the `Starting Sync` line's); `ended` the 6702/6703 time (else that of the line
that ended the run); a phase's `ended` is the time of the line that ended it. Nothing is
interpolated: a time the log does not give stays None.
"""

from __future__ import annotations

import re
from datetime import datetime

from updatesync.logs.runs import (
    FAILED,
    REPLICA,
    RUNNING,
    SITE_DATABASE_CATEGORIES,
    SITE_DATABASE_UPDATES,
    SUCCESS,
    UNKNOWN,
    UPDATE_SERVER,
    WSUS_PHASES,
    Activity,
    LogLine,
    Phase,
    SyncError,
    SyncRun,
    UpdateFailure,
    iso,
)
from updatesync.logs.status_messages import StatusMessage, describe
from updatesync.logs.sync_lines import HINTS, PERFORMING, classify, host, sites, split_failure
from updatesync.vocabulary import (
    CONTENT_OUT_OF_SYNC,
    REPLICA_FAILURE,
    SYNC_DONE,
    SYNC_DONE_PENDING_LICENSES,
    SYNC_FAILED,
    SYNC_REPLICA,
    SYNC_SITE_DATABASE,
    SYNC_STARTED,
    SYNC_WSUS_SERVER,
)


class _RunBook:
    """The runs rebuilt so far and the steps every kind of line uses: open a run, touch it
    (its last activity), open or find a phase, end or fail what is running."""

    def __init__(self, site: str | None, server: str | None, log: str | None) -> None:
        self.site = site
        self.server = server
        self.log = log
        self.runs: list[SyncRun] = []
        self.hints: list[tuple[str, re.Match[str]]] = []

    @property
    def cur(self) -> SyncRun | None:
        return self.runs[-1] if self.runs else None

    # -- runs ----------------------------------------------------------------------------

    def new_run(self, line: LogLine, *, explicit: bool) -> SyncRun:
        previous = self.cur
        if previous is not None and previous.result == RUNNING:
            previous.result = FAILED
            when = line.at
            previous.error = SyncError(
                None,
                "The sync has no end in the log (no 6702 or 6703): the next sync started"
                + (f" at {iso(when)}" if when else ""),
                None,
            )
            for phase in previous.phases:
                if phase.status == RUNNING:
                    phase.status = FAILED
        run = SyncRun(site=self.site, server=self.server, log=self.log, explicit_start=explicit)
        full = False
        for kind, match in self.hints:
            if kind == "hint_schedule":
                run.trigger = "schedule"
            elif kind == "hint_retry":
                run.trigger = "retry"
            elif kind == "hint_local":
                run.trigger = "local"
            elif kind == "hint_parent":
                run.trigger = "parent"
                run.parent = match["parent"].upper()
            elif kind == "hint_full":
                full = True
        if full and run.trigger in (None, "local"):
            run.trigger = "full"
        self.hints = []
        self.runs.append(run)
        return run

    def open_run(self, line: LogLine) -> SyncRun:
        """The run a line belongs to, opening one when no run is going."""
        run = self.cur
        return self.new_run(line, explicit=False) if run is None else run

    def touch(self, run: SyncRun, line: LogLine) -> None:
        when = line.at
        if when is not None:
            run.last_known = when
        if line.statmsg is not None:
            text = describe(line.statmsg).splitlines()[0]
            message = f"status message {line.statmsg.message_id}: {text}"
        else:
            message = line.message.strip()
        run.last_activity = Activity(when, message, self.log)

    # -- phases --------------------------------------------------------------------------

    def add_phase(self, run: SyncRun, name: str, message_id: int | None, line: LogLine) -> Phase:
        phase = Phase(name, message_id, started=line.at)
        if name == UPDATE_SERVER:
            phase.server = run.pending_server
        if name == SITE_DATABASE_UPDATES:
            before = run.phase(SITE_DATABASE_CATEGORIES)
            if before is not None:
                phase.server = before.server
                phase.status_message = before.status_message
        run.phases.append(phase)
        return phase

    def wsus_phase(self, run: SyncRun, line: LogLine) -> Phase:
        """The running update-server or replica phase; opened when there is none."""
        last = run.phases[-1] if run.phases else None
        if last is not None and last.name in WSUS_PHASES and last.status == RUNNING:
            return last
        if run.in_replicas or run.phase(UPDATE_SERVER) is not None:
            return self.add_phase(run, REPLICA, None, line)
        return self.add_phase(run, UPDATE_SERVER, None, line)

    def sms_phase(self, run: SyncRun, name: str, line: LogLine) -> Phase:
        last = run.phases[-1] if run.phases else None
        if last is not None and last.name == name:
            return last
        if (
            name == SITE_DATABASE_UPDATES
            and last is not None
            and last.name == SITE_DATABASE_CATEGORIES
            and last.status == RUNNING
        ):
            last.status = "done"
        return self.add_phase(run, name, None, line)

    @staticmethod
    def end_running(run: SyncRun, status: str, when: datetime | None) -> None:
        for phase in run.phases:
            if phase.status == RUNNING:
                phase.status = status
                if status == FAILED and phase.ended is None:
                    phase.ended = when

    def fail(self, run: SyncRun, line: LogLine, error: SyncError) -> None:
        """The run failed; a status message's error (6703) wins over a line's."""
        run.result = FAILED
        if run.ended is None:
            run.ended = line.at
        if run.error is None:
            run.error = error
        elif line.statmsg is not None:
            run.error = error.merged(run.error)
        else:
            run.error = run.error.merged(error)
        for phase in run.phases:
            if phase.status == RUNNING:
                phase.status = FAILED
                phase.error = error
                if phase.ended is None:
                    phase.ended = line.at


class _StatusMessageSteps(_RunBook):
    """The steps of the status messages (STATMSG lines): 6701 starts a run, 6704/6705/6706
    open phases, 6702/6708 end it, 6703 fails it (or one replica), 6707 warns."""

    def statmsg(self, line: LogLine, msg: StatusMessage) -> None:
        ident = msg.message_id
        run = self.cur
        if ident == SYNC_STARTED:
            if not (
                run is not None
                and run.explicit_start
                and not run.has_6701
                and run.result == RUNNING
                and not run.phases
            ):
                run = self.new_run(line, explicit=False)
            run.has_6701 = True
            run.started = msg.time
        elif ident in (SYNC_WSUS_SERVER, SYNC_SITE_DATABASE):
            if run is None or run.result != RUNNING:
                run = self.new_run(line, explicit=False)
            name = UPDATE_SERVER if ident == SYNC_WSUS_SERVER else SITE_DATABASE_CATEGORIES
            self.end_running(run, "done", None)
            self.add_phase(run, name, ident, line)
        elif ident == SYNC_REPLICA:
            run = self.open_run(line)
            run.in_replicas = True
            last = run.phases[-1] if run.phases else None
            if last is not None and last.status == RUNNING and last.name != REPLICA:
                last.status = "done"
            self.add_phase(run, REPLICA, ident, line)
        elif ident in (SYNC_DONE, SYNC_DONE_PENDING_LICENSES):
            if run is None or (run.result != RUNNING and ident == SYNC_DONE):
                run = self.new_run(line, explicit=False)
            if ident == SYNC_DONE_PENDING_LICENSES:
                run.warnings.append(describe(msg))
                run.license_terms_pending = True
            if run.result == RUNNING:
                run.result = SUCCESS
                run.ended = msg.time
                self.end_running(run, "done", None)
        elif ident == SYNC_FAILED:
            self.failed_message(line, msg)
            return
        elif ident == CONTENT_OUT_OF_SYNC:
            run = self.open_run(line)
            run.warnings.append(describe(msg))
        else:
            run = self.open_run(line)
        if run.site is None or msg.site_code:
            run.site = msg.site_code.upper()
        if msg.system:
            run.server = host(msg.system)
        self.touch(run, line)

    def failed_message(self, line: LogLine, msg: StatusMessage) -> None:
        error = SyncError(msg.strings[0] or None, msg.strings[1] or None, msg.last_error)
        run = self.cur
        if run is not None and (
            run.replica_failure_pending
            or (error.message or "").startswith(REPLICA_FAILURE.rstrip())
        ):
            run.replica_failure_pending = False
            replica = next((p for p in reversed(run.phases) if p.name == REPLICA), None)
            if replica is not None:
                replica.status = FAILED
                replica.error = (replica.error or SyncError()).merged(error)
            self.touch(run, line)
            return
        if run is None or run.result == SUCCESS or (run.result == FAILED and run.has_6703):
            run = self.new_run(line, explicit=False)
        self.fail(run, line, error)
        run.has_6703 = True
        run.ended = msg.time
        if msg.site_code:
            run.site = msg.site_code.upper()
        if msg.system:
            run.server = host(msg.system)
        self.touch(run, line)


class _Rebuild(_StatusMessageSteps):
    """Feeds the lines one by one: a STATMSG to its status message step, any other line to
    the step of its kind (`on_<kind>`, one per pattern of `sync_lines.PATTERNS`)."""

    def feed(self, line: LogLine) -> None:
        if line.statmsg is not None:
            self.statmsg(line, line.statmsg)
            return
        kind, match = classify(line.message)
        if kind is None or match is None:
            return
        if kind in HINTS:
            self.hints.append((kind, match))
            return
        if kind == "start":
            run = self.new_run(line, explicit=True)
            run.started = line.at
            self.touch(run, line)
            return
        handler = getattr(self, f"on_{kind}")
        handler(line, match)

    def on_performing(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        what = m["what"].lower()
        trigger = PERFORMING.get(what, what)
        if not (trigger == "local" and run.trigger == "full"):
            run.trigger = trigger
        self.touch(run, line)

    def on_read_sups(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        if run.server is None or not run.has_6701:
            run.server = host(m["server"])
        self.touch(run, line)

    def on_found_sups(self, line: LogLine, m: re.Match[str]) -> None:
        self.touch(self.open_run(line), line)

    def on_active_sup(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        server = host(m["server"])
        if server not in run.sups:
            run.sups.append(server)
        self.touch(run, line)

    def on_replicas(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        run.in_replicas = True
        last = run.phases[-1] if run.phases else None
        if last is not None and last.name == UPDATE_SERVER and last.status == RUNNING:
            last.status = "done"
        self.touch(run, line)

    def on_wsus_server(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        server = host(m["server"])
        last = run.phases[-1] if run.phases else None
        if last is not None and last.name in WSUS_PHASES and last.server in (None, server):
            last.server = server
        elif run.in_replicas:
            self.add_phase(run, REPLICA, None, line).server = server
        elif run.phase(UPDATE_SERVER) is None:
            run.pending_server = server
        self.touch(run, line)

    def on_wsus_start(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        self.wsus_phase(run, line)
        self.touch(run, line)

    def on_wsus_progress(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        phase = self.wsus_phase(run, line)
        phase.items_done, phase.items_total = int(m["done"]), int(m["total"])
        self.touch(run, line)

    def on_wsus_step(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        self.wsus_phase(run, line)
        self.touch(run, line)

    def on_wsus_done(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        server = host(m["server"])
        phase = next(
            (
                p
                for p in reversed(run.phases)
                if p.name in WSUS_PHASES and p.status == RUNNING and p.server in (None, server)
            ),
            None,
        )
        if phase is None:
            phase = self.wsus_phase(run, line)
        phase.server = phase.server or server
        phase.status = "done"
        phase.ended = line.at
        self.touch(run, line)

    def on_replica_failed(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        server = host(m["server"])
        phase = next(
            (p for p in reversed(run.phases) if p.name == REPLICA and p.server in (None, server)),
            None,
        )
        if phase is None:
            phase = self.add_phase(run, REPLICA, None, line)
        message, source = split_failure(m["rest"])
        phase.server = server
        phase.status = FAILED
        phase.ended = line.at
        phase.error = SyncError(source, message, None)
        run.replica_failure_pending = True
        self.touch(run, line)

    def on_sms_server(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        phase = self.sms_phase(run, SITE_DATABASE_CATEGORIES, line)
        phase.server = host(m["server"])
        self.touch(run, line)

    def on_sms_categories_step(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        self.sms_phase(run, SITE_DATABASE_CATEGORIES, line)
        self.touch(run, line)

    def on_sms_categories(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        phase = self.sms_phase(run, SITE_DATABASE_CATEGORIES, line)
        phase.items_done, phase.items_total = int(m["done"]), int(m["total"])
        phase.ended = line.at
        phase.status = "done"
        self.touch(run, line)

    def on_sms_updates_step(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        self.sms_phase(run, SITE_DATABASE_UPDATES, line)
        self.touch(run, line)

    def on_sms_updates(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        phase = self.sms_phase(run, SITE_DATABASE_UPDATES, line)
        phase.items_done, phase.items_total = int(m["done"]), int(m["total"])
        self.touch(run, line)

    def on_sms_update(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        self.sms_phase(run, SITE_DATABASE_UPDATES, line)
        self.touch(run, line)

    def on_update_failed(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        message, source = split_failure(m["rest"])
        run.update_failures.append(UpdateFailure(m["update"].lower(), message, source))
        self.touch(run, line)

    def on_sms_done(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        for phase in run.phases:
            if phase.name in (SITE_DATABASE_CATEGORIES, SITE_DATABASE_UPDATES):
                phase.server = phase.server or host(m["server"])
                if phase.status == RUNNING:
                    phase.status = "done"
                    phase.ended = line.at
        self.touch(run, line)

    def on_content_version(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        run.content_versions.append(int(m["v"]))
        run.site = run.site or m["site"].upper()
        self.touch(run, line)

    def on_succeeded(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        if run.result == RUNNING:
            run.result = SUCCESS
            run.ended = line.at
            self.end_running(run, "done", None)
        if m["site"]:
            run.site = run.site or m["site"].upper()
        self.touch(run, line)

    def on_updated(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        run.items_updated = int(m["n"])
        run.reported_content_version = int(m["v"])
        self.touch(run, line)

    def on_synced_parent(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        run.parent = run.parent or m["p"].upper()
        run.trigger = run.trigger or "parent"
        run.reported_content_version = int(m["v"])
        self.touch(run, line)

    def on_sync_time(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        d, h, mi, s = (int(m[k]) for k in ("d", "h", "m", "s"))
        run.reported_sync_time_s = ((d * 24 + h) * 60 + mi) * 60 + s
        self.touch(run, line)

    def on_children(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        run.children = sites(m["list"])
        self.touch(run, line)

    def on_replicating(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        if not run.children:
            run.children = sites(m["list"])
        self.touch(run, line)

    def on_notify_failed(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.open_run(line)
        run.warnings.append(line.message.strip())
        self.touch(run, line)

    def on_failed(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.cur
        if run is None or run.result == SUCCESS or (run.result == FAILED and run.has_fail_line):
            run = self.new_run(line, explicit=False)
        message, source = split_failure(m["rest"])
        self.fail(run, line, SyncError(source, message, None))
        run.has_fail_line = True
        self.touch(run, line)

    def on_aborted(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.cur
        if run is None or run.result == SUCCESS:
            run = self.new_run(line, explicit=False)
        self.fail(run, line, SyncError(None, "Too many consecutive failures. Aborting sync", None))
        self.touch(run, line)

    def on_retry(self, line: LogLine, m: re.Match[str]) -> None:
        run = self.cur
        if run is None or run.result == SUCCESS or run.retry_after_minutes is not None:
            run = self.new_run(line, explicit=False)
        if run.result == RUNNING:
            self.fail(run, line, SyncError())
        run.retry_after_minutes = int(m["n"])
        self.touch(run, line)

    def on_sleeping(self, line: LogLine, m: re.Match[str]) -> None:
        self.touch(self.open_run(line), line)


def rebuild_runs(
    lines: list[LogLine],
    *,
    site: str | None = None,
    server: str | None = None,
    log: str | None = None,
) -> list[SyncRun]:
    """The runs in one sync manager log, oldest first. `site` and `server` are what is known
    of the log's site and site server from elsewhere (its folder, its name); the log's own
    STATMSG lines override them. Results are `success`, `failed` or `running`."""
    rebuild = _Rebuild(site.upper() if site else None, host(server) if server else None, log)
    for line in lines:
        rebuild.feed(line)
    for run in rebuild.runs:
        headless = not (run.explicit_start or run.has_6701)
        if run.result == RUNNING and headless and (not run.phases or run.last_known is None):
            run.result = UNKNOWN  # an excerpt of lines from inside a run: no start, no end
    return rebuild.runs
