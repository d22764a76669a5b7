"""The site control file's SUPs, their SMS_SUPSyncStatus and the client policy (`db.sups`)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from site_samples import T0

from updatesync.site.database.models import MICROSOFT_UPDATE, SoftwareUpdatePoint, SUPSyncStatus
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError

HOUR = timedelta(hours=1)

# -- site control and SUP sync status --------------------------------------------------------


def test_sups_in_install_order_the_first_is_default(db: SiteDatabase) -> None:
    sups = db.sups.replace(
        [
            SoftwareUpdatePoint("PS1SITE.CONTOSO.COM"),
            SoftwareUpdatePoint("PS1SYS.CONTOSO.COM", port=8531, https=True, internet_facing=True),
        ],
        site_code="PS1",
    )
    assert [(s.fqdn, s.is_default) for s in sups] == [
        ("PS1SITE.CONTOSO.COM", True),
        ("PS1SYS.CONTOSO.COM", False),
    ]
    assert sups[1].https and sups[1].internet_facing and sups[1].port == 8531
    assert db.sups.find() == []
    db.sups.replace([SoftwareUpdatePoint("CS1SITE.CONTOSO.COM")])
    assert [s.fqdn for s in db.sups.find()] == ["CS1SITE.CONTOSO.COM"]
    db.sups.replace([SoftwareUpdatePoint("PS1SYS.CONTOSO.COM")], site_code="PS1")
    assert db.sups.find(site_code="PS1") == [
        SoftwareUpdatePoint("PS1SYS.CONTOSO.COM", 8530, is_default=True)
    ]
    with pytest.raises(SiteDatabaseError, match="listed twice"):
        db.sups.replace(
            [SoftwareUpdatePoint("a.contoso.com"), SoftwareUpdatePoint("A.contoso.com")]
        )
    assert [s.fqdn for s in db.sups.find()] == ["CS1SITE.CONTOSO.COM"]


def test_sup_sync_status_upsert_and_list(db: SiteDatabase) -> None:
    top = SUPSyncStatus(
        "CS1",
        "CS1SITE.CONTOSO.COM",
        "Microsoft Update",
        last_sync_state=6701,
        last_sync_state_time=T0,
    )
    child = SUPSyncStatus("PS1", "PS1SITE.CONTOSO.COM", "CS1SITE.CONTOSO.COM")
    db.sups.set_sync_status(top)
    db.sups.set_sync_status(child)
    assert db.sups.sync_statuses() == [top, child]
    done = SUPSyncStatus(
        "CS1",
        "CS1SITE.CONTOSO.COM",
        "Microsoft Update",
        last_sync_state=6702,
        last_sync_state_time=T0 + timedelta(minutes=4),
        last_successful_sync_time=T0 + timedelta(minutes=4),
        sync_catalog_version=34,
        replication_link_status=1,
        last_replication_link_check_time=T0,
    )
    db.sups.set_sync_status(done)
    assert db.sups.sync_statuses(site_code="cs1") == [done]
    assert len(db.sups.sync_statuses()) == 2


# -- client policy -----------------------------------------------------------------------------


def test_the_client_policy_is_published_and_replaced(db: SiteDatabase) -> None:
    assert db.sups.client_policy() is None
    locations = [
        {
            "fqdn": "PS1SITE.CONTOSO.COM",
            "intranet_url": "http://PS1SITE.CONTOSO.COM:8530",
            "internet_url": None,
        },
        {
            "fqdn": "PS1SYS.CONTOSO.COM",
            "intranet_url": "https://PS1SYS.CONTOSO.COM:8531",
            "internet_url": "https://PS1SYS.CONTOSO.COM:8531",
        },
    ]
    published = db.sups.publish_client_policy(
        content_version=34, locations=locations, published_at=T0
    )
    assert db.sups.client_policy() == published
    assert published.locations == tuple(locations)
    assert (published.update_source_id, published.content_version) == (MICROSOFT_UPDATE, 34)

    db.sups.replace(
        [
            SoftwareUpdatePoint("CS1SITE.CONTOSO.COM"),
            SoftwareUpdatePoint("CS1SYS.CONTOSO.COM", 8531, https=True, internet_facing=True),
            SoftwareUpdatePoint("OLD.CONTOSO.COM", active=False),
        ]
    )
    again = db.sups.publish_client_policy(content_version=35, published_at=T0 + HOUR)
    assert db.sups.client_policy() == again and again.published_at == T0 + HOUR
    assert again.locations == (
        {
            "fqdn": "CS1SITE.CONTOSO.COM",
            "intranet_url": "http://CS1SITE.CONTOSO.COM:8530",
            "internet_url": None,
        },
        {
            "fqdn": "CS1SYS.CONTOSO.COM",
            "intranet_url": "https://CS1SYS.CONTOSO.COM:8531",
            "internet_url": "https://CS1SYS.CONTOSO.COM:8531",
        },
    )
    with pytest.raises(SiteDatabaseError, match="not registered"):
        db.sups.publish_client_policy(
            content_version=1, update_source_id="{00000000-0000-0000-0000-0}"
        )
    with pytest.raises(SiteDatabaseError, match="needs an fqdn and an intranet_url"):
        db.sups.publish_client_policy(content_version=1, locations=[{"fqdn": "x"}])
    assert db.sups.client_policy() == again
