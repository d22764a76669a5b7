"""Benchmark: syncing an update server from another over MS-WSUSSS on loopback HTTP.

For generated catalogs (10k and 100k updates by default):
- upstream A (`updatesync updateserver serve`, its own process) holds the catalog;
- downstream B (`updatesync updateserver sync`, its own process) syncs everything from A:
  the full sync's revisions per second;
- A imports next month's catalog (100 changes); B syncs again: the delta sync's time
  (`delta_seconds`, the one-shot command: a process of its own, its start-up included;
  `delta_startup_seconds` is that start-up alone, Python importing what the command needs,
  the fastest of three, measured in the same run);
- A imports the month after (another 100 changes); B, now served (`updatesync updateserver
  serve --upstream A`, as a WSUS or a ConfigMgr SUP runs: the service is up, the sync is
  triggered), is asked to sync through its admin API (POST /api/sync) and its end is
  awaited by long poll (GET /api/sync?version=V): `delta_service_seconds` is trigger to
  finished, `delta_service_run_seconds` the sync's own started -> finished in B's history;
- peak memory (RSS) of both processes;
- the mean and 95th percentile of the catalog's document sizes (bench/docstats.py);
- the import floor of bench/import_catalog.py (read the cabinet, parse with lxml, bulk insert into
  an empty SQLite table) for the same catalog, and the ratio of the full sync to it.
With `--database postgresql` both stores are on PostgreSQL (a throwaway database each, made on
`--postgresql-url` or UPDATESYNC_BENCH_POSTGRESQL and dropped after); `--database both` runs
SQLite then PostgreSQL and prints their figures side by side (see backends.py).
It prints the figures and the machine they ran on.

    python bench/protocol_sync.py [--sizes 10000 100000] [--work DIR] [--database both]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import httpx

import backends
import import_catalog
from backends import Throwaway
from bytecode import compile_updatesync
from docstats import catalog_doc_stats, doc_stats_line
from peak import peak_command, read_peak_mib

CLI = [sys.executable, "-m", "updatesync"]


def run(*args: str, env: dict[str, str] | None = None) -> None:
    """Run an updatesync command, stopping the benchmark if it fails."""
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"updatesync {' '.join(args)} failed:\n{done.stderr}")


def peak_of(pid: int) -> float:
    """Peak RSS of a running process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def store_args(data: Path, database: Throwaway | None) -> list[str]:
    """Where an `updateserver` command finds the store: the data folder, and the database."""
    return ["--data", str(data), *(["--database", database.url] if database else [])]


def environment(database: Throwaway | None) -> dict[str, str]:
    """The commands' environment: the database's password in its variable, if it has one."""
    env = dict(os.environ)
    if database is not None and database.password:
        env["UPDATESYNC_DATABASE_PASSWORD"] = database.password
    return env


def serve(
    data: Path,
    port: int,
    database: Throwaway | None,
    *extra: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*CLI, "updateserver", "serve", *store_args(data, database), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env or environment(database),
    )
    assert process.stdout is not None
    for line in process.stdout:  # the server says when it listens
        if "listening on" in line:
            return process
    raise SystemExit(f"the upstream server did not start: exit {process.wait()}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_size(size: int, work: Path, kind: str, server: str | None) -> dict[str, float]:
    cab = import_catalog.ensure_catalog(size, work)
    nxt = work / f"catalog-{size}-next.cab"
    if not nxt.exists():
        run("catalog", "evolve", str(cab), "--changes", "100", "--seed", "2", "--out", str(nxt))
    after = work / f"catalog-{size}-after.cab"
    if not after.exists():
        run("catalog", "evolve", str(nxt), "--changes", "100", "--seed", "3", "--out", str(after))
    up, down = work / f"A-{size}-{kind}", work / f"B-{size}-{kind}"
    for folder in (up, down):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    with ExitStack() as stack:
        dbs: list[Throwaway | None] = [None, None]
        if kind == "postgresql":
            assert server is not None
            dbs = [stack.enter_context(backends.throwaway(server, f"{n}{size}")) for n in "ab"]
        a, b = dbs
        run("updateserver", "import", *store_args(up, a), str(cab), env=environment(a))
        port = free_port()
        server_process = serve(up, port, a)
        url = f"http://127.0.0.1:{port}"
        try:
            full = _timed_sync(down, b, url)
            token = (up / "admin.token").read_text(encoding="utf-8").strip()
            status = httpx.get(f"{url}/api/status", headers={"authorization": f"Bearer {token}"})
            revisions = status.json()["revisions"]
            run("updateserver", "import", *store_args(up, a), str(nxt), env=environment(a))
            delta = _timed_sync(down, b, url)
            startup = startup_seconds()
            run("updateserver", "import", *store_args(up, a), str(after), env=environment(a))
            service = served_delta(down, b, url)
            upstream_peak = peak_of(server_process.pid)
        finally:
            server_process.terminate()
            server_process.wait()
    floor = import_catalog.measure("floor", cab)
    stats = catalog_doc_stats(cab)
    print(f"  {size}: {doc_stats_line(stats)}")
    return {
        "revisions": revisions,
        "full_seconds": full[0],
        "full_rate": revisions / full[0],
        "delta_seconds": delta[0],
        "delta_startup_seconds": startup,
        "delta_service_seconds": service[0],
        "delta_service_run_seconds": service[1],
        "downstream_peak": max(full[1], delta[1]),
        "upstream_peak": upstream_peak,
        "floor_seconds": floor["seconds"],
        "floor_rate": floor["revisions"] / floor["seconds"],
        "doc_mean_chars": stats["doc_mean_chars"],
        "doc_p95_chars": stats["doc_p95_chars"],
    }


def _timed_sync(data: Path, database: Throwaway | None, url: str) -> tuple[float, float]:
    """(seconds, the sync's own peak memory in MiB: bench/peak.py)."""
    peak_file = data.with_name(data.name + ".peak")
    start = time.perf_counter()
    process = subprocess.Popen(
        peak_command(
            ["updateserver", "sync", *store_args(data, database), "--upstream", url], peak_file
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(database),
    )
    _out, err = process.communicate()
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"sync from {url} failed:\n{err}")
    return seconds, read_peak_mib(peak_file) or float("nan")


def startup_seconds() -> float:
    """What a one-shot `updateserver sync` spends before it syncs anything: the interpreter
    started and the modules the command needs imported (the fastest of three)."""
    command = [sys.executable, "-c", "import updatesync.cli.main, updatesync.updateserver.sync"]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(command, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def served_delta(
    data: Path, database: Throwaway | None, upstream: str, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """B served with `--upstream`, a sync triggered through its admin API and awaited by long
    poll: (trigger to finished, the sync's own started -> finished from B's history)."""
    port = free_port()
    process = serve(data, port, database, "--upstream", upstream, env=env)
    try:
        token = (data / "admin.token").read_text(encoding="utf-8").strip()
        api = f"http://127.0.0.1:{port}/api"
        headers = {"authorization": f"Bearer {token}"}
        with httpx.Client(headers=headers, timeout=90) as client:
            before = client.get(f"{api}/sync").json()["version"]
            start = time.perf_counter()
            answer = client.post(f"{api}/sync", json={})
            if answer.status_code != 202:
                raise SystemExit(f"POST /api/sync answered {answer.status_code}: {answer.text}")
            state = answer.json()
            while state["running"] or state["version"] <= before:
                state = client.get(
                    f"{api}/sync", params={"version": state["version"], "wait": 60}
                ).json()
            seconds = time.perf_counter() - start
            if state["last_error"]:
                raise SystemExit(f"the served sync from {upstream} failed: {state['last_error']}")
            last = client.get(f"{api}/status").json()["last_sync"]
    finally:
        process.terminate()
        process.wait()
    if "started_at" not in last:  # an updatesync whose status has no start: the run's seconds
        return seconds, float(state["last_result"]["seconds"])
    started, finished = (datetime.fromisoformat(last[k]) for k in ("started_at", "finished_at"))
    return seconds, (finished - started).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--work", type=Path, help="keep catalogs and stores here")
    backends.add_arguments(parser)
    args = parser.parse_args()
    compile_updatesync()
    server = backends.server(args)
    print(f"machine: {import_catalog.machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = [
            (size, kind, bench_size(size, work, kind, server))
            for size in args.sizes
            for kind in backends.kinds(args)
        ]
    print(
        f"{'updates':>8} {'database':<10} {'revisions':>9} {'full sync':>10} {'rev/s':>7} "
        f"{'delta(100)':>10} {'start-up':>8} {'served':>7} {'run':>6} {'floor rev/s':>11} "
        f"{'ratio':>6} "
        f"{'peak A':>8} {'peak B':>8}"
    )
    for size, kind, r in rows:
        print(
            f"{size:>8} {kind:<10} {r['revisions']:>9.0f} {r['full_seconds']:>9.1f}s "
            f"{r['full_rate']:>7.0f} {r['delta_seconds']:>9.2f}s "
            f"{r['delta_startup_seconds']:>7.2f}s "
            f"{r['delta_service_seconds']:>6.2f}s {r['delta_service_run_seconds']:>5.2f}s "
            f"{r['floor_rate']:>11.0f} "
            f"{r['full_seconds'] / r['floor_seconds']:>5.1f}x "
            f"{r['upstream_peak']:>5.0f} MiB {r['downstream_peak']:>5.0f} MiB"
        )
    print(json.dumps({f"{size}/{kind}": r for size, kind, r in rows}))


if __name__ == "__main__":
    main()
