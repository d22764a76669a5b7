"""Benchmark: a top-level site's sync at 100k, 300k and 1M revisions, every role its own process.

For each size (`--sizes`, default 100000 300000 1000000):
- the catalog of bench/scale.py (generated once and kept in `--work`; above
  `import_catalog.PART_RECORDS` records, in parts) is imported into a stand-in upstream update
  server (`updatesync updateserver import`, one command a part), which then serves it
  (`updatesync updateserver serve`, its own process);
- a hierarchy of one site, CS1 (a central administration site) with its one SUP, runs on
  loopback as two processes (`updatesync serve FILE --role R`, by the supervisor of `serve
  --processes`), with no products or classifications set (every update);
- SyncNow at CS1's SMS Provider runs CS1's sync: its SUP syncs the whole catalog from the
  upstream over MS-WSUSSS, then the site-database phase makes every update a configuration
  item. The bench follows it by long poll on the provider, as bench/hierarchy_sync.py does.

It prints per size: the update-server phase (6704 → 6705) and the site-database phase (6705
→ 6702) from CS1's WSyncMgr.log, each also in µs per revision (flat across the sizes means
linear), the CIs and CIs per second, and the peak memory (VmHWM) of the site server, its SUP
and the upstream (flat means the catalog's size does not matter; the goals: at most 150 MiB
for a site server and for an update server, at a million revisions too). Then the machine,
and a last line of JSON. The stores (about 16 GB each at a million revisions) are removed
once a size is measured, unless --keep-stores.

    python bench/site_scale.py [--sizes 100000 300000 1000000] [--work DIR] [--keep-stores]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import import_catalog
from bytecode import compile_updatesync
from hierarchy_sync import Hierarchy, Outcome, completed, follow, site_times, sync_now
from scale import timed

SITE = "CS1"
SUP = "cs1site.contoso.com"
ONE_SITE = f"""\
[hierarchy]
name = "One site"

[[sites]]
code = "{SITE}"
fqdn = "{SUP}"
type = "cas"

[[sites.sups]]
fqdn = "{SUP}"
"""


def sync_cs1(h: Hierarchy, timeout: float) -> tuple[Outcome, float, float | None, float | None]:
    """SyncNow at CS1, followed to its end: (outcome, seconds, update-server phase, site
    database phase)."""
    after = completed(h, SITE)
    outcome = Outcome(SITE)
    start = time.monotonic()
    since = datetime.now(UTC)
    sync_now(h.site_url(SITE), SITE, h.admin())
    follow(h, SITE, after, start + timeout, outcome)
    seconds = time.monotonic() - start
    times = site_times(h.log(SITE), since, SUP)
    return outcome, seconds, times.update_server, times.site_database


def bench_size(size: int, work: Path, keep: bool, timeout: float) -> dict[str, object]:
    cabs = import_catalog.ensure_catalog_parts(size, work)
    root = work / f"site-scale-{size}"
    shutil.rmtree(root, ignore_errors=True)  # a fresh upstream, site and SUP every run
    root.mkdir(parents=True)
    h = Hierarchy(root, (), ())  # no products or classifications: every update
    import_seconds = 0.0
    for cab in cabs:
        seconds, _peak = timed(
            ["updateserver", "import", "--data", str(h.upstream_dir), str(cab)],
            dict(os.environ),
        )
        import_seconds += seconds
    source = root / "one-site.toml"
    source.write_text(ONE_SITE, encoding="utf-8")
    h.write("30m", source)
    try:
        h.start_upstream()
        h.start_roles()
        cpu_before = h.cpu()
        outcome, seconds, wsus, site_db = sync_cs1(h, timeout)
        peaks = h.peaks()
        cpu = {name: used - cpu_before[name] for name, used in h.cpu().items()}
    finally:
        h.stop()
    if not outcome.succeeded:
        raise SystemExit(f"{size}: CS1's sync failed: {outcome.error}")
    last = outcome.last or {}
    revisions = int(last.get("items_updated") or 0)
    cis = int(last.get("cis_changed") or 0)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "revisions": revisions,
        "cis": cis,
        "upstream_import_seconds": import_seconds,
        "sync_seconds": seconds,
        "update_server_seconds": wsus,
        "site_database_seconds": site_db,
        "update_server_us_per_revision": wsus / revisions * 1e6 if wsus and revisions else None,
        "site_database_us_per_ci": site_db / cis * 1e6 if site_db and cis else None,
        "cis_per_second": cis / site_db if site_db else None,
        "peak_mib": peaks,
        "cpu_seconds": cpu,
    }


def _f(value: object, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--work", type=Path, help="keep the generated catalogs here")
    parser.add_argument("--keep-stores", action="store_true", help="do not remove the stores")
    parser.add_argument("--timeout", type=float, default=4 * 3600.0, help="per sync, seconds")
    args = parser.parse_args()
    compile_updatesync()
    print(f"machine: {import_catalog.machine()}", flush=True)
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-site-scale-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(
            f"{'updates':>9} {'items':>9} {'upd.srv':>8} {'µs/rev':>7} {'site DB':>8} "
            f"{'CIs':>9} {'CIs/s':>7} {'peak site':>10} {'peak SUP':>9} {'peak upstr.':>11}",
            flush=True,
        )
        for size in args.sizes:
            r = bench_size(size, work, args.keep_stores, args.timeout)
            results[str(size)] = r
            peaks = r["peak_mib"]
            assert isinstance(peaks, dict)
            print(
                f"{size:>9} {r['revisions']:>9} {_f(r['update_server_seconds'], '>7.1f')}s "
                f"{_f(r['update_server_us_per_revision'], '>7.0f')} "
                f"{_f(r['site_database_seconds'], '>7.1f')}s {r['cis']:>9} "
                f"{_f(r['cis_per_second'], '>7.0f')} "
                f"{peaks[f'site:{SITE}']:>6.0f} MiB {peaks[f'sup:{SUP}']:>5.0f} MiB "
                f"{peaks['upstream']:>7.0f} MiB",
                flush=True,
            )
    print(json.dumps({"machine": import_catalog.machine(), "sizes": results}))


if __name__ == "__main__":
    main()
