"""Benchmark: import, then sync over MS-WSUSSS, catalogs of 100k, 300k and 1M revisions.

For each size (`--sizes`, default 100000 300000 1000000 generated updates):
- the catalog is generated once (`updatesync.metadata.generator`, kept in `--work`); the
  mean and 95th percentile of its documents' sizes (characters) come from the floor's read;
- upstream A imports it (`updatesync updateserver import`, its own process): time, rate,
  peak RSS. A catalog too large for one export cabinet (over
  `import_catalog.PART_RECORDS` records; one cabinet member holds at most 2 GiB) is
  generated and imported in parts, one command a part: the time is their sum;
- A serves it (`updatesync updateserver serve`, its own process) and downstream B syncs
  everything from it (`updatesync updateserver sync`, its own process): time, rate, peak
  RSS of A (the whole run) and of B;
- the floor of bench/import_catalog.py (read the cabinet, parse with lxml, bulk insert into
  an empty SQLite table) for the same catalog, and each time over it.

Time per revision (µs) is printed beside each time: flat across the sizes means linear. So
is peak memory: flat means the size of the catalog does not matter. It prints the machine,
a table, and a last line of JSON. The processes are run as bench/protocol_sync.py runs
them (its helpers are used as they are).

Each size's stores are removed once measured (B's bytes on disk per revision printed; a
million revisions take tens of gigabytes each) unless --keep-stores.

    python bench/scale.py [--sizes 100000 300000 1000000] [--work DIR] [--keep-stores]
                          [--database both]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import backends
import import_catalog
from backends import Throwaway
from bytecode import compile_updatesync
from peak import peak_command, read_peak_mib
from protocol_sync import CLI, environment, free_port, peak_of, serve, store_args


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run an updatesync command to its end: (seconds, its own peak RSS in MiB: peak.py)."""
    with tempfile.TemporaryDirectory(prefix="bench-peak-") as tmp:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        process = subprocess.Popen(
            peak_command(args, peak_file),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        _out, err = process.communicate()
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            raise SystemExit(f"updatesync {' '.join(args)} failed:\n{err}")
        return seconds, read_peak_mib(peak_file) or float("nan")


def folder_bytes(folder: Path) -> int:
    """Bytes a store's folder holds on disk (a PostgreSQL store's rows are not in it)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def bench_size(
    size: int, work: Path, kind: str, server: str | None, keep: bool
) -> dict[str, float]:
    cabs = import_catalog.ensure_catalog_parts(size, work)
    up, down = work / f"scale-A-{size}-{kind}", work / f"scale-B-{size}-{kind}"
    for folder in (up, down):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
    with ExitStack() as stack:
        dbs: list[Throwaway | None] = [None, None]
        if kind == "postgresql":
            assert server is not None
            dbs = [stack.enter_context(backends.throwaway(server, f"s{n}{size}")) for n in "ab"]
        a, b = dbs
        # A catalog in parts is imported part after part, each by a command of its own
        # into the store the earlier ones filled: the time is their sum, the peak their max.
        import_seconds, import_peak = 0.0, 0.0
        for cab in cabs:
            seconds, peak = timed(
                ["updateserver", "import", *store_args(up, a), str(cab)], environment(a)
            )
            import_seconds, import_peak = import_seconds + seconds, max(import_peak, peak)
        port = free_port()
        server_process = serve(up, port, a)
        url = f"http://127.0.0.1:{port}"
        try:
            sync_seconds, down_peak = timed(
                ["updateserver", "sync", *store_args(down, b), "--upstream", url], environment(b)
            )
            up_peak = peak_of(server_process.pid)
        finally:
            server_process.terminate()
            server_process.wait()
        shown = subprocess.run(
            [*CLI, "updateserver", "status", *store_args(down, b), "--json"],
            capture_output=True,
            text=True,
            env=environment(b),
            check=True,
        )
        revisions = int(json.loads(shown.stdout)["revisions"])
    store_bytes = folder_bytes(down)
    if not keep:
        # A million revisions' stores take tens of gigabytes: only the catalog is kept.
        for folder in (up, down):
            subprocess.run(["rm", "-rf", str(folder)], check=True)
    floor = import_catalog.measure("floor", cabs)
    return {
        "revisions": revisions,
        # The floor reads every document of the catalog: its sizes come with it.
        "doc_mean_chars": floor["doc_mean_chars"],
        "doc_p95_chars": floor["doc_p95_chars"],
        "import_seconds": import_seconds,
        "import_rate": revisions / import_seconds,
        "import_us_per_revision": import_seconds / revisions * 1e6,
        "import_peak": import_peak,
        "full_seconds": sync_seconds,
        "full_rate": revisions / sync_seconds,
        "full_us_per_revision": sync_seconds / revisions * 1e6,
        "upstream_peak": up_peak,
        "downstream_peak": down_peak,
        "floor_seconds": floor["seconds"],
        "floor_rate": floor["revisions"] / floor["seconds"],
        "store_bytes_per_revision": store_bytes / revisions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--work", type=Path, help="keep catalogs here")
    parser.add_argument(
        "--keep-stores", action="store_true", help="keep each size's stores in --work too"
    )
    backends.add_arguments(parser)
    args = parser.parse_args()
    compile_updatesync()
    server = backends.server(args)
    print(f"machine: {import_catalog.machine()}", flush=True)
    print(
        f"{'updates':>8} {'database':<10} {'revisions':>9} {'doc mean/p95':>13} "
        f"{'import':>8} {'rev/s':>6} {'µs/rev':>6} {'x floor':>7} {'sync':>8} {'rev/s':>6} "
        f"{'µs/rev':>6} {'x floor':>7} {'peak imp':>8} {'peak A':>7} {'peak B':>7} "
        f"{'B bytes/rev':>11}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            for kind in backends.kinds(args):
                # Each row as soon as its size is done: a million takes most of an hour.
                r = bench_size(size, work, kind, server, args.keep_stores)
                rows.append((size, kind, r))
                print(
                    f"{size:>8} {kind:<10} {r['revisions']:>9.0f} "
                    f"{r['doc_mean_chars']:>6.0f}/{r['doc_p95_chars']:<6.0f} "
                    f"{r['import_seconds']:>7.1f}s {r['import_rate']:>6.0f} "
                    f"{r['import_us_per_revision']:>6.0f} "
                    f"{r['import_seconds'] / r['floor_seconds']:>6.1f}x "
                    f"{r['full_seconds']:>7.1f}s {r['full_rate']:>6.0f} "
                    f"{r['full_us_per_revision']:>6.0f} "
                    f"{r['full_seconds'] / r['floor_seconds']:>6.1f}x "
                    f"{r['import_peak']:>4.0f} MiB {r['upstream_peak']:>3.0f} MiB "
                    f"{r['downstream_peak']:>3.0f} MiB {r['store_bytes_per_revision']:>11.0f}",
                    flush=True,
                )
    print(json.dumps({f"{size}/{kind}": r for size, kind, r in rows}))


if __name__ == "__main__":
    main()
