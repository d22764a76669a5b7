"""`updatesync sync-now` asks a site's provider to synchronize."""

from __future__ import annotations

from pathlib import Path

from tokens import token_for
from typer.testing import CliRunner

from updatesync.cli import app
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
