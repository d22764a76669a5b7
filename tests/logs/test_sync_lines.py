"""The sync manager's lines (WSyncMgr.log) as `classify` sorts them: the kind of each real line
of Microsoft's article and of real failed syncs, with the parts a run is rebuilt from
(servers, sites, counts, versions, the sync time); `split_failure` on the `Sync failed:` and
`Failed to synchronize replica` texts; and the helpers `sites`, `host` and `PERFORMING`."""

from __future__ import annotations

import pytest

from updatesync.logs.sync_lines import (
    HINTS,
    PATTERNS,
    PERFORMING,
    classify,
    host,
    sites,
    split_failure,
)

MU = "{C2D17964-BBDD-4339-B9F3-12D7205B39CC}"
PERMISSION = (
    "Request for principal permission failed. "
    "Source: Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer"
)
TIMEOUT = (
    "The operation has timed out. Source: "
    "Microsoft.UpdateServices.Internal.DatabaseAccess.ApiRemotingCompressionProxy.GetWebResponse"
)


def kind_of(line: str) -> str | None:
    return classify(line)[0]


def parts(line: str) -> dict[str, str | None]:
    kind, match = classify(line)
    assert kind is not None and match is not None, f"not classified: {line!r}"
    return match.groupdict()


# -- the kind of each line ------------------------------------------------------------------

ARTICLE_CAS = [
    ("Wakeup by inbox drop", "hint_wakeup"),
    ("Found local sync request file", "hint_local"),
    ("Starting Sync", "start"),
    ("Performing sync on local request", "performing"),
    ("Read SUPs from SCF for CS1SITE.CONTOSO.COM", "read_sups"),
    ("Found 1 SUPs", "found_sups"),
    ("Found active SUP CS1SITE.CONTOSO.COM from SCF File.", "active_sup"),
    ("Synchronizing WSUS server cs1site.contoso.com ...", "wsus_server"),
    ("sync: Starting WSUS synchronization", "wsus_start"),
    ("sync: WSUS synchronizing categories", "wsus_step"),
    ("sync: WSUS synchronizing updates", "wsus_step"),
    (
        "sync: WSUS synchronizing updates, processed 122 out of 130 items (93%), ETA in 00:00:03",
        "wsus_progress",
    ),
    ("sync: WSUS synchronizing updates, processed 130 out of 130 items (100%)", "wsus_progress"),
    ("Done synchronizing WSUS Server cs1site.contoso.com", "wsus_done"),
    ("Sleeping 2 more minutes for WSUS server sync results to become available", "sleeping"),
    (f"Set content version of update source {MU} for site CS1 to 33", "content_version"),
    ("Synchronizing SMS database with WSUS server cs1site.contoso.com ...", "sms_server"),
    ("sync: SMS synchronizing categories", "sms_categories_step"),
    ("sync: SMS synchronizing categories, processed 223 out of 223 items (100%)", "sms_categories"),
    ("sync: SMS synchronizing updates", "sms_updates_step"),
    (
        "Synchronizing update af5eb87e-cdd6-40bf-984f-5d0630406de8 - Definition Update for "
        "Microsoft Endpoint Protection - KB2461484 (Definition 1.165.1945.0)",
        "sms_update",
    ),
    ("sync: SMS synchronizing updates, processed 5 out of 5 items (100%)", "sms_updates"),
    ("Done synchronizing SMS with WSUS Server cs1site.contoso.com", "sms_done"),
    ("Sync succeeded. Setting sync alert to canceled state on site CS1", "succeeded"),
    ("Updated 130 items in SMS database, new update source content version is 34", "updated"),
    ("Sync time: 0d00h03m53s", "sync_time"),
    ("Sending sync notification to child site(s): PS1, PS2", "children"),
    (
        r"SQL Replication type has not been set for E:\ConfigMgr\inboxes\WSyncMgr.box\outbox"
        r"\CS1.SYN, replicating to (PS1, PS2), inbox: E:\ConfigMgr\inboxes\replmgr.box",
        "replicating",
    ),
]

ARTICLE_PRIMARY = [
    ("Found parent sync notification file CS1.SYN.", "hint_parent"),
    ("Performing sync on parent request", "performing"),
    ("Found 2 SUPs", "found_sups"),
    ("Synchronizing WSUS server PS1SITE.CONTOSO.COM", "wsus_server"),
    ("Synchronizing replica WSUS servers", "replicas"),
    ("sync: Starting Replica WSUS synchronization", "wsus_start"),
    ("sync: Replica WSUS synchronizing other items", "wsus_step"),
    (
        "sync: Replica WSUS synchronizing other items, processed 4 out of 4 items (100%)",
        "wsus_progress",
    ),
    ("Sync succeeded. Setting sync alert to canceled state on site PS1", "succeeded"),
    ("Successfully synced site with parent CS1, version 34", "synced_parent"),
    ("Sending sync notification to child site(s): SS1", "children"),
]

FAILURES = [
    (f"Sync failed: {PERMISSION}", "failed"),
    ("Sync failed. Will retry in 60 minutes", "retry"),
    (f"Sync failed: {TIMEOUT}", "failed"),
    ("Sync failed. Will retry in 1 minute", "retry"),
    (
        "Failed to synchronize replica WSUS server ps1sys.contoso.com: connection refused. "
        "Source: UpdateServer http://ps1sys.contoso.com:8530",
        "replica_failed",
    ),
    (
        "Failed to send the sync notification to child site(s) PS1, PS2: disk full",
        "notify_failed",
    ),
    # MS-DOTNET (a real 2019 log): one update the site database refused
    (
        "Failed to sync update 7155376c-87e9-4f55-80f1-0d7c64eb8b5d. Error: Failed to save "
        "update 9f6cfa34-72f4-4fe6-9131-5fb03d1af361. CCISource error: -1. Source: Microsoft."
        "SystemsManagementServer.SoftwareUpdatesManagement.UpdatesManager.UpdatesManagerClass."
        "DefineUpdate",
        "update_failed",
    ),
    # MSQA-CIDOC: after repeated update failures
    ("Too many consecutive failures. Aborting sync.", "aborted"),
    # PMPC-PERM: pasted with CMTrace's column header glued to it
    (f"MessageSync failed: {PERMISSION}", "failed"),
]

WAKEUPS = [
    ("Wakeup for scheduled regular sync", "hint_schedule"),
    ("Wakeup for a polling cycle", "hint_retry"),
    ("Found full sync request file", "hint_full"),
    ("Full sync requested", "hint_full"),
    (r"Found sync request file E:\ConfigMgr\inboxes\WSyncMgr.box\FULL.SYN", "hint_full"),
    ("Wakeup by inbox drop", "hint_wakeup"),
    ("Performing sync on regular schedule", "performing"),
    ("Performing sync on retry schedule", "performing"),
]


@pytest.mark.parametrize(
    ("line", "kind"), ARTICLE_CAS + ARTICLE_PRIMARY + FAILURES + WAKEUPS, ids=lambda v: v[:40]
)
def test_each_line_has_its_kind(line: str, kind: str) -> None:
    assert kind_of(line) == kind


@pytest.mark.parametrize(
    "line",
    [
        'STATMSG: ID=6701 SEV=I LEV=M SOURCE="SMS Server" COMP="SMS_WSUS_SYNC_MANAGER" '
        "SYS=CS1SITE.CONTOSO.COM SITE=CS1 PID=432 TID=3404 GMTDATE=Thu Jan 16 18:53:52.608 2014 "
        'ISTR0="" ISTR1="" NUMATTRS=0',
        "",
        "   ",
        "Some other component's message",
        "Synchronizing WSUS servers is not configured",
    ],
)
def test_other_lines_are_unknown(line: str) -> None:
    assert classify(line) == (None, None)


def test_surrounding_whitespace_and_case_do_not_matter() -> None:
    assert kind_of("  Starting Sync \r\n") == "start"
    assert kind_of("starting sync") == "start"
    assert kind_of("SYNC: WSUS SYNCHRONIZING UPDATES") == "wsus_step"


def test_every_kind_is_named_once_and_the_hints_are_kinds() -> None:
    kinds = [kind for kind, _ in PATTERNS]
    assert len(kinds) == len(set(kinds))
    assert set(kinds) >= HINTS
    assert sorted(HINTS) == [
        "hint_full",
        "hint_local",
        "hint_parent",
        "hint_retry",
        "hint_schedule",
        "hint_wakeup",
    ]


# -- the parts of a line --------------------------------------------------------------------


def test_an_update_failure_gives_the_update_its_message_and_source() -> None:
    line = (
        "Failed to sync update 7155376c-87e9-4f55-80f1-0d7c64eb8b5d. Error: Failed to save "
        "update 9f6cfa34-72f4-4fe6-9131-5fb03d1af361. CCISource error: -1. Source: Microsoft."
        "SystemsManagementServer.SoftwareUpdatesManagement.UpdatesManager.UpdatesManagerClass."
        "DefineUpdate"
    )
    found = parts(line)
    assert found["update"] == "7155376c-87e9-4f55-80f1-0d7c64eb8b5d"
    assert split_failure(found["rest"] or "") == (
        "Failed to save update 9f6cfa34-72f4-4fe6-9131-5fb03d1af361. CCISource error: -1",
        "Microsoft.SystemsManagementServer.SoftwareUpdatesManagement.UpdatesManager."
        "UpdatesManagerClass.DefineUpdate",
    )


def test_a_pasted_bom_and_column_header_are_looked_past() -> None:
    assert parts(f"MessageSync failed: {PERMISSION}")["rest"] == PERMISSION
    assert kind_of("?Wakeup by inbox drop") == "hint_wakeup"
    assert kind_of("Message") is None


def test_servers_are_taken_without_the_dots() -> None:
    assert parts("Synchronizing WSUS server cs1site.contoso.com ...")["server"] == (
        "cs1site.contoso.com"
    )
    assert parts("Synchronizing WSUS server cs1site.contoso.com...")["server"] == (
        "cs1site.contoso.com"
    )
    assert parts("Synchronizing WSUS server PS1SITE.CONTOSO.COM")["server"] == (
        "PS1SITE.CONTOSO.COM"
    )
    assert parts("Synchronizing SMS database with WSUS server cs1site.contoso.com ...") == {
        "server": "cs1site.contoso.com"
    }
    assert parts("Found active SUP PS1SYS.CONTOSO.COM from SCF File.") == {
        "server": "PS1SYS.CONTOSO.COM"
    }
    assert parts("Read SUPs from SCF for CS1SITE.CONTOSO.COM") == {"server": "CS1SITE.CONTOSO.COM"}
    assert parts("Done synchronizing WSUS Server ps1sys.contoso.com") == {
        "server": "ps1sys.contoso.com"
    }
    assert parts("Done synchronizing SMS with WSUS Server cs1site.contoso.com") == {
        "server": "cs1site.contoso.com"
    }


def test_progress_counts_and_what_is_counted() -> None:
    assert parts(
        "sync: WSUS synchronizing updates, processed 122 out of 130 items (93%), ETA in 00:00:03"
    ) == {"what": "updates", "done": "122", "total": "130"}
    assert parts(
        "sync: Replica WSUS synchronizing other items, processed 4 out of 4 items (100%)"
    ) == {"what": "other items", "done": "4", "total": "4"}
    assert parts(
        "sync: Replica WSUS synchronizing updates, processed 100 out of 1000 items (10%), "
        "ETA in 00:02:00"
    ) == {"what": "updates", "done": "100", "total": "1000"}
    assert parts("sync: SMS synchronizing categories, processed 223 out of 223 items (100%)") == {
        "done": "223",
        "total": "223",
    }
    assert parts("sync: SMS synchronizing updates, processed 5 out of 5 items (100%)") == {
        "done": "5",
        "total": "5",
    }


def test_steps_name_what_is_synchronized() -> None:
    assert parts("sync: WSUS synchronizing categories") == {"what": "categories"}
    assert parts("sync: Replica WSUS synchronizing other items") == {"what": "other items"}


def test_a_replica_start_is_told_from_the_default_sup_start() -> None:
    assert parts("sync: Starting WSUS synchronization") == {"replica": None}
    assert parts("sync: Starting Replica WSUS synchronization") == {"replica": "Replica "}


def test_versions_sites_and_counts() -> None:
    assert parts(f"Set content version of update source {MU} for site CS1 to 33") == {
        "site": "CS1",
        "v": "33",
    }
    assert parts("Updated 130 items in SMS database, new update source content version is 34") == {
        "n": "130",
        "v": "34",
    }
    assert parts("Successfully synced site with parent CS1, version 34") == {"p": "CS1", "v": "34"}
    assert parts("Found parent sync notification file CS1.SYN.") == {"parent": "CS1"}


def test_sync_time() -> None:
    assert parts("Sync time: 0d00h03m53s") == {"d": "0", "h": "00", "m": "03", "s": "53"}
    assert parts("Sync time: 1d23h59m07s") == {"d": "1", "h": "23", "m": "59", "s": "07"}


def test_succeeded_with_and_without_the_site() -> None:
    assert parts("Sync succeeded. Setting sync alert to canceled state on site CS1") == {
        "site": "CS1"
    }
    assert kind_of("Sync succeeded.") == "succeeded"
    assert parts("Sync succeeded.") == {"site": None}


def test_children_and_replication_lists() -> None:
    assert parts("Sending sync notification to child site(s): PS1, PS2  ") == {"list": "PS1, PS2"}
    line = (
        r"SQL Replication type has not been set for E:\ConfigMgr\inboxes\WSyncMgr.box\outbox"
        r"\CS1.SYN, replicating to (PS1, PS2), inbox: E:\ConfigMgr\inboxes\replmgr.box"
    )
    assert parts(line) == {"list": "PS1, PS2"}


def test_retry_minutes_and_failure_texts() -> None:
    assert parts("Sync failed. Will retry in 60 minutes") == {"n": "60"}
    assert parts(f"Sync failed: {TIMEOUT}") == {"rest": TIMEOUT}
    assert parts(
        "Failed to synchronize replica WSUS server ps1sys.contoso.com: connection refused. "
        "Source: UpdateServer http://ps1sys.contoso.com:8530"
    ) == {
        "server": "ps1sys.contoso.com",
        "rest": "connection refused. Source: UpdateServer http://ps1sys.contoso.com:8530",
    }


def test_a_multi_line_failure_is_one_line_of_kind_failed() -> None:
    text = "UssCommunicationError: WebException: timed out\n   at X.Y()\n. Source: A.B.C"
    assert parts(f"Sync failed: {text}") == {"rest": text}


@pytest.mark.parametrize(
    ("line", "trigger"),
    [
        ("Performing sync on local request", "local"),
        ("Performing sync on parent request", "parent"),
        ("Performing sync on regular schedule", "schedule"),
        ("Performing sync on retry schedule", "retry"),
        ("Performing sync on full sync request", "full"),
    ],
)
def test_performing_names_the_trigger(line: str, trigger: str) -> None:
    what = parts(line)["what"]
    assert what is not None
    assert PERFORMING[what] == trigger


# -- failures -------------------------------------------------------------------------------


def test_split_failure_of_the_real_permission_failure() -> None:
    assert split_failure(PERMISSION) == (
        "Request for principal permission failed",
        "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer",
    )


def test_split_failure_of_the_real_timeout() -> None:
    assert split_failure(TIMEOUT) == (
        "The operation has timed out",
        "Microsoft.UpdateServices.Internal.DatabaseAccess.ApiRemotingCompressionProxy."
        "GetWebResponse",
    )


def test_split_failure_of_a_message_without_a_source() -> None:
    assert split_failure("no source here.") == ("no source here", None)
    assert split_failure("disk full") == ("disk full", None)


def test_split_failure_keeps_the_first_line_of_an_exception_and_its_stack() -> None:
    text = (
        "UssCommunicationError: WebException: timed out\n   at X.Y()\n   at Z.W()"
        ". Source: Microsoft.UpdateServices.Internal.X.GetWebResponse"
    )
    assert split_failure(text) == (
        "UssCommunicationError: WebException: timed out",
        "Microsoft.UpdateServices.Internal.X.GetWebResponse",
    )


def test_split_failure_skips_blank_lines_before_the_message() -> None:
    assert split_failure("\n\n  The operation has timed out.  \n") == (
        "The operation has timed out",
        None,
    )


def test_split_failure_takes_the_last_source() -> None:
    text = "Proxy said: bad answer. Source: inner. Source: UpdateServer http://sup:8530."
    assert split_failure(text) == (
        "Proxy said: bad answer. Source: inner",
        "UpdateServer http://sup:8530",
    )


def test_split_failure_of_empty_parts() -> None:
    assert split_failure("") == (None, None)
    assert split_failure(". Source: A.B") == (None, "A.B")
    assert split_failure("Timed out.. Source: ") == ("Timed out", None)


def test_split_failure_of_a_replica_failure() -> None:
    rest = parts(
        "Failed to synchronize replica WSUS server ps1sys.contoso.com: connection refused. "
        "Source: UpdateServer http://ps1sys.contoso.com:8530"
    )["rest"]
    assert rest is not None
    assert split_failure(rest) == (
        "connection refused",
        "UpdateServer http://ps1sys.contoso.com:8530",
    )


# -- helpers --------------------------------------------------------------------------------


def test_sites_of_a_list() -> None:
    assert sites("PS1, PS2") == ["PS1", "PS2"]
    assert sites("ps1;ps2  ss1") == ["PS1", "PS2", "SS1"]
    assert sites("SS1") == ["SS1"]
    assert sites(" , ") == []


def test_host_names_compare_in_lower_case_without_the_root_dot() -> None:
    assert host("CS1SITE.CONTOSO.COM") == "cs1site.contoso.com"
    assert host(" ps1sys.contoso.com. ") == "ps1sys.contoso.com"
