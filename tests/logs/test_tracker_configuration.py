"""The tracker with WCM.log, and the failures a pasted excerpt holds: WCM.log found by its name
(any case, with its `.lo_`) or, renamed or pasted, by its component (CMTrace attribute,
legacy `$$<...>` layout, Learn's `message  COMPONENT`) or its lines; configuration runs beside
sync runs; a `WSUS server not configured` sync failure linked to the failed configuration run
behind it; update failures; the retry trigger; excerpts of failure lines only; `logs track`'s
exit status; and updatesync's own WCM.log and WSyncMgr.log of a site whose configuration
succeeds, then fails on a category its update server does not hold.

The real lines are quoted from `../shared/reference/configmgr-log-lines.md` (the source of
each is named beside it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from top_site import (
    CRITICAL,
    SECURITY,
    SUP,
    TopLevelSite,
    configuration_manager,
    configured_sync_manager,
    top_level_site,
)
from typer.testing import CliRunner
from wcm_excerpts import MS_SSL, MS_WCM_SUCCESS

from updatesync.cli.log_view import one_line_any
from updatesync.cli.logs import logs_app
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.configuration import ConfigurationRun
from updatesync.logs.rollover import rolled_path
from updatesync.logs.runs import SyncRun
from updatesync.logs.simple import SimpleLog
from updatesync.logs.status_messages import format_statmsg, sync_failed
from updatesync.logs.tracker import (
    WCM,
    WSYNCMGR,
    LogFile,
    failed_latest,
    find_logs,
    kind_of_name,
    path_hints,
    read_log,
    read_logs,
    track_paths,
)

WCM_COMP = "SMS_WSUS_CONFIGURATION_MANAGER"
SYNC_COMP = "SMS_WSUS_SYNC_MANAGER"
T0 = datetime(2024, 3, 12, 9, 0, 0, tzinfo=UTC)
# PB-WCM (1.3), a real log in the legacy layout
PB_WCM = (
    "?Attempting connection to local WSUS server $$<SMS_WSUS_CONFIGURATION_MANAGER><02-16-2020 "
    "00:03:23.267+480><thread=6080 (0x17C0)>\n"
    "Successfully connected to local WSUS server $$<SMS_WSUS_CONFIGURATION_MANAGER><02-16-2020 "
    "00:03:23.298+480><thread=6080 (0x17C0)>\n"
    "HandleSMSClientPublication failed. $$<SMS_WSUS_CONFIGURATION_MANAGER><02-16-2020 "
    "00:06:24.204+480><thread=6080 (0x17C0)>\n"
    "Waiting for changes for 56 minutes $$<SMS_WSUS_CONFIGURATION_MANAGER><02-16-2020 "
    "00:06:24.204+480><thread=6080 (0x17C0)>\n"
)
# MS-TSSYNC (2.5, the double dot of real copies)
NOT_CONFIGURED = (
    "Sync failed: WSUS server not configured. Please refer to WCM.log for configuration error "
    "details.. Source: CWSyncMgr::DoSync"
)
RETRY = "Sync failed. Will retry in 60 minutes"
# MS-TSSYNC (1.7)
WEB_502 = "System.Net.WebException: The request failed with HTTP status 502"
# MS-DOTNET (2.5), a real 2019 log with its date prefix
DOTNET = [
    "08-14-2019 08:37:30.102 Synchronizing update 7155376c-87e9-4f55-80f1-0d7c64eb8b5d - "
    "Microsoft .NET Framework 4.7.2 for Windows 7 (KB4054530)",
    "08-14-2019 08:37:30.421 *** declare @rc int, @errxml xml, @errmsg nvarchar(max); EXEC "
    "@rc=sp_SetupCI 16916014, default, @errxml output, @errmsg output; select @rc, @errxml, "
    "@errmsg",
    "08-14-2019 08:37:30.426 Failed to sync update 7155376c-87e9-4f55-80f1-0d7c64eb8b5d. Error: "
    "Failed to save update 9f6cfa34-72f4-4fe6-9131-5fb03d1af361. CCISource error: -1. Source: "
    "Microsoft.SystemsManagementServer.SoftwareUpdatesManagement.UpdatesManager."
    "UpdatesManagerClass.DefineUpdate",
]
DOTNET_FAILURE = {
    "update_id": "7155376c-87e9-4f55-80f1-0d7c64eb8b5d",
    "message": "Failed to save update 9f6cfa34-72f4-4fe6-9131-5fb03d1af361. CCISource error: -1",
    "source": "Microsoft.SystemsManagementServer.SoftwareUpdatesManagement.UpdatesManager."
    "UpdatesManagerClass.DefineUpdate",
}
# PMPC-PERM (2.5)
STATMSG_6703 = (
    'STATMSG: ID=6703 SEV=E LEV=M SOURCE="SMS Server" COMP="SMS_WSUS_SYNC_MANAGER" '
    "SYS=CM1.corp.contoso.com SITE=CHQ PID=2836 TID=9640 GMTDATE=Fri Aug 02 20:54:26.571 2024 "
    'ISTR0="Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer" '
    'ISTR1="Request for principal permission failed" ISTR2="" ISTR3="" ISTR4="" ISTR5="" '
    'ISTR6="" ISTR7="" ISTR8="" ISTR9="" NUMATTRS=0 LE=0X8013150a'
)


def write(path: Path, lines: list[str], *, component: str | None = None, sep: str = "\t") -> Path:
    """Lines as pasted (bare) or copied from CMTrace (`message<sep>component`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{line}{sep}{component}\r\n" if component else f"{line}\r\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def cmtrace(path: Path, component: str, clock: Clock, **kw: int) -> CMTraceLog:
    return CMTraceLog(path, component=component, bias_minutes=0, now=clock, thread=7, **kw)


# --- recognising WCM.log -------------------------------------------------------------------


def test_wcm_log_by_its_name_in_any_case_with_its_rollover(tmp_path: Path) -> None:
    assert kind_of_name("WCM.log") == kind_of_name("wcm.LO_") == WCM
    assert kind_of_name("CS1-WCM.rendered.txt") == WCM
    assert kind_of_name("wcmfoo.log") is None and kind_of_name("WSyncMgr.log") == "wsyncmgr"
    assert path_hints(Path("x/CS1-WCM.rendered.txt")) == ("CS1", None)
    clock = Clock()
    log = cmtrace(tmp_path / "CS1" / "logs" / "WCM.log", WCM_COMP, clock, max_bytes=1200)
    for line in MS_WCM_SUCCESS:
        log.info(line)
    log.info("Waiting for changes for 1 minutes")
    assert rolled_path(log.path).exists()
    [found] = find_logs([tmp_path])
    assert (found.path, found.kind, found.site) == (log.path, WCM, "CS1")
    [run] = track_paths([tmp_path])
    assert isinstance(run, ConfigurationRun)
    assert (run.kind, run.site, run.trigger, run.result) == (
        "configuration",
        "CS1",
        "file",
        "success",
    )
    assert run.started == T0 + timedelta(seconds=1)  # its first line, in the .lo_
    assert run.ended == clock.now and run.wait_minutes == 1
    assert [c["title"] for c in run.subscriptions or []] == ["Windows Server 2012"]
    # `--follow`'s line for it
    assert one_line_any(run) == (
        "CS1 · ? · WSUS configuration · file notification (WSUSMgr.box) · success · "
        f"2024-03-12 09:00:01.000 → 09:00:{clock.now.second:02d}.000 · state 2 "
        "(WSUS_CONFIG_SUCCESS)"
    )


@pytest.mark.parametrize(
    ("name", "text", "form"),
    [
        # the CMTrace form, renamed: its component attribute
        ("renamed.log", None, "cmtrace"),
        # PB-WCM: the legacy `$$<component>` layout
        ("pastebin-wqKg5csH.txt", PB_WCM, "simple"),
        # MS-WCM: Learn's `message  COMPONENT`
        ("ticket.txt", "".join(f"{m}  {WCM_COMP}\n" for m in MS_SSL), "pasted"),
        # MS-SSL as the reference prints it, no component: its lines
        ("notes.txt", "".join(f"{m}\n" for m in MS_SSL), "pasted"),
        # CMTrace's copied form
        ("copied.txt", "".join(f"{m}\t{WCM_COMP}\n" for m in MS_SSL), "rendered"),
    ],
)
def test_a_renamed_or_pasted_wcm_log_by_its_component_or_its_lines(
    tmp_path: Path, name: str, text: str | None, form: str
) -> None:
    path = tmp_path / name
    if text is None:
        log = cmtrace(path, WCM_COMP, Clock())
        for line in MS_SSL:
            log.info(line)
    else:
        path.write_text(text, encoding="utf-8")
    read = read_log(LogFile(path, kind_of_name(name)))
    assert (read.kind, read.form) == (WCM, form)
    runs = track_paths([path])
    assert runs and all(isinstance(r, ConfigurationRun) for r in runs)
    if name.startswith("pastebin"):
        [run] = runs
        assert (run.result, run.error and run.error.message) == (
            "failed",
            "HandleSMSClientPublication failed",
        )
    else:
        [run] = runs
        assert (run.trigger, run.states, run.result) == ("scf", [1, 2], "success")


def test_text_that_is_no_log_gives_no_entry(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.txt", ["shopping list", "milk", "Failed"])
    assert read_log(LogFile(path, None)).lines == []


# --- a sync failure and the configuration failure behind it --------------------------------


def test_pasted_excerpts_link_the_not_configured_failure_to_the_wcm_failure(tmp_path: Path) -> None:
    """MS-TSSYNC's pair pasted from WSyncMgr.log and the WCM.log failure pasted beside it."""
    wsync = write(tmp_path / "wsyncmgr-excerpt.txt", [NOT_CONFIGURED, RETRY], component=SYNC_COMP)
    wcm = write(tmp_path / "from-wcm.txt", [WEB_502])
    sync, configuration = track_paths([wsync, wcm])
    assert isinstance(sync, SyncRun) and isinstance(configuration, ConfigurationRun)
    assert (sync.result, configuration.result) == ("failed", "failed")
    assert sync.error is not None and sync.error.source == "CWSyncMgr::DoSync"
    assert sync.configuration_failure == configuration.link()
    assert sync.configuration_failure is not None
    assert sync.configuration_failure["error"]["message"] == WEB_502
    # the JSON of both kinds side by side
    result = CliRunner().invoke(logs_app, ["track", str(wsync), str(wcm), "--json"])
    assert result.exit_code == 1, result.output
    first, second = json.loads(result.output)
    assert (first["kind"], second["kind"]) == ("sync", "configuration")
    assert first["configuration_failure"]["error"]["message"] == WEB_502
    # alone, the sync failure names no cause
    [alone] = track_paths([wsync])
    assert isinstance(alone, SyncRun) and alone.configuration_failure is None


def test_the_link_takes_the_latest_failure_of_the_site_before_the_sync(tmp_path: Path) -> None:
    """Logs of one site server (a `logs` folder that does not name the site: WCM.log takes it
    from WSyncMgr.log's status messages): two failed configurations before the failed sync and
    one after it; the sync names the second."""
    clock = Clock()
    folder = tmp_path / "server" / "logs"
    wcm = cmtrace(folder / "WCM.log", WCM_COMP, clock)
    wsync = cmtrace(folder / "WSyncMgr.log", SYNC_COMP, clock)
    wcm.info("File notification triggered WCM Inbox.")
    wcm.error("Failed to set Subscriptions on WSUS Server. first")
    wcm.info("Waiting for changes for 1 minutes")
    wcm.info("Checking for supported version of WSUS (min WSUS 3.0 SP2 + KB2720211 + KB2734608)")
    wcm.error("Failed to connect to WSUS server: CS1SITE.CONTOSO.COM, port: 8530. refused")
    wcm.info("Waiting for changes for 1 minutes")
    behind = clock.now
    wsync.info("Wakeup by inbox drop")
    wsync.info("Found local sync request file")
    wsync.info("Starting Sync")
    wsync.info("Performing sync on local request")
    wsync.error(NOT_CONFIGURED)
    failure = sync_failed(
        site_code="CS1",
        system="CS1SITE.CONTOSO.COM",
        where="CWSyncMgr::DoSync",
        what="WSUS server not configured. Please refer to WCM.log for configuration error details.",
        last_error=0x80004005,
        time=clock(),
    )
    wsync.error(format_statmsg(failure))
    wsync.info(RETRY)
    wcm.info("File notification triggered WCM Inbox.")
    wcm.error("Failed to set Subscriptions on WSUS Server. later")
    runs = track_paths([tmp_path])
    [sync] = [r for r in runs if isinstance(r, SyncRun)]
    configurations = [r for r in runs if isinstance(r, ConfigurationRun)]
    assert [(c.site, c.result) for c in configurations] == [("CS1", "failed")] * 3
    assert sync.site == "CS1" and sync.configuration_failure is not None
    assert sync.configuration_failure["ended"] == behind.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    assert sync.configuration_failure["error"]["message"] == (
        "Failed to connect to WSUS server: CS1SITE.CONTOSO.COM, port: 8530. refused"
    )
    # the latest run of each kind failed
    assert {(r.kind, r.site) for r in failed_latest(runs)} == {
        ("sync", "CS1"),
        ("configuration", "CS1"),
    }


# --- failures inside a sync, and excerpts of failure lines only -----------------------------


def test_update_failures_and_the_retry_trigger_in_a_sync(tmp_path: Path) -> None:
    clock = Clock()
    log = cmtrace(tmp_path / "CS1" / "logs" / "WSyncMgr.log", SYNC_COMP, clock)
    for line in (
        "Wakeup for a polling cycle",
        "Starting Sync",
        "Performing sync on retry schedule",
        "sync: SMS synchronizing updates",
        *(line.split(" ", 2)[2] for line in DOTNET),
        "sync: SMS synchronizing updates, processed 5 out of 5 items (100%)",
        "Sync succeeded. Setting sync alert to canceled state on site CS1",
    ):
        log.info(line)
    [run] = track_paths([tmp_path])
    assert isinstance(run, SyncRun)
    assert (run.trigger, run.result) == ("retry", "success")
    assert [f.to_json() for f in run.update_failures] == [DOTNET_FAILURE]
    assert run.to_json()["update_failures"] == [DOTNET_FAILURE]
    shown = CliRunner().invoke(logs_app, ["track", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "retry schedule" in shown.output
    assert "update failed: 7155376c-87e9-4f55-80f1-0d7c64eb8b5d: Failed to save" in shown.output


@pytest.mark.parametrize(
    ("lines", "result", "message"),
    [
        # PMPC-MAINT: the failure and the retry notice only
        (
            [
                "Sync failed: The operation has timed out. Source: Microsoft.UpdateServices."
                "Internal.DatabaseAccess.ApiRemotingCompressionProxy.GetWebResponse",
                RETRY,
            ],
            "failed",
            "The operation has timed out",
        ),
        # PMPC-PERM: the status message alone
        ([STATMSG_6703], "failed", "Request for principal permission failed"),
        # PMPC-PERM: the line as pasted, with CMTrace's column header glued to it
        (
            [
                "MessageSync failed: Request for principal permission failed. Source: "
                "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer"
            ],
            "failed",
            "Request for principal permission failed",
        ),
        # MSQA-CIDOC: the end of a sync after repeated update failures
        (
            ["Too many consecutive failures. Aborting sync."],
            "failed",
            "Too many consecutive failures. Aborting sync",
        ),
        # MS-DOTNET: update failures alone say nothing certain of the sync
        (DOTNET, "unknown", None),
    ],
)
def test_an_excerpt_of_failure_lines_only_is_a_run(
    tmp_path: Path, lines: list[str], result: str, message: str | None
) -> None:
    path = write(tmp_path / "pasted.txt", lines)
    [run] = track_paths([path])
    assert isinstance(run, SyncRun)
    assert run.result == result
    assert (run.error.message if run.error else None) == message
    if lines is DOTNET:
        assert [f.to_json() for f in run.update_failures] == [DOTNET_FAILURE]
    code = CliRunner().invoke(logs_app, ["track", str(path)]).exit_code
    assert code == (1 if result == "failed" else 0)


# --- updatesync's own logs -----------------------------------------------------------------

UNKNOWN_PRODUCT = "00000000-0000-0000-0000-00000000beef"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[TopLevelSite]:
    with top_level_site(tmp_path, updates=60, seed=62) as top:
        yield top


def test_updatesyncs_own_wcm_log_success_then_unknown_category(
    site: TopLevelSite, tmp_path: Path
) -> None:
    """The site's WSUS configuration manager and sync manager write WCM.log and WSyncMgr.log
    beside each other: a configuration that succeeds and the sync after it; then a product
    the update server does not hold fails the configuration (state 3), and the next sync fails
    with `WSUS server not configured`, which names that configuration run; once the
    subscription is right again both succeed and `logs track` exits 0."""
    wcm = configuration_manager(site, tmp_path)
    manager = configured_sync_manager(site, wcm)
    site.db.wsus.set_subscription(site.products, (SECURITY, CRITICAL), ("en",))
    assert wcm.run_cycle("start")
    assert manager.run("SELF").succeeded
    site.db.wsus.set_subscription((site.products[0], UNKNOWN_PRODUCT), (SECURITY,), ("en",))
    assert not wcm.run_cycle("file")
    assert not manager.run("SELF").succeeded

    runs = track_paths([tmp_path])
    assert [(r.kind, r.result) for r in runs] == [
        ("configuration", "success"),
        ("sync", "success"),
        ("configuration", "failed"),
        ("sync", "failed"),
    ]
    configured, synced, refused, failed = runs
    assert isinstance(configured, ConfigurationRun) and isinstance(refused, ConfigurationRun)
    assert isinstance(synced, SyncRun) and isinstance(failed, SyncRun)
    assert (configured.site, configured.trigger, configured.state_name) == (
        "CS1",
        "start",
        "WSUS_CONFIG_SUCCESS",
    )
    port = site.sup_server.port
    assert [s.to_json() for s in configured.servers] == [
        {"server": SUP, "port": port, "ssl": False, "connected": True}
    ]
    subscribed = configured.subscriptions or []
    assert {c["id"] for c in subscribed if c["kind"] == "Product"} == {
        p.lower() for p in site.products
    }
    assert {c["id"] for c in subscribed if c["kind"] == "UpdateClassification"} == {
        SECURITY,
        CRITICAL,
    }
    assert configured.languages == ["en"]
    assert synced.trigger == "local" and synced.configuration_failure is None

    assert (refused.trigger, refused.states) == ("file", [4, 3])
    assert refused.error is not None and refused.error.message is not None
    assert refused.error.message.startswith(
        f"Failed to set Subscriptions on WSUS Server. {UNKNOWN_PRODUCT} cannot be a subscribed "
        "product"
    )
    assert failed.error is not None and failed.error.source == "CWSyncMgr::DoSync"
    assert failed.configuration_failure == refused.link()
    assert refused.started is not None and failed.started is not None
    assert refused.started <= failed.started

    result = CliRunner().invoke(logs_app, ["track", str(tmp_path)])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "CS1 cs1site.contoso.com · WSUS configuration · file notification" in text
    assert "state 3 (WSUS_CONFIG_FAILED)" in text
    assert "cause: the WSUS configuration run of" in text

    site.db.wsus.set_subscription(site.products, (SECURITY, CRITICAL), ("en",))
    assert wcm.run_cycle("file")
    assert manager.run("SELF").succeeded
    result = CliRunner().invoke(logs_app, ["track", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert [(r["kind"], r["result"]) for r in json.loads(result.output)][-2:] == [
        ("configuration", "success"),
        ("sync", "success"),
    ]


def test_a_simple_form_wcm_log_of_updatesync(tmp_path: Path) -> None:
    """The site server's log may be in the simple form: the same runs."""
    clock = Clock()
    log = SimpleLog(
        tmp_path / "CS1" / "WCM.log", component=WCM_COMP, bias_minutes=-60, now=clock, thread=3
    )
    for line in MS_SSL:
        log.info(line)
    [run] = track_paths([tmp_path])
    assert isinstance(run, ConfigurationRun)
    assert (run.site, run.trigger, run.result, run.started) == (
        "CS1",
        "scf",
        "success",
        T0 + timedelta(seconds=1),
    )


# --- several components' lines in one file -------------------------------------------------


@pytest.mark.parametrize(
    ("sep", "named"),
    [
        ("", False),  # pasted from a post: messages only
        ("   ", True),  # Learn's `message   COMPONENT`
        ("\t", True),  # CMTrace's merged view copied: `message<TAB>component`
    ],
    ids=["bare", "learn", "cmtrace-copy"],
)
def test_one_file_with_wcm_and_wsyncmgr_lines_gives_both_runs_linked(
    tmp_path: Path, sep: str, named: bool
) -> None:
    """The WCM failure and the sync failure it causes, in one paste (or CMTrace's merged view
    of the two logs copied): a configuration run and a sync run, the sync naming the failed
    configuration behind it, as two files would give."""
    lines = [(WEB_502, WCM_COMP), (NOT_CONFIGURED, SYNC_COMP), (RETRY, SYNC_COMP)]
    text = "".join(
        f"{message}{sep}{component}\r\n" if named else f"{message}\r\n"
        for message, component in lines
    )
    path = tmp_path / "ticket-paste.txt"
    path.write_text(text, encoding="utf-8")
    logs = read_logs(LogFile(path, None))
    assert sorted(log.kind for log in logs) == sorted([WCM, WSYNCMGR])
    sync, configuration = track_paths([path])
    assert isinstance(sync, SyncRun) and isinstance(configuration, ConfigurationRun)
    assert (sync.result, configuration.result) == ("failed", "failed")
    assert sync.configuration_failure == configuration.link()
    assert configuration.error is not None and configuration.error.message == WEB_502


def test_a_merged_cmtrace_log_of_wcm_and_wsyncmgr_gives_both_kinds_of_run(tmp_path: Path) -> None:
    """CMTrace's merge of WCM.log and WSyncMgr.log saved as one file (each line keeps its
    component attribute): the reference's WCM success sequence and a sync run, each read as
    its own log."""
    path = tmp_path / "merged.log"
    clock = Clock()
    wcm = cmtrace(path, WCM_COMP, clock)
    for line in MS_WCM_SUCCESS:
        wcm.info(line)
    sync = cmtrace(path, SYNC_COMP, clock)
    for line in ("Wakeup for a polling cycle", "Starting Sync", NOT_CONFIGURED, RETRY):
        sync.info(line)
    runs = track_paths([path])
    assert sorted(type(run).__name__ for run in runs) == ["ConfigurationRun", "SyncRun"]
    configuration = next(r for r in runs if isinstance(r, ConfigurationRun))
    assert (configuration.trigger, configuration.states, configuration.result) == (
        "file",
        [4, 2],
        "success",
    )
