"""Pasted log lines (`updatesync.logs.pasted`) in the layouts the public sources print them
(`../shared/reference/configmgr-log-lines.md`, "Log-line formats"; each line below is quoted
from the source named beside it): Learn's `message  COMPONENT`, CMTrace's columns copied as
text, a date prefix, the bare message, and CMTrace's column header glued to a first line."""

from __future__ import annotations

from updatesync.logs.pasted import parse_pasted


def test_learn_layout_message_then_component() -> None:
    # MS-MAINT-KB
    [entry] = parse_pasted("Deleted 2995 expired updates total SMS_WSUS_SYNC_MANAGER\n")
    assert (entry.message, entry.component, entry.time) == (
        "Deleted 2995 expired updates total",
        "SMS_WSUS_SYNC_MANAGER",
        None,
    )
    # MS-WCM: every line followed by its component
    [entry] = parse_pasted(["Supported WSUS version found   SMS_WSUS_CONFIGURATION_MANAGER"])
    assert (entry.message, entry.component) == (
        "Supported WSUS version found",
        "SMS_WSUS_CONFIGURATION_MANAGER",
    )


def test_cmtrace_columns_copied_as_text() -> None:
    # SCCMROAD (2010): the message, the component, the local date and time, the thread
    [entry] = parse_pasted(
        ["Deleted 100 expired updates SMS_WSUS_SYNC_MANAGER 4/23/2010 4:19:22 PM 4104 (0x1008)"]
    )
    assert (entry.message, entry.component, entry.thread, entry.time) == (
        "Deleted 100 expired updates",
        "SMS_WSUS_SYNC_MANAGER",
        4104,
        None,  # a local time with no zone: not read
    )


def test_a_date_prefix_and_bare_lines() -> None:
    # MS-DOTNET (a real 2019 log)
    text = (
        "08-14-2019 08:37:30.102 Synchronizing update 7155376c-87e9-4f55-80f1-0d7c64eb8b5d - "
        "Microsoft .NET Framework 4.7.2 for Windows 7 (KB4054530)\r\n"
        "\r\n"
        "Sync failed. Will retry in 60 minutes\r\n"
    )
    first, second = parse_pasted(text)
    assert first.message.startswith("Synchronizing update 7155376c-") and first.component == ""
    assert (first.line_number, second.line_number) == (1, 3)
    assert (second.message, second.component) == ("Sync failed. Will retry in 60 minutes", "")


def test_a_component_name_inside_a_message_is_not_a_column() -> None:
    [entry] = parse_pasted(["SMS_EXECUTIVE started SMS_WSUS_SYNC_MANAGER as thread ID 3404"])
    assert entry.component == ""
    assert entry.message == "SMS_EXECUTIVE started SMS_WSUS_SYNC_MANAGER as thread ID 3404"


def test_the_column_header_glued_to_the_first_line_goes() -> None:
    # PMPC-PERM: the paste starts with CMTrace's "Message" header
    first, second = parse_pasted(
        [
            "\ufeffMessageSync failed: Request for principal permission failed. Source: "
            "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer",
            "MessageSync is a later line and keeps its text",
        ]
    )
    assert first.message.startswith("Sync failed: Request for principal permission failed.")
    assert second.message.startswith("MessageSync is")
