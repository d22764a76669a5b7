"""`GET /metrics`: a site's syncs in the Prometheus text format, kept with `prometheus_client`.

Each site server has a `SiteMetrics` with a `CollectorRegistry` of its own (never the
library's global registry: several roles share a process in the demo and `serve --role
all`). What happens between two scrapes is counted as it happens, told by the site server
when each sync ends (`SiteMetrics.sync_ended`):

- `updatesync_syncs_total{site,result}` (`success`, `failed`): syncs that ended, so a
  failure followed by a successful retry between two scrapes still shows;
- `updatesync_sync_duration_seconds{site,phase}` (histogram): each phase of each sync that
  ended, from the phase's status message to the next (`update_server` 6704, `site_database`
  6705, `replicas` 6706, the replicas' times added up). At a child site `update_server`
  includes the wait for database replication, which has no status message of its own. A
  phase is observed when its end is known: a top-level site's replicas sync after its 6702,
  and nothing marks their end, so there is no `replicas` observation at the top.

The rest is read from the site database at the time of the scrape (a custom collector); a
value the site does not know yet has no sample:

- `updatesync_build_info{version,python}` 1;
- `updatesync_sync_state{site,state,name}`: the site's LastSyncState as labels, 1 for the
  state it is in (`state` the status message id, `name` what the console calls it:
  started, update server, site database, replica, done, failed) and 0 for the others;
  `updatesync_last_sync_state_timestamp_seconds{site}`: when it was reached;
- `updatesync_last_successful_sync_timestamp_seconds{site}` and
  `updatesync_last_successful_sync_age_seconds{site}` (scrape time minus that);
- `updatesync_content_version{site,update_source}` per update source (its unique id);
- `updatesync_last_sync_duration_seconds{site}`: the last finished sync, from its 6701 to
  its 6702 (or to its 6703 when it failed), and `updatesync_phase_duration_seconds{site,
  phase}` of that sync;
- `updatesync_phase_items{site,phase}`: the site database keeps no item counts per phase, so
  this is what can be derived: `site_database` = the configuration items the last finished
  sync wrote (new or changed CIs, by their DateRevised within that sync's site-database
  phase), at a site whose sync has that phase (the top-level site; a child site gets its CIs
  by database replication, outside its sync); `update_server` = the revisions the update
  server phase brought (new and changed), given by the site server that ran the sync;
- `updatesync_sup_sync_state{site,sup,state,name}` (as the site's) and
  `updatesync_sup_last_successful_sync_timestamp_seconds{site,sup}` (SMS_SUPSyncStatus);
- `updatesync_replication_link_status{site,parent}`: 0 healthy, 1 degraded, 2 error (child
  sites);
- `updatesync_alerts_raised{site,type}`: alerts raised now, per alert type (0 included).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.routing import Route

from updatesync.logs.status_messages import StatusMessage
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alerts import AlertState, AlertType
from updatesync.updateserver.metrics import (
    FAILED,
    METRICS_PATH,
    RESULTS,
    SUCCESS,
    exposition,
    metrics_route,
    new_registry,
)
from updatesync.vocabulary import (
    PHASE_SITEDB,
    SYNC_COMPLETED,
    SYNC_DONE_PENDING_LICENSES,
    SYNC_FAILED,
    SYNC_MANAGER,
    SYNC_MESSAGES,
    SYNC_STARTED,
    SYNC_STATES,
)

__all__ = [
    "METRICS_PATH",
    "FinishedSync",
    "SiteMetrics",
    "last_finished_sync",
]

PHASES: dict[int, str] = {
    message_id: phase.metric_name for message_id, phase in SYNC_STATES.items() if phase.metric_name
}
"""The `phase` label of each in-progress status message."""
_SITE_DATABASE = PHASE_SITEDB.metric_name

STATE_NAMES: Final[dict[int, str]] = {
    **{message_id: phase.label for message_id, phase in SYNC_STATES.items()},
    SYNC_DONE_PENDING_LICENSES: "done, license terms pending",
}
"""The `name` label of each sync state (the console's words)."""

DURATION_BUCKETS: Final = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
"""Seconds: a phase takes from a second (nothing new) to hours (a first full sync)."""

_MILLISECOND = timedelta(milliseconds=1)
_MESSAGE_WINDOW = 500
"""Status messages read back to find the last finished sync (a sync sends a handful)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


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


# -- what is read at the time of a scrape ----------------------------------------------------


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _gauge(name: str, documentation: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def _add(family: GaugeMetricFamily, value: float | None, *labels: str) -> None:
    if value is not None:
        family.add_metric(list(labels), value)


def _states(family: GaugeMetricFamily, current: int | None, *labels: str) -> None:
    """One sample per known state (and the current one if unknown): 1 for `current`."""
    if current is None:
        return
    states = dict(STATE_NAMES)
    states.setdefault(current, str(current))
    for state, name in states.items():
        family.add_metric([*labels, str(state), name], 1.0 if state == current else 0.0)


class SiteCollector:
    """The site's gauges, read from its site database at each scrape; `phase_counts`
    gives the items per phase of the site server's last sync where it knows them (the
    update server's new and changed revisions, which the site database does not keep)."""

    def __init__(
        self,
        db: SiteDatabase,
        site_code: str,
        *,
        clock: Callable[[], datetime] = _utc_now,
        phase_counts: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.db = db
        self.site = site_code.strip().upper()
        self.clock = clock
        self.phase_counts = phase_counts

    def describe(self) -> Iterable[Metric]:
        return ()  # read only when scraped, never at registration

    def collect(self) -> Iterator[Metric]:
        yield from self._sync()
        yield from self._last_finished()
        yield from self._sups()
        yield from self._links_and_alerts()

    def _sync(self) -> Iterator[Metric]:
        db, site = self.db, self.site
        status = db.sync.status(site_code=site)
        state = _gauge(
            "updatesync_sync_state",
            "LastSyncState of the site as labels: 1 for the state it is in (state: the "
            "status message id; name: what it means), 0 for the others.",
            ("site", "state", "name"),
        )
        _states(state, status.last_sync_state, site)
        state_time = _gauge(
            "updatesync_last_sync_state_timestamp_seconds",
            "When the site's last sync status message was sent (Unix time).",
            ("site",),
        )
        _add(state_time, _seconds(status.last_sync_state_time), site)
        last_ok = status.last_successful_sync_time
        success = _gauge(
            "updatesync_last_successful_sync_timestamp_seconds",
            "When the site's last successful sync ended (6702), Unix time; absent before the "
            "first.",
            ("site",),
        )
        _add(success, _seconds(last_ok), site)
        age = _gauge(
            "updatesync_last_successful_sync_age_seconds",
            "Seconds since the site's last successful sync, at the time of the scrape.",
            ("site",),
        )
        _add(age, None if last_ok is None else (self.clock() - last_ok).total_seconds(), site)
        content = _gauge(
            "updatesync_content_version",
            "Content version of each update source at the site (rises when a sync changes it).",
            ("site", "update_source"),
        )
        for source in db.content.update_sources():
            content.add_metric([site, source.unique_id], source.content_version)
        yield from (state, state_time, success, age, content)

    def _last_finished(self) -> Iterator[Metric]:
        db, site = self.db, self.site
        finished = last_finished_sync(_sync_messages(db, site))
        duration = _gauge(
            "updatesync_last_sync_duration_seconds",
            "How long the site's last finished sync took, from 6701 to 6702 (6703 if it failed).",
            ("site",),
        )
        phase_time = _gauge(
            "updatesync_phase_duration_seconds",
            "Time of each phase of the site's last finished sync, from its status message to "
            "the next (update_server 6704, site_database 6705, replicas 6706).",
            ("site", "phase"),
        )
        items = _gauge(
            "updatesync_phase_items",
            "Items the site's last finished sync wrote per phase, where the site database can "
            "tell: site_database = configuration items written (new or changed) in that phase.",
            ("site", "phase"),
        )
        if finished is not None:
            duration.add_metric([site], finished.seconds)
            for phase, seconds in finished.phase_seconds.items():
                phase_time.add_metric([site, phase], seconds)
            span = finished.phase_spans.get(_SITE_DATABASE)
            if span is not None:
                items.add_metric([site, _SITE_DATABASE], _cis_written(db, *span))
        known = self.phase_counts() if self.phase_counts is not None else {}
        for phase, count in sorted(known.items()):
            if (
                phase != _SITE_DATABASE
                or finished is None
                or _SITE_DATABASE not in finished.phase_spans
            ):
                items.add_metric([site, phase], count)
        yield from (duration, phase_time, items)

    def _sups(self) -> Iterator[Metric]:
        site = self.site
        sup_state = _gauge(
            "updatesync_sup_sync_state",
            "LastSyncState of each software update point of the site (SMS_SUPSyncStatus) as "
            "labels: 1 for the state it is in, 0 for the others.",
            ("site", "sup", "state", "name"),
        )
        sup_success = _gauge(
            "updatesync_sup_last_successful_sync_timestamp_seconds",
            "When each software update point of the site last synced successfully (Unix time).",
            ("site", "sup"),
        )
        for sup in self.db.sups.sync_statuses(site_code=site):
            _states(sup_state, sup.last_sync_state, site, sup.wsus_server_name)
            _add(sup_success, _seconds(sup.last_successful_sync_time), site, sup.wsus_server_name)
        yield from (sup_state, sup_success)

    def _links_and_alerts(self) -> Iterator[Metric]:
        db, site = self.db, self.site
        links = _gauge(
            "updatesync_replication_link_status",
            "ReplicationLinkStatus of the site's database replication link to its parent: "
            "0 healthy, 1 degraded, 2 error.",
            ("site", "parent"),
        )
        if db.site_code == site:
            for link in db.replication.links():
                links.add_metric([site, link.parent_site], int(link.status))
        alerts = _gauge(
            "updatesync_alerts_raised",
            "Alerts of the site raised now (not canceled), per alert type.",
            ("site", "type"),
        )
        raised = db.alerts.find(site_code=site, state=AlertState.RAISED)
        for kind in AlertType:
            alerts.add_metric([site, kind.value], sum(1 for a in raised if a.alert_type is kind))
        yield from (links, alerts)


def _sync_messages(db: SiteDatabase, site: str) -> list[StatusMessage]:
    return db.messages.find(
        site_code=site, component=SYNC_MANAGER, message_id=SYNC_MESSAGES, limit=_MESSAGE_WINDOW
    )


# -- the site server's metrics -----------------------------------------------------------------


class SiteMetrics:
    """The metrics of one site server: its registry, with the sync counter and phase
    histogram its syncs feed (`sync_ended`) and the gauges read at each scrape."""

    def __init__(
        self,
        db: SiteDatabase,
        site_code: str,
        *,
        clock: Callable[[], datetime] = _utc_now,
        phase_counts: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.db = db
        self.site = site_code.strip().upper()
        self.registry = new_registry()
        self.syncs = Counter(
            "updatesync_syncs",
            "Syncs of the site that ended, by result (success: 6702 or 6708; failed: 6703).",
            ["site", "result"],
            registry=self.registry,
        )
        self.durations = Histogram(
            "updatesync_sync_duration_seconds",
            "Time of each phase of each sync of the site, from its status message to the next "
            "(update_server 6704, site_database 6705, replicas 6706).",
            ["site", "phase"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        for result in RESULTS:
            self.syncs.labels(self.site, result)
        for phase in PHASES.values():
            self.durations.labels(self.site, phase)
        self.registry.register(SiteCollector(db, self.site, clock=clock, phase_counts=phase_counts))
        self._observed: tuple[datetime, frozenset[str]] | None = None
        """The start of the last sync whose phases were observed, and those phases."""

    def sync_ended(self, succeeded: bool) -> None:
        """Count a sync that ended, and observe the time of each of its phases (read from
        its status messages; a phase already observed is not observed again)."""
        self.syncs.labels(self.site, SUCCESS if succeeded else FAILED).inc()
        finished = last_finished_sync(_sync_messages(self.db, self.site))
        if finished is None:
            return
        seen: frozenset[str] = frozenset()
        if self._observed is not None and self._observed[0] == finished.started:
            seen = self._observed[1]
        for phase, seconds in finished.phase_seconds.items():
            if phase not in seen:
                self.durations.labels(self.site, phase).observe(seconds)
        self._observed = (finished.started, seen | frozenset(finished.phase_seconds))

    def text(self, accept: str | None = None) -> str:
        """What a scrape answers (the text format unless `accept` asks for another)."""
        return exposition(self.registry, accept)[0].decode("utf-8")

    def route(self, path: str = METRICS_PATH) -> Route:
        """`GET /metrics` for the site (open, like a health page, unless the hierarchy file
        asks a token: `roles/site.py` guards it)."""
        return metrics_route(self.registry, f"site {self.site}", path=path)
