"""One sync of the whole hierarchy on one time axis, from the sites' status messages.

A sync of the hierarchy runs from the top-level site's 6701 to the last 6702/6703 of a site
that followed it, before the top's next 6701. Each site's part of it is the sequence of its
own messages from its first 6701 in that window: 6701 (started) → 6704 (update server) →
6705 (site database, top only) → 6706 (one per replica SUP, in install order) → 6702 done or
6703 failed. Each phase is a bar from its message to the site's next message; 6702 and 6703
are marks; a replica gets a row of its own for its 6706. A replica's failure (a 6703 whose
ISTR1 names `Replica WSUS server <fqdn>`) marks that replica, not the site.

`load_timeline` asks the providers; `build_timeline` is the pure part, which the tests and
the template use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from updatesync.config import Site
from updatesync.console.providers import (
    MAX_MESSAGES,
    ProviderDown,
    Providers,
    SiteSnapshot,
    parse_time,
    utc_text,
)
from updatesync.console.states import PHASE_NAMES, SiteView, message_text, site_views
from updatesync.vocabulary import (
    REPLICA_FAILURE,
    SYNC_COMPLETED,
    SYNC_DONE_PENDING_LICENSES,
    SYNC_FAILED,
    SYNC_MESSAGES,
    SYNC_REPLICA,
    SYNC_STARTED,
)

LABEL_WIDTH = 260.0
CHART_WIDTH = 860.0
AXIS_HEIGHT = 34.0
SITE_ROW = 34.0
SUP_ROW = 26.0
MARK_WIDTH = 5.0
MIN_BAR = 3.0
NOTE_CHAR_WIDTH = 7.2
"""A generous width (px) of one character of a row's note (12 px sans-serif), so that a
note cut to the room it has never runs past it."""
NOTE_MIN_CHARS = 28
"""A note gets its own line under the bars when it has room for fewer characters than this
after and before them."""
NOTE_LINE = 16.0
NOTE_GAP = 8.0
_STEPS = (
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    14400,
    43200,
    86400,
)


def format_duration(seconds: float) -> str:
    """`0.25 s`, `1.5 s`, `12.3 s`, `2m 05s`, `1h 04m`."""
    if seconds < 10:
        return f"{seconds:.2f}".rstrip("0").rstrip(".") + " s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def clock(moment: datetime) -> str:
    """`18:57:46.304` (UTC)."""
    return moment.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]


@dataclass
class Bar:
    phase: int
    start: datetime
    end: datetime
    mark: bool = False
    """A point in time (6702, 6703) rather than a phase."""
    failed: bool = False
    running: bool = False
    text: str = ""
    """Hover text: what, when, how long."""
    x: float = 0.0
    width: float = 0.0

    @property
    def name(self) -> str:
        return PHASE_NAMES.get(self.phase, str(self.phase))

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass
class Row:
    code: str
    label: str
    """The site's type (cas, primary, secondary), or the replica's FQDN."""
    sup: str | None = None
    """A replica SUP's FQDN for its own row; None for the site's row."""
    bars: list[Bar] = field(default_factory=list)
    state: str = "none"
    """done, failed, running, none (no sync in this window) or unreachable."""
    note: str = ""
    title: str = ""
    y: float = 0.0
    height: float = SITE_ROW
    band: float = 0.0
    """The height of the row's bars' band (its height unless its note takes a line below)."""
    note_at: float = 0.0
    note_anchor: str = "start"
    """The note starts at `note_at` ("start": after the bars, or on its own line) or ends
    there ("end": before the bars)."""
    note_below: bool = False
    note_chars: int = 0
    """How many characters of the note fit where it goes (the rest is cut, with "…")."""

    def __post_init__(self) -> None:
        self.band = self.band or self.height

    @property
    def note_x(self) -> float:
        """Where the note goes: after the last bar, or at the start of the chart."""
        if not self.bars:
            return LABEL_WIDTH + 6
        return max(b.x + b.width for b in self.bars) + NOTE_GAP

    @property
    def note_y(self) -> float:
        if self.note_below:
            return self.y + self.band + NOTE_LINE / 2
        return self.y + self.band / 2 + 4

    def place_note(self, width: float) -> None:
        """Put the note where it is read whole, or as much of it as can be: after the bars,
        else before them, else on a line of its own under them (the row grows). Never past
        the picture's edge (`width`), never over a bar: the "failed" note of a site whose
        sync failed last was cut to "fa" at the edge of the timeline."""
        if not self.note:
            return
        end = width - NOTE_GAP
        need = len(self.note) * NOTE_CHAR_WIDTH
        enough = min(need, NOTE_MIN_CHARS * NOTE_CHAR_WIDTH)
        after = end - self.note_x
        first = min((b.x for b in self.bars), default=LABEL_WIDTH)
        before = first - NOTE_GAP - (LABEL_WIDTH + 6)
        if after >= enough:
            self.note_at, room = self.note_x, after
        elif before >= enough:
            self.note_at, self.note_anchor, room = first - NOTE_GAP, "end", before
        else:
            self.note_below = True
            self.note_at, room = LABEL_WIDTH + 6, end - (LABEL_WIDTH + 6)
            self.height = self.band + NOTE_LINE + 4
        self.note_chars = max(int(room / NOTE_CHAR_WIDTH), 1)

    @property
    def shown_note(self) -> str:
        """The note as drawn: whole, or cut to `note_chars` with "…"."""
        if len(self.note) <= self.note_chars:
            return self.note
        return self.note[: max(self.note_chars - 1, 0)].rstrip() + "…"


@dataclass
class Timeline:
    rows: list[Row]
    start: datetime | None = None
    end: datetime | None = None
    top: str = ""
    earlier: datetime | None = None
    later: datetime | None = None
    live: bool = False
    problem: str = ""
    """Why there is no timeline (no sync yet, the top site unreachable)."""
    summary: str = ""
    ticks: list[tuple[float, str]] = field(default_factory=list)
    width: float = LABEL_WIDTH + CHART_WIDTH + 20
    height: float = AXIS_HEIGHT
    label_width: float = LABEL_WIDTH
    chart_width: float = CHART_WIDTH


def _is_replica_failure(message: Mapping[str, Any]) -> bool:
    strings = message.get("InsertionStrings") or []
    return (
        message["MessageID"] == SYNC_FAILED
        and len(strings) > 1
        and (str(strings[1]).startswith(REPLICA_FAILURE))
    )


def _failed_replica(message: Mapping[str, Any], replicas: Sequence[str]) -> str | None:
    text = str(message["InsertionStrings"][1])[len(REPLICA_FAILURE) :].lower()
    return next((r for r in replicas if text.startswith(r.lower() + ":")), None)


def _site_rows(
    site: Site,
    messages: Sequence[Mapping[str, Any]],
    snapshot: SiteSnapshot | None,
    *,
    now: datetime,
    latest: bool,
) -> list[Row]:
    """The rows of one site: its own, then one per replica SUP that synced in this window."""
    row = Row(site.code, site.type)
    start = next((i for i, m in enumerate(messages) if m["MessageID"] == SYNC_STARTED), None)
    if start is None:
        row.note = "no sync in this window"
        return [row]
    sequence = [messages[start]]
    for message in messages[start + 1 :]:
        if message["MessageID"] == SYNC_STARTED:
            break
        sequence.append(message)

    replicas = [s.fqdn for s in site.replicas]
    sup_rows: dict[str, Row] = {}
    sup_status = {s.fqdn: s.status for s in snapshot.sups} if snapshot else {}
    replica_index = 0
    current_replica: str | None = None
    terminal: int | None = None

    def next_time(i: int) -> datetime | None:
        return sequence[i + 1]["Time"] if i + 1 < len(sequence) else None

    for i, message in enumerate(sequence):
        mid, at = int(message["MessageID"]), message["Time"]
        if mid == SYNC_FAILED and _is_replica_failure(message):
            fqdn = _failed_replica(message, replicas) or current_replica
            target = sup_rows.get(fqdn or "")
            if target is not None:
                if target.bars:
                    target.bars[-1].failed = True
                    target.bars[-1].end = min(target.bars[-1].end, at)
                target.bars.append(_mark(site.code, fqdn, message))
                target.state = "failed"
                target.note = f"failed: {message['InsertionStrings'][1]}"
            continue
        if mid in (*SYNC_COMPLETED, SYNC_FAILED):
            if mid == SYNC_FAILED and row.bars:
                row.bars[-1].failed = True
            row.bars.append(_mark(site.code, None, message))
            terminal = mid
            if mid == SYNC_FAILED:
                row.note = f"failed: {(message.get('InsertionStrings') or ['', ''])[1]}"
            continue
        end = next_time(i)
        running = False
        if mid == SYNC_REPLICA:
            fqdn = (
                replicas[replica_index]
                if replica_index < len(replicas)
                else f"replica {replica_index + 1}"
            )
            replica_index += 1
            current_replica = fqdn
            target = sup_rows.setdefault(
                fqdn, Row(site.code, fqdn, sup=fqdn, height=SUP_ROW, state="done")
            )
            if end is None:
                status = sup_status.get(fqdn) or {}
                finished = parse_time(status.get("LastSyncStateTime"))
                if (
                    status.get("LastSyncState") in (*SYNC_COMPLETED, SYNC_FAILED)
                    and finished
                    and (finished >= at)
                ):
                    end = finished
                    failed = status.get("LastSyncState") == SYNC_FAILED
                    target.state = "failed" if failed else "done"
                elif latest and status.get("LastSyncState") == SYNC_REPLICA:
                    end, running, target.state = now, True, "running"
                else:
                    end = at
            bar = _phase(site.code, fqdn, message, end, running)
            if target.state == "failed" and end is not None:
                bar.failed = True
            target.bars.append(bar)
            continue
        if end is None:
            in_progress = latest and terminal is None and _in_progress(snapshot)
            end, running = (now, True) if in_progress else (at, False)
        row.bars.append(_phase(site.code, None, message, end, running))

    if terminal in SYNC_COMPLETED:
        row.state = "done"
        if terminal == SYNC_DONE_PENDING_LICENSES:
            row.note = "done, license terms pending (6708)"
    elif terminal == SYNC_FAILED:
        row.state = "failed"
    elif latest and _in_progress(snapshot):
        row.state = "running"
    else:
        row.state = "none"
        row.note = "did not finish"
    first, last = sequence[0]["Time"], sequence[-1]["Time"]
    parts = [
        f"{site.code}: {len(sequence)} status messages, {clock(first)} → {clock(last)} UTC "
        f"({format_duration((last - first).total_seconds())})"
    ]
    if latest and terminal is not None and snapshot and snapshot.last_sync:
        done = snapshot.last_sync
        parts.append(
            f"items updated: {done.get('items_updated', 0)}, CIs changed: "
            f"{done.get('cis_changed', 0)}, content version {done.get('content_version')}, "
            f"sync time {format_duration(float(done.get('seconds') or 0))}"
        )
        if done.get("error"):
            parts.append(f"error: {done['error']}")
    row.title = "\n".join(parts)
    return [row, *sup_rows.values()]


def _in_progress(snapshot: SiteSnapshot | None) -> bool:
    return bool(snapshot and snapshot.status and snapshot.status.get("InProgress"))


def _who(code: str, sup: str | None) -> str:
    return f"{code} · {sup}" if sup else code


def _phase(
    code: str, sup: str | None, message: Mapping[str, Any], end: datetime, running: bool
) -> Bar:
    mid, at = int(message["MessageID"]), message["Time"]
    span = format_duration((end - at).total_seconds())
    until = "now (running)" if running else clock(end)
    return Bar(
        mid,
        at,
        end,
        running=running,
        text=f"{_who(code, sup)} — {mid} {message_text(mid)}\n{clock(at)} → {until} UTC, {span}",
    )


def _mark(code: str, sup: str | None, message: Mapping[str, Any]) -> Bar:
    mid, at = int(message["MessageID"]), message["Time"]
    text = f"{_who(code, sup)} — {mid} {message_text(mid)}\nat {clock(at)} UTC"
    if mid == SYNC_FAILED:
        strings = message.get("InsertionStrings") or ["", ""]
        text += f"\nError: {strings[1]}\nSource: {strings[0]}"
    return Bar(mid, at, at, mark=True, failed=mid == SYNC_FAILED, text=text)


def _ticks(duration: float) -> tuple[float, list[tuple[float, str]]]:
    """A step of the axis and the ticks (seconds from the start, label)."""
    step = next((s for s in _STEPS if duration / s <= 8), _STEPS[-1])
    count = int(duration // step) + 1
    ticks = [(k * step, "0" if k == 0 else "+" + format_duration(k * step)) for k in range(count)]
    return step, ticks


def chosen(starts: Sequence[datetime], since: datetime | None) -> int:
    """The index of the sync to show among `starts` (oldest first): the latest, or the first
    at or after `since` (to the millisecond, as the messages keep time); -1 for none."""
    if since is None:
        return len(starts) - 1
    limit = since - timedelta(milliseconds=1)
    return next((i for i, s in enumerate(starts) if s >= limit), -1)


def build_timeline(
    sites: Sequence[Site],
    starts: Sequence[datetime],
    messages: Mapping[str, Sequence[Mapping[str, Any]] | ProviderDown],
    snapshots: Sequence[SiteSnapshot],
    *,
    since: datetime | None = None,
    now: datetime | None = None,
) -> Timeline:
    """The timeline of the sync that starts at `starts[i]` (the top site's 6701 times, oldest
    first): the latest, or the first at or after `since`. `messages`: per site, its messages
    of that window oldest first, or why its provider did not answer."""
    now = now or datetime.now(UTC)
    top = sites[0].code if sites else ""
    if not starts:
        problem = f"No sync of the hierarchy yet: {top} has sent no 6701."
        return Timeline([], top=top, problem=problem)
    index = chosen(starts, since)
    if index < 0:
        after = utc_text(since) if since else "?"
        return Timeline(
            [], top=top, problem=f"No sync of the hierarchy started at or after {after}."
        )
    start = starts[index]
    latest = index == len(starts) - 1
    by_code = {s.code: s for s in snapshots}
    rows: list[Row] = []
    for site in sites:
        found = messages.get(site.code, [])
        if isinstance(found, ProviderDown):
            rows.append(Row(site.code, site.type, state="unreachable", note=str(found)))
            continue
        rows.extend(_site_rows(site, found, by_code.get(site.code), now=now, latest=latest))

    views: list[SiteView] = site_views(snapshots) if latest else []
    live = any(r.state == "running" for r in rows) or any(v.live for v in views)
    ends = [b.end for r in rows for b in r.bars]
    if live:
        ends.append(now)
    end = max([start, *ends])
    duration = max((end - start).total_seconds(), 0.001)
    step, ticks = _ticks(duration)
    scale_end = max(duration, step * (len(ticks) - 1))
    scale = CHART_WIDTH / scale_end
    width = LABEL_WIDTH + CHART_WIDTH + 20
    y = AXIS_HEIGHT
    for row in rows:
        row.y = y
        for bar in row.bars:
            bar.x = LABEL_WIDTH + (bar.start - start).total_seconds() * scale
            if bar.mark:
                bar.x -= MARK_WIDTH / 2
                bar.width = MARK_WIDTH
            else:
                bar.width = max(bar.seconds * scale, MIN_BAR)
        row.place_note(width)
        y += row.height
    site_rows = [r for r in rows if r.sup is None]
    done = sum(r.state == "done" for r in site_rows)
    failed = sum(r.state == "failed" for r in site_rows)
    summary = (
        f"Started {start.strftime('%Y-%m-%d %H:%M:%S')} UTC at {top}; "
        f"{done} of {len(site_rows)} sites done, {failed} failed"
    )
    summary += ", still running" if live else f", span {format_duration(duration)}"
    return Timeline(
        rows,
        start=start,
        end=end,
        top=top,
        earlier=starts[index - 1] if index > 0 else None,
        later=starts[index + 1] if not latest else None,
        live=live,
        summary=summary,
        ticks=[(LABEL_WIDTH + t * scale, label) for t, label in ticks],
        height=y + 8,
    )


async def load_timeline(
    providers: Providers, sites: Sequence[Site], *, since: datetime | None = None
) -> Timeline:
    """Ask the providers for the top's sync starts, then each site's messages of the chosen
    sync's window, and build its timeline."""
    top = sites[0].code
    snapshots_task = asyncio.ensure_future(providers.snapshots())
    try:
        found = await providers.call(
            top,
            "GET",
            "/api/status-messages",
            params=[("site", top), ("id", SYNC_STARTED), ("limit", MAX_MESSAGES)],
        )
    except ProviderDown as exc:
        await snapshots_task
        return Timeline(
            [],
            top=top,
            problem=f"The top-level site {top} does not answer, and a sync of the hierarchy "
            f"is told from its 6701: {exc}",
        )
    starts = sorted(t for t in (parse_time(m["Time"]) for m in found["value"]) if t is not None)
    index = chosen(starts, since)
    messages: dict[str, list[dict[str, Any]] | ProviderDown] = {}
    if index >= 0:
        params: list[tuple[str, Any]] = [("since", utc_text(starts[index]))]
        if index + 1 < len(starts):
            params.append(("until", utc_text(starts[index + 1])))
        params += [("id", m) for m in SYNC_MESSAGES] + [("limit", MAX_MESSAGES)]

        async def one(code: str) -> None:
            try:
                got = await providers.status_messages([("site", code), *params], codes=[code])
            except ProviderDown as exc:  # pragma: no cover - status_messages collects them
                messages[code] = exc
                return
            messages[code] = got.down[0] if got.down else list(reversed(got.items))

        await asyncio.gather(*(one(s.code) for s in sites))
    return build_timeline(sites, starts, messages, await snapshots_task, since=since)
