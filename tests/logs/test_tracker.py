"""The sync tracker on logs written here: each log form (CMTrace, simple, copied), a `.lo_` +
`.log` pair, failures and retries, replicas, stuck and running runs, the other logs around
WSyncMgr.log (SoftwareDistribution, SMSDBMON, SMSProv), `--follow` polling and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import updatesync.cli.logs as cli_logs
from updatesync.cli.logs import logs_app
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.rebuild import rebuild_runs
from updatesync.logs.rollover import rolled_path
from updatesync.logs.runs import LogLine
from updatesync.logs.simple import SimpleLog
from updatesync.logs.softwaredistribution import SoftwareDistributionLog
from updatesync.logs.status_messages import (
    StatusMessage,
    format_statmsg,
    new_status_message,
    sync_failed,
)
from updatesync.logs.sync_lines import split_failure
from updatesync.logs.tracker import Tracker, find_logs, path_hints, track_paths

COMP = "SMS_WSUS_SYNC_MANAGER"
MU = "{C2D17964-BBDD-4339-B9F3-12D7205B39CC}"
T0 = datetime(2024, 3, 12, 9, 0, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


Writer = Callable[[str], object]


class SiteLog:
    """Writes a site's sync manager lines (any writer with `.info(message)`), moving the
    clock one second per line; `status` writes a STATMSG line with the clock's time."""

    def __init__(self, log: CMTraceLog | SimpleLog, clock: Clock, site: str, fqdn: str) -> None:
        self.log, self.clock, self.site, self.fqdn = log, clock, site, fqdn
        self.times: dict[str, datetime] = {}

    def line(self, message: str, label: str | None = None) -> None:
        self.clock.tick()
        self.log.info(message)
        if label:
            self.times[label] = self.clock.now

    def status(self, message_id: int, label: str | None = None) -> StatusMessage:
        self.clock.tick()
        msg = new_status_message(
            message_id, site_code=self.site, system=self.fqdn.upper(), time=self.clock.now
        )
        self.log.info(format_statmsg(msg))
        self.times[label or str(message_id)] = msg.time
        return msg

    def failure(self, where: str, what: str, code: int, retry: int = 60) -> None:
        self.line(f"Sync failed: {what}. Source: {where}", "failed line")
        self.clock.tick()
        msg = sync_failed(
            site_code=self.site,
            system=self.fqdn.upper(),
            where=where,
            what=what,
            last_error=code,
            time=self.clock.now,
        )
        self.log.error(format_statmsg(msg))
        self.times["6703"] = msg.time
        self.line(f"Sync failed. Will retry in {retry} minutes")

    # the article's runs (SPEC sections 2 and 3)

    def top_start(self, trigger: str = "local") -> None:
        if trigger == "schedule":
            self.line("Wakeup for scheduled regular sync")
            self.line("Starting Sync")
            self.line("Performing sync on regular schedule")
        else:
            self.line("Wakeup by inbox drop")
            self.line("Found local sync request file")
            self.line("Starting Sync")
            self.line("Performing sync on local request")
        self.line(f"Read SUPs from SCF for {self.fqdn.upper()}")
        self.line("Found 1 SUPs")
        self.line(f"Found active SUP {self.fqdn.upper()} from SCF File.")
        self.status(6701)

    def update_server(self, done: int = 130, total: int = 130, *, finish: bool = True) -> None:
        self.status(6704)
        self.line(f"Synchronizing WSUS server {self.fqdn} ...")
        self.line("sync: Starting WSUS synchronization")
        self.line("sync: WSUS synchronizing categories")
        self.line("sync: WSUS synchronizing updates")
        self.line(
            f"sync: WSUS synchronizing updates, processed {done} out of {total} items "
            f"({done * 100 // total}%)",
            "progress",
        )
        if finish:
            self.line(f"Done synchronizing WSUS Server {self.fqdn}", "wsus done")

    def site_database(self, categories: int = 223, updates: int = 5) -> None:
        self.status(6705)
        self.line(f"Synchronizing SMS database with WSUS server {self.fqdn} ...")
        self.line("sync: SMS synchronizing categories")
        self.line(
            f"sync: SMS synchronizing categories, processed {categories} out of {categories} "
            "items (100%)",
            "categories done",
        )
        self.line("sync: SMS synchronizing updates", "updates start")
        self.line(
            "Synchronizing update af5eb87e-cdd6-40bf-984f-5d0630406de8 - Definition Update "
            "for Microsoft Endpoint Protection - KB2461484 (Definition 1.165.1945.0)"
        )
        self.line(
            f"sync: SMS synchronizing updates, processed {updates} out of {updates} items (100%)"
        )
        self.line(f"Done synchronizing SMS with WSUS Server {self.fqdn}", "sms done")

    def version(self, version: int) -> None:
        self.line(f"Set content version of update source {MU} for site {self.site} to {version}")

    def top_success(self, version: int, children: str = "PS1, PS2") -> None:
        self.status(6702)
        self.line(f"Sync succeeded. Setting sync alert to canceled state on site {self.site}")
        self.line(
            f"Updated 130 items in SMS database, new update source content version is {version}"
        )
        self.line("Sync time: 0d00h00m40s")
        if children:
            self.line(f"Sending sync notification to child site(s): {children}")

    def top_run(self, versions: tuple[int, int] = (33, 34), trigger: str = "local") -> None:
        self.top_start(trigger)
        self.update_server()
        self.version(versions[0])
        self.site_database()
        self.version(versions[1])
        self.top_success(versions[1])

    def child_run(self, parent: str = "CS1", version: int = 34, replica: str = "ps1sys") -> None:
        self.line("Wakeup by inbox drop")
        self.line(f"Found parent sync notification file {parent}.SYN.")
        self.line("Starting Sync")
        self.line("Performing sync on parent request")
        self.line(f"Read SUPs from SCF for {self.fqdn.upper()}")
        self.line("Found 2 SUPs")
        self.status(6701)
        self.line(f"Synchronizing WSUS server {self.fqdn.upper()}")
        self.update_server()
        self.version(version)
        self.line("Synchronizing replica WSUS servers")
        self.status(6706)
        self.line(f"Synchronizing WSUS server {replica}.contoso.com ...")
        self.line("sync: Starting Replica WSUS synchronization")
        self.line("sync: Replica WSUS synchronizing other items")
        self.line("sync: Replica WSUS synchronizing other items, processed 4 out of 4 items (100%)")
        self.line(f"Done synchronizing WSUS Server {replica}.contoso.com")
        self.status(6702)
        self.line(f"Sync succeeded. Setting sync alert to canceled state on site {self.site}")
        self.line(f"Successfully synced site with parent {parent}, version {version}")
        self.line("Sync time: 0d00h00m20s")
        self.line("Sending sync notification to child site(s): SS1")


def cmtrace(path: Path, clock: Clock, *, bias: int = 480, **kw: int) -> CMTraceLog:
    return CMTraceLog(
        path, component=COMP, bias_minutes=bias, now=clock, thread=3404, file_hint="", **kw
    )


def cas_log(tmp_path: Path, clock: Clock, *, bias: int = 480, **kw: int) -> SiteLog:
    log = cmtrace(tmp_path / "CS1" / "logs" / "WSyncMgr.log", clock, bias=bias, **kw)
    return SiteLog(log, clock, "CS1", "cs1site.contoso.com")


# --- the three forms -----------------------------------------------------------------------


def test_cmtrace_log_of_a_top_level_site_gives_its_run_in_utc(tmp_path: Path) -> None:
    clock = Clock()
    site = cas_log(tmp_path, clock, bias=480)  # Pacific standard time: local = UTC - 8 h
    site.top_run()
    text = (tmp_path / "CS1" / "logs" / "WSyncMgr.log").read_text()
    assert 'time="01:0' in text  # written in local time, 8 hours behind UTC

    [run] = track_paths([tmp_path])
    assert (run.site, run.server, run.trigger, run.parent) == (
        "CS1",
        "cs1site.contoso.com",
        "local",
        None,
    )
    assert run.result == "success"
    assert run.started == site.times["6701"]
    assert run.ended == site.times["6702"]
    assert run.duration_s == (site.times["6702"] - site.times["6701"]).total_seconds()
    assert run.content_versions == [33, 34]
    assert run.children == ["PS1", "PS2"]
    assert run.error is None and run.next_retry is None
    names = [p.name for p in run.phases]
    assert names == ["update_server", "site_database_categories", "site_database_updates"]
    wsus, categories, updates = run.phases
    assert (wsus.status_message, wsus.server) == (6704, "cs1site.contoso.com")
    assert (wsus.items_done, wsus.items_total, wsus.status) == (130, 130, "done")
    assert wsus.started == site.times["6704"]
    assert wsus.ended == site.times["wsus done"]  # a plain line: its own time, bias applied
    assert (categories.items_done, categories.items_total) == (223, 223)
    assert categories.started == site.times["6705"]
    assert categories.ended == site.times["categories done"]
    assert (updates.items_done, updates.items_total, updates.status_message) == (5, 5, 6705)
    assert updates.started == site.times["updates start"]
    assert updates.ended == site.times["sms done"]
    assert run.items_updated == 130 and run.reported_sync_time_s == 40

    data = run.to_json()
    assert data["started"] == site.times["6701"].isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    assert data["phases"][0]["items_done"] == 130
    assert json.loads(json.dumps(data)) == data


def test_simple_log_of_a_child_site_gives_parent_replica_and_children(tmp_path: Path) -> None:
    clock = Clock()
    log = SimpleLog(
        tmp_path / "PS1" / "WSyncMgr.log", component=COMP, bias_minutes=-120, now=clock, thread=9
    )
    site = SiteLog(log, clock, "PS1", "ps1site.contoso.com")
    site.child_run()
    assert "$$<SMS_WSUS_SYNC_MANAGER>" in (tmp_path / "PS1" / "WSyncMgr.log").read_text()

    [run] = track_paths([tmp_path / "PS1" / "WSyncMgr.log"])
    assert (run.site, run.trigger, run.parent, run.result) == ("PS1", "parent", "CS1", "success")
    assert run.started == site.times["6701"] and run.ended == site.times["6702"]
    assert run.content_versions == [34]
    assert run.children == ["SS1"]
    assert [p.name for p in run.phases] == ["update_server", "replica"]
    assert run.phases[0].server == "ps1site.contoso.com"
    assert run.phases[0].ended == site.times["wsus done"]
    assert run.replicas == [
        {"server": "ps1sys.contoso.com", "items": 4, "status": "done", "error": None}
    ]


def test_copied_form_takes_times_from_statmsg_only(tmp_path: Path) -> None:
    clock = Clock()
    scratch = SiteLog(_Collect(), clock, "CS1", "cs1site.contoso.com")
    scratch.top_run()
    copied = tmp_path / "CS1-WSyncMgr.rendered.txt"
    copied.write_text("".join(f"{m}\t{COMP}\r\n" for m in scratch.log.messages), "utf-8")

    [run] = track_paths([copied])
    assert (run.site, run.result, run.trigger) == ("CS1", "success", "local")
    assert run.started == scratch.times["6701"] and run.ended == scratch.times["6702"]
    wsus = run.phases[0]
    assert wsus.started == scratch.times["6704"]
    assert wsus.ended is None  # "Done synchronizing" has no time in this form
    assert run.phases[2].started is None and run.phases[2].ended is None
    assert run.last_activity is not None and run.last_activity.time is None


class _Collect:
    """A stand-in log writer that keeps the messages (for the copied form)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def info(self, message: str) -> None:
        self.messages.append(message)

    error = info


def test_a_run_across_the_rollover_is_read_lo_then_log(tmp_path: Path) -> None:
    measure = cas_log(tmp_path / "measure", Clock())
    measure.top_run()
    size = (tmp_path / "measure" / "CS1" / "logs" / "WSyncMgr.log").stat().st_size

    clock = Clock()
    site = cas_log(tmp_path / "real", clock, max_bytes=size * 3 // 4)
    site.top_run()
    current = tmp_path / "real" / "CS1" / "logs" / "WSyncMgr.log"
    rolled = rolled_path(current)
    assert rolled.exists() and current.exists()
    assert "STATMSG: ID=6701" in rolled.read_text() and "ID=6702" in current.read_text()

    for given in (tmp_path / "real", current, rolled):
        [run] = track_paths([given])
        assert run.started == site.times["6701"] and run.ended == site.times["6702"]
        assert run.content_versions == [33, 34] and run.result == "success"
    assert [f.path for f in find_logs([tmp_path / "real"])] == [current]


# --- failures, replicas, interrupted, running and stuck runs -------------------------------


def test_failed_run_names_the_cause_and_the_retry(tmp_path: Path) -> None:
    clock = Clock()
    site = cas_log(tmp_path, clock)
    site.top_start()
    site.update_server(40, 130, finish=False)
    site.failure(
        "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer",
        "Request for principal permission failed",
        0x8013150A,
    )
    [run] = track_paths([tmp_path])
    assert run.result == "failed"
    assert run.ended == site.times["6703"]
    assert run.error is not None
    assert run.error.to_json() == {
        "source": "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer",
        "message": "Request for principal permission failed",
        "code": "0x8013150a",
    }
    assert run.retry_after_minutes == 60
    assert run.next_retry == site.times["6703"] + timedelta(minutes=60)
    assert run.phases[0].status == "failed"
    assert (run.phases[0].items_done, run.phases[0].items_total) == (40, 130)


def test_failure_line_alone_and_a_multi_line_error() -> None:
    lines = [
        LogLine(
            "Sync failed: UssCommunicationError: WebException: timed out\n   at X.Y()"
            ". Source: Microsoft.UpdateServices.Internal.X.GetWebResponse"
        ),
        LogLine("Sync failed. Will retry in 30 minutes"),
    ]
    [run] = rebuild_runs(lines, site="CHQ")
    assert run.result == "failed" and run.site == "CHQ"
    assert run.error is not None
    assert run.error.message == "UssCommunicationError: WebException: timed out"
    assert run.error.source == "Microsoft.UpdateServices.Internal.X.GetWebResponse"
    assert run.retry_after_minutes == 30 and run.next_retry is None  # no time in these lines
    assert split_failure("no source here.") == ("no source here", None)


def test_a_failed_replica_does_not_fail_the_run(tmp_path: Path) -> None:
    clock = Clock()
    site = cas_log(tmp_path, clock)
    site.top_run()
    site.line("Synchronizing replica WSUS servers")
    site.status(6706)
    site.line("Synchronizing WSUS server cs1rep.contoso.com ...")
    site.line("sync: Starting Replica WSUS synchronization")
    site.line(
        "Failed to synchronize replica WSUS server cs1rep.contoso.com: connection refused. "
        "Source: UpdateServer http://cs1rep.contoso.com:8530"
    )
    clock.tick()
    msg = sync_failed(
        site_code="CS1",
        system="CS1SITE.CONTOSO.COM",
        where="UpdateServer http://cs1rep.contoso.com:8530",
        what="Replica WSUS server cs1rep.contoso.com: connection refused",
        last_error=0x80072EFD,
        time=clock.now,
    )
    site.log.error(format_statmsg(msg))
    [run] = track_paths([tmp_path])
    assert run.result == "success" and run.error is None
    [replica] = run.replicas
    assert replica["server"] == "cs1rep.contoso.com" and replica["status"] == "failed"
    assert replica["error"] == {
        "source": "UpdateServer http://cs1rep.contoso.com:8530",
        "message": "connection refused",
        "code": "0x80072efd",
    }


def test_a_run_without_end_before_the_next_one_failed(tmp_path: Path) -> None:
    clock = Clock()
    site = cas_log(tmp_path, clock)
    site.top_start()
    site.update_server(10, 130, finish=False)
    clock.tick(3600)
    site.top_run(versions=(33, 34), trigger="schedule")
    first, second = track_paths([tmp_path])
    assert first.result == "failed" and first.error is not None
    assert "no end" in (first.error.message or "")
    assert first.phases[0].status == "failed"
    assert (second.result, second.trigger) == ("success", "schedule")


def test_a_run_at_the_end_of_the_log_is_running(tmp_path: Path) -> None:
    clock = Clock()
    site = cas_log(tmp_path, clock)
    site.top_run()
    site.top_start()
    site.update_server(50, 130, finish=False)
    done, running = track_paths([tmp_path])
    assert done.result == "success"
    assert running.result == "running"
    assert running.ended is None and running.duration_s is None
    assert running.phases[-1].name == "update_server" and running.phases[-1].status == "running"
    assert running.last_activity is not None
    assert running.last_activity.message.startswith(
        "sync: WSUS synchronizing updates, processed 50 out of 130"
    )
    assert running.last_activity.time == site.times["progress"]
    assert running.to_json()["result"] == "running"


def test_stuck_is_judged_against_the_sites_newest_log_time_or_now(tmp_path: Path) -> None:
    clock = Clock()
    site = cas_log(tmp_path, clock)
    site.top_start()
    site.update_server(50, 130, finish=False)
    last = site.times["progress"]
    # alone, the log's newest time is the run's own last line: not stuck
    [run] = track_paths([tmp_path])
    assert run.result == "running"
    # the site's SMSDBMON.log goes on 90 minutes later
    clock.tick(90 * 60)
    dbmon = CMTraceLog(
        tmp_path / "CS1" / "logs" / "SMSDBMON.log",
        component="SMS_DATABASE_NOTIFICATION_MONITOR",
        bias_minutes=480,
        now=clock,
        thread=1,
        file_hint="",
    )
    dbmon.info("RCV: UPDATE on Update_SyncStatus for SyncNotif_WSyncMgr [SELF][7]")
    [run] = track_paths([tmp_path])
    assert run.result == "stuck"
    assert run.last_activity is not None and run.last_activity.time == last
    assert "processed 50 out of 130" in run.last_activity.message
    [run] = track_paths([tmp_path], stuck_after=timedelta(minutes=120))
    assert run.result == "running"
    [run] = track_paths(
        [tmp_path], stuck_after=timedelta(minutes=120), now=last + timedelta(hours=3)
    )
    assert run.result == "stuck"
    [run] = track_paths([tmp_path], now=last + timedelta(minutes=5))
    assert run.result == "running"


def test_update_server_log_activity_keeps_a_long_phase_from_being_stuck(tmp_path: Path) -> None:
    clock = Clock()
    site = cas_log(tmp_path, clock)
    site.top_start()
    site.update_server(50, 130, finish=False)
    sd = SoftwareDistributionLog(
        tmp_path / "cs1site.contoso.com" / "logs" / "SoftwareDistribution.log", now=clock, thread=5
    )
    sd.manual_sync_started()
    clock.tick(80 * 60)
    sd.info("CatalogSyncAgentCore.ExecuteSyncProtocol", "still listing revisions")
    [run] = track_paths([tmp_path], now=clock.now + timedelta(minutes=10))
    assert run.result == "running"
    assert run.last_activity is not None
    assert run.last_activity.message.endswith("still listing revisions")
    assert run.phases[0].update_server_log is not None
    assert run.phases[0].update_server_log.result == "running"


# --- the logs around WSyncMgr.log ----------------------------------------------------------


def test_software_distribution_log_gives_the_update_servers_own_sync(tmp_path: Path) -> None:
    clock = Clock()
    site = cas_log(tmp_path, clock)
    site.top_start()
    site.status(6704)
    sd = SoftwareDistributionLog(
        tmp_path / "cs1site.contoso.com" / "logs" / "SoftwareDistribution.log", now=clock, thread=5
    )
    clock.tick()
    started = clock.now
    sd.manual_sync_started()
    site.line("Synchronizing WSUS server cs1site.contoso.com ...")
    site.line("sync: WSUS synchronizing updates, processed 130 out of 130 items (100%)")
    clock.tick()
    ended = clock.now
    sd.sync_succeeded()
    site.line("Done synchronizing WSUS Server cs1site.contoso.com")
    site.version(33)
    site.site_database()
    site.version(34)
    site.top_success(34)
    [run] = track_paths([tmp_path])
    sync = run.phases[0].update_server_log
    assert sync is not None
    assert (sync.started, sync.ended, sync.result, sync.how) == (
        started,
        ended,
        "succeeded",
        "manual",
    )
    assert run.phases[1].update_server_log is None


def test_full_trigger_and_request_time_from_smsprov_and_smsdbmon(tmp_path: Path) -> None:
    clock = Clock()
    logs = tmp_path / "CS1" / "logs"

    def component(name: str, comp: str) -> CMTraceLog:
        return CMTraceLog(
            logs / name, component=comp, bias_minutes=0, now=clock, thread=2, file_hint=""
        )

    prov = component("SMSProv.log", "SMS Provider")
    dbmon = component("SMSDBMON.log", "SMS_DATABASE_NOTIFICATION_MONITOR")
    site = cas_log(tmp_path, clock)
    requests = []
    for flag in ("SELF", "FULL"):
        clock.tick(600)
        requests.append(clock.now)
        prov.info("ExecMethodAsync : SMS_SoftwareUpdate::SyncNow")
        clock.tick()
        dbmon.info(f"RCV: UPDATE on Update_SyncStatus for SyncNotif_WSyncMgr [{flag}][1]")
        dbmon.info(f"SND: Dropped E:\\ConfigMgr\\inboxes\\WSyncMgr.box\\{flag}.SYN [1]")
        site.top_run()
    first, second = track_paths([tmp_path])
    assert (first.trigger, first.requested) == ("local", requests[0])
    assert (second.trigger, second.requested) == ("full", requests[1])


def test_site_and_server_of_a_log_from_its_name_or_folder() -> None:
    assert path_hints(Path("x/CS1-WSyncMgr.rendered.txt")) == ("CS1", None)
    assert path_hints(Path("x/CHQ-wsyncmgr-permission.rendered.txt")) == ("CHQ", None)
    assert path_hints(Path("x/wsyncmgr-timeout.rendered.txt")) == (None, None)
    assert path_hints(Path("x/CS1SITE-SoftwareDistribution.log")) == (None, "cs1site")
    assert path_hints(Path("h/PS1/logs/WSyncMgr.log")) == ("PS1", None)
    assert path_hints(Path("h/ps1sys.contoso.com/logs/SoftwareDistribution.log")) == (
        None,
        "ps1sys.contoso.com",
    )
    assert path_hints(Path("/tmp/logs/WSyncMgr.log")) == (None, None)


def test_statmsg_wins_over_the_folder(tmp_path: Path) -> None:
    clock = Clock()
    log = cmtrace(tmp_path / "ABC" / "WSyncMgr.log", clock)
    SiteLog(log, clock, "PS2", "ps2site.contoso.com").child_run(version=7)
    [run] = track_paths([tmp_path])
    assert (run.site, run.server) == ("PS2", "ps2site.contoso.com")


# --- following -----------------------------------------------------------------------------


def test_tracker_changed_reports_new_and_changed_runs_only(tmp_path: Path) -> None:
    clock = Clock()
    site = cas_log(tmp_path, clock, max_bytes=4000)
    tracker = Tracker([tmp_path])
    site.top_start()
    [first] = tracker.changed(clock.now)
    assert first.result == "running" and not first.phases
    assert tracker.changed(clock.now) == []
    site.update_server(60, 130, finish=False)
    [again] = tracker.changed(clock.now)
    assert again.phases[0].items_done == 60
    # nothing new for two hours: the same run, now stuck
    [stuck] = tracker.changed(clock.now + timedelta(hours=2))
    assert stuck.result == "stuck"
    site.line("sync: WSUS synchronizing updates, processed 130 out of 130 items (100%)")
    site.line("Done synchronizing WSUS Server cs1site.contoso.com")
    site.version(33)
    site.site_database()
    site.version(34)
    site.top_success(34)
    assert rolled_path(site.log.path).exists()  # rolled over while followed
    [done] = tracker.changed(clock.now)
    assert done.result == "success" and done.content_versions == [33, 34]
    assert done.started == first.started  # the start is in the .lo_
    assert tracker.changed(clock.now) == []


# --- the command ---------------------------------------------------------------------------


def test_cli_track_prints_runs_as_text_and_json(tmp_path: Path) -> None:
    clock = Clock()
    cas_log(tmp_path, clock).top_run()
    runner = CliRunner()
    result = runner.invoke(logs_app, ["track", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "CS1 cs1site.contoso.com · local request · success" in result.output
    assert "content version 33 → 34" in result.output
    assert "notified PS1, PS2" in result.output
    result = runner.invoke(logs_app, ["track", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    [run] = json.loads(result.output)
    assert {"site", "server", "trigger", "parent", "result", "started", "ended"} <= run.keys()
    assert {"duration_s", "content_versions", "phases", "replicas", "children"} <= run.keys()
    assert {"error", "next_retry"} <= run.keys()
    assert run["content_versions"] == [33, 34]
    assert set(run["phases"][0]) >= {
        "name",
        "status_message",
        "started",
        "ended",
        "items_done",
        "items_total",
    }


def test_cli_track_follow_polls_until_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    site = cas_log(tmp_path, clock)
    site.top_start()
    polls: list[float] = []

    def fake_sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:
            site.update_server()
            site.version(33)
            site.site_database()
            site.version(34)
            site.top_success(34)
            return
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_logs, "_sleep", fake_sleep)
    monkeypatch.setattr(cli_logs, "_now", clock)
    result = CliRunner().invoke(
        logs_app, ["track", str(tmp_path), "--follow", "--json", "--interval", "0.5"]
    )
    assert result.exit_code == 0, result.output
    assert polls == [0.5, 0.5]
    first, second = (json.loads(line) for line in result.output.splitlines())
    assert first["result"] == "running" and second["result"] == "success"
    assert first["started"] == second["started"]


def test_cli_track_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(logs_app, ["track", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert "no such log file or folder" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(logs_app, ["track", str(tmp_path / "empty")])
    assert result.exit_code == 1
    assert "no WSyncMgr" in result.output
