"""Tests of the site database records' derived properties and normalisation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from updatesync.site.database.models import (
    MICROSOFT_UPDATE,
    Category,
    ConfigurationItem,
    ContentChange,
    ReplicationLink,
    ReplicationPage,
    SoftwareUpdatePoint,
    SyncStatus,
    sup_location,
)
from updatesync.vocabulary import (
    SYNC_DONE,
    SYNC_FAILED,
    SYNC_REPLICA,
    SYNC_SITE_DATABASE,
    SYNC_STARTED,
    SYNC_WSUS_SERVER,
)


@pytest.mark.parametrize(
    "state", [SYNC_STARTED, SYNC_WSUS_SERVER, SYNC_SITE_DATABASE, SYNC_REPLICA]
)
def test_sync_status_is_in_progress_in_a_running_state(state: int) -> None:
    assert SyncStatus("CS1", last_sync_state=state).in_progress


@pytest.mark.parametrize("state", [None, SYNC_DONE, SYNC_FAILED])
def test_sync_status_is_not_in_progress_otherwise(state: int | None) -> None:
    assert not SyncStatus("CS1", last_sync_state=state).in_progress


def _item(**extra: object) -> ConfigurationItem:
    return ConfigurationItem(
        update_id="ABCDEF00-0000-0000-0000-000000000001",
        revision=3,
        title="An update",
        xml_sha256="00" * 32,
        products=("PROD-A",),
        classifications=("CLASS-B",),
        **extra,  # type: ignore[arg-type]
    )


def test_configuration_item_keeps_ids_in_lower_case() -> None:
    item = _item()
    assert item.update_id == "abcdef00-0000-0000-0000-000000000001"
    assert item.products == ("prod-a",)
    assert item.classifications == ("class-b",)


def test_configuration_item_content_leaves_out_database_columns() -> None:
    content = _item().content()
    assert "ci_id" not in content
    assert "date_revised" not in content
    assert content["update_id"] == "abcdef00-0000-0000-0000-000000000001"
    assert content["products"] == ["prod-a"]
    assert content["classifications"] == ["class-b"]
    assert content["is_superseded"] is False


def test_configuration_item_content_ignores_ci_id_and_date_revised() -> None:
    stored = _item(ci_id=7, date_revised=datetime(2026, 1, 1, tzinfo=UTC))
    assert stored.content() == _item().content()
    assert _item(is_expired=True).content() != _item().content()


def test_category_keeps_ids_in_lower_case() -> None:
    category = Category("PROD-A", "Product", "A product", parent_id="FAMILY-X")
    assert category.category_id == "prod-a"
    assert category.parent_id == "family-x"
    assert Category("C", "Company", "Contoso").parent_id is None


def test_content_change_is_changed_by_any_write() -> None:
    assert not ContentChange(MICROSOFT_UPDATE, 0, unchanged=5).changed
    assert ContentChange(MICROSOFT_UPDATE, 0, inserted=1).changed
    assert ContentChange(MICROSOFT_UPDATE, 0, updated=1).changed
    assert ContentChange(MICROSOFT_UPDATE, 0, categories_changed=1).changed


def test_replication_page_reaches_head_and_size() -> None:
    page = ReplicationPage(
        "CAS",
        after=0,
        last_seq=2,
        head_seq=2,
        categories=(Category("c", "Company", "C"),),
        items=(_item(),),
    )
    assert page.reaches_head
    assert page.size == 2
    assert not ReplicationPage("CAS", after=0, last_seq=2, head_seq=5).reaches_head
    assert ReplicationPage("CAS", after=4, last_seq=4, head_seq=4).size == 0


def test_replication_link_replicated_version_by_source() -> None:
    link = ReplicationLink("CAS", replicated_versions={MICROSOFT_UPDATE: 4})
    assert link.replicated_version() == 4
    assert link.replicated_version(MICROSOFT_UPDATE.lower()) == 4
    assert link.replicated_version("{00000000-0000-0000-0000-000000000000}") is None
    assert ReplicationLink("CAS").replicated_version() is None


def test_sup_location_of_an_intranet_sup() -> None:
    assert sup_location(SoftwareUpdatePoint("sup1.contoso.com")) == {
        "fqdn": "sup1.contoso.com",
        "intranet_url": "http://sup1.contoso.com:8530",
        "internet_url": None,
    }


def test_sup_location_of_an_internet_facing_https_sup() -> None:
    sup = SoftwareUpdatePoint("sup2.contoso.com", port=8531, https=True, internet_facing=True)
    assert sup_location(sup) == {
        "fqdn": "sup2.contoso.com",
        "intranet_url": "https://sup2.contoso.com:8531",
        "internet_url": "https://sup2.contoso.com:8531",
    }
