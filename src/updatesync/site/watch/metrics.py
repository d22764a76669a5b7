"""`GET /metrics`: a site's sync state in the Prometheus text format (version 0.0.4).

Written by hand (no client library): each metric family has its `# HELP` and `# TYPE`
lines, then one sample per label set; a value the site does not know yet (no successful
sync so far, a child's link before its first pull) has no sample. Every family is a gauge,
read from the site database at the time of the scrape:

- `updatesync_last_sync_state{site}`: LastSyncState, the id of the sync's last status
  message (6701/6704/6705/6706 in progress, 6702 done, 6703 failed);
  `updatesync_last_sync_state_timestamp_seconds{site}`: when it was sent;
- `updatesync_last_successful_sync_timestamp_seconds{site}` and
  `updatesync_last_successful_sync_age_seconds{site}` (scrape time minus that);
- `updatesync_content_version{site,update_source}` per update source (its unique id);
- `updatesync_sync_duration_seconds{site}`: the last finished sync, from its 6701 to its
  6702 (or to its 6703 when it failed);
- `updatesync_phase_duration_seconds{site,phase}` of that sync: from a phase's status
  message to the next one (`update_server` 6704, `site_database` 6705, `replicas` 6706, the
  replicas' times added up). At a child site `update_server` includes the wait for database
  replication, which has no status message of its own;
- `updatesync_phase_items{site,phase}`: the site database keeps no item counts per phase, so
  this is what can be derived: `site_database` = the configuration items the last finished
  sync wrote (new or changed CIs, by their DateRevised within that sync's site-database
  phase), at a site whose sync has that phase (the top-level site; a child site gets its CIs
  by database replication, outside its sync); `update_server` = the revisions the update
  server phase brought (new and changed), given by the site server that ran the sync;
- `updatesync_sup_last_sync_state{site,sup}` and
  `updatesync_sup_last_successful_sync_timestamp_seconds{site,sup}` (SMS_SUPSyncStatus);
- `updatesync_replication_link_status{site,parent}`: 0 healthy, 1 degraded, 2 error (child
  sites);
- `updatesync_alerts_raised{site,type}`: alerts raised now, per alert type (0 included).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from updatesync.logs.status_messages import StatusMessage
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alerts import AlertState, AlertType
from updatesync.vocabulary import (
    PHASE_SITEDB,
    SYNC_COMPLETED,
    SYNC_FAILED,
    SYNC_MANAGER,
    SYNC_MESSAGES,
    SYNC_STARTED,
    SYNC_STATES,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format's content type."""

METRICS_PATH = "/metrics"

PHASES: dict[int, str] = {
    message_id: phase.metric_name for message_id, phase in SYNC_STATES.items() if phase.metric_name
}
"""The `phase` label of each in-progress status message."""
_SITE_DATABASE = PHASE_SITEDB.metric_name

_MILLISECOND = timedelta(milliseconds=1)
_MESSAGE_WINDOW = 500
"""Status messages read back to find the last finished sync (a sync sends a handful)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


# -- the text format -------------------------------------------------------------------------


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value: float) -> str:
    """A sample value: integers without a fraction, NaN and infinities as Prometheus writes
    them."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclass
class Family:
    """One metric family: name, help, type and its samples (labels, value)."""

    name: str
    help: str
    type: str = "gauge"
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float | None, **labels: str) -> None:
        if value is not None:
            self.samples.append((labels, value))

    def render(self) -> str:
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.type}"]
        for labels, value in self.samples:
            body = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            lines.append(f"{self.name}{{{body}}} {format_value(value)}")
        return "\n".join(lines) + "\n"


def render(families: Sequence[Family]) -> str:
    return "".join(f.render() for f in families)


# -- the last finished sync, from status messages --------------------------------------------


@dataclass(frozen=True, slots=True)
class FinishedSync:
    """The last sync that ended, as its status messages tell it."""

    started: datetime
    ended: datetime
    succeeded: bool
    phase_seconds: dict[str, float]
    phase_spans: dict[str, tuple[datetime, datetime]]
    """First start and last end of each phase whose end is known."""

    @property
    def seconds(self) -> float:
        return (self.ended - self.started).total_seconds()


def last_finished_sync(messages: Sequence[StatusMessage]) -> FinishedSync | None:
    """From the sync manager's messages, newest first (as `db.messages.find`
    gives them): the last sync that has a 6701 and then a 6702 (or, failed, a 6703 and no
    6702). A replica's 6703 inside a sync that then succeeded does not end it; a sync still
    running is passed over."""
    ordered = list(reversed(messages))
    syncs: list[list[StatusMessage]] = []
    for message in ordered:
        if message.message_id == SYNC_STARTED:
            syncs.append([message])
        elif syncs:
            syncs[-1].append(message)
    for sync in reversed(syncs):
        rest = sync[1:]
        end = next((m for m in rest if m.message_id in SYNC_COMPLETED), None)
        if end is None:
            end = next((m for m in rest if m.message_id == SYNC_FAILED), None)
        if end is None:
            continue
        seconds: dict[str, float] = {}
        spans: dict[str, tuple[datetime, datetime]] = {}
        for here, after in itertools.pairwise(sync):
            phase = PHASES.get(here.message_id)
            if phase is None:
                continue
            seconds[phase] = seconds.get(phase, 0.0) + (after.time - here.time).total_seconds()
            first = spans.get(phase, (here.time, after.time))[0]
            spans[phase] = (first, after.time)
        return FinishedSync(
            sync[0].time, end.time, end.message_id in SYNC_COMPLETED, seconds, spans
        )
    return None


def _cis_written(db: SiteDatabase, start: datetime, end: datetime) -> int:
    """CIs whose DateRevised falls in the phase from `start` to `end`: those it wrote. Status
    message times are kept to the millisecond, so the end is taken 1 ms later."""
    until = (end + _MILLISECOND).astimezone(UTC)
    return db.content.revised_count(start.astimezone(UTC), until)


# -- the metrics -------------------------------------------------------------------------------


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def collect(
    db: SiteDatabase,
    site_code: str,
    *,
    now: datetime,
    phase_counts: Callable[[], dict[str, int]] | None = None,
) -> list[Family]:
    """Every metric family of `site_code`, read from its site database; `phase_counts` gives
    the items per phase of the site server's last sync where it knows them (the update
    server's new and changed revisions, which the site database does not keep)."""
    site = site_code.strip().upper()
    status = db.sync.status(site_code=site)

    state = Family(
        "updatesync_last_sync_state",
        "LastSyncState of the site: the id of the sync's last status message (6701, 6704, "
        "6705, 6706 in progress; 6702 done; 6703 failed).",
    )
    state.add(status.last_sync_state, site=site)
    state_time = Family(
        "updatesync_last_sync_state_timestamp_seconds",
        "When the site's last sync status message was sent (Unix time).",
    )
    state_time.add(_seconds(status.last_sync_state_time), site=site)

    last_ok = status.last_successful_sync_time
    success = Family(
        "updatesync_last_successful_sync_timestamp_seconds",
        "When the site's last successful sync ended (6702), Unix time; absent before the first.",
    )
    success.add(_seconds(last_ok), site=site)
    age = Family(
        "updatesync_last_successful_sync_age_seconds",
        "Seconds since the site's last successful sync, at the time of the scrape.",
    )
    age.add(None if last_ok is None else (now - last_ok).total_seconds(), site=site)

    content = Family(
        "updatesync_content_version",
        "Content version of each update source at the site (rises when a sync changes it).",
    )
    for source in db.content.update_sources():
        content.add(source.content_version, site=site, update_source=source.unique_id)

    messages = db.messages.find(
        site_code=site, component=SYNC_MANAGER, message_id=SYNC_MESSAGES, limit=_MESSAGE_WINDOW
    )
    finished = last_finished_sync(messages)
    duration = Family(
        "updatesync_sync_duration_seconds",
        "How long the site's last finished sync took, from 6701 to 6702 (6703 if it failed).",
    )
    phase_time = Family(
        "updatesync_phase_duration_seconds",
        "Time of each phase of the site's last finished sync, from its status message to the "
        "next (update_server 6704, site_database 6705, replicas 6706).",
    )
    items = Family(
        "updatesync_phase_items",
        "Items the site's last finished sync wrote per phase, where the site database can "
        "tell: site_database = configuration items written (new or changed) in that phase.",
    )
    if finished is not None:
        duration.add(finished.seconds, site=site)
        for phase, seconds in finished.phase_seconds.items():
            phase_time.add(seconds, site=site, phase=phase)
        span = finished.phase_spans.get(_SITE_DATABASE)
        if span is not None:
            items.add(_cis_written(db, *span), site=site, phase=_SITE_DATABASE)
    known = phase_counts() if phase_counts is not None else {}
    for phase, count in sorted(known.items()):
        if (
            phase != _SITE_DATABASE
            or finished is None
            or _SITE_DATABASE not in (finished.phase_spans)
        ):
            items.add(count, site=site, phase=phase)

    sup_state = Family(
        "updatesync_sup_last_sync_state",
        "LastSyncState of each software update point of the site (SMS_SUPSyncStatus).",
    )
    sup_success = Family(
        "updatesync_sup_last_successful_sync_timestamp_seconds",
        "When each software update point of the site last synced successfully (Unix time).",
    )
    for sup in db.sups.sync_statuses(site_code=site):
        sup_state.add(sup.last_sync_state, site=site, sup=sup.wsus_server_name)
        sup_success.add(
            _seconds(sup.last_successful_sync_time), site=site, sup=sup.wsus_server_name
        )

    links = Family(
        "updatesync_replication_link_status",
        "ReplicationLinkStatus of the site's database replication link to its parent: "
        "0 healthy, 1 degraded, 2 error.",
    )
    if db.site_code == site:
        for link in db.replication.links():
            links.add(int(link.status), site=site, parent=link.parent_site)

    alerts = Family(
        "updatesync_alerts_raised",
        "Alerts of the site raised now (not canceled), per alert type.",
    )
    raised = db.alerts.find(site_code=site, state=AlertState.RAISED)
    for kind in AlertType:
        alerts.add(sum(1 for a in raised if a.alert_type is kind), site=site, type=kind.value)

    return [
        state,
        state_time,
        success,
        age,
        content,
        duration,
        phase_time,
        items,
        sup_state,
        sup_success,
        links,
        alerts,
    ]


def render_metrics(
    db: SiteDatabase,
    site_code: str,
    *,
    now: datetime | None = None,
    phase_counts: Callable[[], dict[str, int]] | None = None,
) -> str:
    """The text a scrape of `/metrics` answers."""
    return render(collect(db, site_code, now=now or _utc_now(), phase_counts=phase_counts))


def metrics_route(
    db: SiteDatabase,
    site_code: str,
    *,
    clock: Callable[[], datetime] = _utc_now,
    path: str = METRICS_PATH,
    phase_counts: Callable[[], dict[str, int]] | None = None,
) -> Route:
    """A Starlette route answering `GET /metrics` for the site (open, like a health page:
    mount it outside the signed `/site/` routes)."""

    def metrics(_request: Request) -> Response:
        # A plain function: Starlette runs it in its thread pool, off the event loop.
        try:
            body = render_metrics(db, site_code, now=clock(), phase_counts=phase_counts)
        except Exception as exc:
            return PlainTextResponse(
                f"site {site_code}: the site database could not be read for metrics: {exc}\n",
                status_code=503,
            )
        return Response(body, media_type=CONTENT_TYPE)

    return Route(path, metrics, methods=["GET"], name="metrics")
