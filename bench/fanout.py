"""Benchmark: many downstream servers syncing from one upstream at once.

- upstream A (`updatesync updateserver serve`, its own process) holds the real WSUS export of
  June 2024 (`../shared/fixtures/wsus-exports/`, imported with `updatesync updateserver import`);
- N downstream servers (`updatesync updateserver sync`, each its own process and data folder;
  50 by default, `--downstreams N`) are started at the same moment against it;
- when all have finished: each downstream holds exactly the revisions A holds (checked in its
  store), A's peak memory (VmHWM) and its memory before the syncs, the aggregate revisions
  per second (all revisions synced / wall time from the first start to the last end), and
  each downstream's seconds (min, median, max) and peak memory.
It prints the figures, the machine they ran on, and a last line of JSON.

    python bench/fanout.py [--downstreams 50] [--cabinet CAB] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import import_catalog
from bytecode import compile_updatesync
from docstats import catalog_doc_stats, doc_stats_line
from peak import peak_command, read_peak_mib
from protocol_sync import free_port, peak_of, run, serve
from updatesync.updateserver.store import UpdateStore

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "wsus-exports"
UPSTREAM_PEAK_GOAL_MIB = 300


def default_cabinet() -> Path:
    found = sorted(FIXTURES.glob("*2024*.cab"))
    if not found:
        raise SystemExit(f"no 2024 export cabinet in {FIXTURES}; give one with --cabinet")
    return found[0]


def rss_of(pid: int) -> float:
    """Resident memory of a running process now (Linux), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def revisions_in(folder: Path) -> int:
    with UpdateStore.open(folder) as store:
        return store.status().revisions


def sync_all(url: str, folders: list[Path]) -> tuple[float, list[float], list[float]]:
    """Start one `updateserver sync` per folder at once; (wall seconds, each one's seconds,
    each one's peak MiB) once all have ended, every one successfully."""
    logs = [folder.with_suffix(".log") for folder in folders]
    started = time.perf_counter()
    processes: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}
    for n, (folder, log) in enumerate(zip(folders, logs, strict=True)):
        with log.open("wb") as out:
            process = subprocess.Popen(
                peak_command(
                    ["updateserver", "sync", "--data", str(folder), "--upstream", url],
                    folder.with_suffix(".peak"),
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes[process.pid] = (n, process)
    seconds = [0.0] * len(folders)
    peaks = [0.0] * len(folders)
    failed: list[int] = []
    while processes:
        pid, status = os.waitpid(-1, 0)
        if pid not in processes:
            continue
        n, process = processes.pop(pid)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds[n] = time.perf_counter() - started
        peaks[n] = read_peak_mib(folders[n].with_suffix(".peak")) or float("nan")
        if process.returncode != 0:
            failed.append(n)
    wall = time.perf_counter() - started
    if failed:
        first = logs[failed[0]].read_text(errors="replace")[-2000:]
        raise SystemExit(f"{len(failed)} of {len(folders)} syncs failed; the first:\n{first}")
    return wall, seconds, peaks


def bench(cabinet: Path, downstreams: int, work: Path) -> dict[str, float]:
    up = work / "A"
    subprocess.run(["rm", "-rf", str(up), *map(str, work.glob("B-*"))], check=True)
    run("updateserver", "import", "--data", str(up), str(cabinet))
    upstream_revisions = revisions_in(up)
    port = free_port()
    server = serve(up, port, None)
    try:
        before = rss_of(server.pid)
        folders = [work / f"B-{n:03d}" for n in range(downstreams)]
        wall, seconds, peaks = sync_all(f"http://127.0.0.1:{port}", folders)
        upstream_peak = peak_of(server.pid)
    finally:
        server.terminate()
        server.wait()
    counts = [revisions_in(folder) for folder in folders]
    unequal = [(f.name, c) for f, c in zip(folders, counts, strict=True) if c != upstream_revisions]
    if unequal:
        raise SystemExit(
            f"{len(unequal)} downstreams differ from the upstream's {upstream_revisions} "
            f"revisions: {unequal[:5]}"
        )
    return {
        "downstreams": downstreams,
        "revisions": upstream_revisions,
        "wall_seconds": wall,
        "aggregate_rate": upstream_revisions * downstreams / wall,
        "downstream_min_seconds": min(seconds),
        "downstream_median_seconds": statistics.median(seconds),
        "downstream_max_seconds": max(seconds),
        "downstream_peak": max(peaks),
        "upstream_start_rss": before,
        "upstream_peak": upstream_peak,
        "upstream_peak_goal": UPSTREAM_PEAK_GOAL_MIB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--downstreams", type=int, default=50)
    parser.add_argument("--cabinet", type=Path, help="the upstream's export (default: 2024's)")
    parser.add_argument("--work", type=Path, help="keep the stores here")
    args = parser.parse_args()
    compile_updatesync()
    if args.downstreams < 1:
        raise SystemExit("--downstreams must be 1 or more")
    cabinet = args.cabinet or default_cabinet()
    print(f"machine: {import_catalog.machine()}")
    print(f"upstream: {cabinet.name}, {args.downstreams} downstream servers at once")
    stats = catalog_doc_stats(cabinet)
    print(doc_stats_line(stats))
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        r = bench(cabinet, args.downstreams, work)
    r.update(doc_mean_chars=stats["doc_mean_chars"], doc_p95_chars=stats["doc_p95_chars"])
    print(
        f"{r['downstreams']:.0f} downstreams, each {r['revisions']:.0f} revisions, all equal "
        f"to the upstream's"
    )
    print(
        f"wall {r['wall_seconds']:.1f} s, aggregate {r['aggregate_rate']:,.0f} revisions/s; "
        f"per downstream {r['downstream_min_seconds']:.1f} / "
        f"{r['downstream_median_seconds']:.1f} / {r['downstream_max_seconds']:.1f} s "
        f"(min / median / max), peak {r['downstream_peak']:.0f} MiB"
    )
    verdict = "within" if r["upstream_peak"] <= UPSTREAM_PEAK_GOAL_MIB else "OVER"
    print(
        f"upstream peak {r['upstream_peak']:.0f} MiB ({r['upstream_start_rss']:.0f} MiB "
        f"before the syncs), {verdict} the goal of {UPSTREAM_PEAK_GOAL_MIB} MiB"
    )
    print(json.dumps(r))


if __name__ == "__main__":
    sys.exit(main())
