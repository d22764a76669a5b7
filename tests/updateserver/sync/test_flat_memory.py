"""A downstream sync of 100,000 revisions stays under 150 MiB: the listing is read as it
arrives into a temporary table, and the batches go through bounded queues, so nothing grows
with the catalog.

The downstream is `updatesync updateserver sync` in a process of its own; the figure is its
own peak RSS (VmHWM, written at its exit: `peak_memory`, as the benches measure). The
upstream is `lean_upstream.LeanUpstream`, which makes its 100,000 small detectoids as they
are asked for (no 100k import to set up). Holding the listing whole, as the sync did before
it streamed, peaks well over the bound at this size (one 13 MB body, its lxml tree and
100,000 keys in lists and sets). Takes about half a minute alone, once per run (a module
fixture).
"""

from __future__ import annotations

import fake_upstream as fu
import pytest
from lean_upstream import LeanUpstream
from peak_memory import Measured, run_measured

pytestmark = pytest.mark.slow

REVISIONS = 100_000
BOUND_MIB = 150


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Measured:
    scratch = tmp_path_factory.mktemp("flat-memory")
    with fu.serve(LeanUpstream(REVISIONS)) as url:
        run = run_measured(
            ["updateserver", "sync", "--data", str(scratch / "down"), "--upstream", url], scratch
        )
    assert run.returncode == 0, run.output
    return run


def test_a_100k_revision_sync_stays_under_the_memory_bound(synced: Measured) -> None:
    assert f"{REVISIONS:,} new" in synced.output, synced.output
    assert synced.peak_mib < BOUND_MIB, (
        f"the downstream peaked at {synced.peak_mib:.0f} MiB syncing {REVISIONS:,} revisions "
        f"(bound {BOUND_MIB} MiB): something holds the listing or the batches whole"
    )
