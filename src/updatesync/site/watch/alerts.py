"""Alerts of a site: their kinds, states and texts.

ConfigMgr raises the sync-failure alert of a software update point when its sync fails and
sets it to canceled on the next successful sync (WSyncMgr.log: `Sync succeeded. Setting sync
alert to canceled state on site CS1`; SPEC section 4). An alert is one occurrence: raising
an alert that is already raised changes nothing, and a raise after a cancel is a new
occurrence. The site database keeps them (`site/database/alerts.py`: `db.alerts.raise_alert`,
`cancel_alert`).

Beyond ConfigMgr (SPEC section 5: "alerting when a sync fails or is overdue"), the alert
watcher (`alert_watcher.py`) raises and cancels two more kinds:

- `sync_overdue`, about the site itself (instance: the site code): its last successful sync
  is older than the hierarchy's `overdue_after`; or it never synced and was set up longer
  ago than that. Canceled once a sync succeeds.
- `replication_link_degraded`, at a child site (instance: the parent's site code): its
  database replication link to the parent is degraded (1) or in error (2). Canceled when
  the link is healthy (0) again.

The sync manager raises one more, `content_out_of_sync` (instance: the SUP's FQDN), when
the consistency audit of a SUP's update server finds its revisions differ from its
upstream's (6707); its text names both servers (`out_of_sync_text`). A later audit that
finds them equal cancels it.

Their texts carry the facts an administrator needs (`overdue_text`, `replication_link_text`);
`alert_text` gives the short name of each kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class AlertType(StrEnum):
    """What an alert is about."""

    SYNC_FAILURE = "sync_failure"
    SYNC_OVERDUE = "sync_overdue"
    REPLICATION_LINK_DEGRADED = "replication_link_degraded"
    CONTENT_OUT_OF_SYNC = "content_out_of_sync"


class AlertState(StrEnum):
    RAISED = "raised"
    CANCELED = "canceled"


_TEXTS: dict[AlertType, str] = {
    AlertType.SYNC_FAILURE: "Synchronization failure alert for software update point: {instance}",
    AlertType.SYNC_OVERDUE: "Software update synchronization is overdue at site {instance}",
    AlertType.REPLICATION_LINK_DEGRADED: (
        "Database replication link to parent site {instance} is degraded"
    ),
    AlertType.CONTENT_OUT_OF_SYNC: "Content of WSUS Server {instance} is out of sync",
}

_MAX_ERROR_TEXT = 300


def alert_text(alert_type: AlertType | str, instance: str) -> str:
    """The alert's name as the console shows it; `instance` is what it is about (a SUP's FQDN
    for a sync failure, the site code for an overdue sync, the parent site's code for a
    replication link)."""
    try:
        template = _TEXTS[AlertType(alert_type)]
    except ValueError:
        raise ValueError(
            f"unknown alert type {alert_type!r} (known: {', '.join(AlertType)})"
        ) from None
    return template.format(instance=instance)


def out_of_sync_text(sup: str, upstream: str, own: int | None, theirs: int | None) -> str:
    """The content-out-of-sync alert's text: 6707's words, naming both servers, with the
    revision counts of each side."""
    return (
        f"Content of WSUS Server {sup} is out of sync with upstream server {upstream} "
        f"({own} revisions against {theirs}); the next synchronization is a full one"
    )


def format_alert_time(moment: datetime) -> str:
    """`2026-11-20 10:00 UTC`: a time as alert texts write it."""
    utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
    return utc.strftime("%Y-%m-%d %H:%M UTC")


def format_span(span: timedelta) -> str:
    """`2 days`, `1 day 12 hours`, `1 hour 30 minutes`, `45 minutes`: a duration in words,
    to the minute."""
    minutes = max(int(span.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [
        f"{n} {unit}{'' if n == 1 else 's'}"
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if n
    ]
    return " ".join(parts) or "0 minutes"


def overdue_text(
    site_code: str,
    overdue_after: timedelta,
    *,
    last_success: datetime | None,
    set_up: datetime | None = None,
) -> str:
    """The text of a `sync_overdue` alert: when the site last synced (or that it never did
    since it was set up), and the limit it passed."""
    head = f"Software update synchronization is overdue at site {site_code}"
    limit = format_span(overdue_after)
    if last_success is not None:
        return (
            f"{head}: last successful sync {format_alert_time(last_success)}, more than {limit} ago"
        )
    if set_up is not None:
        return (
            f"{head}: no successful sync since the site was set up "
            f"{format_alert_time(set_up)}, more than {limit} ago"
        )
    return f"{head}: no successful sync yet"


def replication_link_text(
    site_code: str,
    parent_site: str,
    status: int,
    *,
    failures: int = 0,
    failing_since: datetime | None = None,
    error: str | None = None,
) -> str:
    """The text of a `replication_link_degraded` alert: the link's status (1 degraded, 2 in
    error), since when and how many pulls failed, and the last error."""
    state = "in error" if status == 2 else "degraded"
    text = (
        f"Database replication link from parent site {parent_site} to site {site_code} is "
        f"{state} (ReplicationLinkStatus {status})"
    )
    facts = []
    if failures:
        facts.append(f"{failures} failed pull{'' if failures == 1 else 's'} in a row")
    if failing_since is not None:
        facts.append(f"failing since {format_alert_time(failing_since)}")
    if facts:
        text += ": " + ", ".join(facts)
    if error:
        cut = error if len(error) <= _MAX_ERROR_TEXT else error[: _MAX_ERROR_TEXT - 1] + "…"
        text += f"; last error: {cut}"
    return text


@dataclass(frozen=True, slots=True)
class Alert:
    """One occurrence of an alert. `canceled_at` is None while it is raised."""

    alert_id: int
    alert_type: AlertType
    site_code: str
    instance: str
    state: AlertState
    raised_at: datetime
    canceled_at: datetime | None
    text: str

    @property
    def is_raised(self) -> bool:
        return self.state is AlertState.RAISED
