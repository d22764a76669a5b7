"""The demo a new user runs first: `updatesync demo --once`."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from databases import Databases
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.config import load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.logs.cmtrace import read_cmtrace
from updatesync.logs.softwaredistribution import read_softwaredistribution
from updatesync.site.database.site_db import SiteDatabase


def test_the_demo_runs_the_articles_hierarchy_from_sync_now_to_every_site(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--once",
            "--updates",
            "300",
            "--data",
            str(tmp_path),
            "--port",
            "0",
            "--console-port",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    # Over HTTPS with the demo's own CA, and the file it ran kept where it says.
    output = " ".join(result.output.split())
    assert (tmp_path / "pki" / "ca.pem").is_file()
    assert "".join(str(tmp_path / "pki" / "ca.pem").split()) in "".join(output.split())
    assert load_hierarchy(tmp_path / "hierarchy.toml").top.url.startswith("https://127.0.0.1:")
    assert "CS1 at https://127.0.0.1:" in output
    assert "first sync: every site synced; content version 2 at CS1, PS1, PS2, SS1" in (
        result.output
    )
    assert "next month: every site synced; content version 4 at CS1, PS1, PS2, SS1" in (
        result.output
    )
    root = tmp_path / "hierarchy"
    logs = root / "CS1" / "logs"
    provider = [e.message for e in read_cmtrace(logs / "SMSProv.log")]
    token_file = root / "CS1" / "admin.token"
    assert provider == [
        f"Created the Full Administrator user admin; its API token is in {token_file} "
        "(readable by its owner only)",
        "User admin set the password of user admin",
        *["ExecMethodAsync : SMS_SoftwareUpdate::SyncNow"] * 2,
    ]
    said = f"the Full Administrator's API token (user admin) is in {token_file}"
    assert "".join(said.split()) in "".join(result.output.split())  # wrapped anywhere
    # The console asks for a login: admin's password is in a private file, never printed.
    password_file = tmp_path / "admin.password"
    said = f"sign in to the web console as admin; the password is in {password_file}"
    assert "".join(said.split()) in "".join(result.output.split())
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text(encoding="utf-8").strip()
    assert len(password) >= 12
    assert password not in result.output
    assert not any(password in p.read_text(errors="replace") for p in logs.glob("*.log"))
    monitor = [e.message for e in read_cmtrace(logs / "SMSDBMON.log")]
    # The hierarchy file's subscription wakes the WSUS configuration manager, then each of
    # the two SyncNow the sync manager.
    csb = root / "CS1" / "inboxes" / "WSUSMgr.box" / "1.CSB"
    assert monitor[0].startswith(
        "RCV: UPDATE on CI_UpdateCategorySubscription for SubNotify_iu_WCM [1]["
    )
    assert monitor[1].startswith(f"SND: Dropped {csb} [")
    assert [m.split(" ")[0] for m in monitor[2:]] == ["RCV:", "SND:"] * 2
    assert all("Update_SyncStatus" in m for m in monitor[2::2])
    # Every site's WSUS configuration manager configured its SUPs before its first sync.
    for code in ("CS1", "PS1", "PS2", "SS1"):
        wcm = list(read_cmtrace(root / code / "logs" / "WCM.log"))
        configured = next(
            e.time for e in wcm if e.message.endswith("state to 2 (WSUS_CONFIG_SUCCESS)")
        )
        started = next(
            e.time
            for e in read_cmtrace(root / code / "logs" / "WSyncMgr.log")
            if e.message == "Starting Sync"
        )
        assert configured is not None and started is not None and configured <= started, code
    wsync = [e.message for e in read_cmtrace(logs / "WSyncMgr.log")]
    assert sum(m.startswith("STATMSG: ID=6702") for m in wsync) == 2
    # `Updated N items` is the count the update progress reached, sync by sync.
    counted = [
        int(m.split()[5])
        for m in wsync
        if m.startswith("sync: WSUS synchronizing updates, processed") and m.endswith("(100%)")
    ]
    updated = [int(m.split()[1]) for m in wsync if m.startswith("Updated ")]
    assert len(updated) == 2 and all(n in counted for n in updated)
    assert updated[0] == counted[0] and updated[0] > 0
    assert wsync.count("Sending sync notification to child site(s): PS1, PS2") == 2
    cis: dict[str, set[tuple[str, int, str]]] = {}
    for code in ("CS1", "PS1", "PS2", "SS1"):
        with SiteDatabase.open(root / code) as db:
            assert db.content.version() == 4, code
            cis[code] = {
                (c.update_id, c.revision, c.xml_sha256) for c in db.content.configuration_items()
            }
    assert cis["CS1"] and cis["PS1"] == cis["CS1"] == cis["PS2"] == cis["SS1"]
    with SiteDatabase.open(root / "CS1") as db:
        ids = [m.message_id for m in reversed(db.messages.find(site_code="CS1", limit=20))]
        assert ids == [6701, 6704, 6705, 6702] * 2
        # (CS1 also holds the messages of the sites below it: site data replicated upward.)
    ps1 = [e.message for e in read_cmtrace(root / "PS1" / "logs" / "WSyncMgr.log")]
    assert ps1.count("Successfully synced site with parent CS1, version 4") == 1
    assert ps1.count("sync: Starting Replica WSUS synchronization") == 2
    sd = root / "cs1site.contoso.com" / "logs" / "SoftwareDistribution.log"
    assert [e.event_id for e in read_softwaredistribution(sd) if e.event_id] == [382, 384] * 2

    # Across the four logs, the first sync reads in the article's order (SPEC section 2).
    def first(entries, test):  # type: ignore[no-untyped-def]
        return next(e.time for e in entries if test(e))

    def first_sd(test):  # type: ignore[no-untyped-def]
        return next(e.timestamp for e in read_softwaredistribution(sd) if test(e))

    prov = list(read_cmtrace(logs / "SMSProv.log"))
    dbmon = list(read_cmtrace(logs / "SMSDBMON.log"))
    wsyncmgr = list(read_cmtrace(logs / "WSyncMgr.log"))
    order = [
        first(prov, lambda e: "SyncNow" in e.message),
        first(dbmon, lambda e: e.message.startswith("RCV: UPDATE on Update_SyncStatus")),
        first(dbmon, lambda e: e.message.startswith("SND: Dropped") and ".SYN" in e.message),
        first(wsyncmgr, lambda e: e.message == "Wakeup by inbox drop"),
        first(wsyncmgr, lambda e: e.message.startswith("STATMSG: ID=6704")),
        first_sd(lambda e: e.event_id == 382),
        first_sd(lambda e: e.event_id == 384),
        first(wsyncmgr, lambda e: e.message.startswith("STATMSG: ID=6705")),
        first(wsyncmgr, lambda e: e.message.startswith("STATMSG: ID=6702")),
    ]
    assert order == sorted(order)


def test_the_demo_runs_a_hierarchy_file_with_every_site_and_sup_on_its_own_database(
    tmp_path: Path, databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hierarchy file's `database` key for all nine roles (four sites, five SUPs), on
    SQLite files elsewhere or on PostgreSQL: every site reaches one content version, and no
    role writes its default database file in its data folder. `--data` is given relative to
    the current folder, as a user types it (the CA was looked for at demo/demo/pki)."""
    monkeypatch.chdir(tmp_path)
    lines = []
    for line in example_hierarchy().read_text(encoding="utf-8").splitlines():
        lines.append(line)
        if line.startswith(("[[sites]]", "[[sites.sups]]")):
            lines.append(f'database = "{databases.new().url}"')
    file = tmp_path / "hierarchy.toml"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = tmp_path / "demo"
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--once",
            "--updates",
            "60",
            "--hierarchy",
            str(file),
            "--data",
            "demo",
            "--port",
            "0",
            "--console-port",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "first sync: every site synced; content version 2 at CS1, PS1, PS2, SS1" in output
    assert re.search(
        r"next month: every site synced; content version \d+ at CS1, PS1, PS2, SS1", output
    )
    assert not [
        p
        for p in (data / "hierarchy").rglob("*.sqlite")
        if p.name in ("site.sqlite", "updateserver.sqlite")
    ]
