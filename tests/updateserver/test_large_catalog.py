"""A catalog of 100,000 generated updates goes through the command line, in flat memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from peak_memory import run_measured

from updatesync.metadata.export import read_export
from updatesync.metadata.generator import catalog_stats

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "updatesync"]


def _import_peak(cabinet: Path, data: Path) -> float:
    """Peak memory of an import run in a child process of its own."""
    run = run_measured(["updateserver", "import", "--data", str(data), str(cabinet)], data.parent)
    assert run.returncode == 0, run.output
    return run.peak_mib


def test_a_100k_update_catalog_imports_with_the_memory_of_a_10k_one(tmp_path: Path) -> None:
    small, large = tmp_path / "10k.cab", tmp_path / "100k.cab"
    for cabinet, size in ((small, 10_000), (large, 100_000)):
        subprocess.run(
            [
                *CLI,
                "catalog",
                "generate",
                "--updates",
                str(size),
                "--seed",
                "3",
                "--out",
                str(cabinet),
            ],
            check=True,
            capture_output=True,
        )
    small_peak = _import_peak(small, tmp_path / "small")
    large_peak = _import_peak(large, tmp_path / "large")

    shown = subprocess.run(
        [*CLI, "updateserver", "status", "--data", str(tmp_path / "large"), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    status = json.loads(shown.stdout)
    with read_export(large) as export:
        stats = catalog_stats(export.records())
    assert status["revisions"] == stats.revisions
    assert status["revisions"] > 100_000
    assert status["by_type"] == dict(sorted(stats.by_update_type.items()))
    assert status["last_sync"]["result"] == "Succeeded"
    # Ten times the catalog, about the same memory: the import streams.
    assert large_peak < small_peak * 1.25, (small_peak, large_peak)
