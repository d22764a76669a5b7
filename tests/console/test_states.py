"""The state and label the console shows for each site and SUP (`site_state`, `sup_state`,
`site_views`): idle, requested, waiting, running, done, failed and unreachable, from the last
status message reached and the parent's; which states refresh themselves (`live`); the
standard texts of status messages; and the colour console.css gives each state's site box."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from updatesync.config import Site, Sup
from updatesync.console.providers import SiteSnapshot, SupSnapshot
from updatesync.console.states import (
    LEGEND,
    LIVE_STATES,
    PHASE_NAMES,
    STATE_STYLES,
    Shown,
    message_text,
    site_state,
    site_views,
    state_style,
    sup_state,
)

CS1 = Site("CS1", "cs1site.contoso.com", "cas", sups=(Sup("cs1site.contoso.com"),))
PS1 = Site(
    "PS1",
    "ps1site.contoso.com",
    "primary",
    parent="CS1",
    sups=(Sup("ps1site.contoso.com"), Sup("ps1sys.contoso.com")),
)
EARLY = "2014-01-16T18:53:52Z"
LATE = "2014-01-16T18:57:46Z"
EARLY_AT = datetime(2014, 1, 16, 18, 53, 52, tzinfo=UTC)
LATE_AT = datetime(2014, 1, 16, 18, 57, 46, tzinfo=UTC)


def status(state: int | None = None, at: str | None = None, **more: Any) -> dict[str, Any]:
    return {"LastSyncState": state, "LastSyncStateTime": at, **more}


def snap(
    site: Site,
    row: Mapping[str, Any] | None,
    *,
    error: str | None = None,
    sups: tuple[SupSnapshot, ...] = (),
) -> SiteSnapshot:
    return SiteSnapshot(site=site, url=site.url, status=row, sups=sups, error=error)


def sup(fqdn: str, row: Mapping[str, Any] | None) -> SupSnapshot:
    return SupSnapshot(fqdn=fqdn, default=False, internet_facing=False, status=row)


REACHED = Shown("done", "done (6702)")


# -- from the last status message -----------------------------------------------------------


@pytest.mark.parametrize(
    ("message_id", "state", "label"),
    [
        (None, "idle", "idle: no sync yet"),
        (6701, "running", "started (6701)"),
        (6704, "running", "update server (6704)"),
        (6705, "running", "site database (6705)"),
        (6706, "running", "replica (6706)"),
        (6702, "done", "done (6702)"),
        (6703, "failed", "failed (6703)"),
        (
            6708,
            "done",
            "WSUS synchronization complete, with pending license terms downloads (6708)",
        ),
        (9999, "done", "Status message 9999 (9999)"),
    ],
)
def test_a_sup_is_shown_by_its_last_status_message(
    message_id: int | None, state: str, label: str
) -> None:
    shown = sup_state(sup("ps1sys.contoso.com", status(message_id, LATE)), REACHED)
    assert (shown.state, shown.label) == (state, label)
    assert shown.since == LATE_AT
    assert shown.detail == ""


def test_a_sup_never_synced_is_idle_without_a_time() -> None:
    shown = sup_state(sup("ps1sys.contoso.com", None), REACHED)
    assert shown == Shown("idle", "idle: no sync yet", None)


def test_a_sup_of_an_unreachable_site_is_grey() -> None:
    down = Shown("unreachable", "unreachable", detail="timed out")
    shown = sup_state(sup("ps1sys.contoso.com", status(6702, LATE)), down)
    assert shown == Shown("unreachable", "unreachable")


@pytest.mark.parametrize(
    ("message_id", "state", "label"),
    [
        (None, "idle", "idle: no sync yet"),
        (6704, "running", "update server (6704)"),
        (6702, "done", "done (6702)"),
    ],
)
def test_a_top_site_is_shown_by_its_last_status_message(
    message_id: int | None, state: str, label: str
) -> None:
    shown = site_state(snap(CS1, status(message_id, LATE)), None)
    assert (shown.state, shown.label, shown.since) == (state, label, LATE_AT)


def test_a_failed_site_shows_the_error_text() -> None:
    row = status(6703, LATE, LastErrorText="Request for principal permission failed")
    shown = site_state(snap(CS1, row), None)
    assert shown == Shown(
        "failed", "failed (6703)", LATE_AT, "Request for principal permission failed"
    )


def test_a_failed_site_without_an_error_text_has_no_detail() -> None:
    shown = site_state(snap(CS1, status(6703, LATE, LastErrorText=None)), None)
    assert (shown.state, shown.detail) == ("failed", "")


def test_a_time_with_an_offset_is_shown_in_utc() -> None:
    shown = site_state(snap(CS1, status(6702, "2014-01-16T19:57:46+01:00")), None)
    assert shown.since == LATE_AT


# -- unreachable ----------------------------------------------------------------------------


def test_a_site_whose_provider_did_not_answer_is_grey_with_the_reason() -> None:
    reason = "The SMS Provider of site PS1 at http://ps1site.contoso.com:8080 timed out"
    shown = site_state(snap(PS1, None, error=reason), snap(CS1, status(6702, LATE)))
    assert shown == Shown("unreachable", "unreachable", None, reason)
    assert not shown.live


def test_a_site_without_a_status_is_grey() -> None:
    assert site_state(snap(CS1, None), None) == Shown("unreachable", "unreachable")


# -- requested ------------------------------------------------------------------------------


def test_a_pending_sync_now_shows_requested() -> None:
    shown = site_state(snap(CS1, status(6702, EARLY, SyncNow="SELF")), None)
    assert shown == Shown("requested", "requested (SELF)", EARLY_AT)
    assert shown.live


def test_a_pending_full_sync_on_a_failed_site_keeps_the_error() -> None:
    row = status(6703, EARLY, SyncNow="FULL", LastErrorText="The operation has timed out")
    shown = site_state(snap(CS1, row), None)
    assert shown == Shown("requested", "requested (FULL)", EARLY_AT, "The operation has timed out")


def test_a_running_sync_hides_the_pending_request() -> None:
    shown = site_state(snap(CS1, status(6705, EARLY, SyncNow="SELF")), None)
    assert (shown.state, shown.label) == ("running", "site database (6705)")


def test_a_request_is_shown_before_waiting_for_the_parent() -> None:
    shown = site_state(
        snap(PS1, status(6702, EARLY, SyncNow="SELF")), snap(CS1, status(6702, LATE))
    )
    assert shown.label == "requested (SELF)"


# -- waiting for the parent -----------------------------------------------------------------


def test_a_child_older_than_its_parents_success_waits_for_it() -> None:
    shown = site_state(snap(PS1, status(6702, EARLY)), snap(CS1, status(6702, LATE)))
    assert shown == Shown("waiting", "waiting for CS1", EARLY_AT)
    assert shown.live


def test_a_child_that_never_synced_waits_for_its_synced_parent() -> None:
    shown = site_state(snap(PS1, status()), snap(CS1, status(6702, LATE)))
    assert (shown.state, shown.label, shown.since) == ("waiting", "waiting for CS1", None)


def test_a_failed_child_waiting_for_its_parent_keeps_the_error() -> None:
    row = status(6703, EARLY, LastErrorText="disk full")
    shown = site_state(snap(PS1, row), snap(CS1, status(6702, LATE)))
    assert shown == Shown("waiting", "waiting for CS1", EARLY_AT, "disk full")


def test_a_child_newer_than_its_parents_success_does_not_wait() -> None:
    shown = site_state(snap(PS1, status(6702, LATE)), snap(CS1, status(6702, EARLY)))
    assert shown == Shown("done", "done (6702)", LATE_AT)


def test_a_child_synced_at_the_same_time_does_not_wait() -> None:
    shown = site_state(snap(PS1, status(6702, LATE)), snap(CS1, status(6702, LATE)))
    assert shown.state == "done"


@pytest.mark.parametrize(
    "parent_row",
    [status(6703, LATE), status(6704, LATE), status(None, None), status(6702, None)],
    ids=["parent failed", "parent running", "parent never synced", "parent time unknown"],
)
def test_a_child_waits_only_for_a_parent_that_succeeded(parent_row: dict[str, Any]) -> None:
    shown = site_state(snap(PS1, status(6702, EARLY)), snap(CS1, parent_row))
    assert shown.state == "done"


def test_a_child_of_an_unreachable_parent_does_not_wait() -> None:
    shown = site_state(snap(PS1, status(6702, EARLY)), snap(CS1, None, error="refused"))
    assert shown.state == "done"


def test_a_running_child_is_running_whatever_its_parent() -> None:
    shown = site_state(snap(PS1, status(6706, EARLY)), snap(CS1, status(6702, LATE)))
    assert (shown.state, shown.label) == ("running", "replica (6706)")


# -- live states, texts, views --------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "live"),
    [
        ("idle", False),
        ("requested", True),
        ("waiting", True),
        ("running", True),
        ("done", False),
        ("failed", False),
        ("unreachable", False),
    ],
)
def test_only_requested_waiting_and_running_refresh_themselves(state: str, live: bool) -> None:
    assert Shown(state, state).live is live
    assert (state in LIVE_STATES) is live


def test_phase_names_label_every_sync_state() -> None:
    assert PHASE_NAMES == {
        6701: "started",
        6702: "done",
        6703: "failed",
        6704: "update server",
        6705: "site database",
        6706: "replica",
    }


def test_message_text_gives_the_standard_texts() -> None:
    assert message_text(None) == ""
    assert message_text(6702) == "WSUS Synchronization done."
    assert message_text(6703) == "WSUS Synchronization failed."
    assert message_text(1234) == "Status message 1234"


def test_site_views_give_each_site_and_sup_its_state_top_down() -> None:
    cs1 = snap(CS1, status(6702, LATE), sups=(sup("cs1site.contoso.com", status(6702, LATE)),))
    ps1 = snap(
        PS1,
        status(6702, EARLY),
        sups=(
            sup("ps1site.contoso.com", status(6702, EARLY)),
            sup("ps1sys.contoso.com", None),
        ),
    )
    top, child = site_views([cs1, ps1])
    assert (top.code, top.shown.label, top.live) == ("CS1", "done (6702)", False)
    assert [(s.fqdn, shown.label) for s, shown in top.sups] == [
        ("cs1site.contoso.com", "done (6702)")
    ]
    assert (child.code, child.shown.label, child.live) == ("PS1", "waiting for CS1", True)
    assert [(s.fqdn, shown.state) for s, shown in child.sups] == [
        ("ps1site.contoso.com", "done"),
        ("ps1sys.contoso.com", "idle"),
    ]


def test_a_site_view_is_live_while_one_of_its_sups_runs() -> None:
    row = status(6702, LATE)
    cs1 = snap(CS1, row, sups=(sup("cs1site.contoso.com", status(6704, LATE)),))
    [view] = site_views([cs1])
    assert view.shown.state == "done"
    assert view.live


def test_site_views_of_an_unreachable_site_show_its_sups_grey() -> None:
    ps1 = snap(
        PS1,
        None,
        error="refused",
        sups=(sup("ps1site.contoso.com", None), sup("ps1sys.contoso.com", None)),
    )
    [view] = site_views([ps1])
    assert view.shown == Shown("unreachable", "unreachable", detail="refused")
    assert {shown.state for _, shown in view.sups} == {"unreachable"}


def test_a_child_shown_without_its_parent_does_not_wait() -> None:
    [view] = site_views([snap(PS1, status(6702, EARLY))])
    assert view.shown.state == "done"


# -- colours --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "colour"),
    [
        ("idle", "idle"),
        ("requested", "requested"),
        ("waiting", "requested"),
        ("running", "running"),
        ("done", "done"),
        ("failed", "failed"),
        ("unreachable", "unreachable"),
    ],
)
def test_each_state_has_its_colour_in_the_console_css(state: str, colour: str) -> None:
    css = resources.files("updatesync.console").joinpath("static/console.css").read_text()
    rules = [
        line for line in css.splitlines() if re.search(rf"\.site\.state-{state} \.box\b", line)
    ]
    assert rules, f"no site box rule for {state}"
    assert all(f"stroke: var(--{colour})" in rule for rule in rules)


def _css_colours() -> dict[str, str]:
    css = resources.files("updatesync.console").joinpath("static/console.css").read_text()
    return {m[1]: m[2].lower() for m in re.finditer(r"--([a-z]+):\s*(#[0-9a-fA-F]{6})", css)}


def test_every_state_of_the_legend_has_a_colour_of_its_own() -> None:
    """Issue 15: idle and in progress shared one blue; each sync state of the legend now has
    its own colour, mark and name."""
    colours = _css_colours()
    states = [style.colour for style in LEGEND] + ["unreachable"]
    assert [style.name for style in LEGEND] == [
        "idle",
        "requested",
        "in progress",
        "done",
        "failed",
    ]
    assert len({colours[s] for s in states}) == len(states), {s: colours[s] for s in states}
    marks = [style.mark for style in LEGEND] + [STATE_STYLES["unreachable"].mark]
    assert len(set(marks)) == len(marks)


def test_each_shown_state_has_its_style() -> None:
    assert Shown("waiting", "waiting for CS1").style == STATE_STYLES["waiting"]
    assert STATE_STYLES["waiting"].colour == "requested"
    assert Shown("failed", "failed (6703)").style.mark == "✕"
    assert state_style("none") == STATE_STYLES["idle"]  # a timeline row with no sync
