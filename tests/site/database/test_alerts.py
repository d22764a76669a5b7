"""Alert occurrences: raised once, canceled with the time, racing raises (`db.alerts`)."""

from __future__ import annotations

from datetime import timedelta

from site_samples import T0, race

from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alerts import AlertState, AlertType


def test_sync_failure_alert_raise_is_idempotent_and_cancel_records_the_time(
    db: SiteDatabase,
) -> None:
    first = db.alerts.raise_alert(AlertType.SYNC_FAILURE, "CS1SITE.CONTOSO.COM", at=T0)
    assert (
        first.text == "Synchronization failure alert for software update point: CS1SITE.CONTOSO.COM"
    )
    assert first.is_raised and first.canceled_at is None
    again = db.alerts.raise_alert("sync_failure", "CS1SITE.CONTOSO.COM", at=T0 + timedelta(hours=1))
    assert again == first
    assert db.alerts.find(state="raised") == [first]

    (canceled,) = db.alerts.cancel_alert(AlertType.SYNC_FAILURE, at=T0 + timedelta(hours=2))
    assert canceled.alert_id == first.alert_id
    assert canceled.state is AlertState.CANCELED
    assert canceled.canceled_at == T0 + timedelta(hours=2)
    assert db.alerts.cancel_alert(AlertType.SYNC_FAILURE) == []

    second = db.alerts.raise_alert(
        AlertType.SYNC_FAILURE, "CS1SITE.CONTOSO.COM", at=T0 + timedelta(1)
    )
    assert second.alert_id != first.alert_id
    other = db.alerts.raise_alert(
        AlertType.SYNC_FAILURE, "CS1SYS.CONTOSO.COM", at=T0 + timedelta(2)
    )
    assert [a.alert_id for a in db.alerts.find()] == [
        other.alert_id,
        second.alert_id,
        first.alert_id,
    ]
    assert db.alerts.find(state=AlertState.CANCELED) == [canceled]
    assert db.alerts.cancel_alert(AlertType.SYNC_FAILURE, "CS1SYS.CONTOSO.COM")[0].instance == (
        "CS1SYS.CONTOSO.COM"
    )
    assert [a.instance for a in db.alerts.find(state="raised")] == ["CS1SITE.CONTOSO.COM"]
    assert db.alerts.find(site_code="PS1") == []


def test_racing_raises_make_one_alert(db: SiteDatabase) -> None:
    got = race(4, lambda: db.alerts.raise_alert(AlertType.SYNC_FAILURE, "CS1SITE.CONTOSO.COM"))
    assert len({a.alert_id for a in got}) == 1
    assert len(db.alerts.find()) == 1
