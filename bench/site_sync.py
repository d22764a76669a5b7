"""Benchmark: a top-level site's sync, phase by phase (everything on loopback, one process).

For generated catalogs (10k and 100k updates by default): a stand-in Microsoft Update holds
the catalog; site CS1 and its SUP run in this process, built by the roles as `updatesync
serve` builds them, each on its own loopback port. The benchmark asks the provider to SyncNow
(a full first sync), then brings 100 changes and syncs again (a delta), and prints for each:
the time of the update server phase (6704 to 6705) and of the site-database phase (6705 to
6702) read from WSyncMgr.log, CIs per second in the site-database phase, and the peak
memory (RSS) of the process, with the machine it ran on. With `--database postgresql` the
site database and the SUP's store are on PostgreSQL (a throwaway database each, made on
`--postgresql-url` or UPDATESYNC_BENCH_POSTGRESQL and dropped after, named by the hierarchy
file's `database` keys); `--database both` prints SQLite's and PostgreSQL's figures side by
side (see backends.py).

    python bench/site_sync.py [--sizes 10000 100000] [--work DIR] [--database both]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx

import backends
import import_catalog
from updatesync.config import load_hierarchy
from updatesync.config.databases import password_variable
from updatesync.logs.cmtrace import read_cmtrace
from updatesync.metadata.export import read_export, write_export
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.roles import RoleContext, SiteRole, on_loopback, parse_role, start_roles
from updatesync.roles.serving import BackgroundServer
from updatesync.security.signing import create_secret
from updatesync.updateserver.importer import import_export_cabinet
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


def phases(log: Path, skip: int) -> tuple[float, float, int]:
    """(update server phase s, site database phase s, entries) of the sync after `skip`."""
    entries = list(read_cmtrace(log))[skip:]
    at = {}
    for entry in entries:
        for ident in (6704, 6705, 6702):
            if entry.message.startswith(f"STATMSG: ID={ident} "):
                at[ident] = entry.time
    wsus = (at[6705] - at[6704]).total_seconds()
    site = (at[6702] - at[6705]).total_seconds()
    return wsus, site, len(entries)


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


def run_size(
    size: int, work: Path, kind: str, server: str | None
) -> list[tuple[str, float, float, int, float]]:
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
                done = len(site.results)
                token = site.admin_token_file.read_text(encoding="utf-8").strip()
                httpx.post(
                    f"{site.url}/api/sites/CS1/sync",
                    json={"full": False},
                    headers={"authorization": f"Bearer {token}"},
                )
                site.wait_for_sync(done + 1)
                result = site.results[-1]
                if not result.succeeded:
                    raise SystemExit(f"{label} sync failed: {result.error}")
                wsus, site_phase, count = phases(log, seen)
                seen += count
                rate = result.cis_changed / site_phase if site_phase else float("nan")
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                rows.append((label, wsus, site_phase, result.cis_changed, rate, peak))
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
    server = backends.server(args)
    print(f"machine: {_machine()}")
    print(
        f"{'updates':>8} {'database':<10} {'sync':<10} {'update server':>13} {'site DB':>9} "
        f"{'CIs':>7} {'CIs/s':>7} {'peak RSS':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            for kind in backends.kinds(args):
                for label, wsus, site, cis, rate, peak in run_size(size, work, kind, server):
                    print(
                        f"{size:>8} {kind:<10} {label:<10} {wsus:>12.1f}s {site:>8.1f}s "
                        f"{cis:>7} {rate:>7.0f} {peak:>6.0f} MiB",
                        flush=True,
                    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
