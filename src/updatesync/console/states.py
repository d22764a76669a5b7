"""The sync state of each site and SUP as the console colours it.

From the last status message a site or SUP reached (SPEC section 5: 6701, 6704, 6705 and
6706 mean in progress) and from the hierarchy around it:

- idle (slate ○): no sync yet;
- requested (purple ◔): a SyncNow is pending at the site;
- waiting (purple ◔, as requested): the parent's last sync succeeded after this site's last
  one, so the parent's notification is on its way (file replication);
- running, "in progress" (blue ▶): 6701, 6704, 6705, 6706;
- done (bluish green ✓): 6702; also 6708, labelled with its text (the sync completed with
  license terms pending: some updates wait for them and were not synchronized);
- failed (vermillion ✕): 6703;
- unreachable (grey, dashed, ?): the site's SMS Provider did not answer.

The colours (static/console.css, after Okabe and Ito's palette for colour-blind readers)
never speak alone: each state also has its mark (`STATE_STYLES`) and its label in words;
`LEGEND` lists them in the order the pictures' legends show them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from updatesync.console.providers import SiteSnapshot, SupSnapshot, parse_time
from updatesync.vocabulary import (
    CATALOGUE,
    IN_PROGRESS_STATES,
    REPLICA_FAILURE,
    SYNC_COMPLETED,
    SYNC_DONE,
    SYNC_FAILED,
    SYNC_STATES,
)

PHASE_NAMES = {message_id: phase.label for message_id, phase in SYNC_STATES.items()}
"""Short names of the sync manager's states, for labels."""

LIVE_STATES = frozenset({"requested", "waiting", "running"})
"""States in which the pages refresh themselves every second."""


@dataclass(frozen=True)
class StateStyle:
    """How a state is told apart: its colour (the CSS class `state-<colour>`), a mark that
    says it without colour, and its name and meaning in the legend."""

    colour: str
    mark: str
    name: str
    meaning: str


STATE_STYLES = {
    "idle": StateStyle("idle", "○", "idle", "no sync yet"),
    "requested": StateStyle("requested", "◔", "requested", "SyncNow pending"),
    "waiting": StateStyle("requested", "◔", "waiting", "the parent's notification is on its way"),
    "running": StateStyle("running", "▶", "in progress", "6701, 6704, 6705, 6706"),
    "done": StateStyle("done", "✓", "done", "6702, 6708"),
    "failed": StateStyle("failed", "✕", "failed", "6703"),
    "unreachable": StateStyle("unreachable", "?", "unreachable", "the provider does not answer"),
}
"""Each state of a site or SUP: its colour, mark and legend entry."""

LEGEND = tuple(STATE_STYLES[s] for s in ("idle", "requested", "running", "done", "failed"))
"""The sync states of the legends (unreachable is added where a site does not answer)."""


def state_style(state: str) -> StateStyle:
    """The style of `state`; a timeline row with no sync in its window ("none") looks idle."""
    return STATE_STYLES.get(state, STATE_STYLES["idle"])


def message_text(message_id: int | None) -> str:
    """The standard text of a status message id (SPEC section 6)."""
    if message_id is None:
        return ""
    definition = CATALOGUE.get(message_id)
    return definition.text if definition else f"Status message {message_id}"


@dataclass(frozen=True)
class Shown:
    """How the console shows one site or SUP: a state (the CSS class) and a label."""

    state: str
    label: str
    since: datetime | None = None
    detail: str = ""

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def style(self) -> StateStyle:
        return state_style(self.state)


def _from_message(message_id: int | None, at: datetime | None) -> Shown:
    if message_id is None:
        return Shown("idle", "idle: no sync yet", at)
    if message_id in IN_PROGRESS_STATES:
        return Shown("running", f"{PHASE_NAMES[message_id]} ({message_id})", at)
    if message_id == SYNC_DONE:
        return Shown("done", "done (6702)", at)
    if message_id == SYNC_FAILED:
        return Shown("failed", "failed (6703)", at)
    return Shown("done", f"{message_text(message_id).rstrip('.')} ({message_id})", at)


def site_state(snapshot: SiteSnapshot, parent: SiteSnapshot | None) -> Shown:
    """The state of a site, given its parent's snapshot (None at the top)."""
    if not snapshot.reachable or snapshot.status is None:
        return Shown("unreachable", "unreachable", detail=snapshot.error or "")
    status = snapshot.status
    state = status.get("LastSyncState")
    at = parse_time(status.get("LastSyncStateTime"))
    shown = _from_message(state, at)
    if state == SYNC_FAILED:
        shown = Shown("failed", shown.label, at, str(status.get("LastErrorText") or ""))
    if shown.state != "running" and status.get("SyncNow"):
        return Shown("requested", f"requested ({status['SyncNow']})", at, shown.detail)
    if shown.state != "running" and parent is not None and parent.status is not None:
        parent_state = parent.status.get("LastSyncState")
        parent_at = parse_time(parent.status.get("LastSyncStateTime"))
        if (
            parent_state in SYNC_COMPLETED
            and parent_at is not None
            and (at is None or at < parent_at)
        ):
            return Shown("waiting", f"waiting for {parent.code}", at, shown.detail)
    return shown


def sup_state(sup: SupSnapshot, site: Shown) -> Shown:
    """The state of a SUP; grey with its site when the site does not answer."""
    if site.state == "unreachable":
        return Shown("unreachable", "unreachable")
    row: Mapping[str, Any] = sup.status or {}
    return _from_message(row.get("LastSyncState"), parse_time(row.get("LastSyncStateTime")))


@dataclass(frozen=True)
class SiteView:
    """A site with its state and its SUPs' states, ready for the templates."""

    snapshot: SiteSnapshot
    shown: Shown
    sups: tuple[tuple[SupSnapshot, Shown], ...]

    @property
    def code(self) -> str:
        return self.snapshot.code

    @property
    def live(self) -> bool:
        return self.shown.live or any(s.live for _, s in self.sups)


def site_views(snapshots: Sequence[SiteSnapshot]) -> list[SiteView]:
    """Each snapshot with its state, in the order given (top-down)."""
    by_code = {s.code: s for s in snapshots}
    views = []
    for snap in snapshots:
        parent = by_code.get(snap.site.parent) if snap.site.parent else None
        shown = site_state(snap, parent)
        views.append(SiteView(snap, shown, tuple((s, sup_state(s, shown)) for s in snap.sups)))
    return views


def site_failure(messages: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The 6703 that reported the failure of a site's own sync (not a replica SUP's, whose
    ISTR1 begins `Replica WSUS server`) among `messages`, newest first; None if none."""
    for message in messages:
        strings = message.get("InsertionStrings") or []
        text = str(strings[1]) if len(strings) > 1 else ""
        if message.get("MessageID") == SYNC_FAILED and not text.startswith(REPLICA_FAILURE):
            return message
    return None
