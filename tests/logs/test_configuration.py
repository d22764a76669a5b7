"""Configuration runs rebuilt from WCM.log (`updatesync.logs.configuration`) on the real lines
the reference quotes (`../shared/reference/configmgr-log-lines.md`, section 1; the source of
each excerpt is named beside it, and the lines are copied as the reference prints them, typos,
`~` and `~~` included): the trigger, the state, the servers, the subscribed categories, the
error and the result of each run; and the parts (`classify`, `parse_categories`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from wcm_excerpts import MS_SSL, MS_WCM_SUCCESS

from updatesync.logs.configuration import (
    STATES,
    ConfigurationRun,
    ServerConnection,
    classify,
    is_wcm_line,
    normalise,
    parse_categories,
    rebuild_configuration_runs,
)
from updatesync.logs.runs import LogLine
from updatesync.logs.simple import parse_simple

# MS-SUPINST (1.2, 2026 revision): the same flow, folded with " ~".
MS_SUPINST_SUCCESS = [
    "File notification triggered WCM Inbox.",
    "Setting new configuration state to 4 (WSUS_CONFIG_SUBSCRIPTION_PENDING)",
    "Successfully connected to local WSUS server",
    'Subscribed Update Categories <?xml version="1.0" ?> ~<Categories>~ <Category Id="[Category'
    'ID]"><![CDATA[Example product]]></Category>~ <Category Id="[ClassificationID]"><![CDATA['
    "Critical Updates]]></Category>~ </Categories>",
    "Setting new configuration state to 2 (WSUS_CONFIG_SUCCESS)",
]
# PB-WCM (1.3): a real log in the legacy site-server layout (the lines whose suffix the
# reference gives in full), the hourly wait and the timeout that starts the next cycle.
PB_WCM = [
    "?Attempting connection to local WSUS server $$<SMS_WSUS_CONFIGURATION_MANAGER><02-16-2020 "
    "00:03:23.267+480><thread=6080 (0x17C0)>",
    "Successfully connected to local WSUS server $$<SMS_WSUS_CONFIGURATION_MANAGER><02-16-2020 "
    "00:03:23.298+480><thread=6080 (0x17C0)>",
    "HandleSMSClientPublication failed. $$<SMS_WSUS_CONFIGURATION_MANAGER><02-16-2020 "
    "00:06:24.204+480><thread=6080 (0x17C0)>",
    "Waiting for changes for 56 minutes $$<SMS_WSUS_CONFIGURATION_MANAGER><02-16-2020 "
    "00:06:24.204+480><thread=6080 (0x17C0)>",
    "Wait timed out after 56 minutes while waiting for at least one trigger event. "
    "$$<SMS_WSUS_CONFIGURATION_MANAGER><02-16-2020 01:01:59.079+480><thread=6080 (0x17C0)>",
    "Timed Out...~ $$<SMS_WSUS_CONFIGURATION_MANAGER><02-16-2020 01:02:09.094+480>"
    "<thread=6080 (0x17C0)>",
    "Checking for supported version of WSUS (min WSUS 3.0 SP2 + KB2720211 + KB2734608)~ "
    "$$<SMS_WSUS_CONFIGURATION_MANAGER><02-16-2020 01:02:09.094+480><thread=6080 (0x17C0)>",
]
# MS-SUPINST (1.4): the periodic check that finds nothing to change.
MS_SUPINST_PERIODIC = [
    "Checking for supported version of WSUS (min WSUS 3.0 SP2 + KB2720211 + KB2734608)",
    "Checking runtime v4.0.30319...",
    "Supported WSUS version found",
    "Successfully connected to local WSUS server",
    "Verify Upstream Server settings on the Active WSUS Server",
    "No changes - WSUS Server settings are correctly configured and Upstream Server is set to "
    "Microsoft Update",
    "for [SiteServer], no connection account is available",
    "Successfully refreshed categories from WSUS server",
    "Successfully connected to local WSUS server",
]
# MS-SHAREDDB (1.6): an active SUP list change, cut before its end.
MS_SHAREDDB = [
    "Populating config from SCF",
    "Setting new configuration state to 1 (WSUS_CONFIG_PENDING)~",
    "Changes in active SUP list detected. New active SUP List is:~",
    "    SUP0: SUPServer1.contoso.com, group = SUPServer1, nlb = ~",
    "    SUP1: SUPServer2.contoso.com, group = SUPServer1, nlb = ~",
    "Updating active SUP groups...~",
]
# MS-WCM (1.1): the version check at the start of a cycle.
MS_WCM_VERSION = [
    "Checking for supported version of WSUS (min WSUS 3.0 SP2 + KB2720211 + KB2734608)",
    "Checking runtime v2.0.50727...",
    "Did not find supported version of assembly Microsoft.UpdateServices.Administration.",
    "Checking runtime v4.0.30319...",
    "Found supported assembly Microsoft.UpdateServices.Administration version 4.0.0.0, file "
    "version 6.2.9200.16384",
    "Found supported assembly Microsoft.UpdateServices.BaseApi version 4.0.0.0, file version "
    "6.2.9200.16384",
    "Supported WSUS version found",
]


def lines(messages: list[str]) -> list[LogLine]:
    return [LogLine(m) for m in messages]


def one(messages: list[str]) -> ConfigurationRun:
    [run] = rebuild_configuration_runs(lines(messages), site="CE1")
    return run


def test_the_articles_success_sequence() -> None:
    run = one(MS_WCM_SUCCESS)
    assert (run.site, run.trigger, run.result) == ("CE1", "file", "success")
    assert run.states == [4, 2]
    assert (run.state, run.state_name) == (2, "WSUS_CONFIG_SUCCESS")
    assert run.servers == [ServerConnection("ce1site.contoso.com", 8530, False, True)]
    # the article's own blank inside the id (a wrapped line) is dropped
    assert run.subscriptions == [
        {
            "id": "a105a108-7c9b-4518-bbbe-73f0fe30012b",
            "kind": "Product",
            "title": "Windows Server 2012",
        }
    ]
    assert run.error is None and run.errors == []
    assert run.started is None and run.ended is None  # the article's lines have no times
    data = run.to_json()
    assert data["kind"] == "configuration"
    assert data["state"] == 2 and data["state_name"] == "WSUS_CONFIG_SUCCESS"
    assert data["servers"] == [
        {"server": "ce1site.contoso.com", "port": 8530, "ssl": False, "connected": True}
    ]


def test_the_2026_revisions_folds_and_the_local_server() -> None:
    run = one(MS_SUPINST_SUCCESS)
    assert (run.trigger, run.result, run.states) == ("file", "success", [4, 2])
    assert run.servers == [ServerConnection("local", None, None, True)]
    assert run.subscriptions == [
        {"id": "[CategoryID]", "kind": None, "title": "Example product"},
        {"id": "[ClassificationID]", "kind": None, "title": "Critical Updates"},
    ]


def test_a_new_sup_install_has_no_trigger_line() -> None:
    """PMPC-LEARN (1.2): the table starts at the configuration update."""
    run = one(
        [
            "WSUS Server configuration has been updated. Updating Group Info.",
            'Subscribed Update Categories <?xml version="1.0" ?>~~<Categories>~~',
            "Configuration successful. Will wait for 1 minute for any subscription or proxy "
            "changes",
            "Setting new configuration state to 2 (WSUS_CONFIG_SUCCESS)",
        ]
    )
    assert (run.trigger, run.result, run.state) == (None, "success", 2)
    assert run.subscriptions == []  # the line is cut before its first category


def test_a_real_hourly_cycle_its_failure_and_the_timeout_after_it() -> None:
    entries = list(parse_simple(PB_WCM))
    assert len(entries) == len(PB_WCM)
    log = [LogLine(e.message, e.time) for e in entries]
    first, second = rebuild_configuration_runs(log, site="XYZ")
    # the excerpt starts inside a cycle: its trigger is not in the log
    assert (first.trigger, first.result) == (None, "failed")
    assert first.error is not None and first.error.message == "HandleSMSClientPublication failed"
    assert first.servers == [ServerConnection("local", None, None, True)]
    # local times at bias +480 (UTC = local + 8 h)
    assert first.started == datetime(2020, 2, 16, 8, 3, 23, 267_000, tzinfo=UTC)
    assert first.ended == datetime(2020, 2, 16, 8, 6, 24, 204_000, tzinfo=UTC)
    assert first.wait_minutes == 56
    assert second.trigger == "timeout"
    assert second.started == datetime(2020, 2, 16, 9, 2, 9, 94_000, tzinfo=UTC)
    # the log ends while it checks the version: it runs, with no end yet
    assert (second.result, second.ended) == ("running", None)
    assert second.last_message == (
        "Checking for supported version of WSUS (min WSUS 3.0 SP2 + KB2720211 + KB2734608)"
    )


def test_the_periodic_check_that_changes_nothing() -> None:
    run = one(MS_SUPINST_PERIODIC)
    assert (run.trigger, run.result, run.states) == ("start", "success", [])
    assert run.servers == [ServerConnection("local", None, None, True)]


def test_a_site_control_change() -> None:
    run = one(MS_SSL)
    assert (run.trigger, run.result, run.states) == ("scf", "success", [1, 2])


def test_an_active_sup_list_change_cut_short_is_unknown() -> None:
    run = one(MS_SHAREDDB)
    assert (run.trigger, run.states, run.result) == ("start", [1], "unknown")
    assert run.ended is None


def test_the_version_check_alone_is_a_start_whose_result_the_excerpt_does_not_say() -> None:
    run = one(MS_WCM_VERSION)
    assert (run.trigger, run.result, run.errors) == ("start", "unknown", [])


@pytest.mark.parametrize(
    ("line", "message", "code"),
    [
        # MS-TSSYNC (1.7): authentication, proxy and web service failures
        (
            "System.Net.WebException: The request failed with HTTP status 502",
            "System.Net.WebException: The request failed with HTTP status 502",
            None,
        ),
        (
            "System.Net.WebException: The request failed with HTTP status 503",
            "System.Net.WebException: The request failed with HTTP status 503",
            None,
        ),
        # HOMELAB1 (secondary)
        (
            "System.Security.SecurityException: Request for principal permission failed.",
            "System.Security.SecurityException: Request for principal permission failed",
            None,
        ),
        # HOMELAB2 (secondary, shortened by its author)
        (
            "Did not find supported version of assembly Microsoft.UpdateServices.Administration "
            "... 0x80131701 / Supported WSUS version not found",
            "Supported WSUS version not found",
            0x80131701,
        ),
        # PB-WCM (1.3)
        ("HandleSMSClientPublication failed.", "HandleSMSClientPublication failed", None),
        # updatesync's own (docs/log-ledger.md, WCM.log, Unverified)
        (
            "Failed to set Subscriptions on WSUS Server. 00000000-0000-0000-0000-00000000beef "
            "cannot be a subscribed product: it is not a category this server holds.",
            "Failed to set Subscriptions on WSUS Server. 00000000-0000-0000-0000-00000000beef "
            "cannot be a subscribed product: it is not a category this server holds",
            None,
        ),
    ],
)
def test_a_failure_line_alone_is_a_failed_run(line: str, message: str, code: int | None) -> None:
    run = one([line])
    assert (run.trigger, run.result) == (None, "failed")
    assert run.error is not None
    assert (run.error.message, run.error.code, run.error.source) == (message, code, None)


def test_an_exception_with_its_stack_keeps_its_first_line() -> None:
    run = one(
        [
            "System.Net.WebException: No connection could be made because the target machine "
            "actively refused it~~   at System.Net.HttpWebRequest.GetRequestStream()"
        ]
    )
    assert run.error is not None
    assert run.error.message == (
        "System.Net.WebException: No connection could be made because the target machine "
        "actively refused it"
    )


def test_state_3_fails_a_run_even_without_an_error_line() -> None:
    run = one(["File notification triggered WCM Inbox.", "Setting new configuration state to 3"])
    assert (run.result, run.state, run.state_name) == ("failed", 3, "WSUS_CONFIG_FAILED")
    assert STATES[4] == "WSUS_CONFIG_SUBSCRIPTION_PENDING"


def test_cycles_end_at_the_wait_or_at_the_next_trigger() -> None:
    t = [datetime(2024, 3, 12, 9, 0, s, tzinfo=UTC) for s in range(10)]
    log = [
        LogLine("Populating config from SCF", t[0]),
        LogLine(MS_WCM_VERSION[0], t[1]),
        LogLine("Successfully connected to local WSUS server", t[2]),
        LogLine("Waiting for changes for 60 minutes", t[3]),
        LogLine("File notification triggered WCM Inbox.", t[4]),
        LogLine("Setting new configuration state to 4 (WSUS_CONFIG_SUBSCRIPTION_PENDING)", t[5]),
        LogLine("SCF change notification triggered.", t[6]),
        LogLine("Populating config from SCF", t[7]),
        LogLine(MS_WCM_VERSION[0], t[8]),
        LogLine("Subscribed Update Languages en, fr", t[9]),
    ]
    start, file, scf = rebuild_configuration_runs(log, site="CS1", log="WCM.log")
    # ended with the wait after a successful connection and no pending state
    assert (start.trigger, start.result, start.started, start.ended) == (
        "start",
        "success",
        t[0],
        t[3],
    )
    assert start.wait_minutes == 60
    # cut by the next trigger while its subscription was pending: the log does not say
    assert (file.trigger, file.result, file.ended) == ("file", "unknown", t[5])
    assert (scf.trigger, scf.result, scf.ended) == ("scf", "running", None)
    assert scf.languages == ["en", "fr"]
    assert scf.link()["log"] == "WCM.log"


def test_the_parts_of_a_line() -> None:
    assert normalise("?Timed Out...~") == "Timed Out..."
    assert classify("Timed Out...~")[0] == "trigger_timeout"
    assert (
        classify("Wait timed out after 56 minutes while waiting for at least one trigger event.")[0]
        == "wait_timed_out"
    )
    assert (
        classify("Successfully connected to server: A-MPDP.sadab.pri, port: 8531, useSSL: True")[0]
        == "connected"
    )
    # HOMELAB1 quotes it without useSSL (probably trimmed)
    kind, match = classify("Successfully connected to server: WSUS.homelab.local, port: 8530")
    assert kind == "connected" and match is not None and match["ssl"] is None
    assert classify("Sync failed: WSUS server not configured.") == (None, None)
    assert is_wcm_line("File notification triggered WCM Inbox.")
    assert not is_wcm_line("Failed to sync update 7155376c-87e9-4f55-80f1-0d7c64eb8b5d.")
    assert not is_wcm_line("System.Net.WebException: The request failed with HTTP status 502")


def test_categories_as_updatesync_writes_them() -> None:
    """`wcm.py` escapes `]]>` in a title by splitting the CDATA, and quotes the id."""
    xml = (
        '<?xml version="1.0" ?>~~<Categories>~~ <Category Id="Product:ABC"><![CDATA[A ]]]]>'
        '<![CDATA[> B]]></Category>~~ <Category Id="UpdateClassification:0fa1201d-4330-4fa8-8ae9-'
        'b877473b6441"><![CDATA[Security Updates]]></Category>~~</Categories>'
    )
    assert parse_categories(normalise(xml)) == [
        {"id": "ABC", "kind": "Product", "title": "A ]]> B"},
        {
            "id": "0fa1201d-4330-4fa8-8ae9-b877473b6441",
            "kind": "UpdateClassification",
            "title": "Security Updates",
        },
    ]
