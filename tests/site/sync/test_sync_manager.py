"""A top-level site's sync, end to end on loopback: the sync manager drives its SUP's update
server, which syncs from a stand-in Microsoft Update; then the site database phase. The site
is the shared top-level site of `tests/support/top_site.py`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from top_site import CRITICAL, SECURITY, SUP, TopLevelSite, top_level_site

from updatesync.logs.cmtrace import parse_rendered, read_cmtrace
from updatesync.logs.status_messages import parse_statmsg
from updatesync.metadata.document import parse_update
from updatesync.metadata.export import write_export
from updatesync.metadata.generator import evolve_catalog
from updatesync.metadata.model import UpdateRevision, category_type_map
from updatesync.roles.serving import BackgroundServer
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.sync.sync_manager import SyncManager
from updatesync.site.watch.alerts import AlertState, AlertType
from updatesync.updateserver.importer import import_export_cabinet


@pytest.fixture
def site(tmp_path: Path) -> Iterator[TopLevelSite]:
    with top_level_site(tmp_path, updates=600, seed=51, log_bias_minutes=480) as top:
        yield top


def _expected_cis(docs: list[UpdateRevision], classes: set[str]) -> dict[str, int]:
    kinds = category_type_map(docs)
    latest: dict[str, UpdateRevision] = {}
    for doc in docs:
        newer = doc.update_id not in latest or doc.revision > latest[doc.update_id].revision
        if doc.update_type in ("Software", "Driver") and newer:
            latest[doc.update_id] = doc
    out = {}
    for uid, doc in latest.items():
        prods, cls = doc.products_and_classifications(kinds)
        if prods and set(cls) & classes:
            out[uid] = doc.revision
    return out


def test_a_top_level_sync_from_sync_now_to_6702(site: TopLevelSite, fixtures_dir: Path) -> None:
    first = site.manager.run("SELF")
    assert first.succeeded, first.error
    docs = [parse_update(r.xml) for r in site.records]
    expected = _expected_cis(docs, {SECURITY, CRITICAL})
    cis = {ci.update_id: ci.revision for ci in site.db.content.configuration_items()}
    assert cis == {uid: rev for uid, rev in expected.items()}
    # Two phases changed something: the content version rose twice.
    assert site.db.content.version() == 2
    messages = [m.message_id for m in reversed(site.db.messages.find(limit=50))]
    assert messages == [6701, 6704, 6705, 6702]

    sup_status = site.db.sups.sync_statuses()
    assert [(s.wsus_server_name, s.wsus_source_server, s.last_sync_state) for s in sup_status] == [
        (SUP, "Microsoft Update", 6702)
    ]
    assert sup_status[0].last_successful_sync_time is not None
    assert sup_status[0].sync_catalog_version == 2

    second = site.manager.run("SELF")
    assert second.succeeded
    assert site.db.content.version() == 2
    assert second.cis_changed == 0

    # The log reads like the article's, line for line (numbers, names and times aside).
    entries = list(read_cmtrace(site.log_path))
    ours = [e.message for e in entries]
    for entry in entries:
        if entry.message.startswith("STATMSG:"):
            stored = parse_statmsg(entry.message)
            assert stored.site_code == "CS1"
    # `Updated N items` says what the updates phase's progress counted (130 and 130 in the
    # article), the second sync's nothing.
    complete = re.compile(r"sync: WSUS synchronizing updates, processed (\d+) out of \1 items")
    counted = [int(m[1]) for m in map(complete.match, ours) if m]
    said = re.compile(r"Updated (\d+) items in SMS database")
    updated = [int(m[1]) for m in map(said.match, ours) if m]
    assert updated == [counted[-1], 0] and counted[-1] > 0
    assert (first.items_updated, second.items_updated) == (counted[-1], 0)
    # `file=` names the sync manager's line that reported, not the reporting helper's.
    assert {e.file.partition(":")[0] for e in entries if e.message.startswith("STATMSG:")} == {
        "sync_manager.py"
    }
    article = fixtures_dir / "logs" / "msdocs-2014-hierarchy" / "CS1-WSyncMgr.rendered.txt"
    skip = ("Sleeping 2 more minutes", "Sending sync notification", "SQL Replication type")
    wanted = [m for m, _c in parse_rendered(article.read_text()) if not m.startswith(skip)]
    position = 0
    for line in wanted:
        pattern = _shape(line)
        while position < len(ours) and not pattern.fullmatch(ours[position]):
            position += 1
        assert position < len(ours), f"missing, in order: {line}"
        position += 1


def _shape(line: str) -> re.Pattern[str]:
    if line.startswith("STATMSG:"):
        ident = re.search(r"ID=(\d+)", line)
        assert ident is not None
        return re.compile(rf"STATMSG: ID={ident.group(1)} .*")
    if line.startswith("Synchronizing update "):
        return re.compile(r"Synchronizing update [0-9a-f-]{36} - .+")
    text = re.escape(line)
    text = re.sub(r"(?i)cs1site\\\.contoso\\\.com", r"\\S+", text)
    text = re.sub(r"\d+", r"\\d+", text)
    return re.compile(text)


def test_a_failed_sync_raises_the_alert_and_keeps_the_site_database(site: TopLevelSite) -> None:
    assert site.manager.run("SELF").succeeded
    before = (site.db.content.ci_count(), site.db.content.version())
    site.db.sups.replace([SoftwareUpdatePoint(SUP, port=9)])  # nothing listens there
    failed = site.manager.run("SELF")
    assert not failed.succeeded
    assert (site.db.content.ci_count(), site.db.content.version()) == before
    last = site.db.messages.find(limit=1)[0]
    assert last.message_id == 6703
    assert last.strings[1]
    alerts = site.db.alerts.find(alert_type=AlertType.SYNC_FAILURE)
    assert [a.state for a in alerts] == [AlertState.RAISED]
    log = [e.message for e in read_cmtrace(site.log_path)]
    # The documented hour plus whole minutes of jitter; the result carries the same delay.
    assert failed.retry_in is not None and 60 <= failed.retry_in / 60 <= 66
    assert log[-1] == f"Sync failed. Will retry in {int(failed.retry_in // 60)} minutes"
    assert any(line.startswith("Sync failed: ") and ". Source: " in line for line in log)


def test_the_retry_of_a_failed_sync_says_so_and_succeeds(site: TopLevelSite) -> None:
    """The retry an hour after a failed sync is logged as a real site server logs it (a
    polling cycle on the retry schedule), not as the file drop of the sync that failed."""
    sups = site.db.sups.find()
    site.db.sups.replace([SoftwareUpdatePoint(SUP, port=9)])  # nothing listens there
    assert not site.manager.run("SELF").succeeded
    failed_lines = len(list(read_cmtrace(site.log_path)))
    site.db.sups.replace(sups)
    retried = site.manager.run("SELF", retry=True)
    assert retried.succeeded, retried.error
    log = [e.message for e in read_cmtrace(site.log_path)][failed_lines:]
    assert log[:4] == [
        "Wakeup for a polling cycle",
        "Starting Sync",
        "Performing sync on retry schedule",
        f"Read SUPs from SCF for {site.manager.settings.site_fqdn.upper()}",
    ]
    assert "Wakeup by inbox drop" not in log


@pytest.fixture
def switchable(tmp_path: Path) -> Iterator[TopLevelSite]:
    """A site whose SUP syncs from an upstream answering garbage (`move_upstream` moves it)."""

    async def garbage(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"<html>not a SOAP answer"})

    with (
        top_level_site(tmp_path, updates=400, seed=52, subscribe=False) as top,
        BackgroundServer(garbage) as bad,
    ):
        top.move_upstream(bad.url)
        yield top


@pytest.mark.parametrize("trouble", ["garbage", "down"])
def test_an_upstream_in_trouble_fails_the_sync_cleanly_and_the_next_one_recovers(
    switchable: TopLevelSite, trouble: str
) -> None:
    manager, db = switchable.manager, switchable.db
    if trouble == "down":
        switchable.move_upstream("http://127.0.0.1:9")
    failed = manager.run("SELF")
    assert not failed.succeeded
    assert (db.content.ci_count(), db.content.version()) == (0, 0)
    last = db.messages.find(limit=1)[0]
    assert last.message_id == 6703
    (sup_status,) = db.sups.sync_statuses()
    assert sup_status.last_sync_state == 6703
    assert sup_status.last_sync_error_code == last.last_error
    assert ("127.0.0.1:9" if trouble == "down" else "SOAP") in last.strings[1]
    assert [a.state for a in db.alerts.find(alert_type=AlertType.SYNC_FAILURE)] == [
        AlertState.RAISED
    ]
    switchable.move_upstream(None)
    assert manager.run("SELF").succeeded
    assert db.content.ci_count() > 0
    assert db.content.version() == 2
    assert [a.state for a in db.alerts.find(alert_type=AlertType.SYNC_FAILURE)] == [
        AlertState.CANCELED
    ]


def _sync_lines(site: TopLevelSite, skip: int) -> tuple[list[str], int]:
    """The `Synchronizing update` ids logged after the first `skip` entries, and the count."""
    entries = [e.message for e in read_cmtrace(site.log_path)]
    found = re.findall(r"^Synchronizing update ([0-9a-f-]{36}) - ", "\n".join(entries[skip:]), re.M)
    return found, len(entries)


def test_a_delta_rewrites_the_changed_cis_only_each_with_its_line(
    site: TopLevelSite, tmp_path: Path
) -> None:
    """Next month's catalog: the CIs whose update changed (a new revision, or now superseded)
    are rewritten, each with one `Synchronizing update` line, and counted; the others keep
    their row as it was (their DateRevised) and get no line; a FULL sync rewrites nothing."""
    first = site.manager.run("SELF")
    assert first.succeeded, first.error
    written, seen = _sync_lines(site, 0)
    assert sorted(written) == sorted(ci.update_id for ci in site.db.content.configuration_items())
    assert first.cis_changed == len(written)
    before = {ci.update_id: ci for ci in site.db.content.configuration_items()}
    version = site.db.content.version()

    write_export(tmp_path / "m2.cab", evolve_catalog(iter(site.records), 80, seed=53))
    import_export_cabinet(site.upstream, tmp_path / "m2.cab")
    second = site.manager.run("SELF")
    assert second.succeeded, second.error
    after = {ci.update_id: ci for ci in site.db.content.configuration_items()}
    changed = {
        uid
        for uid, ci in after.items()
        if uid not in before
        or (before[uid].revision, before[uid].is_superseded) != (ci.revision, ci.is_superseded)
    }
    assert changed, "next month changes some subscribed updates"
    written, seen = _sync_lines(site, seen)
    assert sorted(written) == sorted(changed)
    assert second.cis_changed == len(changed)
    for uid, ci in after.items():
        if uid not in changed:
            assert ci == before[uid], f"CI {uid} did not change, yet was rewritten"
    assert site.db.content.version() == version + 2  # the update server's phase, then the CIs

    full = site.manager.run("FULL")
    assert full.succeeded, full.error
    assert _sync_lines(site, seen)[0] == []
    assert full.cis_changed == 0
    assert {ci.update_id: ci for ci in site.db.content.configuration_items()} == after
    assert site.db.content.version() == version + 2


def test_expired_updates_past_the_cleanup_age_are_deleted_at_the_end_of_a_sync(
    site: TopLevelSite, tmp_path: Path
) -> None:
    """Next month expires some subscribed updates: their CIs are written expired; with the
    default age (7 days) they stay, with an age of 0 the end of the sync deletes them, in
    WSyncMgr's words (`Deleting old expired updates...`, `Deleted N expired updates total`),
    and records the deletions for database replication."""
    assert site.manager.run("SELF").succeeded
    write_export(tmp_path / "m2.cab", evolve_catalog(iter(site.records), 80, seed=53))
    import_export_cabinet(site.upstream, tmp_path / "m2.cab")
    _, seen = _sync_lines(site, 0)
    assert site.manager.run("SELF").succeeded
    expired = sorted(c.update_id for c in site.db.content.configuration_items() if c.is_expired)
    assert expired, "next month expires some subscribed updates"
    kept = [e.message for e in read_cmtrace(site.log_path)][seen:]
    assert kept[-2:] == ["Deleting old expired updates...", "Deleted 0 expired updates total"]

    now = replace(site.manager.settings, updates_cleanup_age=timedelta(0))
    manager = SyncManager(site.db, now, site.manager.log, site.manager.api_for)
    _, seen = _sync_lines(site, 0)
    assert manager.run("SELF").succeeded
    said = [e.message for e in read_cmtrace(site.log_path)][seen:]
    assert said[-3:] == [
        "Deleting old expired updates...",
        f"Deleted {len(expired)} expired updates",
        f"Deleted {len(expired)} expired updates total",
    ]
    left = {c.update_id for c in site.db.content.configuration_items()}
    assert not left & set(expired) and not any(
        c.is_expired for c in site.db.content.configuration_items()
    )
    assert sorted(site.db.expiry.deleted()) == expired
