"""Benchmark: a top-level site's sync, phase by phase (everything on loopback, one process).

For generated catalogs (10k and 100k updates by default): a stand-in Microsoft Update holds
the catalog; site CS1 and its SUP run in this process, built by the roles as `updatesync
serve` builds them, each on its own loopback port. The benchmark asks the provider to SyncNow
(a full first sync), then brings 100 changes and syncs again (a delta), and prints for each:
the time of the update server phase (6704 to 6705) and of the site-database phase (6705 to
6702) read from WSyncMgr.log, CIs per second in the site-database phase, the peak memory
(RSS) of the process, and how far RSS rose during the site-database phase (sampled every
20 ms: what that phase adds, the update server answering it included; flat means it streams),
with the machine it ran on and the catalog's document size (mean and 95th percentile of the
revision documents, in characters). The last line is JSON: per `size/database/sync` the
figures printed. With `--database postgresql` the
site database and the SUP's store are on PostgreSQL (a throwaway database each, made on
`--postgresql-url` or UPDATESYNC_BENCH_POSTGRESQL and dropped after, named by the hierarchy
file's `database` keys); `--database both` prints SQLite's and PostgreSQL's figures side by
side (see backends.py).

    python bench/site_sync.py [--sizes 10000 100000] [--work DIR] [--database both]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx

import backends
import import_catalog
from bytecode import compile_updatesync
from docstats import catalog_doc_stats
from updatesync.config import load_hierarchy
from updatesync.config.databases import password_variable
from updatesync.logs.cmtrace import read_cmtrace
from updatesync.metadata.export import read_export, write_export
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.roles import RoleContext, SiteRole, on_loopback, parse_role, start_roles
from updatesync.roles.serving import BackgroundServer
from updatesync.security.signing import create_secret
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.license_terms import add_generated_license_files
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.service import create_app

CLASSES = ("e6cf1350-c01b-414d-a61f-263d14d133b4", "0fa1201d-4330-4fa8-8ae9-b877473b6441")
HIERARCHY = """
[hierarchy]
name = "Bench"
data_dir = "{data}"
schedule = "36500d"  # no scheduled sync during the benchmark

[hierarchy.logs]
max_size = "1GB"  # keep every line: the phases are read from the log

[hierarchy.upstream]
kind = "wsus"
url = "{upstream}"

[hierarchy.criteria]
products = [{products}]
classifications = [{classifications}]

[[sites]]
code = "CS1"
fqdn = "cs1site.contoso.com"
type = "cas"
{site_database}
[[sites.sups]]
fqdn = "cs1site.contoso.com"
{sup_database}
"""
SITE, SUP = "CS1", "cs1site.contoso.com"


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f'"{v}"' for v in values)


def _machine() -> str:
    return import_catalog.machine()


def phase_times(log: Path, skip: int) -> tuple[dict[int, datetime], int]:
    """The times of 6704, 6705 and 6702 in the sync after `skip` entries, and the entries."""
    entries = list(read_cmtrace(log))[skip:]
    at = {}
    for entry in entries:
        for ident in (6704, 6705, 6702):
            if entry.message.startswith(f"STATMSG: ID={ident} ") and entry.time is not None:
                at[ident] = entry.time
    return at, len(entries)


def phases(log: Path, skip: int) -> tuple[float, float, int]:
    """(update server phase s, site database phase s, entries) of the sync after `skip`."""
    at, count = phase_times(log, skip)
    wsus = (at[6705] - at[6704]).total_seconds()
    site = (at[6702] - at[6705]).total_seconds()
    return wsus, site, count


def _rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """The process's RSS every 20 ms, with the time (UTC), on a thread of its own."""

    def __init__(self) -> None:
        self.samples: list[tuple[datetime, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.samples.append((datetime.now(UTC), _rss_mib()))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def growth(self, start: datetime, end: datetime) -> float:
        """How far RSS rose between `start` and `end` above what it was at `start` (NaN when
        no sample fell between them)."""
        inside = [rss for at, rss in self.samples if start <= at <= end]
        return max(inside) - inside[0] if inside else float("nan")


def doc_sizes(cabinet: Path) -> tuple[float, float]:
    """(mean, 95th percentile) of the revision documents' size in characters (docstats)."""
    stats = catalog_doc_stats(cabinet)
    return stats["doc_mean_chars"], stats["doc_p95_chars"]


def databases(stack: ExitStack, kind: str, server: str | None, size: int) -> dict[str, str]:
    """The hierarchy file's `database` lines of the site and of its SUP: none for SQLite (the
    files in their data folders), a throwaway PostgreSQL database each, the password (if the
    server's URL has one) in each role's variable."""
    lines = {"site_database": "", "sup_database": ""}
    if kind != "postgresql":
        return lines
    assert server is not None
    for line, role in (("site_database", SITE), ("sup_database", SUP)):
        db = stack.enter_context(backends.throwaway(server, f"{line[:4]}{size}"))
        lines[line] = f'database = "{db.url}"'
        if db.password:
            os.environ[password_variable(role)] = db.password
    return lines


Row = tuple[str, float, float, int, float, float, float]
"""(sync, update server s, site DB s, CIs, CIs/s, peak RSS MiB, RSS growth in the site DB
phase MiB)."""


def run_size(size: int, work: Path, kind: str, server: str | None) -> list[Row]:
    month1, month2 = work / f"m1-{size}.cab", work / f"m2-{size}.cab"
    if not month1.exists():
        write_export(month1, generate_catalog(size, seed=size))
    if not month2.exists():
        with read_export(month1) as previous:
            write_export(month2, evolve_catalog(previous.records(), 100, seed=size + 1))
    data = work / f"run-{size}-{kind}"
    shutil.rmtree(data, ignore_errors=True)  # a fresh site and update servers every run
    mu = UpdateStore.open(data / "microsoft-update")
    import_export_cabinet(mu, month1)
    add_generated_license_files(mu)
    rows = []
    with ExitStack() as stack:
        up = stack.enter_context(BackgroundServer(create_app(StoreBackend(mu))))
        file = data / "hierarchy.toml"
        file.write_text(
            HIERARCHY.format(
                data=data.as_posix(),
                upstream=up.url,
                products=_listed(tuple(c.update_id for c in mu.categories("Product"))),
                classifications=_listed(CLASSES),
                **databases(stack, kind, server, size),
            ),
            encoding="utf-8",
        )
        hierarchy, socks = on_loopback(load_hierarchy(file))
        context = RoleContext(hierarchy, create_secret(hierarchy.secret_path))
        roles = start_roles(context, parse_role(hierarchy, "all"), socks=socks)
        try:
            (site,) = [r for r in roles if isinstance(r, SiteRole)]
            log = site.log_dir / "WSyncMgr.log"
            seen = 0
            for label, cabinet in (("full", None), ("delta 100", month2)):
                if cabinet is not None:
                    import_export_cabinet(mu, cabinet)
                    add_generated_license_files(mu)
                done = len(site.results)
                token = site.admin_token_file.read_text(encoding="utf-8").strip()
                httpx.post(
                    f"{site.url}/api/sites/CS1/sync",
                    json={"full": False},
                    headers={"authorization": f"Bearer {token}"},
                )
                with RssSampler() as rss:
                    site.wait_for_sync(done + 1)
                result = site.results[-1]
                if not result.succeeded:
                    raise SystemExit(f"{label} sync failed: {result.error}")
                at, _count = phase_times(log, seen)
                wsus, site_phase, count = phases(log, seen)
                seen += count
                rate = result.cis_changed / site_phase if site_phase else float("nan")
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                phase_growth = rss.growth(at[6705], at[6702])
                rows.append((label, wsus, site_phase, result.cis_changed, rate, peak, phase_growth))
        finally:
            for role in reversed(roles):
                role.stop()
    mu.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--work", type=Path)
    backends.add_arguments(parser)
    args = parser.parse_args()
    compile_updatesync()
    server = backends.server(args)
    print(f"machine: {_machine()}")
    print(
        f"{'updates':>8} {'database':<10} {'sync':<10} {'update server':>13} {'site DB':>9} "
        f"{'CIs':>7} {'CIs/s':>7} {'peak RSS':>9} {'site DB +RSS':>12}"
    )
    figures: dict[str, dict[str, float | int]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            for kind in backends.kinds(args):
                rows = run_size(size, work, kind, server)
                mean, p95 = doc_sizes(work / f"m1-{size}.cab")
                for label, wsus, site, cis, rate, peak, growth in rows:
                    print(
                        f"{size:>8} {kind:<10} {label:<10} {wsus:>12.1f}s {site:>8.1f}s "
                        f"{cis:>7} {rate:>7.0f} {peak:>6.0f} MiB {growth:>+8.1f} MiB",
                        flush=True,
                    )
                    figures[f"{size}/{kind}/{label}"] = {
                        "updates": size,
                        "update_server_seconds": round(wsus, 3),
                        "site_database_seconds": round(site, 3),
                        "cis": cis,
                        "cis_per_second": round(rate, 1),
                        "peak_rss_mib": round(peak, 1),
                        "site_database_rss_growth_mib": round(growth, 1),
                        "doc_mean_chars": round(mean),
                        "doc_p95_chars": p95,
                    }
            print(f"documents of {size}: mean {mean:,.0f} characters, 95th percentile {p95:,}")
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
