"""The texts of a site's alerts: each kind's name (`alert_text`), times and durations as the
texts write them (`format_alert_time`, `format_span`), the overdue-sync text
(`overdue_text`), the replication-link text (`replication_link_text`), and what an `Alert`
says about itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from updatesync.site.watch.alerts import (
    Alert,
    AlertState,
    AlertType,
    alert_text,
    format_alert_time,
    format_span,
    overdue_text,
    replication_link_text,
)

T0 = datetime(2026, 11, 20, 10, 0, 42, tzinfo=UTC)
HEAD = "Software update synchronization is overdue at site CS1"

# -- names of the kinds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "instance", "text"),
    [
        (
            AlertType.SYNC_FAILURE,
            "cs1site.contoso.com",
            "Synchronization failure alert for software update point: cs1site.contoso.com",
        ),
        (
            AlertType.SYNC_OVERDUE,
            "PS1",
            "Software update synchronization is overdue at site PS1",
        ),
        (
            AlertType.REPLICATION_LINK_DEGRADED,
            "CS1",
            "Database replication link to parent site CS1 is degraded",
        ),
        (
            AlertType.CONTENT_OUT_OF_SYNC,
            "cs1rep.contoso.com",
            "Content of WSUS Server cs1rep.contoso.com is out of sync",
        ),
    ],
)
def test_alert_text_names_each_kind(kind: AlertType, instance: str, text: str) -> None:
    assert alert_text(kind, instance) == text
    assert alert_text(kind.value, instance) == text


def test_alert_text_of_an_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(ValueError) as info:
        alert_text("disk_full", "CS1")
    assert str(info.value) == (
        "unknown alert type 'disk_full' "
        "(known: sync_failure, sync_overdue, replication_link_degraded, content_out_of_sync)"
    )


def test_the_kinds_and_states_are_stored_by_their_names() -> None:
    assert [str(k) for k in AlertType] == [
        "sync_failure",
        "sync_overdue",
        "replication_link_degraded",
        "content_out_of_sync",
    ]
    assert AlertState("raised") is AlertState.RAISED
    assert AlertState("canceled") is AlertState.CANCELED


# -- times and durations --------------------------------------------------------------------


def test_format_alert_time_writes_utc_to_the_minute() -> None:
    assert format_alert_time(T0) == "2026-11-20 10:00 UTC"


def test_format_alert_time_converts_other_zones_to_utc() -> None:
    paris = datetime(2026, 11, 20, 11, 30, tzinfo=timezone(timedelta(hours=1)))
    assert format_alert_time(paris) == "2026-11-20 10:30 UTC"
    seattle = datetime(2026, 11, 19, 22, 15, tzinfo=timezone(timedelta(hours=-8)))
    assert format_alert_time(seattle) == "2026-11-20 06:15 UTC"


def test_format_alert_time_takes_a_naive_time_as_utc() -> None:
    assert format_alert_time(datetime(2026, 11, 20, 10, 5)) == "2026-11-20 10:05 UTC"


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(days=2), "2 days"),
        (timedelta(days=1, hours=12), "1 day 12 hours"),
        (timedelta(hours=1, minutes=30), "1 hour 30 minutes"),
        (timedelta(minutes=45), "45 minutes"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(days=1, minutes=1), "1 day 1 minute"),
        (timedelta(days=3, hours=2, minutes=5), "3 days 2 hours 5 minutes"),
        (timedelta(hours=24), "1 day"),
        (timedelta(minutes=90, seconds=59), "1 hour 30 minutes"),
        (timedelta(seconds=59), "0 minutes"),
        (timedelta(0), "0 minutes"),
        (timedelta(minutes=-5), "0 minutes"),
    ],
)
def test_format_span(span: timedelta, text: str) -> None:
    assert format_span(span) == text


# -- the overdue text -----------------------------------------------------------------------


def test_overdue_text_after_a_successful_sync() -> None:
    text = overdue_text("CS1", timedelta(days=1), last_success=T0)
    assert text == f"{HEAD}: last successful sync 2026-11-20 10:00 UTC, more than 1 day ago"


def test_overdue_text_of_a_site_that_never_synced_since_set_up() -> None:
    set_up = datetime(2026, 11, 18, 8, 30, tzinfo=UTC)
    text = overdue_text("CS1", timedelta(hours=6), last_success=None, set_up=set_up)
    assert text == (
        f"{HEAD}: no successful sync since the site was set up 2026-11-18 08:30 UTC, "
        "more than 6 hours ago"
    )


def test_overdue_text_prefers_the_last_success_to_the_set_up_time() -> None:
    set_up = datetime(2026, 1, 1, tzinfo=UTC)
    text = overdue_text("CS1", timedelta(hours=1, minutes=30), last_success=T0, set_up=set_up)
    assert text == (
        f"{HEAD}: last successful sync 2026-11-20 10:00 UTC, more than 1 hour 30 minutes ago"
    )


def test_overdue_text_with_nothing_known() -> None:
    assert overdue_text("CS1", timedelta(days=1), last_success=None) == (
        f"{HEAD}: no successful sync yet"
    )


def test_overdue_text_starts_with_the_kind_name() -> None:
    text = overdue_text("PS1", timedelta(days=1), last_success=T0)
    assert text.startswith(alert_text(AlertType.SYNC_OVERDUE, "PS1") + ": ")


# -- the replication link text --------------------------------------------------------------


def test_replication_link_degraded_alone() -> None:
    assert replication_link_text("PS1", "CS1", 1) == (
        "Database replication link from parent site CS1 to site PS1 is degraded "
        "(ReplicationLinkStatus 1)"
    )


def test_replication_link_in_error_with_every_fact() -> None:
    text = replication_link_text(
        "PS1",
        "CS1",
        2,
        failures=4,
        failing_since=datetime(2026, 11, 20, 9, 12, 30, tzinfo=UTC),
        error="connection refused",
    )
    assert text == (
        "Database replication link from parent site CS1 to site PS1 is in error "
        "(ReplicationLinkStatus 2): 4 failed pulls in a row, failing since 2026-11-20 09:12 UTC; "
        "last error: connection refused"
    )


def test_replication_link_one_failed_pull() -> None:
    text = replication_link_text("SS1", "PS1", 1, failures=1)
    assert text.endswith("(ReplicationLinkStatus 1): 1 failed pull in a row")


def test_replication_link_since_without_a_count() -> None:
    text = replication_link_text("PS2", "CS1", 2, failing_since=T0)
    assert text.endswith(
        "is in error (ReplicationLinkStatus 2): failing since 2026-11-20 10:00 UTC"
    )


def test_replication_link_error_without_facts() -> None:
    text = replication_link_text("PS2", "CS1", 1, error="timed out")
    assert text.endswith("(ReplicationLinkStatus 1); last error: timed out")


def test_replication_link_empty_error_is_left_out() -> None:
    assert "last error" not in replication_link_text("PS2", "CS1", 1, error="")


def test_replication_link_error_of_300_characters_is_kept_whole() -> None:
    error = "x" * 300
    text = replication_link_text("PS1", "CS1", 2, error=error)
    assert text.endswith(f"; last error: {error}")


def test_replication_link_longer_error_is_cut_to_300_characters() -> None:
    error = "a" * 299 + "bcdef"
    text = replication_link_text("PS1", "CS1", 2, error=error)
    last = text.split("; last error: ", 1)[1]
    assert last == "a" * 299 + "…"
    assert len(last) == 300


# -- an alert -------------------------------------------------------------------------------


def _alert(state: AlertState, canceled_at: datetime | None) -> Alert:
    return Alert(
        alert_id=7,
        alert_type=AlertType.SYNC_FAILURE,
        site_code="CS1",
        instance="cs1site.contoso.com",
        state=state,
        raised_at=T0,
        canceled_at=canceled_at,
        text=alert_text(AlertType.SYNC_FAILURE, "cs1site.contoso.com"),
    )


def test_a_raised_alert_is_raised() -> None:
    assert _alert(AlertState.RAISED, None).is_raised


def test_a_canceled_alert_is_not_raised() -> None:
    alert = _alert(AlertState.CANCELED, T0 + timedelta(hours=1))
    assert not alert.is_raised
    assert alert.canceled_at == datetime(2026, 11, 20, 11, 0, 42, tzinfo=UTC)


def test_an_alert_is_a_value() -> None:
    assert _alert(AlertState.RAISED, None) == _alert(AlertState.RAISED, None)
    alert = _alert(AlertState.RAISED, None)
    with pytest.raises(AttributeError):
        alert.state = AlertState.CANCELED  # type: ignore[misc]
