"""The sync tracker on real logs and on the logs updatesync writes.

- Microsoft's article (`logs/msdocs-2014-hierarchy/`, copied form): the CS1 run and the PS1
  run, with the times of their status messages and the counts of their phases.
- Real failures (`logs/patchmypc-2024-failures/`): the cause, the code and the retry.
- The demo hierarchy: what the tracker reads in the logs is what the site databases record
  (status messages 6701…6702, content version), with the trigger and the children the
  hierarchy file gives.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from updatesync.cli.logs import logs_app
from updatesync.config import load_hierarchy
from updatesync.demo import example_hierarchy, run_demo
from updatesync.logs.tracker import ConfigurationRun, SyncRun, track_paths
from updatesync.site.database.site_db import SiteDatabase
from updatesync.vocabulary import SYNC_DONE, SYNC_FAILED, SYNC_STARTED

MSDOCS = "logs/msdocs-2014-hierarchy"
PATCHMYPC = "logs/patchmypc-2024-failures"


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_article_hierarchy_cs1_and_ps1_runs(fixtures_dir: Path) -> None:
    result = CliRunner().invoke(logs_app, ["track", str(fixtures_dir / MSDOCS), "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)
    assert [(r["site"], r["result"]) for r in runs] == [("CS1", "success"), ("PS1", "success")]
    cs1, ps1 = runs

    assert (cs1["trigger"], cs1["parent"], cs1["server"]) == ("local", None, "cs1site.contoso.com")
    assert cs1["started"] == "2014-01-16T18:53:52.608Z"  # 6701
    assert cs1["ended"] == "2014-01-16T18:57:46.304Z"  # 6702
    assert cs1["duration_s"] == 233.696  # the log says "Sync time: 0d00h03m53s"
    assert cs1["content_versions"] == [33, 34]
    assert cs1["children"] == ["PS1", "PS2"]
    assert cs1["error"] is None and cs1["next_retry"] is None
    phases = {p["name"]: p for p in cs1["phases"]}
    assert list(phases) == ["update_server", "site_database_categories", "site_database_updates"]
    wsus = phases["update_server"]
    assert (wsus["status_message"], wsus["items_done"], wsus["items_total"]) == (6704, 130, 130)
    assert wsus["started"] == "2014-01-16T18:53:53.698Z"
    assert wsus["ended"] is None  # the copied form has no time for "Done synchronizing"
    # the update server's own log: manual sync 18:53:54.231, event 384 at 18:55:05.166
    assert wsus["update_server_log"]["started"] == "2014-01-16T18:53:54.231Z"
    assert wsus["update_server_log"]["ended"] == "2014-01-16T18:55:05.166Z"
    assert wsus["update_server_log"]["result"] == "succeeded"
    categories = phases["site_database_categories"]
    assert (categories["status_message"], categories["items_done"]) == (6705, 223)
    assert categories["started"] == "2014-01-16T18:57:09.156Z"
    updates = phases["site_database_updates"]
    assert (updates["items_done"], updates["items_total"]) == (5, 5)

    assert (ps1["trigger"], ps1["parent"]) == ("parent", "CS1")
    assert ps1["started"] == "2014-01-16T18:58:37.599Z"
    assert ps1["ended"] == "2014-01-16T19:01:35.117Z"
    assert ps1["content_versions"] == [34]
    assert ps1["replicas"] == [
        {"server": "ps1sys.contoso.com", "items": 4, "status": "done", "error": None}
    ]
    assert ps1["children"] == ["SS1"]
    assert [p["name"] for p in ps1["phases"]] == ["update_server", "replica"]
    assert ps1["phases"][0]["items_done"] == 130


def test_article_hierarchy_as_text(fixtures_dir: Path) -> None:
    result = CliRunner().invoke(logs_app, ["track", str(fixtures_dir / MSDOCS)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "CS1 cs1site.contoso.com · local request · success" in out
    assert "2014-01-16 18:53:52.608 → 18:57:46.304 UTC (3m53.7s)" in out
    assert "content version 33 → 34" in out
    assert "notified PS1, PS2" in out
    assert "PS1 ps1site.contoso.com · parent request from CS1 · success" in out
    assert "replica ps1sys.contoso.com: 4 items, done" in out
    assert "notified SS1" in out


def test_real_failures_name_cause_code_and_retry(fixtures_dir: Path) -> None:
    runs = track_paths([fixtures_dir / PATCHMYPC])
    assert [r.result for r in runs] == ["failed", "failed"]
    permission, timeout = runs
    assert (permission.site, permission.server) == ("CHQ", "cm1.corp.contoso.com")
    assert permission.error is not None
    assert permission.error.message == "Request for principal permission failed"
    assert (
        permission.error.source
        == "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer"
    )
    assert permission.error.code == 0x8013150A
    assert permission.ended == _utc(2024, 8, 2, 20, 54, 26, 571_000)
    assert permission.retry_after_minutes == 60
    assert permission.next_retry == permission.ended + timedelta(minutes=60)

    assert timeout.error is not None
    assert timeout.error.message == "The operation has timed out"
    assert timeout.error.source == (
        "Microsoft.UpdateServices.Internal.DatabaseAccess.ApiRemotingCompressionProxy."
        "GetWebResponse"
    )
    assert timeout.retry_after_minutes == 60
    assert timeout.ended is None and timeout.next_retry is None  # no time in those two lines

    result = CliRunner().invoke(logs_app, ["track", str(fixtures_dir / PATCHMYPC), "--json"])
    assert result.exit_code == 1, result.output  # the latest run of CHQ (and of the excerpt) failed
    first = json.loads(result.output)[0]
    assert first["error"] == {
        "source": "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer",
        "message": "Request for principal permission failed",
        "code": "0x8013150a",
    }
    assert first["next_retry"] == "2024-08-02T21:54:26.571Z"
    shown = CliRunner().invoke(logs_app, ["track", str(fixtures_dir / PATCHMYPC), "--no-fail"])
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "error: Request for principal permission failed (0x8013150a)" in text
    assert "next retry: 2024-08-02 21:54:26.571 UTC (60 minutes after the failure)" in text
    assert "error: The operation has timed out" in text


def test_both_fixture_folders_at_once(fixtures_dir: Path) -> None:
    runs = track_paths([fixtures_dir / "logs"])
    assert [(r.site, r.result) for r in runs] == [
        ("CS1", "success"),
        ("PS1", "success"),
        ("CHQ", "failed"),
        (None, "failed"),
    ]


def test_demo_logs_give_the_runs_the_site_databases_record(tmp_path: Path) -> None:
    out = io.StringIO()
    ok = run_demo(
        tmp_path,
        updates=200,
        hierarchy_file=None,
        console=Console(file=out, width=120),
        top_port=0,
    )
    assert ok, out.getvalue()
    root = tmp_path / "hierarchy"
    hierarchy = load_hierarchy(example_hierarchy())
    everything = track_paths([root])
    assert {r.result for r in everything} == {"success"}
    runs = [r for r in everything if isinstance(r, SyncRun)]
    for site in hierarchy.walk():
        code = site.code
        mine = [r for r in runs if r.site == code]
        # WCM.log: the site's configuration runs, the first before its first sync (a new
        # site's SUPs are a site control change), each connected to the site's SUPs and,
        # once it set the subscription, naming it
        configured = [r for r in everything if isinstance(r, ConfigurationRun) and r.site == code]
        assert configured and configured[0].trigger == "scf", code
        assert configured[0].state_name == "WSUS_CONFIG_SUCCESS", code
        assert {s.server for s in configured[0].servers} == {s.fqdn.lower() for s in site.sups}
        assert all(s.connected for s in configured[0].servers), code
        set_once = [r for r in configured if r.subscriptions]
        assert set_once and {c["kind"] for c in set_once[0].subscriptions or []} == {
            "Product",
            "UpdateClassification",
        }, code
        assert mine and configured[0].first_time is not None and mine[0].started is not None
        assert configured[0].first_time <= mine[0].started, code
        with SiteDatabase.open(root / code) as db:
            messages = list(reversed(db.messages.find(site_code=code)))
            version = db.content.version()
        sequences: list[list[tuple[int, datetime]]] = []
        for message in messages:
            if message.message_id == SYNC_STARTED:
                sequences.append([])
            sequences[-1].append((message.message_id, message.time))
        assert len(mine) == len(sequences) == 2, code
        for run, sequence in zip(mine, sequences, strict=True):
            ids = [i for i, _ in sequence]
            assert run.started == sequence[0][1], code
            end = next((i, t) for i, t in reversed(sequence) if i in (SYNC_DONE, SYNC_FAILED))
            assert run.result == ("success" if end[0] == SYNC_DONE else "failed"), code
            assert run.ended == end[1], code
            assert {p.status_message for p in run.phases if p.status_message} <= set(ids)
            parent = hierarchy.parent(code)
            if parent is None:
                assert (run.trigger, run.parent) == ("local", None)
                assert run.requested is not None and run.requested <= run.started
            else:
                assert (run.trigger, run.parent) == ("parent", parent.code), code
            assert run.children == [c.code for c in hierarchy.children(code)], code
            assert run.content_versions, code
            wsus = run.phase("update_server")
            assert wsus is not None and wsus.update_server_log is not None, code
            assert wsus.update_server_log.result == "succeeded", code
        assert mine[-1].content_version == version, code
        assert mine[0].content_versions[-1] < mine[-1].content_versions[-1], code
