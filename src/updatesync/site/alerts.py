"""Alerts of a site: their kinds, states and texts.

ConfigMgr raises the sync-failure alert of a software update point when its sync fails and
sets it to canceled on the next successful sync (WSyncMgr.log: `Sync succeeded. Setting sync
alert to canceled state on site CS1`; SPEC section 4). An alert is one occurrence: raising
an alert that is already raised changes nothing, and a raise after a cancel is a new
occurrence. The site database keeps them (`SiteDatabase.raise_alert`, `cancel_alert`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AlertType(StrEnum):
    """What an alert is about."""

    SYNC_FAILURE = "sync_failure"


class AlertState(StrEnum):
    RAISED = "raised"
    CANCELED = "canceled"


_TEXTS: dict[AlertType, str] = {
    AlertType.SYNC_FAILURE: "Synchronization failure alert for software update point: {instance}",
}


def alert_text(alert_type: AlertType | str, instance: str) -> str:
    """The alert's name as the console shows it; `instance` is what it is about (a SUP's FQDN
    for a sync failure)."""
    try:
        template = _TEXTS[AlertType(alert_type)]
    except ValueError:
        raise ValueError(
            f"unknown alert type {alert_type!r} (known: {', '.join(AlertType)})"
        ) from None
    return template.format(instance=instance)


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
