"""A downstream sync of 100,000 revisions stays under 150 MiB: the listing is read as it
arrives into a temporary table, and the batches go through bounded queues, so nothing grows
with the catalog.

The downstream is `updatesync updateserver sync` in a process of its own, its peak RSS
(VmHWM, from `wait4`) the figure; the upstream is `lean_upstream.LeanUpstream`, which makes
its 100,000 small detectoids as they are asked for (no 100k import to set up). Holding the
listing whole, as the sync did before it streamed, peaks well over the bound at this size
(one 13 MB body, its lxml tree and 100,000 keys in lists and sets). Takes about a minute
and a half on a busy 2-core machine, once per run (a module fixture).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import fake_upstream as fu
import pytest
from lean_upstream import LeanUpstream

pytestmark = pytest.mark.slow

REVISIONS = 100_000
BOUND_MIB = 150
CLI = [sys.executable, "-m", "updatesync", "updateserver", "sync"]


@dataclass(frozen=True)
class Run:
    peak_mib: float
    output: str


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Run:
    data = tmp_path_factory.mktemp("flat-memory") / "down"
    with fu.serve(LeanUpstream(REVISIONS)) as url:
        process = subprocess.Popen(
            [*CLI, "--data", str(data), "--upstream", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        output = process.stdout.read()  # to its end: the pipe never fills
        _pid, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    return Run(usage.ru_maxrss / 1024, output)


def test_a_100k_revision_sync_stays_under_the_memory_bound(synced: Run) -> None:
    assert f"{REVISIONS:,} new" in synced.output, synced.output
    assert synced.peak_mib < BOUND_MIB, (
        f"the downstream peaked at {synced.peak_mib:.0f} MiB syncing {REVISIONS:,} revisions "
        f"(bound {BOUND_MIB} MiB): something holds the listing or the batches whole"
    )
