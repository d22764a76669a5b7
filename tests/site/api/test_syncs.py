"""A sync as a resource: `POST /api/sites/{site}/sync` with no body is a delta SyncNow whose
202 names, in `Location`, the sync that will serve it; `GET` on it says requested, running
or done (with the result), waiting for it with `wait`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tokens import bearer, token_for

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.roles.serving import BackgroundServer
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.site_db import SiteDatabase


class History:
    """The syncs a site server finished, as `SiteRole` keeps them (here fed by the test)."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []
        self.done = threading.Condition()
        self.retry_at: datetime | None = None

    def finish(self, **result: Any) -> None:
        with self.done:
            self.results.append(result)
            self.done.notify_all()

    def wait_after(self, count: int, timeout: float) -> tuple[int, dict[str, Any] | None]:
        with self.done:
            self.done.wait_for(lambda: len(self.results) > count, timeout)
            return len(self.results), (self.results[-1] if self.results else None)

    def nth(self, number: int) -> dict[str, Any] | None:
        with self.done:
            return self.results[number - 1] if 1 <= number <= len(self.results) else None

    def next_retry_at(self) -> datetime | None:
        return self.retry_at


@dataclass
class Site:
    db: SiteDatabase
    history: History
    client: httpx.Client


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    history = History()
    with SiteDatabase.open(tmp_path / "CS1", site_code="CS1") as db:
        app = create_provider_app(
            db,
            log=CMTraceLog(tmp_path / "SMSProv.log", component="SMS Provider"),
            site_code="CS1",
            sync_history=history,
        )
        with (
            BackgroundServer(app) as server,
            httpx.Client(
                base_url=server.url, headers=bearer(token_for(db, "root")), timeout=30
            ) as client,
        ):
            yield Site(db, history, client)


def test_an_empty_post_is_a_delta_sync_and_location_follows_it(site: Site) -> None:
    answer = site.client.post("/api/sites/cs1/sync")
    assert answer.status_code == 202, answer.text
    assert site.db.sync.status().sync_now == "SELF"
    location = answer.headers["Location"]
    assert location == "/api/sites/CS1/syncs/1"
    assert site.client.get(location).json()["State"] == "requested"
    site.db.sync.record_state(6701)  # the sync manager took it
    running = site.client.get(location).json()
    assert (running["State"], running["LastSyncState"]) == ("running", 6701)
    assert running["LastSyncStateDescription"].startswith("WSUS Synchronization started")
    site.db.sync.record_state(6702)
    site.history.finish(succeeded=True, content_version=1, items_updated=3, error=None)
    done = site.client.get(location, params={"wait": 5}).json()
    assert (done["State"], done["Result"]["content_version"]) == ("done", 1)
    # a request while a sync runs is served by the sync after it
    site.db.sync.record_state(6704)
    later = site.client.post("/api/sites/CS1/sync", json={"full": True})
    assert later.headers["Location"] == "/api/sites/CS1/syncs/3"
    assert site.db.sync.status().sync_now == "FULL"


def test_a_sync_resource_waits_for_its_end(site: Site) -> None:
    threading.Timer(0.2, lambda: site.history.finish(succeeded=False, error="boom")).start()
    done = site.client.get("/api/sites/CS1/syncs/1", params={"wait": 20}).json()
    assert (done["State"], done["Result"]["error"]) == ("done", "boom")
    assert site.client.get("/api/sites/CS1/syncs/0").status_code == 422
    assert site.client.get("/api/sites/PS1/syncs/1").status_code == 404


def test_the_sync_status_says_when_a_failed_sync_is_retried(site: Site) -> None:
    """Issue 15: the next retry of a failed sync is in the site's sync status (the site
    server's retry timer), and gone once no retry is pending."""
    assert site.client.get("/api/sites/CS1/sync-status").json()["NextRetryTime"] is None
    site.db.sync.record_state(6703, error_code=0x80131500, error_text="upstream down")
    site.history.retry_at = datetime(2014, 1, 16, 19, 57, 46, 304000, tzinfo=UTC)
    status = site.client.get("/api/sites/CS1/sync-status").json()
    assert (status["LastSyncState"], status["LastErrorText"]) == (6703, "upstream down")
    assert datetime.fromisoformat(status["NextRetryTime"]) == site.history.retry_at
    site.history.retry_at = None
    assert site.client.get("/api/sites/CS1/sync-status").json()["NextRetryTime"] is None
