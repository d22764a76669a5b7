"""The SMS Provider's log routes: the site server's and its SUPs' logs listed, and read a
page at a time from a cursor (a live tail), across a rollover, by known names only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tokens import bearer, token_for

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.softwaredistribution import SoftwareDistributionLog
from updatesync.roles.serving import BackgroundServer
from updatesync.security.access import SecurityRole
from updatesync.site.api.logs import MAX_LIMIT, SiteLogs
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.site_db import SiteDatabase

SUP = "cs1sup.contoso.com"
AWAY = "cs1sup2.contoso.com"


@dataclass
class Site:
    url: str
    client: httpx.Client
    logs: Path
    sup: Path


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    logs, sup = tmp_path / "CS1" / "logs", tmp_path / SUP
    logs.parent.mkdir(parents=True)  # the logs folder comes with the first line
    sup.mkdir()
    with SiteDatabase.open(tmp_path / "CS1", site_code="CS1") as db:
        app = create_provider_app(
            db,
            log=CMTraceLog(logs / "SMSProv.log", component="SMS Provider"),
            site_code="CS1",
            logs=SiteLogs("cs1site.contoso.com", logs, [(SUP, sup), (AWAY, tmp_path / AWAY)]),
        )
        token = token_for(db, "analyst", SecurityRole.READ_ONLY_ANALYST)
        with (
            BackgroundServer(app) as server,
            httpx.Client(base_url=server.url, headers=bearer(token), timeout=30) as client,
        ):
            yield Site(server.url, client, logs, sup)


def wsyncmgr(site: Site, max_bytes: int = 5 * 1024 * 1024) -> CMTraceLog:
    return CMTraceLog(
        site.logs / "WSyncMgr.log",
        component="SMS_WSUS_SYNC_MANAGER",
        bias_minutes=0,
        max_bytes=max_bytes,
    )


def test_the_list_names_the_site_servers_logs_and_its_sups(site: Site) -> None:
    assert site.client.get("/api/sites/CS1/logs").json()[0]["Readable"]  # before any line
    wsyncmgr(site).info("Starting Sync")
    SoftwareDistributionLog(site.sup / "logs" / "SoftwareDistribution.log").info("Agent", "hello")
    answer = site.client.get("/api/sites/cs1/logs")
    assert answer.status_code == 200, answer.text
    logs = {entry["Name"]: entry for entry in answer.json()}
    assert {"WSyncMgr.log", "WCM.log", "SMSDBMON.log", "SMSProv.log", "replmgr.log"} <= set(logs)
    assert logs["WSyncMgr.log"]["Size"] > 0 and logs["WSyncMgr.log"]["Readable"]
    assert logs["WSyncMgr.log"]["Component"] == "SMS_WSUS_SYNC_MANAGER"
    assert logs["WCM.log"]["Size"] is None  # not written yet
    sd = logs[f"{SUP}/SoftwareDistribution.log"]
    assert (sd["Format"], sd["Server"], sd["Readable"]) == ("softwaredistribution", SUP, True)
    away = logs[f"{AWAY}/SoftwareDistribution.log"]
    assert away["Readable"] is False and f"of {AWAY} is on that server" in away["Note"]
    assert str(site.logs) not in answer.text  # no paths


def test_a_page_has_the_lines_as_cmtrace_shows_them_and_a_tail_reads_on(site: Site) -> None:
    log = wsyncmgr(site)
    log.info("Starting Sync")
    log.warning("Sync took longer than expected")
    log.error("Sync failed: WSUS server not configured.")
    first = site.client.get("/api/sites/CS1/logs/WSyncMgr.log").json()
    assert [(ln["Text"], ln["Type"]) for ln in first["Lines"]] == [
        ("Starting Sync", "info"),
        ("Sync took longer than expected", "warning"),
        ("Sync failed: WSUS server not configured.", "error"),
    ]
    assert first["Lines"][0]["Component"] == "SMS_WSUS_SYNC_MANAGER"
    assert first["Lines"][0]["Thread"] > 0 and first["Lines"][0]["Time"].endswith("Z")
    assert first["More"] is False
    cursor = {"file": first["NextFile"], "offset": first["NextOffset"]}
    idle = site.client.get("/api/sites/CS1/logs/WSyncMgr.log", params=cursor).json()
    assert idle["Lines"] == [] and idle["NextOffset"] == first["NextOffset"]
    log.info("Done synchronizing SMS with WSUS Server cs1sup.contoso.com")
    tail = site.client.get("/api/sites/CS1/logs/WSyncMgr.log", params=cursor).json()
    assert [ln["Text"] for ln in tail["Lines"]] == [
        "Done synchronizing SMS with WSUS Server cs1sup.contoso.com"
    ]


def test_a_tail_follows_the_log_over_its_rollover(site: Site) -> None:
    log = wsyncmgr(site, max_bytes=1200)
    log.info("line 0")
    start = site.client.get("/api/sites/CS1/logs/WSyncMgr.log").json()
    cursor = {"file": start["NextFile"], "offset": start["NextOffset"]}
    for number in range(1, 8):  # past 1200 bytes: WSyncMgr.log becomes WSyncMgr.lo_
        log.info(f"line {number}")
    assert (site.logs / "WSyncMgr.lo_").exists()
    seen: list[str] = []
    while True:
        page = site.client.get(
            "/api/sites/CS1/logs/WSyncMgr.log", params={**cursor, "limit": 500}
        ).json()
        assert page["Gap"] is False
        seen += [ln["Text"] for ln in page["Lines"]]
        cursor = {"file": page["NextFile"], "offset": page["NextOffset"]}
        if not page["More"]:
            break
    assert seen == [f"line {n}" for n in range(1, 8)]


def test_a_cursor_older_than_two_rollovers_says_lines_were_missed(site: Site) -> None:
    log = wsyncmgr(site, max_bytes=600)
    log.info("line 0")
    start = site.client.get("/api/sites/CS1/logs/WSyncMgr.log").json()
    for number in range(1, 20):
        log.info(f"line {number}")
    page = site.client.get(
        "/api/sites/CS1/logs/WSyncMgr.log",
        params={"file": start["NextFile"], "offset": start["NextOffset"]},
    ).json()
    assert page["Gap"] is True
    assert page["Lines"][-1]["Text"] == "line 19"


def test_at_starts_at_the_page_holding_that_time(site: Site) -> None:
    start = datetime(2014, 1, 16, 18, 0, tzinfo=UTC)
    times = iter(start + timedelta(seconds=n) for n in range(40))
    log = CMTraceLog(
        site.logs / "WSyncMgr.log",
        component="SMS_WSUS_SYNC_MANAGER",
        bias_minutes=0,
        now=lambda: next(times),
    )
    for number in range(40):
        log.info(f"line {number}")
    page = site.client.get(
        "/api/sites/CS1/logs/WSyncMgr.log", params={"at": "2014-01-16T18:00:29.500Z", "limit": 1000}
    ).json()
    texts = [ln["Text"] for ln in page["Lines"]]
    assert "line 30" in texts and "line 0" not in texts
    assert page["File"] and page["Offset"] > 0
    late = site.client.get(
        "/api/sites/CS1/logs/WSyncMgr.log", params={"at": "2015-01-01T00:00:00Z"}
    ).json()
    assert late["Lines"][-1]["Text"] == "line 39"  # none so late: the end of the log


def test_a_sups_softwaredistribution_log_is_read_with_its_levels(site: Site) -> None:
    sd = SoftwareDistributionLog(site.sup / "logs" / "SoftwareDistribution.log")
    sd.info("CatalogSyncAgent.Sync", "Synchronization started")
    sd.error("CatalogSyncAgentCore.ExecuteSyncProtocol", "WebException: the upstream is down")
    page = site.client.get(f"/api/sites/CS1/logs/{SUP}/SoftwareDistribution.log").json()
    assert [(ln["Component"], ln["Type"]) for ln in page["Lines"]] == [
        ("CatalogSyncAgent.Sync", "info"),
        ("CatalogSyncAgentCore.ExecuteSyncProtocol", "error"),
    ]


@pytest.mark.parametrize(
    "name",
    [
        "Nope.log",
        "../CS1/logs/WSyncMgr.log",
        "%2e%2e/%2e%2e/etc/passwd",
        f"{AWAY}/SoftwareDistribution.log",
    ],
)
def test_only_known_readable_logs_are_read(site: Site, name: str) -> None:
    answer = site.client.get(f"/api/sites/CS1/logs/{name}")
    assert answer.status_code == 404, answer.text
    assert str(site.logs.parent) not in answer.text


def test_reading_needs_a_token_and_limits_are_checked(site: Site) -> None:
    wsyncmgr(site).info("Starting Sync")
    with httpx.Client(base_url=site.url, timeout=30) as anonymous:
        assert anonymous.get("/api/sites/CS1/logs").status_code == 401
        assert anonymous.get("/api/sites/CS1/logs/WSyncMgr.log").status_code == 401
    too_much = site.client.get("/api/sites/CS1/logs/WSyncMgr.log", params={"limit": MAX_LIMIT + 1})
    assert too_much.status_code == 422 and "limit" in too_much.text
    assert (
        site.client.get("/api/sites/CS1/logs/WSyncMgr.log", params={"limit": 0}).status_code == 422
    )
    assert (
        site.client.get("/api/sites/CS1/logs/WSyncMgr.log", params={"file": "../x"}).status_code
        == 422
    )
    assert site.client.get("/api/sites/PS1/logs").status_code == 404
