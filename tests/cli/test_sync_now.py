"""`updatesync sync-now` asks a site's provider to synchronize."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI, Response
from hierarchy_inprocess import InProcessHierarchy
from tokens import token_for
from typer.testing import CliRunner

from updatesync.cli import app, exits
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.roles.serving import BackgroundServer
from updatesync.security.access import SecurityRole
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.site_db import SiteDatabase


def test_sync_now_sets_the_flag_through_the_provider(tmp_path: Path) -> None:
    with SiteDatabase.open(tmp_path / "CS1", site_code="CS1") as db:
        log = CMTraceLog(tmp_path / "SMSProv.log", component="SMS Provider", bias_minutes=0)
        with BackgroundServer(create_provider_app(db, log=log, site_code="CS1")) as provider:
            # The token in the environment, as a script would hold it.
            token = token_for(db, "patcher", SecurityRole.SOFTWARE_UPDATE_MANAGER)
            runner = CliRunner(env={"UPDATESYNC_TOKEN": token, "UPDATESYNC_TOKEN_FILE": ""})
            done = runner.invoke(app, ["sync-now", "--site", "cs1", "--provider", provider.url])
            assert done.exit_code == 0, done.output
            assert "sync requested at CS1 (delta)" in done.output
            assert db.sync.status().sync_now == "SELF"
            full = runner.invoke(
                app, ["sync-now", "--site", "CS1", "--full", "--provider", provider.url]
            )
            assert full.exit_code == 0, full.output
            assert db.sync.status().sync_now == "FULL"
            wrong = runner.invoke(app, ["sync-now", "--site", "PS9", "--provider", provider.url])
            assert wrong.exit_code == 1
            assert "HTTP 404" in wrong.output
    gone = CliRunner().invoke(app, ["sync-now", "--site", "CS1", "--provider", provider.url])
    assert gone.exit_code == 1
    assert "did not answer" in gone.output


def test_sync_now_wait_follows_the_sync_and_exits_with_its_result(tmp_path: Path) -> None:
    """`sync-now --wait --json` against a running hierarchy prints the sync's result as JSON
    and exits 0; with the upstream down, the sync fails and the command exits 3 with the
    failure in the JSON."""
    with InProcessHierarchy(tmp_path, updates=40, tls=False) as h:
        args = [
            "sync-now",
            "--site",
            "CS1",
            "--provider",
            h.url("CS1"),
            "--token-file",
            str(h.site("CS1").admin_token_file),
            "--wait",
            "--json",
        ]
        done = CliRunner().invoke(app, args)
        assert done.exit_code == exits.DONE, done.output
        result = json.loads(done.stdout)
        assert (result["site"], result["requested"], result["succeeded"]) == ("CS1", "delta", True)
        assert result["last_state"] == 6702
        assert result["content_version"] == h.db("CS1").content.version() >= 1
        assert result["items_updated"] > 0 and result["error"] is None
        assert len(h.results("CS1")) == 1  # it waited for that sync, not an earlier one
        h.upstream.stop()  # Microsoft Update cannot be reached
        failed = CliRunner().invoke(app, args)
        assert failed.exit_code == exits.SYNC_FAILED, failed.output
        result = json.loads(failed.stdout)
        assert (result["succeeded"], result["last_state"]) == (False, 6703)
        assert result["error"] and result["last_error_code"]
        assert len(h.results("CS1")) == 2
        h.wait_idle()


def test_sync_now_wait_follows_the_location_the_provider_names(tmp_path: Path) -> None:
    """`--wait` follows the sync resource of the 202's `Location`, nothing else: a provider
    that names none (an older one) gets a clear error, not a wait for a sync it cannot see."""
    calls: list[str] = []
    older = FastAPI()

    @older.post("/api/sites/{site}/sync", status_code=202)
    def sync(site: str) -> dict[str, object]:
        calls.append(f"POST {site}")
        return {"SyncNow": "SELF", "LastSyncState": 6702}

    named = FastAPI()
    answers = iter(["requested", "running", "done"])

    @named.post("/api/sites/{site}/sync", status_code=202)
    def sync_named(site: str, response: Response) -> dict[str, object]:
        response.headers["Location"] = f"/api/sites/{site}/syncs/7"
        return {"SyncNow": "SELF", "LastSyncState": 6702}

    @named.get("/api/sites/{site}/syncs/{number}")
    def one(site: str, number: int, wait: float = 0) -> dict[str, object]:
        calls.append(f"GET {site} {number} wait={wait:g}")
        state = next(answers)
        done = {"succeeded": True, "content_version": 5, "items_updated": 3, "error": None}
        return {
            "Number": number,
            "State": state,
            "LastSyncState": 6705 if state == "running" else 6702,
            "LastSyncStateDescription": "WSUS Synchronization in progress.",
            "Result": done if state == "done" else None,
        }

    @named.get("/api/sites/{site}/sync-status")
    def status(site: str) -> dict[str, object]:
        return {"LastSyncState": 6702, "LastSyncStateDescription": "done", "LastErrorCode": 0}

    env = {"UPDATESYNC_TOKEN": "t", "UPDATESYNC_TOKEN_FILE": ""}
    with BackgroundServer(older) as provider:
        args = ["sync-now", "--site", "CS1", "--provider", provider.url, "--wait"]
        done = CliRunner(env=env).invoke(app, args)
    assert done.exit_code == exits.FAILED, done.output
    assert "did not say which sync serves the request" in done.output
    assert calls == ["POST CS1"]
    calls.clear()
    with BackgroundServer(named) as provider:
        args = ["sync-now", "--site", "CS1", "--provider", provider.url, "--wait", "--json"]
        done = CliRunner(env=env).invoke(app, args)
    assert done.exit_code == exits.DONE, done.output
    assert json.loads(done.stdout)["content_version"] == 5
    assert calls == ["GET CS1 7 wait=20"] * 3
