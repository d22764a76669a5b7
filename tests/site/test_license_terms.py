"""License terms not yet downloaded, end to end on loopback: the stand-in Microsoft Update
serves the catalog's metadata but not its license terms' files at the first sync, so CS1's
update server keeps them pending; the site fails those updates in WSyncMgr's words, creates
no CI for them and ends with 6708. Once Microsoft Update serves the files, the next sync (no
new revision) downloads them, creates those CIs and ends with 6702. The log tracker reads
the two runs from WSyncMgr.log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from top_site import TopLevelSite, top_level_site

from updatesync.logs.cmtrace import read_cmtrace
from updatesync.logs.runs import SyncRun
from updatesync.logs.status_messages import parse_statmsg
from updatesync.logs.tracker import Tracker
from updatesync.metadata.document import parse_update
from updatesync.updateserver.license_terms import add_generated_license_files

# Real WSUS wording (a ConfigMgr WSyncMgr.log line, PatchMyPC's knowledge base, 2024); "~~"
# is how the log shows the message's line break.
FAILED = (
    "Failed to sync update {}. Error: The Microsoft Software License Terms have not been "
    "completely downloaded and~~cannot be accepted. Source: "
    "Microsoft.UpdateServices.Internal.BaseApi.LicenseAgreement.GetById"
)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[TopLevelSite]:
    # Subscribed to everything: the updates with license terms are of several classifications.
    with top_level_site(
        tmp_path, updates=300, seed=51, subscribe=False, license_files=False
    ) as top:
        yield top


def _subscribed_with_terms(site: TopLevelSite) -> tuple[set[str], set[str]]:
    """(every update of the catalog, those naming license terms)."""
    docs = [parse_update(r.xml) for r in site.records]
    updates = [d for d in docs if d.update_type in ("Software", "Driver")]
    return {d.update_id for d in updates}, {d.update_id for d in updates if d.eula_files}


def test_pending_license_terms_end_the_sync_with_6708_and_the_next_sync_completes_them(
    site: TopLevelSite,
) -> None:
    wanted, with_terms = _subscribed_with_terms(site)
    assert with_terms and wanted - with_terms

    first = site.manager.run("SELF")
    assert first.succeeded, first.error
    messages = [m.message_id for m in reversed(site.db.messages.find(limit=50))]
    assert messages == [6701, 6704, 6705, 6708]
    cis = {ci.update_id for ci in site.db.content.configuration_items()}
    assert cis == wanted - with_terms
    status = site.db.sync.status()
    assert status.last_sync_state == 6708
    assert status.last_successful_sync_time is not None
    assert [s.last_sync_state for s in site.db.sups.sync_statuses()] == [6708]

    lines = [e.message for e in read_cmtrace(site.log_path)]
    failed = [line for line in lines if line.startswith("Failed to sync update")]
    assert sorted(failed) == sorted(FAILED.format(uid) for uid in with_terms)
    statmsg = next(parse_statmsg(line) for line in lines if line.startswith("STATMSG: ID=6708"))
    assert statmsg.site_code == "CS1"
    assert "Sync failed" not in "\n".join(lines)

    # The update server says which updates' license terms are pending.
    answer = httpx.get(f"{site.sup_server.url}/api/sync", timeout=30).json()
    assert set(answer["last_result"]["license_terms_pending"]) >= with_terms
    page = httpx.get(f"{site.sup_server.url}/api/updates", timeout=30).json()
    flagged = {i["update_id"] for i in page["items"] if i["license_terms_pending"]}
    assert with_terms <= flagged

    # Microsoft Update serves the files now: the next sync completes them, nothing new came.
    assert add_generated_license_files(site.upstream) > 0
    second = site.manager.run("SELF")
    assert second.succeeded, second.error
    messages = [m.message_id for m in reversed(site.db.messages.find(limit=50))]
    assert messages[4:] == [6701, 6704, 6705, 6702]
    assert {ci.update_id for ci in site.db.content.configuration_items()} == wanted
    lines = [e.message for e in read_cmtrace(site.log_path)]
    after = lines[len(lines) - lines[::-1].index("Starting Sync") :]
    assert not [line for line in after if line.startswith("Failed to sync update")]
    written = {line.split()[2] for line in after if line.startswith("Synchronizing update ")}
    assert written == with_terms
    assert (
        httpx.get(f"{site.sup_server.url}/api/sync", timeout=30).json()["last_result"][
            "license_terms_pending"
        ]
        == []
    )

    # The log tracker: the first run completed with pending license terms, the second did not.
    runs = [r for r in Tracker([site.log_path.parent]).runs() if isinstance(r, SyncRun)]
    assert [(r.result, r.license_terms_pending) for r in runs] == [
        ("success", True),
        ("success", False),
    ]
    failures = runs[0].update_failures
    assert sorted(f.update_id for f in failures) == sorted(with_terms)
    assert {(f.message, f.source) for f in failures} == {
        (
            "The Microsoft Software License Terms have not been completely downloaded "
            "and~~cannot be accepted",
            "Microsoft.UpdateServices.Internal.BaseApi.LicenseAgreement.GetById",
        )
    }
    assert runs[0].to_json()["license_terms_pending"] is True
    assert any("pending license terms downloads" in w for w in runs[0].warnings)
