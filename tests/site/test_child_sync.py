"""The article's hierarchy syncing end to end (SPEC sections 2 and 3): one SyncNow at the CAS
travels down to every primary and secondary site; every role runs in this process on its own
loopback port and talks to the others over signed HTTP only."""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import Databases
from hierarchy_inprocess import (
    SITE_CODES,
    SYNC_TIMEOUT,
    InProcessHierarchy,
    article_patterns,
    assert_in_order,
    forward_to,
)

from updatesync.config import Hierarchy
from updatesync.logs.status_messages import StatusMessage
from updatesync.roles.serving import BackgroundServer
from updatesync.site.database.engine import DATABASE_FILE as SITE_DATABASE_FILE
from updatesync.site.database.models import MICROSOFT_UPDATE, SUPSyncStatus
from updatesync.site.sync.inbox import Inbox
from updatesync.site.sync.outcome import SiteSyncResult
from updatesync.site.watch.alerts import AlertState, AlertType
from updatesync.updateserver.database import DATABASE_FILE as STORE_DATABASE_FILE
from updatesync.vocabulary import MessageSeverity

ARTICLE = Path("logs") / "msdocs-2014-hierarchy"


@dataclass
class FirstSync:
    """The hierarchy after one SyncNow at CS1, and what it showed then."""

    h: InProcessHierarchy
    logs: dict[str, list[str]]
    messages: dict[str, list[StatusMessage]]
    """Per site, its own status messages, oldest first."""
    versions: dict[str, int]
    cis: dict[str, dict[str, tuple[int, str]]]
    revisions: dict[str, set[tuple[str, int]]]
    sup_status: dict[str, dict[str, SUPSyncStatus]]
    ss1_syncs: dict[str, Any]
    """SS1's SMS Provider answer to the long poll that waited for its sync."""
    results: dict[str, list[SiteSyncResult]]


@contextmanager
def _first_sync(root: Path, databases: Databases) -> Iterator[FirstSync]:
    # SQLite: each role's default, a file in its data folder; else a database per role.
    new = None if databases.kind == "sqlite" else lambda name: databases.new(name).url
    with InProcessHierarchy(root, updates=200, database=new) as h:
        h.sync_now("CS1")
        h.wait_all(1, codes=("CS1", "PS1", "PS2"))
        # SS1 followed as a script would: the provider's long poll, no polling loop.
        answer = httpx.get(
            f"{h.url('SS1')}/api/sites/SS1/syncs",
            params={"after": 0, "wait": SYNC_TIMEOUT},
            timeout=SYNC_TIMEOUT + 10,
            verify=h.verify,
            auth=h.signed("CS1"),
        )
        answer.raise_for_status()
        h.wait_idle()
        yield FirstSync(
            h=h,
            logs={code: h.log(code) for code in SITE_CODES},
            messages={
                code: list(reversed(h.db(code).messages.find(site_code=code)))
                for code in SITE_CODES
            },
            versions={code: h.db(code).content.version() for code in SITE_CODES},
            cis={code: h.cis(code) for code in SITE_CODES},
            revisions={fqdn: h.revisions(fqdn) for fqdn in h.sup_fqdns()},
            sup_status={
                code: {s.wsus_server_name: s for s in h.db(code).sups.sync_statuses(site_code=code)}
                for code in SITE_CODES
            },
            ss1_syncs=answer.json(),
            results={code: h.results(code) for code in SITE_CODES},
        )


@pytest.fixture(scope="module")
def first_syncs(
    tmp_path_factory: pytest.TempPathFactory,
    module_databases: Callable[[str], Databases],
) -> Iterator[Callable[[str], FirstSync]]:
    """The hierarchy after its first sync, on every site and SUP's databases of one kind,
    made once per kind for the module's tests."""
    made: dict[str, FirstSync] = {}
    with ExitStack() as stack:

        def of_kind(kind: str) -> FirstSync:
            if kind not in made:
                root = tmp_path_factory.mktemp(f"hierarchy-{kind}")
                made[kind] = stack.enter_context(_first_sync(root, module_databases(kind)))
            return made[kind]

        yield of_kind


@pytest.fixture
def first_sync(database_kind: str, first_syncs: Callable[[str], FirstSync]) -> FirstSync:
    """The hierarchy after one SyncNow at CS1, every site and SUP on SQLite or PostgreSQL."""
    return first_syncs(database_kind)


def test_one_sync_now_at_the_cas_brings_every_site_and_sup_to_the_same_content(
    first_sync: FirstSync, database_kind: str
) -> None:
    # Every site and SUP keeps its database where the hierarchy file says: SQLite files in
    # their data folders, or PostgreSQL (and then no database file at all).
    data = first_sync.h.hierarchy.data_dir
    held = {p.name for p in data.rglob("*.sqlite") if p.is_file()}
    on_files = {SITE_DATABASE_FILE, STORE_DATABASE_FILE} & held
    assert on_files == (
        {SITE_DATABASE_FILE, STORE_DATABASE_FILE} if database_kind == "sqlite" else set()
    )
    for fqdn in first_sync.h.sup_fqdns():  # every update server logs its sync, on either
        assert (data / fqdn / "logs" / "SoftwareDistribution.log").is_file(), fqdn
    assert [first_sync.h.db(code).engine.url.get_backend_name() for code in SITE_CODES] == [
        database_kind
    ] * len(SITE_CODES)
    for code in SITE_CODES:
        (result,) = first_sync.results[code]
        assert result.succeeded, f"{code}: {result.error}"
    # Every site holds the CAS's content version, and claims it only with its CIs.
    top = first_sync.versions["CS1"]
    assert top > 0
    assert first_sync.versions == {code: top for code in SITE_CODES}
    assert len(first_sync.cis["CS1"]) > 0
    for code in ("PS1", "PS2", "SS1"):
        assert first_sync.cis[code] == first_sync.cis["CS1"], code
    # Every update server, default or replica, at every level holds the same revisions.
    held = first_sync.revisions
    assert set(held) == {
        "cs1site.contoso.com",
        "ps1site.contoso.com",
        "ps1sys.contoso.com",
        "ps2site.contoso.com",
        "ss1site.contoso.com",
    }
    assert len(held["cs1site.contoso.com"]) > 0
    for fqdn, revisions in held.items():
        assert revisions == held["cs1site.contoso.com"], fqdn
    # The SMS Provider of SS1 answered the long poll with the finished sync.
    assert first_sync.ss1_syncs["completed"] == 1
    assert first_sync.ss1_syncs["last"]["succeeded"] is True
    assert first_sync.ss1_syncs["last"]["content_version"] == top


def test_the_cas_and_the_primary_write_the_articles_wsyncmgr_lines_in_its_order(
    first_sync: FirstSync, fixtures_dir: Path
) -> None:
    for code in ("CS1", "PS1"):
        article = fixtures_dir / ARTICLE / f"{code}-WSyncMgr.rendered.txt"
        assert_in_order(article_patterns(article), first_sync.logs[code])

    # The primary ends by notifying its secondary through file replication.
    ps1 = first_sync.h.site("PS1")
    inboxes = ps1.site_dir / "inboxes"
    assert first_sync.logs["PS1"][-2:] == [
        "Sending sync notification to child site(s): SS1",
        f"SQL Replication type has not been set for "
        f"{inboxes / 'WSyncMgr.box' / 'outbox' / 'PS1.SYN'}, replicating to (SS1), "
        f"inbox: {inboxes / 'replmgr.box'}",
    ]
    assert os.sep in first_sync.logs["PS1"][-1]


def test_the_update_server_phase_writes_the_100_percent_line_as_wsyncmgr_does(
    first_sync: FirstSync,
) -> None:
    """The article shows `processed 130 out of 130 items (100%)` once (PS1) or twice (CS1)
    per update server sync, never more."""
    for code in ("CS1", "PS1", "PS2"):
        log = first_sync.logs[code]
        start = log.index("sync: Starting WSUS synchronization")
        end = next(i for i, line in enumerate(log) if line.startswith("Done synchronizing WSUS"))
        complete = [line for line in log[start:end] if line.endswith("items (100%)")]
        assert 1 <= len(complete) <= 2, (code, complete)


def test_the_secondary_site_syncs_its_sup_as_a_replica_of_its_parents_default_sup(
    first_sync: FirstSync,
) -> None:
    log = first_sync.logs["SS1"]
    version = first_sync.versions["CS1"]
    expected = (
        "Found parent sync notification file PS1.SYN.",
        "Performing sync on parent request",
        "Synchronizing WSUS server ss1site.contoso.com ...",
        "sync: Starting Replica WSUS synchronization",
        "Done synchronizing WSUS Server ss1site.contoso.com",
        "Sync succeeded. Setting sync alert to canceled state on site SS1",
        f"Successfully synced site with parent PS1, version {version}",
    )
    assert_in_order([re.compile(re.escape(line)) for line in expected], log)
    assert "sync: Starting WSUS synchronization" not in log
    (ss1,) = first_sync.sup_status["SS1"].values()
    assert (ss1.wsus_server_name, ss1.wsus_source_server, ss1.last_sync_state) == (
        "ss1site.contoso.com",
        "ps1site.contoso.com",
        6702,
    )


def test_the_primary_reports_its_sync_and_each_sups_status(first_sync: FirstSync) -> None:
    ids = [m.message_id for m in first_sync.messages["PS1"]]
    assert ids == [6701, 6704, 6706, 6702]
    assert all(m.severity is MessageSeverity.INFORMATION for m in first_sync.messages["PS1"])

    rows = first_sync.sup_status["PS1"]
    assert set(rows) == {"ps1site.contoso.com", "ps1sys.contoso.com"}
    expected_source = {
        "ps1site.contoso.com": "cs1site.contoso.com",  # the parent's default SUP
        "ps1sys.contoso.com": "ps1site.contoso.com",  # a replica of the site's default SUP
    }
    for fqdn, row in rows.items():
        assert row.site_code == "PS1"
        assert row.wsus_source_server == expected_source[fqdn]
        assert row.last_sync_state == 6702
        assert row.last_sync_error_code == 0
        assert row.last_successful_sync_time is not None
        assert row.sync_catalog_version == first_sync.versions["CS1"]
        assert row.replication_link_status == 0
        assert row.last_replication_link_check_time is not None
    # The CAS syncs from (the stand-in) Microsoft Update.
    (cs1,) = first_sync.sup_status["CS1"].values()
    assert cs1.wsus_source_server == "Microsoft Update"
    assert [m.message_id for m in first_sync.messages["CS1"]] == [6701, 6704, 6705, 6702]


def test_a_notification_delivered_twice_runs_one_sync_and_an_unsigned_one_none(
    first_sync: FirstSync,
) -> None:
    h = first_sync.h
    ps1 = h.site("PS1")
    inbox = Inbox(ps1.site_dir / "inboxes" / "WSyncMgr.box")
    before, ss1_before = len(ps1.results), len(h.site("SS1").results)
    url = f"{h.url('PS1')}/site/v1/replication/files/WSyncMgr.box/CS1.SYN"
    params = {"id": uuid.uuid4().hex, "from": "CS1"}

    unsigned = httpx.post(url, params=params, content=b"", verify=h.verify)
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]
    assert inbox.pending() == set()
    assert ps1.server.wait_idle(SYNC_TIMEOUT)
    assert len(ps1.results) == before, _triggers(h, "PS1")

    signed = [
        httpx.post(url, params=params, content=b"", auth=h.signed("CS1"), verify=h.verify)
        for _ in range(2)
    ]
    assert [a.status_code for a in signed] == [200, 200]
    # The unsigned call left no trace: the id is new to the first signed delivery.
    assert [a.json()["duplicate"] for a in signed] == [False, True]
    h.wait("PS1", before + 1)
    assert ps1.server.wait_idle(SYNC_TIMEOUT)
    assert len(ps1.results) == before + 1, _triggers(h, "PS1")
    assert ps1.results[-1].succeeded, ps1.results[-1].error
    log = h.log("PS1")
    assert log.count("Found parent sync notification file CS1.SYN.") == before + 1
    # That one sync notified SS1 once.
    h.wait("SS1", ss1_before + 1)
    h.wait_idle()
    assert len(h.site("SS1").results) == ss1_before + 1


def _triggers(h: InProcessHierarchy, code: str) -> str:
    """What woke each sync of `code` (its WSyncMgr.log's trigger lines), and its file
    replication (replmgr.log), for an assertion's message."""
    log = h.log(code)
    woke = [line for line in log if line.startswith(("Wakeup", "Found", "Performing"))]
    replication = (h.site(code).log_dir / "replmgr.log").read_text(errors="replace")
    return f"{code} woke: {woke}\nreplmgr.log:\n{replication[-3000:]}"


# -- a child whose database replication does not bring the parent's items ----------------------


def _parent_at(port: int, timeout: timedelta) -> Any:
    """The hierarchy as PS1 sees it: its parent CS1's site server at `port`."""

    def view(hierarchy: Hierarchy) -> Hierarchy:
        sites = tuple(
            replace(site, port=port) if site.code == "CS1" else site for site in hierarchy.sites
        )
        return replace(hierarchy, sites=sites, replication_timeout=timeout)

    return view


def test_a_child_never_claims_a_version_its_database_does_not_hold(tmp_path: Path) -> None:
    # PS1 reaches CS1's site server at a port that is bound but not listening: every
    # connection is refused until the parent "comes back" there (a forwarder to CS1).
    parked = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    parked.bind(("127.0.0.1", 0))
    port = parked.getsockname()[1]
    view = _parent_at(port, timedelta(seconds=3))
    # Plain HTTP: the forwarder below passes requests on as they are.
    with InProcessHierarchy(tmp_path, updates=100, views={"site:PS1": view}, tls=False) as h:
        try:
            h.sync_now("CS1")
            h.wait("CS1", 1)
            h.wait("PS1", 1)
            ps1 = h.db("PS1")
            (failed,) = h.results("PS1")
            assert not failed.succeeded
            # Its own SUP synced from CS1's, but without CS1's CIs PS1 claims nothing.
            assert h.revisions("ps1site.contoso.com") == h.revisions("cs1site.contoso.com")
            assert ps1.content.version() == 0
            assert ps1.content.ci_count() == 0
            last = ps1.messages.find(site_code="PS1", limit=1)[0]
            assert last.message_id == 6703
            assert last.severity is MessageSeverity.ERROR
            assert last.strings[0] == "SMS_WSUS_SYNC_MANAGER.WaitForReplication"
            assert last.strings[1].startswith(
                "Database replication from parent site CS1 did not bring its configuration items"
            )
            assert f"127.0.0.1:{port}" in last.strings[1]
            assert ps1.sync.status().last_sync_state == 6703
            # What the console shows for its SUP: the failure, and a broken replication link.
            (row,) = (
                s for s in ps1.sups.sync_statuses() if s.wsus_server_name == "ps1site.contoso.com"
            )
            assert row.last_sync_state == 6703
            assert row.last_sync_error_code
            assert row.replication_link_status in (1, 2)
            raised = ps1.alerts.find(alert_type=AlertType.SYNC_FAILURE, state=AlertState.RAISED)
            assert [a.instance for a in raised] == ["ps1site.contoso.com"]
            log = h.log("PS1")
            assert not any(line.startswith("Successfully synced site with parent") for line in log)
            assert re.fullmatch(r"Sync failed\. Will retry in 6[0-6] minutes", log[-1])
            # A failed site does not pass the notification on to its secondary.
            assert "Sending sync notification to child site(s): SS1" not in log
            assert h.site("PS1").notifier.pending() == {}
            assert h.results("SS1") == []

            # The parent is back at that address; its next notification brings PS1 up.
            parked.listen(16)
            with BackgroundServer(forward_to(h.url("CS1"), h.secret), sock=parked):
                h.sync_now("CS1")
                h.wait("CS1", 2)
                h.wait("PS1", 2)
                recovered = h.results("PS1")[-1]
                assert recovered.succeeded, recovered.error
                version = h.db("CS1").content.version()
                assert ps1.content.version(MICROSOFT_UPDATE) == version == recovered.content_version
                assert h.cis("PS1") == h.cis("CS1")
                log = h.log("PS1")
                assert f"Successfully synced site with parent CS1, version {version}" in log
                alerts = ps1.alerts.find(alert_type=AlertType.SYNC_FAILURE)
                assert [a.state for a in alerts] == [AlertState.CANCELED]
                link = ps1.replication.link("CS1")
                assert link is not None and link.status == 0
                h.wait("SS1", 1)
                assert h.results("SS1")[-1].succeeded
                h.wait_idle()
        finally:
            parked.close()
