"""The hierarchy-wide SMS Provider: after the article's hierarchy syncs, the central
administration site's provider answers for every site below it (PS1, and SS1 through PS1)
from the site data its children replicated up to it, with how fresh it is; a child that stops
answering leaves its last data there, marked stale. On SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import Databases
from hierarchy_inprocess import SYNC_TIMEOUT, InProcessHierarchy

from updatesync.logs.cmtrace import read_cmtrace
from updatesync.site.replication.site_data import SiteDataError
from updatesync.vocabulary import REPLICATION_MANAGER_LOG, SYNC_DONE

FRESHNESS = ("AsOf", "ReceivedAt", "Stale")
MESSAGE_HERE = ("RecordID", "ReceivedAt")
"""What differs between a message at its site and its replicated copy: where it is stored."""


@pytest.fixture
def synced(tmp_path: Path, databases: Databases) -> Iterator[InProcessHierarchy]:
    new = None if databases.kind == "sqlite" else lambda name: databases.new(name).url
    with InProcessHierarchy(tmp_path, updates=60, database=new) as h:
        h.sync_now("CS1")
        h.wait_all(1)
        h.wait_idle()
        yield h


def _get(h: InProcessHierarchy, at: str, path: str, **params: Any) -> Any:
    answer = httpx.get(
        h.url(at) + path, params=params, headers=h.admin(), verify=h.verify, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _without(item: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in keys}


def _picture(h: InProcessHierarchy, at: str, code: str) -> dict[str, Any]:
    """What the provider of `at` says of site `code`: sync status, SUP rows, messages."""
    messages = _get(h, at, "/api/status-messages", site=code, limit=1000)["value"]
    return {
        "sync": _get(h, at, f"/api/sites/{code}/sync-status"),
        "sups": _get(h, at, f"/api/sites/{code}/sup-sync-status"),
        "messages": [_without(m, MESSAGE_HERE) for m in messages],
    }


def _same(own: dict[str, Any], replicated: dict[str, Any]) -> bool:
    """The same values, but for the freshness fields (null in a site's own answers)."""
    assert {own["sync"][k] for k in FRESHNESS} == {None}
    return (
        _without(replicated["sync"], FRESHNESS) == _without(own["sync"], FRESHNESS)
        and [_without(r, FRESHNESS) for r in replicated["sups"]]
        == [_without(r, FRESHNESS) for r in own["sups"]]
        and replicated["messages"] == own["messages"]
    )


def _pull_up(h: InProcessHierarchy) -> None:
    """SS1's site data up to PS1, then PS1's (with SS1's) up to CS1, now."""
    ps1, cs1 = h.site("PS1").site_data, h.site("CS1").site_data
    assert ps1 is not None and cs1 is not None
    ps1.pull("SS1")
    cs1.pull("PS1")


def test_the_cas_answers_for_its_primary_and_secondary_as_their_own_providers_do(
    synced: InProcessHierarchy,
) -> None:
    h = synced
    # The child told its parent after its sync: CS1 pulled PS1's 6702 without being asked.
    cs1 = h.site("CS1").site_data
    assert cs1 is not None
    assert cs1.wait(
        lambda: any(m.message_id == SYNC_DONE for m in h.db("CS1").messages.find(site_code="PS1")),
        SYNC_TIMEOUT,
    )

    for code in ("PS1", "SS1"):
        own = _picture(h, code, code)
        _pull_up(h)
        at_cas = _picture(h, "CS1", code)
        # A replication link check at the site between the two reads changes its SUP rows'
        # check time: the CAS then holds what the site says a moment later.
        assert _same(own, at_cas) or _same(_picture(h, code, code), at_cas), code
        assert at_cas["sync"]["LastSyncState"] == SYNC_DONE
        assert at_cas["sync"]["Stale"] is False
        assert at_cas["sync"]["AsOf"] is not None and at_cas["sync"]["ReceivedAt"] is not None
        assert {r["Stale"] for r in at_cas["sups"]} == {False}
        assert len(at_cas["messages"]) >= 3  # 6701, 6704, 6702 at least

    sites = {s["SiteCode"]: s for s in _get(h, "CS1", "/api/sites")}
    assert sites["CS1"]["Data"] == "own" and sites["CS1"]["AsOf"] is None
    assert (sites["PS1"]["Data"], sites["PS1"]["Via"]) == ("replicated", "PS1")
    assert (sites["SS1"]["Data"], sites["SS1"]["Via"]) == ("replicated", "PS1")
    assert (sites["PS2"]["Data"], sites["PS2"]["Via"]) == ("replicated", "PS2")
    # Unfiltered, the CAS's messages are those of the whole hierarchy.
    everywhere = _get(h, "CS1", "/api/status-messages", limit=1000)
    assert {m["SiteCode"] for m in everywhere["value"]} >= {"CS1", "PS1", "PS2", "SS1"}
    # A primary answers for its secondary too, but not for its parent.
    assert _get(h, "PS1", "/api/sites/SS1/sync-status")["LastSyncState"] == SYNC_DONE
    up = httpx.get(h.url("PS1") + "/api/sites/CS1/sync-status", headers=h.admin(), verify=h.verify)
    assert up.status_code == 404 and "holds no sync status of site CS1" in up.json()["detail"]


def test_a_child_that_stops_answering_leaves_its_data_marked_stale(
    synced: InProcessHierarchy,
) -> None:
    h = synced
    _pull_up(h)
    before = _picture(h, "CS1", "PS1")
    assert before["sync"]["Stale"] is False

    h.stop_role("site:PS1")
    cs1 = h.site("CS1").site_data
    assert cs1 is not None
    with pytest.raises(SiteDataError, match="child site PS1"):
        cs1.pull("PS1")

    after = _picture(h, "CS1", "PS1")
    assert _without(after["sync"], FRESHNESS) == _without(before["sync"], FRESHNESS)
    assert after["sync"]["AsOf"] == before["sync"]["AsOf"]
    assert after["sync"]["Stale"] is True
    assert {r["Stale"] for r in after["sups"]} == {True}
    assert after["messages"] == before["messages"]
    ss1 = _get(h, "CS1", "/api/sites/SS1/sync-status")
    assert ss1["LastSyncState"] == SYNC_DONE and ss1["Stale"] is True
    sites = {s["SiteCode"]: s for s in _get(h, "CS1", "/api/sites")}
    assert sites["PS1"]["Stale"] is True and "cannot reach it" in sites["PS1"]["LastError"]
    assert sites["PS2"]["Stale"] is False

    log = read_cmtrace(h.hierarchy.data_dir / "CS1" / "logs" / REPLICATION_MANAGER_LOG)
    failed = [e.message for e in log if "Site data replication from child site PS1" in e.message]
    assert failed and "Keeping the site data last received from PS1 at" in failed[-1]
    assert "Traceback" not in failed[-1]
