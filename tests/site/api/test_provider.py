"""The SMS Provider over real HTTP: SyncNow sets the flag and writes SMSProv.log as ConfigMgr
does, and the tracking views answer what an administrator asks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tokens import bearer, token_for

from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.logs.status_messages import new_status_message, sync_failed
from updatesync.roles.serving import BackgroundServer
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.models import ConfigurationItem, SUPSyncStatus
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alerts import AlertType
from updatesync.vocabulary import PROVIDER, SYNC_DONE, SYNC_FAILED, SYNC_STARTED

T0 = datetime(2014, 1, 16, 18, 53, 52, 608000, tzinfo=UTC)
SYSTEM = "CS1SITE.CONTOSO.COM"


@dataclass
class Provider:
    db: SiteDatabase
    log_path: Path
    client: httpx.Client


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    log_path = tmp_path / "Logs" / "SMSProv.log"
    log = CMTraceLog(log_path, component=PROVIDER, bias_minutes=480)
    with SiteDatabase.open(tmp_path / "cs1", site_code="CS1") as db:
        app = create_provider_app(db, log=log, site_code="CS1")
        headers = bearer(token_for(db))
        with (
            BackgroundServer(app) as server,
            httpx.Client(base_url=server.url, headers=headers) as client,
        ):
            yield Provider(db, log_path, client)


def _provider_lines(path: Path) -> list[tuple[str, str]]:
    return [(e.message, e.component) for e in read_cmtrace(path)]


# -- SyncNow ---------------------------------------------------------------------------------


def test_sync_now_sets_self_and_writes_the_provider_log_line(provider: Provider) -> None:
    answer = provider.client.post("/api/sites/CS1/sync", json={"full": False})

    assert answer.status_code == 202
    assert answer.json()["SiteCode"] == "CS1"
    assert answer.json()["SyncNow"] == "SELF"
    assert answer.json()["SyncNowRequestedAt"] is not None
    assert provider.db.sync.status().sync_now == "SELF"
    assert _provider_lines(provider.log_path) == [
        ("ExecMethodAsync : SMS_SoftwareUpdate::SyncNow", "SMS Provider")
    ]


def test_full_sync_now_sets_full(provider: Provider) -> None:
    answer = provider.client.post("/api/sites/cs1/sync", json={"full": True})

    assert answer.status_code == 202
    assert answer.json()["SyncNow"] == "FULL"
    assert provider.db.sync.take_request() == "FULL"


def test_delta_request_while_a_full_one_is_pending_keeps_it_full(provider: Provider) -> None:
    provider.client.post("/api/sites/CS1/sync", json={"full": True})
    answer = provider.client.post("/api/sites/CS1/sync", json={"full": False})

    assert answer.status_code == 202
    assert answer.json()["SyncNow"] == "FULL"
    status = provider.client.get("/api/sites/CS1/sync-status").json()
    assert status["SyncNow"] == "FULL"
    assert len(_provider_lines(provider.log_path)) == 2


def test_sync_now_of_another_site_is_refused_and_not_logged(provider: Provider) -> None:
    answer = provider.client.post("/api/sites/PS1/sync", json={"full": False})

    assert answer.status_code == 404
    assert "PS1" in answer.json()["detail"]
    assert "CS1" in answer.json()["detail"]
    assert provider.db.sync.status().sync_now is None
    assert not provider.log_path.exists() or _provider_lines(provider.log_path) == []


# -- sync status -----------------------------------------------------------------------------


def test_sync_status_tells_the_last_state_and_what_it_means(provider: Provider) -> None:
    provider.db.sync.record_state(SYNC_STARTED, at=T0)
    running = provider.client.get("/api/sites/CS1/sync-status").json()
    assert running["LastSyncState"] == 6701
    assert running["LastSyncStateDescription"] == "WSUS Synchronization started."
    assert running["InProgress"] is True

    provider.db.sync.record_state(
        SYNC_FAILED,
        at=T0 + timedelta(minutes=4),
        error_code=0x8013150A,
        error_text="Request for principal permission failed",
    )
    failed = provider.client.get("/api/sites/CS1/sync-status").json()
    assert failed["LastSyncStateDescription"] == "WSUS Synchronization failed."
    assert failed["InProgress"] is False
    assert failed["LastErrorCode"] == 0x8013150A
    assert failed["LastErrorText"] == "Request for principal permission failed"
    assert datetime.fromisoformat(failed["LastSyncStateTime"]) == T0 + timedelta(minutes=4)
    assert failed["LastSuccessfulSyncTime"] is None


def test_sup_sync_status_uses_the_configmgr_field_names(provider: Provider) -> None:
    provider.db.sups.set_sync_status(
        SUPSyncStatus(
            "CS1",
            SYSTEM,
            "Microsoft Update",
            last_sync_state=SYNC_DONE,
            last_sync_state_time=T0,
            last_successful_sync_time=T0,
            sync_catalog_version=34,
            last_replication_link_check_time=T0,
        )
    )
    provider.db.sups.set_sync_status(
        SUPSyncStatus("PS1", "PS1SITE.CONTOSO.COM", SYSTEM, replication_link_status=2)
    )

    rows = provider.client.get("/api/sites/CS1/sup-sync-status").json()
    assert len(rows) == 1
    assert set(rows[0]) == {
        "SiteCode",
        "WSUSServerName",
        "WSUSSourceServer",
        "LastSyncState",
        "LastSyncStateTime",
        "LastSyncErrorCode",
        "LastSuccessfulSyncTime",
        "SyncCatalogVersion",
        "ReplicationLinkStatus",
        "LastReplicationLinkCheckTime",
        "ContentAudit",
        "ContentAuditTime",
        "ContentAuditUpstream",
        "ContentAuditDetail",
        "AsOf",
        "ReceivedAt",
        "Stale",
    }
    assert (rows[0]["AsOf"], rows[0]["ReceivedAt"], rows[0]["Stale"]) == (None, None, None)
    assert rows[0]["ContentAudit"] is None  # never checked
    assert rows[0]["WSUSServerName"] == SYSTEM
    assert rows[0]["WSUSSourceServer"] == "Microsoft Update"
    assert rows[0]["LastSyncState"] == 6702
    assert rows[0]["SyncCatalogVersion"] == 34
    # A row of another site in this site's own table is not that site's status: the sites
    # below answer from the site data replicated up (test_hierarchy_provider.py).
    unknown = provider.client.get("/api/sites/XX9/sup-sync-status")
    assert unknown.status_code == 404
    assert "holds no SUP sync status of site XX9" in unknown.json()["detail"]


# -- status messages and alerts ------------------------------------------------------------


@pytest.fixture
def messages(provider: Provider) -> Provider:
    for minutes, message_id, site in (
        (0, SYNC_STARTED, "CS1"),
        (4, SYNC_DONE, "CS1"),
        (6, SYNC_STARTED, "PS1"),
    ):
        provider.db.messages.add(
            new_status_message(
                message_id, site_code=site, system=SYSTEM, time=T0 + timedelta(minutes=minutes)
            )
        )
    provider.db.messages.add(
        sync_failed(
            site_code="CS1",
            system=SYSTEM,
            where="Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer",
            what="Request for principal permission failed",
            last_error=0x8013150A,
            time=T0 + timedelta(hours=1),
        )
    )
    return provider


def _ids(answer: httpx.Response) -> list[tuple[int, str]]:
    assert answer.status_code == 200, answer.text
    return [(m["MessageID"], m["SiteCode"]) for m in answer.json()["value"]]


def test_status_messages_newest_first_with_their_console_text(messages: Provider) -> None:
    page = messages.client.get("/api/status-messages").json()
    assert (page["count"], page["next"]) == (4, None)
    got = page["value"]
    assert [m["RecordID"] for m in got] == sorted((m["RecordID"] for m in got), reverse=True)
    assert [(m["MessageID"], m["SiteCode"]) for m in got] == [
        (6703, "CS1"),
        (6701, "PS1"),
        (6702, "CS1"),
        (6701, "CS1"),
    ]
    failure = got[0]
    assert failure["Severity"] == "E"
    assert failure["Component"] == "SMS_WSUS_SYNC_MANAGER"
    assert failure["MachineName"] == SYSTEM
    assert failure["LastError"] == 0x8013150A
    assert failure["InsertionStrings"][1] == "Request for principal permission failed"
    assert len(failure["InsertionStrings"]) == 10
    assert failure["Description"].startswith("WSUS Synchronization failed.")
    assert "Request for principal permission failed" in failure["Description"]
    assert got[2]["Description"] == "WSUS Synchronization done."


def test_status_messages_filters(messages: Provider) -> None:
    get = messages.client.get
    assert _ids(get("/api/status-messages", params={"site": "ps1"})) == [(6701, "PS1")]
    assert _ids(get("/api/status-messages", params=[("id", 6702), ("id", 6703)])) == [
        (6703, "CS1"),
        (6702, "CS1"),
    ]
    assert _ids(get("/api/status-messages", params={"severity": "E"})) == [(6703, "CS1")]
    assert _ids(get("/api/status-messages", params={"component": "SMS_PROVIDER"})) == []
    window = {
        "since": (T0 + timedelta(minutes=4)).isoformat(),
        "until": (T0 + timedelta(hours=1)).isoformat(),
    }
    assert _ids(get("/api/status-messages", params=window)) == [(6701, "PS1"), (6702, "CS1")]
    assert _ids(get("/api/status-messages", params={"limit": 1})) == [(6703, "CS1")]


def test_bad_status_message_filters_say_what_is_wrong(messages: Provider) -> None:
    get = messages.client.get
    assert get("/api/status-messages", params={"severity": "X"}).status_code == 422
    naive = get("/api/status-messages", params={"since": "2014-01-16T18:00:00"})
    assert naive.status_code == 422
    assert "since" in naive.json()["detail"]
    assert "time zone" in naive.json()["detail"]


def test_alerts_by_state_and_site(provider: Provider) -> None:
    db = provider.db
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, SYSTEM, at=T0)
    db.alerts.cancel_alert(AlertType.SYNC_FAILURE, at=T0 + timedelta(hours=1))
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "CS1SYS.CONTOSO.COM", at=T0 + timedelta(hours=2))
    db.alerts.raise_alert(
        AlertType.SYNC_FAILURE,
        "PS1SITE.CONTOSO.COM",
        site_code="PS1",
        at=T0 + timedelta(minutes=30),
    )

    every = provider.client.get("/api/alerts").json()
    assert [(a["Instance"], a["State"]) for a in every] == [
        ("CS1SYS.CONTOSO.COM", "raised"),
        ("PS1SITE.CONTOSO.COM", "raised"),
        (SYSTEM, "canceled"),
    ]
    assert every[0]["Name"] == (
        "Synchronization failure alert for software update point: CS1SYS.CONTOSO.COM"
    )
    assert every[2]["CanceledAt"] is not None
    raised_cs1 = provider.client.get("/api/alerts", params={"state": "raised", "site": "CS1"})
    assert [a["Instance"] for a in raised_cs1.json()] == ["CS1SYS.CONTOSO.COM"]
    assert provider.client.get("/api/alerts", params={"state": "lost"}).status_code == 422


def test_a_sync_failure_alert_says_why_from_its_6703(provider: Provider) -> None:
    """Issue 15: an alert says why it was raised: the error text and source of the 6703
    that reported the failure, the replica's own for a replica's alert."""
    db = provider.db
    source = "SMS_WSUS_SYNC_MANAGER.SyncWsusServer"
    for minutes, what in (
        (0, "No connection could be made because the target machine actively refused it"),
        (1, "Replica WSUS server CS1REP.CONTOSO.COM: The operation has timed out"),
    ):
        at = T0 + timedelta(minutes=minutes)
        db.messages.add(
            sync_failed(
                site_code="CS1", system=SYSTEM, where=source, what=what, last_error=1, time=at
            )
        )
        instance = SYSTEM if minutes == 0 else "CS1REP.CONTOSO.COM"
        db.alerts.raise_alert(AlertType.SYNC_FAILURE, instance, at=at + timedelta(seconds=1))
    db.alerts.raise_alert(AlertType.SYNC_OVERDUE, "CS1", at=T0 + timedelta(hours=1))

    found = {a["Instance"]: a for a in provider.client.get("/api/alerts").json()}
    site_alert, replica_alert = found[SYSTEM], found["CS1REP.CONTOSO.COM"]
    assert site_alert["Cause"] == (
        "No connection could be made because the target machine actively refused it"
    )
    assert site_alert["CauseSource"] == source
    assert datetime.fromisoformat(site_alert["CauseTime"]) == T0
    assert replica_alert["Cause"] == (
        "Replica WSUS server CS1REP.CONTOSO.COM: The operation has timed out"
    )
    assert (found["CS1"]["Cause"], found["CS1"]["CauseSource"]) == (None, None)


# -- content -----------------------------------------------------------------------------------


def _ci(n: int) -> ConfigurationItem:
    return ConfigurationItem(
        update_id=f"af5eb87e-cdd6-40bf-984f-{n:012x}",
        revision=100 + n,
        title=f"Definition Update for Microsoft Endpoint Protection - KB{2461484 + n}",
        xml_sha256=f"{n:064x}",
        kb_article=str(2461484 + n),
    )


def test_configuration_items_come_in_pages_with_the_count(provider: Provider) -> None:
    provider.db.content.apply_ci_batch([_ci(n) for n in range(7)])
    get = provider.client.get

    first = get("/api/sites/CS1/cis", params={"limit": 3}).json()
    second = get("/api/sites/CS1/cis", params={"offset": 3, "limit": 3}).json()
    last = get("/api/sites/CS1/cis", params={"offset": 6, "limit": 3}).json()
    beyond = get("/api/sites/CS1/cis", params={"offset": 10}).json()

    assert [p["Count"] for p in (first, second, last, beyond)] == [7, 7, 7, 7]
    titles = [ci["LocalizedDisplayName"] for p in (first, second, last) for ci in p["Items"]]
    assert titles == [_ci(n).title for n in range(7)]
    assert [len(p["Items"]) for p in (first, second, last, beyond)] == [3, 3, 1, 0]
    assert first["Items"][0]["CI_UniqueID"] == _ci(0).update_id
    assert first["Items"][0]["ArticleID"] == "2461484"
    assert get("/api/sites/CS1/cis", params={"limit": 0}).status_code == 422


def test_content_version_rises_with_a_sync_that_changes_something(provider: Provider) -> None:
    before = provider.client.get("/api/sites/CS1/content-version").json()
    provider.db.content.apply_ci_batch([_ci(1)])
    after = provider.client.get("/api/sites/CS1/content-version").json()

    assert before["UpdateSourceID"] == "{C2D17964-BBDD-4339-B9F3-12D7205B39CC}"
    assert after["ContentVersion"] == before["ContentVersion"] + 1
    unknown = provider.client.get(
        "/api/sites/CS1/content-version", params={"source": "{00000000-0000-0000-0000-0000}"}
    )
    assert unknown.status_code == 404
    assert "not registered" in unknown.json()["detail"]


@pytest.mark.parametrize("path", ["sync-status", "cis", "content-version"])
def test_an_unknown_site_is_404_with_a_clear_message(provider: Provider, path: str) -> None:
    answer = provider.client.get(f"/api/sites/PS9/{path}")

    assert answer.status_code == 404
    assert answer.json()["detail"].startswith("site PS9 is not served by this SMS Provider")


# -- the OpenAPI document ----------------------------------------------------------------------


def test_openapi_documents_every_route(provider: Provider) -> None:
    document = provider.client.get("/openapi.json").json()
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }

    assert set(operations) == {
        ("POST", "/api/sites/{site}/sync"),
        ("GET", "/api/sites/{site}/sync-status"),
        ("GET", "/api/sites"),
        ("GET", "/api/sites/{site}/syncs"),
        ("GET", "/api/sites/{site}/syncs/{number}"),
        ("GET", "/api/sites/{site}/sup-sync-status"),
        ("GET", "/api/sites/{site}/logs"),
        ("GET", "/api/sites/{site}/logs/{name}"),
        ("GET", "/api/status-messages"),
        ("GET", "/api/alerts"),
        ("GET", "/api/sites/{site}/cis"),
        ("GET", "/api/sites/{site}/content-version"),
        ("GET", "/api/sites/{site}/subscription"),
        ("PUT", "/api/sites/{site}/subscription"),
        ("POST", "/api/users"),
        ("GET", "/api/users"),
        ("DELETE", "/api/users/{name}"),
        ("PUT", "/api/users/{name}/password"),
        ("POST", "/api/tokens"),
        ("GET", "/api/tokens"),
        ("DELETE", "/api/tokens/{token_id}"),
        ("POST", "/api/sessions"),
        ("DELETE", "/api/sessions/current"),
        ("GET", "/api/whoami"),
    }
    for key, operation in operations.items():
        assert operation.get("summary"), key
        assert operation.get("description"), key
        if key == ("DELETE", "/api/sessions/current"):
            continue  # 204, no body
        ok = next(
            operation["responses"][c] for c in ("200", "201", "202") if c in operation["responses"]
        )
        assert ok["content"]["application/json"]["schema"], key
    assert "SyncNow" in document["info"]["description"]
    sup_fields = document["components"]["schemas"]["SUPSyncStatusView"]["properties"]
    assert all(field.get("description") for field in sup_fields.values())


# -- status message pages ----------------------------------------------------------------------


def _add(db: SiteDatabase, count: int, *, site: str = "CS1", start: int = 0) -> None:
    for n in range(start, start + count):
        db.messages.add(
            new_status_message(
                SYNC_DONE if n % 2 else SYNC_STARTED,
                site_code=site,
                system=SYSTEM,
                time=T0 + timedelta(seconds=n),
            )
        )


def _follow(client: httpx.Client, params: dict[str, object]) -> list[dict[str, object]]:
    """Every page from the first, following `next` as it is given."""
    answer = client.get("/api/status-messages", params=params)
    pages = []
    while True:
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        if pages[-1]["next"] is None:
            return pages
        answer = client.get(pages[-1]["next"])


def test_paging_returns_every_message_once_in_record_order(provider: Provider) -> None:
    _add(provider.db, 25)

    pages = _follow(provider.client, {"limit": 10})

    assert [len(p["value"]) for p in pages] == [10, 10, 5]
    assert {p["count"] for p in pages} == {25}
    records = [m["RecordID"] for p in pages for m in p["value"]]
    assert records == sorted(set(records), reverse=True) and len(records) == 25
    oldest = _follow(provider.client, {"limit": 10, "order": "oldest"})
    assert [m["RecordID"] for p in oldest for m in p["value"]] == list(reversed(records))


def test_messages_arriving_between_pages_are_neither_skipped_nor_repeated(
    provider: Provider,
) -> None:
    _add(provider.db, 12)
    first = provider.client.get("/api/status-messages", params={"limit": 5}).json()
    forward = provider.client.get(
        "/api/status-messages", params={"limit": 5, "order": "oldest"}
    ).json()
    _add(provider.db, 3, start=100)  # arrive while both are being paged

    rest = [m for p in _follow(provider.client, {}) for m in p["value"]]  # sanity: 15 now
    assert len(rest) == 15
    older = []
    answer = provider.client.get(first["next"])
    while True:
        older += answer.json()["value"]
        if answer.json()["next"] is None:
            break
        answer = provider.client.get(answer.json()["next"])
    newest_first = [m["RecordID"] for m in first["value"] + older]
    assert len(newest_first) == len(set(newest_first)) == 12  # the 12 it started over
    assert newest_first == sorted(newest_first, reverse=True)

    later = []
    answer = provider.client.get(forward["next"])
    while True:
        later += answer.json()["value"]
        if answer.json()["next"] is None:
            break
        answer = provider.client.get(answer.json()["next"])
    oldest_first = [m["RecordID"] for m in forward["value"] + later]
    assert len(oldest_first) == len(set(oldest_first)) == 15  # the new ones come last
    assert oldest_first == sorted(oldest_first)
    assert [m["Time"] for m in later[-3:]] == [
        (T0 + timedelta(seconds=n)).isoformat().replace("+00:00", "Z") for n in (100, 101, 102)
    ]


def test_pages_keep_the_filters_and_count_what_matches(provider: Provider) -> None:
    _add(provider.db, 9, site="CS1")
    _add(provider.db, 7, site="PS1", start=50)

    pages = _follow(provider.client, {"site": "PS1", "limit": 3, "id": SYNC_STARTED})

    assert {p["count"] for p in pages} == {4}  # 50, 52, 54, 56
    got = [(m["SiteCode"], m["MessageID"]) for p in pages for m in p["value"]]
    assert got == [("PS1", SYNC_STARTED)] * 4
    assert "site=PS1" in pages[0]["next"] and f"id={SYNC_STARTED}" in pages[0]["next"]


def test_a_bad_cursor_is_refused_naming_it(provider: Provider) -> None:
    _add(provider.db, 3)
    garbled = provider.client.get("/api/status-messages", params={"cursor": "not a cursor!"})
    assert garbled.status_code == 400
    assert "cursor=" in garbled.json()["detail"]

    first = provider.client.get("/api/status-messages", params={"limit": 1}).json()
    mark = httpx.URL(first["next"]).params["cursor"]
    crossed = provider.client.get(
        "/api/status-messages", params={"cursor": mark, "order": "oldest"}
    )
    assert crossed.status_code == 400
    assert "order=oldest" in crossed.json()["detail"]
