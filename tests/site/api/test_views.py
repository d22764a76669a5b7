"""The provider's views read back from their own JSON, as a parent site's provider reads the
site data its child sent: the same values, and the freshness fields null in a site's own."""

from __future__ import annotations

from datetime import UTC, datetime

from updatesync.logs.status_messages import new_status_message
from updatesync.site.api.views import (
    FRESHNESS,
    StatusMessageView,
    SUPSyncStatusView,
    SyncStatusView,
    sync_status_view,
)
from updatesync.site.database.models import SUPSyncStatus, SyncStatus
from updatesync.vocabulary import SYNC_DONE

T0 = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def test_a_view_read_back_from_its_json_has_the_same_values() -> None:
    status = sync_status_view(SyncStatus("PS1", last_sync_state=SYNC_DONE, last_sync_state_time=T0))
    again = SyncStatusView.model_validate(status.model_dump(mode="json"))
    assert again == status
    assert again.LastSyncStateDescription == "WSUS Synchronization done."
    assert {getattr(again, name) for name in FRESHNESS} == {None}

    row = SUPSyncStatusView.of(SUPSyncStatus("PS1", "PS1SITE.CONTOSO.COM", "CS1SITE"))
    fresh = SUPSyncStatusView.model_validate(
        row.model_dump(mode="json") | {"AsOf": T0.isoformat(), "Stale": True}
    )
    assert (fresh.WSUSServerName, fresh.AsOf, fresh.Stale) == ("PS1SITE.CONTOSO.COM", T0, True)


def test_a_status_message_view_names_its_record() -> None:
    msg = new_status_message(SYNC_DONE, site_code="PS1", system="PS1SITE.CONTOSO.COM", time=T0)
    view = StatusMessageView.of(msg, record_id=12, received_at=None, description="done")
    data = view.model_dump(mode="json")
    assert (data["RecordID"], data["ReceivedAt"], data["MessageID"]) == (12, None, SYNC_DONE)
