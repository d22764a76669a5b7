"""A parent site's provider answers about the sites below it from the site data held in its
database, with AsOf, ReceivedAt and Stale (by age against its limit, by a failed pull from the
child, or as the site in between judged it); alerts and the site list too."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tokens import bearer, token_for

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.roles.serving import BackgroundServer
from updatesync.site.api.hierarchy import check_picture, own_picture, pictures
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.site_data import SitePicture
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alerts import AlertType
from updatesync.vocabulary import PROVIDER, SYNC_DONE, SYNC_FAILED

T0 = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
LIMIT = timedelta(minutes=10)


@dataclass
class Parent:
    db: SiteDatabase
    client: httpx.Client
    now: list[datetime]


@pytest.fixture
def parent(tmp_path: Path) -> Iterator[Parent]:
    now = [T0]
    log = CMTraceLog(tmp_path / "SMSProv.log", component=PROVIDER)
    with SiteDatabase.open(tmp_path / "cs1", site_code="CS1") as db:
        app = create_provider_app(
            db, log=log, site_code="CS1", stale_after=LIMIT, clock=lambda: now[0]
        )
        with (
            BackgroundServer(app) as server,
            httpx.Client(base_url=server.url, headers=bearer(token_for(db))) as client,
        ):
            yield Parent(db, client, now)


def _child(tmp_path: Path) -> SiteDatabase:
    """PS1's database after a failed sync with its alert raised."""
    ps1 = SiteDatabase.open(tmp_path / "ps1", site_code="PS1")
    ps1.sync.record_state(SYNC_FAILED, at=T0, error_code=5, error_text="access denied")
    ps1.alerts.raise_alert(AlertType.SYNC_FAILURE, "PS1SITE.CONTOSO.COM", site_code="PS1", at=T0)
    return ps1


def test_answers_about_a_child_are_its_own_with_their_freshness(
    tmp_path: Path, parent: Parent
) -> None:
    with _child(tmp_path) as ps1:
        sent = pictures(ps1, T0, LIMIT)
        own = own_picture(ps1, T0)
    ss1 = replace(sent[0], site_code="SS1", as_of=T0 - timedelta(minutes=1), stale_below=True)
    parent.db.site_data.apply(
        "PS1",
        after=0,
        messages=[],
        last_record_id=0,
        pictures=[*sent, ss1],
        at=T0 + timedelta(seconds=2),
    )

    status = parent.client.get("/api/sites/ps1/sync-status").json()
    assert {k: v for k, v in status.items() if k not in ("AsOf", "ReceivedAt", "Stale")} == (
        own.sync_status
    )
    assert status["LastSyncState"] == SYNC_FAILED and status["Stale"] is False
    assert datetime.fromisoformat(status["ReceivedAt"]) == T0 + timedelta(seconds=2)
    # SS1 came through PS1, which already found it stale.
    assert parent.client.get("/api/sites/SS1/sync-status").json()["Stale"] is True

    raised = parent.client.get("/api/alerts", params={"site": "PS1"}).json()
    assert [(a["SiteCode"], a["Instance"], a["Stale"]) for a in raised] == [
        ("PS1", "PS1SITE.CONTOSO.COM", False)
    ]
    assert parent.client.get("/api/alerts", params={"state": "canceled"}).json() == []

    parent.now[0] = T0 + LIMIT + timedelta(seconds=1)
    assert parent.client.get("/api/sites/PS1/sync-status").json()["Stale"] is True


def test_a_failed_pull_marks_the_childs_data_stale_and_the_site_list_says_why(
    tmp_path: Path, parent: Parent
) -> None:
    with SiteDatabase.open(tmp_path / "ps1", site_code="PS1") as ps1:
        ps1.sync.record_state(SYNC_DONE, at=T0)
        picture = own_picture(ps1, T0)
    parent.db.site_data.apply(
        "PS1", after=0, messages=[], last_record_id=0, pictures=[picture], at=T0
    )
    sites = parent.client.get("/api/sites").json()
    assert [(s["SiteCode"], s["Data"], s["Via"], s["Stale"]) for s in sites] == [
        ("CS1", "own", None, None),
        ("PS1", "replicated", "PS1", False),
    ]

    parent.db.site_data.record_failure("PS1", "cannot reach it", at=T0 + timedelta(seconds=5))

    status = parent.client.get("/api/sites/PS1/sync-status").json()
    assert (status["LastSyncState"], status["Stale"]) == (SYNC_DONE, True)
    listed = {s["SiteCode"]: s for s in parent.client.get("/api/sites").json()}
    assert listed["PS1"]["LastError"] == "cannot reach it"


def test_a_site_whose_data_is_not_held_is_not_found(parent: Parent) -> None:
    answer = parent.client.get("/api/sites/PS2/sup-sync-status")
    assert answer.status_code == 404
    assert "holds no SUP sync status of site PS2" in answer.json()["detail"]


def test_a_picture_that_is_not_a_view_is_refused() -> None:
    with pytest.raises(ValueError, match=r"site PS1: .*Field required"):
        check_picture(SitePicture("PS1", T0, {"SiteCode": "PS1"}, [], []))
