"""Benchmark: importing WSUS export cabinets into the update server's store.

For each catalog size (10k and 100k generated updates by default) it measures, each in a
fresh child process so peak memory is that run's own:
- updatesync: `import_export_cabinet` into an empty store (parse, relations, latest view,
  change counter, one transaction);
- the floor: read the same cabinet, parse every document once with lxml and bulk-insert
  the same revision rows into an empty SQLite table, in one transaction.
It prints revisions per second, peak RSS and the ratio, the mean and 95th percentile size of
the catalog's documents (in characters), the machine it ran on, and last a line of JSON with
those figures per size. With `--repeat N` the two run N times each, one after the other in
turn, and the fastest run of each is the one compared (every run's time is printed too): a
shared VM's speed drifts within minutes, and the floor moved by a fifth between runs.

    python bench/import_catalog.py [--sizes 10000 100000] [--work DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import compile_updatesync
from peak import own_peak_mib
from updatesync.metadata.generator.shape import size_stats


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def peak_rss_mib() -> float:
    return own_peak_mib()  # VmHWM: ru_maxrss would carry the parent's (peak.py)


def run_updatesync(cab: Path, work: Path) -> dict[str, float]:
    from updatesync.updateserver.importer import import_export_cabinet
    from updatesync.updateserver.store import UpdateStore

    with UpdateStore.open(work / "store") as store:
        start, cpu = time.perf_counter(), time.process_time()
        result = import_export_cabinet(store, cab)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "revisions": result.new_revisions,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mib": peak_rss_mib(),
    }


def document_sizes(lengths: list[int]) -> dict[str, float]:
    """Mean and 95th percentile of the documents' sizes, in characters (as docstats.py)."""
    mean, p95 = size_stats(lengths)
    return {"doc_mean_chars": round(mean), "doc_p95_chars": round(p95)}


FLOOR_INSERT = (
    "INSERT INTO revision (update_id, revision_number, update_type, title, xml)"
    " VALUES (?, ?, ?, ?, ?)"
)


def run_floor(cabs: list[Path], work: Path) -> dict[str, float]:
    from lxml import etree

    from updatesync.metadata.export import read_export

    ns = "{http://schemas.microsoft.com/msus/2002/12/Update}"
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    db = sqlite3.connect(work / "floor.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE revision (id INTEGER PRIMARY KEY, update_id TEXT, revision_number "
        "INTEGER, update_type TEXT, title TEXT, xml TEXT, UNIQUE (update_id, revision_number))"
    )
    start, cpu = time.perf_counter(), time.process_time()
    count = 0
    lengths: list[int] = []
    db.execute("BEGIN")
    for cab in cabs:
        with read_export(cab) as export:
            batch: list[tuple[str, int, str | None, str | None, str]] = []
            for record in export.records():
                lengths.append(len(record.xml))
                root = etree.fromstring(record.xml.encode("utf-8"), parser)
                identity = root.find(f"{ns}UpdateIdentity")
                props = root.find(f"{ns}Properties")
                title = root.findtext(f".//{ns}Title")
                batch.append(
                    (
                        identity.get("UpdateID").lower(),
                        int(identity.get("RevisionNumber")),
                        props.get("UpdateType") if props is not None else None,
                        title,
                        record.xml,
                    )
                )
                if len(batch) >= 500:
                    db.executemany(FLOOR_INSERT, batch)
                    count += len(batch)
                    batch.clear()
            db.executemany(FLOOR_INSERT, batch)
            count += len(batch)
    db.execute("COMMIT")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    db.close()
    return {
        "revisions": count,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mib": peak_rss_mib(),
        **document_sizes(lengths),
    }


def child(kind: str, cabs: list[Path]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        if kind == "updatesync":
            (cab,) = cabs
            print(json.dumps(run_updatesync(cab, Path(tmp))))
        else:
            print(json.dumps(run_floor(cabs, Path(tmp))))


def measure(kind: str, cab: Path | list[Path]) -> dict[str, float]:
    """Run `kind` ("updatesync" or "floor") on a cabinet in a child process of its own; the
    floor also takes a catalog in parts (`ensure_catalog_parts`), read one after another."""
    cabs = [cab] if isinstance(cab, Path) else cab
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, os.pathsep.join(map(str, cabs))],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def ensure_catalog(size: int, work: Path) -> Path:
    from updatesync.metadata.export import write_export
    from updatesync.metadata.generator import generate_catalog

    cab = work / f"catalog-{size}.cab"
    if not cab.exists():
        start = time.perf_counter()
        write_export(cab, generate_catalog(size, seed=size))
        print(
            f"  generated {cab.name} ({cab.stat().st_size / 2**20:.1f} MiB) in "
            f"{time.perf_counter() - start:.1f} s",
            flush=True,
        )
    return cab


PART_RECORDS = 100_000
"""Records an export cabinet of a catalog in parts holds (the last one fewer). One cabinet's
metadata.txt holds at most 2 GiB (65,535 blocks of 32 KiB), about 160,000 real-shape
documents: a larger catalog is exported, and imported, in parts."""


def ensure_catalog_parts(size: int, work: Path) -> list[Path]:
    """The catalog of `size` updates as one cabinet (`ensure_catalog`) when it fits in one,
    else as cabinets of PART_RECORDS records each, written from one stream of
    `generate_catalog` (categories first, so each part's updates find theirs in an earlier
    part or their own). The list of parts is written last: a generation cut short is redone."""
    if size <= PART_RECORDS:
        return [ensure_catalog(size, work)]
    from itertools import islice

    from updatesync.metadata.export import write_export
    from updatesync.metadata.generator import generate_catalog

    listing = work / f"catalog-{size}.parts"
    if listing.exists():
        return [work / name for name in listing.read_text(encoding="utf-8").split()]
    start = time.perf_counter()
    records = generate_catalog(size, seed=size)
    parts: list[Path] = []
    while True:
        part = work / f"catalog-{size}.part{len(parts) + 1:02d}.cab"
        if write_export(part, islice(records, PART_RECORDS)) == 0:
            part.unlink(missing_ok=True)
            break
        parts.append(part)
    listing.write_text("\n".join(p.name for p in parts) + "\n", encoding="utf-8")
    print(
        f"  generated catalog-{size} in {len(parts)} parts "
        f"({sum(p.stat().st_size for p in parts) / 2**20:.1f} MiB) in "
        f"{time.perf_counter() - start:.1f} s",
        flush=True,
    )
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--work", type=Path, help="keep generated catalogs here")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each N times in turn; compare the fastest"
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "CAB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], [Path(name) for name in args.child[1].split(os.pathsep)])
        return
    compile_updatesync()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        header = (
            f"{'updates':>8} {'run':<11} {'revisions':>9} {'seconds':>8} {'rev/s':>8} "
            f"{'peak RSS':>9}"
        )
        rows = []
        for size in args.sizes:
            cab = ensure_catalog(size, work)
            runs: dict[str, list[dict[str, float]]] = {"updatesync": [], "floor": []}
            for _ in range(max(1, args.repeat)):
                for kind, done in runs.items():
                    done.append(measure(kind, cab))
            ours = min(runs["updatesync"], key=lambda run: run["seconds"])
            floor = min(runs["floor"], key=lambda run: run["seconds"])
            ours["all_seconds"] = [run["seconds"] for run in runs["updatesync"]]
            floor["all_seconds"] = [run["seconds"] for run in runs["floor"]]
            rows.append((size, ours, floor))
        print(header)
        for size, ours, floor in rows:
            for name, run in (("updatesync", ours), ("floor", floor)):
                rate = run["revisions"] / run["seconds"]
                print(
                    f"{size:>8} {name:<11} {run['revisions']:>9.0f} {run['seconds']:>8.2f} "
                    f"{rate:>8.0f} {run['peak_mib']:>7.0f} MiB"
                )
            if len(ours["all_seconds"]) > 1:
                print(
                    f"{size:>8} {'runs':<11} updatesync "
                    f"{', '.join(f'{t:.2f}' for t in ours['all_seconds'])} s; floor "
                    f"{', '.join(f'{t:.2f}' for t in floor['all_seconds'])} s (in turn; the "
                    "fastest of each compared)"
                )
            time_ratio = ours["seconds"] / floor["seconds"]
            memory_ratio = ours["peak_mib"] / floor["peak_mib"]
            print(
                f"{size:>8} {'ratio':<11} updatesync takes {time_ratio:.2f}x the floor's time, "
                f"{memory_ratio:.2f}x its peak memory"
            )
            print(
                f"{size:>8} {'cpu':<11} updatesync uses "
                f"{ours['cpu_seconds'] / floor['cpu_seconds']:.2f}x the floor's CPU time "
                f"({ours['cpu_seconds']:.2f} s and {floor['cpu_seconds']:.2f} s: on a shared "
                "machine the steadier figure)"
            )
            print(
                f"{size:>8} {'documents':<11} mean {floor['doc_mean_chars']:,.0f} characters, "
                f"95th percentile {floor['doc_p95_chars']:,.0f}"
            )
        figures = {
            str(size): {
                "revisions": ours["revisions"],
                "seconds": ours["seconds"],
                "rate": ours["revisions"] / ours["seconds"],
                "peak_mib": ours["peak_mib"],
                "floor_seconds": floor["seconds"],
                "floor_rate": floor["revisions"] / floor["seconds"],
                "floor_peak_mib": floor["peak_mib"],
                "time_ratio": ours["seconds"] / floor["seconds"],
                "memory_ratio": ours["peak_mib"] / floor["peak_mib"],
                "cpu_seconds": ours["cpu_seconds"],
                "floor_cpu_seconds": floor["cpu_seconds"],
                "cpu_ratio": ours["cpu_seconds"] / floor["cpu_seconds"],
                "doc_mean_chars": floor["doc_mean_chars"],
                "doc_p95_chars": floor["doc_p95_chars"],
                "all_seconds": ours["all_seconds"],
                "floor_all_seconds": floor["all_seconds"],
            }
            for size, ours, floor in rows
        }
        print(json.dumps({"machine": machine(), "sizes": figures}))


if __name__ == "__main__":
    main()
