"""`updatesync.logs.rebuild.rebuild_runs` on short WSyncMgr.log line sequences in the real
wording (the article's CS1 and PS1 syncs, the PatchMyPC failure with its retry): how each step
fills a run (trigger, site and server, phases and their items, end, error, retry, children),
which lines open a new run, and which times end up where."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from updatesync.logs.rebuild import rebuild_runs
from updatesync.logs.runs import (
    FAILED,
    REPLICA,
    RUNNING,
    SITE_DATABASE_CATEGORIES,
    SITE_DATABASE_UPDATES,
    SUCCESS,
    UPDATE_SERVER,
    LogLine,
    SyncRun,
)
from updatesync.logs.status_messages import parse_statmsg

T0 = datetime(2014, 1, 16, 18, 53, 0, tzinfo=UTC)
MU = "{C2D17964-BBDD-4339-B9F3-12D7205B39CC}"


def statmsg(
    ident: int,
    when: str,
    *,
    site: str = "CS1",
    system: str = "CS1SITE.CONTOSO.COM",
    istr0: str = "",
    istr1: str = "",
    le: str = "",
) -> str:
    """A STATMSG line as ConfigMgr writes it (`when`: `Thu Jan 16 18:53:52.608 2014`)."""
    sev = "E" if ident == 6703 else "I"
    rest = "".join(f' ISTR{n}=""' for n in range(2, 10))
    tail = f" LE={le}" if le else ""
    return (
        f'STATMSG: ID={ident} SEV={sev} LEV=M SOURCE="SMS Server" COMP="SMS_WSUS_SYNC_MANAGER" '
        f"SYS={system} SITE={site} PID=432 TID=3404 GMTDATE={when} "
        f'ISTR0="{istr0}" ISTR1="{istr1}"{rest} NUMATTRS=0{tail}'
    )


def lines(*messages: str, timed: bool = True) -> list[LogLine]:
    """Log lines one second apart from T0 (no times when not `timed`, as CMTrace copies)."""
    out = []
    for n, message in enumerate(messages):
        when = T0 + timedelta(seconds=n) if timed else None
        msg = parse_statmsg(message) if message.startswith("STATMSG:") else None
        out.append(LogLine(message, when, msg, n + 1))
    return out


def gmt(text: str) -> datetime:
    return datetime.strptime(text, "%a %b %d %H:%M:%S.%f %Y").replace(tzinfo=UTC)


CS1_SYNC = (
    "Wakeup by inbox drop",
    "Found local sync request file",
    "Starting Sync",
    "Performing sync on local request",
    "Read SUPs from SCF for CS1SITE.CONTOSO.COM",
    "Found 1 SUPs",
    "Found active SUP CS1SITE.CONTOSO.COM from SCF File.",
    statmsg(6701, "Thu Jan 16 18:53:52.608 2014"),
    statmsg(6704, "Thu Jan 16 18:53:53.698 2014"),
    "Synchronizing WSUS server cs1site.contoso.com ...",
    "sync: Starting WSUS synchronization",
    "sync: WSUS synchronizing categories",
    "sync: WSUS synchronizing updates",
    "sync: WSUS synchronizing updates, processed 122 out of 130 items (93%), ETA in 00:00:03",
    "sync: WSUS synchronizing updates, processed 130 out of 130 items (100%)",
    "Done synchronizing WSUS Server cs1site.contoso.com",
    "Sleeping 2 more minutes for WSUS server sync results to become available",
    f"Set content version of update source {MU} for site CS1 to 33",
    statmsg(6705, "Thu Jan 16 18:57:09.156 2014"),
    "Synchronizing SMS database with WSUS server cs1site.contoso.com ...",
    "sync: SMS synchronizing categories",
    "sync: SMS synchronizing categories, processed 223 out of 223 items (100%)",
    "sync: SMS synchronizing updates",
    "Synchronizing update af5eb87e-cdd6-40bf-984f-5d0630406de8 - Definition Update for "
    "Microsoft Endpoint Protection - KB2461484 (Definition 1.165.1945.0)",
    "sync: SMS synchronizing updates, processed 5 out of 5 items (100%)",
    "Done synchronizing SMS with WSUS Server cs1site.contoso.com",
    f"Set content version of update source {MU} for site CS1 to 34",
    statmsg(6702, "Thu Jan 16 18:57:46.304 2014"),
    "Sync succeeded. Setting sync alert to canceled state on site CS1",
    "Updated 130 items in SMS database, new update source content version is 34",
    "Sync time: 0d00h03m53s",
    "Sending sync notification to child site(s): PS1, PS2",
    "SQL Replication type has not been set for E:\\ConfigMgr\\inboxes\\WSyncMgr.box\\outbox\\"
    "CS1.SYN, replicating to (PS1, PS2), inbox: E:\\ConfigMgr\\inboxes\\replmgr.box",
)

PS1 = {"site": "PS1", "system": "PS1SITE.CONTOSO.COM"}
PS1_SYNC = (
    "Wakeup by inbox drop",
    "Found parent sync notification file CS1.SYN.",
    "Starting Sync",
    "Performing sync on parent request",
    "Read SUPs from SCF for PS1SITE.CONTOSO.COM",
    "Found 2 SUPs",
    "Found active SUP PS1SITE.CONTOSO.COM from SCF File.",
    "Found active SUP PS1SYS.CONTOSO.COM from SCF File.",
    statmsg(6701, "Thu Jan 16 18:58:37.599 2014", **PS1),
    "Synchronizing WSUS server PS1SITE.CONTOSO.COM",
    statmsg(6704, "Thu Jan 16 18:58:38.909 2014", **PS1),
    "Synchronizing WSUS server ps1site.contoso.com ...",
    "sync: Starting WSUS synchronization",
    "sync: WSUS synchronizing updates, processed 130 out of 130 items (100%)",
    "Done synchronizing WSUS Server ps1site.contoso.com",
    f"Set content version of update source {MU} for site PS1 to 34",
    "Synchronizing replica WSUS servers",
    statmsg(6706, "Thu Jan 16 19:00:13.575 2014", **PS1),
    "Synchronizing WSUS server ps1sys.contoso.com ...",
    "sync: Starting Replica WSUS synchronization",
    "sync: Replica WSUS synchronizing other items",
    "sync: Replica WSUS synchronizing other items, processed 4 out of 4 items (100%)",
    "Done synchronizing WSUS Server ps1sys.contoso.com",
    statmsg(6702, "Thu Jan 16 19:01:35.117 2014", **PS1),
    "Sync succeeded. Setting sync alert to canceled state on site PS1",
    "Successfully synced site with parent CS1, version 34",
    "Sync time: 0d00h02m57s",
    "Sending sync notification to child site(s): SS1",
)

CHQ = {"site": "CHQ", "system": "CM1.corp.contoso.com"}
ADMIN_PROXY = "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer"
CHQ_FAILURE = (
    "Wakeup for scheduled regular sync",
    "Starting Sync",
    "Performing sync on regular schedule",
    statmsg(6701, "Fri Aug 02 20:54:20.100 2024", **CHQ),
    statmsg(6704, "Fri Aug 02 20:54:21.200 2024", **CHQ),
    "Synchronizing WSUS server cm1.corp.contoso.com ...",
    f"Sync failed: Request for principal permission failed. Source: {ADMIN_PROXY}",
    statmsg(
        6703,
        "Fri Aug 02 20:54:26.571 2024",
        istr0=ADMIN_PROXY,
        istr1="Request for principal permission failed",
        le="0X8013150a",
        **CHQ,
    ),
    "Sync failed. Will retry in 60 minutes",
)
CHQ_RETRY = (
    "Wakeup by inbox drop",
    "Starting Sync",
    "Performing sync on retry schedule",
    statmsg(6701, "Fri Aug 02 21:54:27.000 2024", **CHQ),
    statmsg(6704, "Fri Aug 02 21:54:28.000 2024", **CHQ),
    statmsg(6705, "Fri Aug 02 21:55:28.000 2024", **CHQ),
    statmsg(6702, "Fri Aug 02 21:56:28.000 2024", **CHQ),
)


def only(runs: list[SyncRun]) -> SyncRun:
    assert len(runs) == 1
    return runs[0]


# -- a successful top-level sync ------------------------------------------------------------


def test_top_level_sync_is_one_successful_run() -> None:
    run = only(rebuild_runs(lines(*CS1_SYNC), log="CS1-WSyncMgr.log"))
    assert (run.site, run.server, run.trigger, run.parent) == (
        "CS1",
        "cs1site.contoso.com",
        "local",
        None,
    )
    assert run.result == SUCCESS
    assert run.started == gmt("Thu Jan 16 18:53:52.608 2014")
    assert run.ended == gmt("Thu Jan 16 18:57:46.304 2014")
    assert run.duration_s == 233.696
    assert run.sups == ["cs1site.contoso.com"]
    assert run.log == "CS1-WSyncMgr.log"


def test_top_level_sync_phases_in_order_with_their_items() -> None:
    run = only(rebuild_runs(lines(*CS1_SYNC)))
    got = [
        (p.name, p.status_message, p.server, p.items_done, p.items_total, p.status)
        for p in run.phases
    ]
    assert got == [
        (UPDATE_SERVER, 6704, "cs1site.contoso.com", 130, 130, "done"),
        (SITE_DATABASE_CATEGORIES, 6705, "cs1site.contoso.com", 223, 223, "done"),
        (SITE_DATABASE_UPDATES, 6705, "cs1site.contoso.com", 5, 5, "done"),
    ]
    update_server = run.phases[0]
    assert update_server.started == gmt("Thu Jan 16 18:53:53.698 2014")
    # A phase ends at the line that ended it ("Done synchronizing WSUS Server ...", line 16).
    assert update_server.ended == T0 + timedelta(seconds=15)
    assert run.replicas == []


def test_lines_after_the_end_still_belong_to_the_run() -> None:
    run = only(rebuild_runs(lines(*CS1_SYNC)))
    assert run.content_versions == [33, 34]
    assert run.content_version == 34
    assert run.items_updated == 130
    assert run.reported_content_version == 34
    assert run.reported_sync_time_s == 3 * 60 + 53
    assert run.children == ["PS1", "PS2"]
    assert run.last_activity is not None
    assert run.last_activity.message.startswith("SQL Replication type has not been set")
    assert run.last_known == T0 + timedelta(seconds=len(CS1_SYNC) - 1)


def test_without_line_times_only_status_message_times_are_kept() -> None:
    run = only(rebuild_runs(lines(*CS1_SYNC, timed=False)))
    assert run.started == gmt("Thu Jan 16 18:53:52.608 2014")
    assert run.ended == gmt("Thu Jan 16 18:57:46.304 2014")
    assert run.phases[0].ended is None
    assert run.phases[0].started == gmt("Thu Jan 16 18:53:53.698 2014")
    assert run.last_activity is not None and run.last_activity.time is None
    assert run.last_known == gmt("Thu Jan 16 18:57:46.304 2014")


def test_site_and_server_given_are_used_until_the_log_says_otherwise() -> None:
    run = only(rebuild_runs(lines("Starting Sync"), site="cs1", server="CS1SITE.CONTOSO.COM."))
    assert (run.site, run.server, run.result) == ("CS1", "cs1site.contoso.com", RUNNING)
    run = only(rebuild_runs(lines(*CS1_SYNC[:9]), site="XXX", server="other.contoso.com"))
    assert (run.site, run.server) == ("CS1", "cs1site.contoso.com")


def test_a_run_still_open_at_the_end_of_the_log_is_running() -> None:
    run = only(rebuild_runs(lines(*CS1_SYNC[:15])))
    assert run.result == RUNNING
    assert run.ended is None
    assert [(p.name, p.status, p.items_done) for p in run.phases] == [(UPDATE_SERVER, RUNNING, 130)]


# -- a failed sync and its retry ------------------------------------------------------------


def test_failed_sync_takes_its_error_from_6703() -> None:
    run = only(rebuild_runs(lines(*CHQ_FAILURE)))
    assert (run.site, run.server, run.trigger) == ("CHQ", "cm1.corp.contoso.com", "schedule")
    assert run.result == FAILED
    assert run.error is not None
    assert run.error.to_json() == {
        "source": ADMIN_PROXY,
        "message": "Request for principal permission failed",
        "code": "0x8013150a",
    }
    assert run.ended == gmt("Fri Aug 02 20:54:26.571 2024")
    assert run.retry_after_minutes == 60
    assert run.next_retry == gmt("Fri Aug 02 21:54:26.571 2024")
    phase = run.phases[0]
    assert (phase.name, phase.status, phase.server) == (
        UPDATE_SERVER,
        FAILED,
        "cm1.corp.contoso.com",
    )
    assert (
        phase.error is not None and phase.error.message == "Request for principal permission failed"
    )


def test_failure_line_alone_gives_message_and_source() -> None:
    run = only(rebuild_runs(lines(*CHQ_FAILURE[:7])))
    assert run.result == FAILED
    assert run.error is not None
    assert (run.error.source, run.error.message, run.error.code) == (
        ADMIN_PROXY,
        "Request for principal permission failed",
        None,
    )
    assert run.ended == T0 + timedelta(seconds=6)


def test_the_retry_is_a_run_of_its_own() -> None:
    first, second = rebuild_runs(lines(*CHQ_FAILURE, *CHQ_RETRY))
    assert (first.result, first.retry_after_minutes) == (FAILED, 60)
    assert (second.result, second.trigger) == (SUCCESS, "retry")
    assert second.error is None
    assert second.started == gmt("Fri Aug 02 21:54:27.000 2024")
    assert [p.name for p in second.phases] == [UPDATE_SERVER, SITE_DATABASE_CATEGORIES]
    assert all(p.status == "done" for p in second.phases)


def test_a_retry_line_alone_fails_the_running_run() -> None:
    run = only(rebuild_runs(lines("Starting Sync", "Sync failed. Will retry in 5 minutes")))
    assert (run.result, run.retry_after_minutes) == (FAILED, 5)
    assert run.ended == T0 + timedelta(seconds=1)


def test_a_run_without_an_end_fails_when_the_next_one_starts() -> None:
    first, second = rebuild_runs(lines(*CHQ_FAILURE[:5], *CHQ_RETRY))
    # The error gives the time of the line that opened the next run ("Starting Sync", line 7).
    assert first.result == FAILED
    assert first.error is not None
    assert first.error.message == (
        "The sync has no end in the log (no 6702 or 6703): the next sync started at "
        "2014-01-16T18:53:06.000Z"
    )
    assert [p.status for p in first.phases] == [FAILED]
    assert second.result == SUCCESS


# -- a child's sync from its parent ---------------------------------------------------------


def test_child_sync_from_its_parent() -> None:
    run = only(rebuild_runs(lines(*PS1_SYNC)))
    assert (run.site, run.server, run.trigger, run.parent) == (
        "PS1",
        "ps1site.contoso.com",
        "parent",
        "CS1",
    )
    assert run.result == SUCCESS
    assert run.sups == ["ps1site.contoso.com", "ps1sys.contoso.com"]
    assert run.reported_content_version == 34
    assert run.content_versions == [34]
    assert run.children == ["SS1"]
    assert run.reported_sync_time_s == 2 * 60 + 57


def test_child_sync_has_one_replica_phase_per_replica_sup() -> None:
    run = only(rebuild_runs(lines(*PS1_SYNC)))
    assert [(p.name, p.server, p.status) for p in run.phases] == [
        (UPDATE_SERVER, "ps1site.contoso.com", "done"),
        (REPLICA, "ps1sys.contoso.com", "done"),
    ]
    assert run.replicas == [
        {"server": "ps1sys.contoso.com", "items": 4, "status": "done", "error": None}
    ]
    replica = run.phase(REPLICA)
    assert replica is not None
    assert replica.status_message == 6706


def test_parent_is_known_from_the_synced_line_alone() -> None:
    run = only(
        rebuild_runs(lines("Starting Sync", "Successfully synced site with parent cs1, version 34"))
    )
    assert (run.parent, run.trigger, run.reported_content_version) == ("CS1", "parent", 34)


def test_a_replica_failure_fails_the_replica_not_the_run() -> None:
    failure = "Replica WSUS server ps1sys.contoso.com: connection refused"
    run = only(
        rebuild_runs(
            lines(
                *PS1_SYNC[:19],
                "Failed to synchronize replica WSUS server ps1sys.contoso.com: connection "
                "refused. Source: WSUS",
                statmsg(
                    6703, "Thu Jan 16 19:01:00.000 2014", istr1=failure, le="0x80004005", **PS1
                ),
                statmsg(6702, "Thu Jan 16 19:01:35.117 2014", **PS1),
            )
        )
    )
    assert run.result == SUCCESS
    assert run.error is None
    replica = run.replicas[0]
    assert replica["server"] == "ps1sys.contoso.com"
    assert replica["status"] == FAILED
    assert replica["error"] == {
        "source": "WSUS",
        "message": "connection refused",
        "code": "0x80004005",
    }


# -- which lines open a run -----------------------------------------------------------------


def test_6701_without_starting_sync_opens_a_run() -> None:
    run = only(rebuild_runs(lines(statmsg(6701, "Thu Jan 16 18:53:52.608 2014"))))
    assert (run.site, run.result, run.explicit_start) == ("CS1", RUNNING, False)
    assert run.started == gmt("Thu Jan 16 18:53:52.608 2014")


def test_6701_after_starting_sync_joins_its_run() -> None:
    run = only(rebuild_runs(lines("Starting Sync", statmsg(6701, "Thu Jan 16 18:53:52.608 2014"))))
    assert run.started == gmt("Thu Jan 16 18:53:52.608 2014")


def test_a_full_sync_request_is_the_trigger() -> None:
    run = only(
        rebuild_runs(
            lines(
                "Found local sync request file",
                "Found full sync request file E:\\ConfigMgr\\inboxes\\WSyncMgr.box\\FULL.SYN",
                "Starting Sync",
                "Performing sync on local request",
            )
        )
    )
    assert run.trigger == "full"


def test_hints_apply_to_the_next_run_only() -> None:
    first, second = rebuild_runs(
        lines(
            "Wakeup for scheduled regular sync",
            "Starting Sync",
            statmsg(6702, "Thu Jan 16 18:57:46.304 2014"),
            "Starting Sync",
        )
    )
    assert (first.trigger, first.result) == ("schedule", SUCCESS)
    assert (second.trigger, second.result) == (None, RUNNING)


def test_lines_of_unknown_kinds_change_nothing() -> None:
    assert rebuild_runs(lines("Wakeup by inbox drop", "Something else entirely")) == []
    assert rebuild_runs([]) == []


# -- license terms pending (6708) -------------------------------------------------------------

PENDING_UPDATE = "8b1ca2c2-e002-4dc6-a5d6-0168006fb369"
LICENSE_FAILURE = (
    f"Failed to sync update {PENDING_UPDATE}. Error: The Microsoft Software License Terms have "
    "not been completely downloaded and~~cannot be accepted. Source: "
    "Microsoft.UpdateServices.Internal.BaseApi.LicenseAgreement.GetById"
)
"""The real line (PatchMyPC's knowledge base, 2024), "~~" as the log shows it."""


def _with_pending_license_terms() -> tuple[str, ...]:
    """CS1's sync with one update failed for its license terms and 6708 instead of 6702."""
    done = CS1_SYNC.index(statmsg(6702, "Thu Jan 16 18:57:46.304 2014"))
    updates = CS1_SYNC.index("sync: SMS synchronizing updates")
    return (
        *CS1_SYNC[: updates + 1],
        LICENSE_FAILURE,
        *CS1_SYNC[updates + 1 : done],
        statmsg(6708, "Thu Jan 16 18:57:46.304 2014").replace("SEV=I", "SEV=W"),
        *CS1_SYNC[done + 1 :],
    )


def test_a_sync_ending_with_6708_completed_with_pending_license_terms() -> None:
    run = only(rebuild_runs(lines(*_with_pending_license_terms())))
    assert run.result == SUCCESS
    assert run.license_terms_pending
    assert run.ended == gmt("Thu Jan 16 18:57:46.304 2014")
    assert [f.to_json() for f in run.update_failures] == [
        {
            "update_id": PENDING_UPDATE,
            "message": "The Microsoft Software License Terms have not been completely "
            "downloaded and~~cannot be accepted",
            "source": "Microsoft.UpdateServices.Internal.BaseApi.LicenseAgreement.GetById",
        }
    ]
    assert len(run.warnings) == 1 and "with pending license terms downloads" in run.warnings[0]
    assert run.to_json()["license_terms_pending"] is True


def test_the_next_sync_ending_with_6702_has_no_pending_license_terms() -> None:
    runs = rebuild_runs(lines(*_with_pending_license_terms(), *CS1_SYNC))
    assert [(r.result, r.license_terms_pending) for r in runs] == [
        (SUCCESS, True),
        (SUCCESS, False),
    ]
    assert runs[1].update_failures == []
