"""The demo a new user runs first: `updatesync demo --once`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.logs.softwaredistribution import read_softwaredistribution
from updatesync.updateserver.store import UpdateStore


def test_the_demo_syncs_a_top_level_sup_from_a_stand_in_microsoft_update(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--once", "--updates", "300", "--data", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "first sync:" in result.output
    assert "next month:" in result.output
    sup = tmp_path / "CS1SITE.CONTOSO.COM"
    with UpdateStore.open(sup) as store:
        status = store.status()
        history = store.history()
    assert status.revisions > 0
    assert [h.result for h in history] == ["Succeeded", "Succeeded"]
    events = [
        e.event_id
        for e in read_softwaredistribution(sup / "logs" / "SoftwareDistribution.log")
        if e.event_id
    ]
    assert events == [382, 384, 382, 384]
