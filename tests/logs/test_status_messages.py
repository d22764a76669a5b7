"""Status messages: the STATMSG line against real WSyncMgr.log lines, the text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from updatesync.logs.status_messages import (
    StatusMessage,
    StatusMessageFormatError,
    describe,
    format_gmtdate,
    format_statmsg,
    new_status_message,
    parse_statmsg,
    sync_failed,
)
from updatesync.vocabulary import MessageSeverity

SPEC_LINE = (
    'STATMSG: ID=6702 SEV=I LEV=M SOURCE="SMS Server" COMP="SMS_WSUS_SYNC_MANAGER" '
    "SYS=CS1SITE.CONTOSO.COM SITE=CS1 PID=432 TID=3404 GMTDATE=Thu Jan 16 18:57:46.304 2014 "
    'ISTR0="" ISTR1="" ISTR2="" ISTR3="" ISTR4="" ISTR5="" ISTR6="" ISTR7="" ISTR8="" '
    'ISTR9="" NUMATTRS=0'
)


def _fixture_statmsg_lines(fixtures_dir: Path) -> list[tuple[str, str]]:
    """(file name, message) of every STATMSG line of the copied CMTrace logs
    (`message<TAB>component`)."""
    found = []
    for path in sorted((fixtures_dir / "logs").glob("*/*.rendered.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            message = line.split("\t")[0]
            if message.startswith("STATMSG:"):
                found.append((path.name, message))
    return found


def test_every_real_statmsg_line_reads_back_and_formats_to_the_same_text(
    fixtures_dir: Path,
) -> None:
    lines = _fixture_statmsg_lines(fixtures_dir)
    assert len(lines) == 9, "CS1 and PS1 syncs (4 each) and the 2024 failure (1)"
    for name, line in lines:
        msg = parse_statmsg(line)
        assert format_statmsg(msg) == line, name
        assert parse_statmsg(format_statmsg(msg)) == msg


def test_the_real_failure_line_has_source_error_and_last_error(fixtures_dir: Path) -> None:
    (line,) = [m for _, m in _fixture_statmsg_lines(fixtures_dir) if "ID=6703" in m]
    msg = parse_statmsg(line)
    assert msg.message_id == 6703
    assert msg.severity is MessageSeverity.ERROR
    assert (msg.site_code, msg.system) == ("CHQ", "CM1.corp.contoso.com")
    assert (msg.process_id, msg.thread_id) == (2836, 9640)
    assert msg.time == datetime(2024, 8, 2, 20, 54, 26, 571000, tzinfo=UTC)
    assert msg.strings[0] == "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer"
    assert msg.strings[1] == "Request for principal permission failed"
    assert msg.strings[2:] == ("",) * 8
    assert msg.last_error == 0x8013150A
    assert describe(msg) == (
        "WSUS Synchronization failed.\n"
        "Message: Request for principal permission failed.\n"
        "Source: Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer."
    )


def test_the_real_cas_sync_reports_its_phases_in_order(fixtures_dir: Path) -> None:
    cs1 = [
        parse_statmsg(m)
        for name, m in _fixture_statmsg_lines(fixtures_dir)
        if name == "CS1-WSyncMgr.rendered.txt"
    ]
    assert [m.message_id for m in cs1] == [6701, 6704, 6705, 6702]
    assert all(m.component == "SMS_WSUS_SYNC_MANAGER" and m.site_code == "CS1" for m in cs1)
    assert [m.time for m in cs1] == sorted(m.time for m in cs1)


def test_a_message_formats_to_the_spec_line() -> None:
    msg = StatusMessage(
        message_id=6702,
        severity=MessageSeverity.INFORMATION,
        site_code="CS1",
        system="CS1SITE.CONTOSO.COM",
        time=datetime(2014, 1, 16, 18, 57, 46, 304999, tzinfo=UTC),
        process_id=432,
        thread_id=3404,
    )
    assert format_statmsg(msg) == SPEC_LINE
    assert parse_statmsg(SPEC_LINE + "\r\n") == msg


def test_gmtdate_is_utc_whatever_zone_the_time_was_given_in() -> None:
    pacific_summer = timezone(timedelta(hours=-7))
    local = datetime(2014, 1, 16, 11, 57, 46, 304000, tzinfo=pacific_summer)
    assert format_gmtdate(local) == "Thu Jan 16 18:57:46.304 2014"
    assert format_gmtdate(datetime(2024, 8, 2, 20, 54, 26, 571000, tzinfo=UTC)) == (
        "Fri Aug 02 20:54:26.571 2024"
    )


def test_a_failure_made_here_carries_where_what_and_the_last_error() -> None:
    at = datetime(2024, 8, 2, 20, 54, 26, 571000, tzinfo=UTC)
    msg = sync_failed(
        site_code="CHQ",
        system="CM1.corp.contoso.com",
        where="Microsoft.UpdateServices.Internal.DatabaseAccess.GetWebResponse",
        what="The operation has timed out",
        last_error=0x80131500,
        time=at,
    )
    line = format_statmsg(msg)
    assert line.startswith("STATMSG: ID=6703 SEV=E LEV=M ")
    assert 'ISTR0="Microsoft.UpdateServices.Internal.DatabaseAccess.GetWebResponse"' in line
    assert 'ISTR1="The operation has timed out" ISTR2=""' in line
    assert line.endswith('ISTR9="" NUMATTRS=0 LE=0X80131500')
    assert parse_statmsg(line) == msg
    assert "Message: The operation has timed out.\n" in describe(msg)


def test_insertion_strings_fill_the_placeholders_of_6707() -> None:
    msg = new_status_message(
        6707,
        site_code="PS1",
        system="PS1SITE.CONTOSO.COM",
        strings=("PS1SITE.CONTOSO.COM", "CS1SITE.CONTOSO.COM"),
    )
    assert msg.severity is MessageSeverity.WARNING
    assert describe(msg) == (
        "Content of WSUS Server PS1SITE.CONTOSO.COM is out of sync with upstream server "
        "CS1SITE.CONTOSO.COM."
    )
    assert len(msg.strings) == 10


def test_attributes_round_trip() -> None:
    msg = StatusMessage(
        message_id=6701,
        severity="I",  # type: ignore[arg-type]
        site_code="PS1",
        system="PS1SITE.CONTOSO.COM",
        time=datetime(2014, 1, 16, 18, 58, 37, 599000, tzinfo=UTC),
        process_id=1840,
        thread_id=2832,
        attributes=((400, "PS100012"), (404, "a b")),
    )
    line = format_statmsg(msg)
    assert line.endswith('NUMATTRS=2 AID0=400 AVAL0="PS100012" AID1=404 AVAL1="a b"')
    assert parse_statmsg(line) == msg


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("Sync failed. Will retry in 60 minutes", "not a STATMSG line"),
        (SPEC_LINE.replace("Thu Jan 16", "Fri Jan 16"), "is a Thu"),
        (SPEC_LINE.replace("NUMATTRS=0", "NUMATTRS=1"), "NUMATTRS=1 but 0"),
        (SPEC_LINE.replace("SEV=I", "SEV=X"), "severity 'X'"),
        (SPEC_LINE.replace("Jan 16", "Jan 36"), "not a date"),
    ],
)
def test_a_malformed_line_is_refused_with_the_reason(line: str, complaint: str) -> None:
    with pytest.raises(StatusMessageFormatError, match=complaint):
        parse_statmsg(line)


def test_a_message_must_have_a_utc_time_and_at_most_ten_strings() -> None:
    base = {
        "message_id": 6701,
        "severity": MessageSeverity.INFORMATION,
        "site_code": "CS1",
        "system": "CS1SITE.CONTOSO.COM",
        "process_id": 1,
        "thread_id": 2,
    }
    with pytest.raises(StatusMessageFormatError, match="no time zone"):
        StatusMessage(**base, time=datetime(2014, 1, 16))  # type: ignore[arg-type]
    with pytest.raises(StatusMessageFormatError, match="11 insertion strings"):
        StatusMessage(**base, time=datetime.now(UTC), strings=("x",) * 11)  # type: ignore[arg-type]
    with pytest.raises(StatusMessageFormatError, match="not in the sync manager's catalogue"):
        new_status_message(9999, site_code="CS1", system="CS1SITE.CONTOSO.COM")
