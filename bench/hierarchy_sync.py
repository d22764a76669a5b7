"""Benchmark: the article's hierarchy syncing, every role in its own OS process on loopback.

For generated catalogs (10k and 100k updates by default) the article's hierarchy (CS1 → PS1
with SUPs ps1site and ps1sys, PS2; SS1 under PS1) runs as 10 processes: a stand-in upstream
update server (`updatesync updateserver serve`), the 4 site servers and the 5 SUPs
(`updatesync serve FILE --role R`, run by the supervisor of `serve --processes`). The
benchmark asks CS1's SMS Provider to SyncNow (the first, full sync), then brings 100 changes
to the upstream (imported while it is stopped, then restarted) and asks again (a delta), and
prints for each:

- the time from SyncNow at CS1 until every site (and so every SUP) of the hierarchy is done,
  each site's sync being followed by long-polling its provider;
- per site, from its WSyncMgr.log: when its sync started and ended relative to SyncNow, its
  length, and its phases from the STATMSG lines (6701→6704 start, 6704→6705 update server,
  6705→6702 site database at CS1; at a child the update server phase ends at `Done
  synchronizing WSUS Server <default SUP>`, then the replication wait up to `Set content
  version`, then the replicas 6706→);
- the whole sync's time as a ratio to CS1's update-server phase: CS1's SUP syncing the
  catalog from the upstream over MS-WSUSSS is one full protocol sync of the same catalog, in
  the same run, so the machine's speed cancels out of this ratio;
- the critical path: the chain of sites whose syncs end last (CS1, then the child that ends
  last, then its child...), each step split into work (the update server phases, the
  site-database phase, the replicas) and waiting (from the parent's end, or SyncNow, to
  the site's start; 6701→6704; the replication wait; what is left of the site's sync);
- the peak memory (VmHWM) of every process, after the full sync and at the end, and the CPU
  time each used during the full sync (where two cores went);
- the machine it ran on, and the criteria of the hierarchy file.

A site whose sync failed is printed FAILED with its error; the benchmark then exits 1.

    python bench/hierarchy_sync.py [--sizes 10000 100000] [--criteria everything|products]
                                   [--work DIR] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import import_catalog
from bytecode import compile_updatesync
from docstats import catalog_doc_stats, doc_stats_line
from updatesync.config import load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.logs.cmtrace import LogEntry, read_cmtrace
from updatesync.metadata.export import read_export, write_export
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.roles import free_port, loopback_file, parse_role
from updatesync.roles.supervisor import ChildProcess, Supervisor, update_server_process
from updatesync.security.signing import HmacAuth, create_secret, load_secret
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.license_terms import add_generated_license_files
from updatesync.updateserver.store import UpdateStore

CLASSES = ("e6cf1350-c01b-414d-a61f-263d14d133b4", "0fa1201d-4330-4fa8-8ae9-b877473b6441")
"""Critical and Security Updates, the classifications of bench/site_sync.py."""

SITES = tuple(  # code, parent, default SUP: the article's hierarchy, top down
    (site.code, site.parent, site.sups[0].fqdn)
    for site in load_hierarchy(example_hierarchy()).walk()
)
START_TIMEOUT = 120.0
REPLICA_ENDS = ("Done synchronizing WSUS Server", "Failed to synchronize replica")
"""The lines that end a replica SUP's sync in WSyncMgr.log."""
LONG_POLL = 60.0
"""The longest wait the provider's long poll accepts (seconds)."""


def _machine() -> str:
    return import_catalog.machine()


def peak_mib(pid: int) -> float:
    """VmHWM (peak resident set) of a running process, MiB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a running process has used so far, seconds (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the hierarchy ---------------------------------------------------------------------------


class Hierarchy:
    """The hierarchy file, the upstream store and the 10 processes of one catalog size."""

    def __init__(self, root: Path, products: tuple[str, ...], classifications: tuple[str, ...]):
        self.root = root
        self.data = root / "data"
        self.upstream_dir = root / "upstream"
        self.file = root / "hierarchy.toml"
        self.secret = root / "hierarchy.secret"
        self.upstream_port = free_port()
        self.products = products
        self.classifications = classifications
        self.upstream: ChildProcess | None = None
        self.roles: Supervisor | None = None
        self.site_ports: dict[str, int] = {}

    def write(self, replication_timeout: str, source: Path | None = None) -> None:
        """The hierarchy file `source` (default: the article's, the example file), every role
        on loopback."""
        criteria = (
            {"products": list(self.products), "classifications": list(self.classifications)}
            if self.products
            else None
        )
        ports = loopback_file(
            source or example_hierarchy(),
            self.file,
            settings={
                "data_dir": self.data,
                "secret_file": self.secret,
                "replication_timeout": replication_timeout,
                "schedule": "36500d",  # no scheduled sync during the benchmark
                "schedule_start": None,
                "alerts": None,
                # keep every line: the phases are read from the logs
                "logs": {"max_size": "4GB", "tz_bias": 0},
                "upstream": {"kind": "wsus", "url": f"http://127.0.0.1:{self.upstream_port}"},
                "criteria": criteria,
            },
        )
        self.site_ports = {
            name.split(":", 1)[1]: port for name, port in ports.items() if name.startswith("site:")
        }
        create_secret(self.secret)

    def start_upstream(self) -> None:
        output = self.root / "upstream.out"
        self.upstream = update_server_process(self.upstream_dir, self.upstream_port, output)
        self.upstream.start().wait_ready(time.monotonic() + START_TIMEOUT)

    def stop_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.stop()
            self.upstream = None

    def start_roles(self) -> None:
        """Every SUP, then every site, each its own process (`serve FILE --role R`)."""
        names = parse_role(load_hierarchy(self.file), "all")
        self.roles = Supervisor(
            self.file, names, self.root / "processes", start_timeout=START_TIMEOUT
        ).start()

    def exit_code(self, name: str) -> int | None:
        return self.roles.children[name].poll() if self.roles is not None else None

    def pids(self) -> dict[str, int]:
        pids = {
            name: child.pid for name, child in (self.roles.children if self.roles else {}).items()
        }
        if self.upstream is not None:
            pids = {"upstream": self.upstream.pid, **pids}
        return pids

    def peaks(self) -> dict[str, float]:
        return {name: peak_mib(pid) for name, pid in self.pids().items()}

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    def stop(self) -> None:
        if self.roles is not None:
            self.roles.stop()
            self.roles = None
        self.stop_upstream()

    def signed(self) -> HmacAuth:
        """Reading a site's provider as a role of the hierarchy (its tokens may not have
        replicated to a child site yet)."""
        return HmacAuth(load_secret(self.secret), "CS1")

    def admin(self) -> dict[str, str]:
        """The Full Administrator's header (CS1 wrote its token at its first start)."""
        token = (self.data / "CS1" / "admin.token").read_text(encoding="utf-8").strip()
        return {"authorization": f"Bearer {token}"}

    def site_url(self, code: str) -> str:
        return f"http://127.0.0.1:{self.site_ports[code]}"

    def log(self, code: str) -> Path:
        return self.data / code / "logs" / "WSyncMgr.log"


# -- following a sync ------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one site's sync ended, seen from its provider."""

    code: str
    succeeded: bool = False
    error: str | None = None
    ran: bool = True
    """False when the site never synced: its parent's sync failed."""
    last: dict[str, Any] | None = None
    done_at: datetime | None = None
    done: threading.Event = field(default_factory=threading.Event)


def completed(h: Hierarchy, code: str) -> int:
    answer = httpx.get(f"{h.site_url(code)}/api/sites/{code}/syncs", timeout=30, auth=h.signed())
    answer.raise_for_status()
    return int(answer.json()["completed"])


def follow(h: Hierarchy, code: str, after: int, deadline: float, outcome: Outcome) -> None:
    """Long-poll the site's provider until it finished the sync after the `after`-th."""
    try:
        with httpx.Client(
            base_url=h.site_url(code), timeout=LONG_POLL + 30, auth=h.signed()
        ) as client:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    outcome.error = "did not finish its sync within the benchmark's timeout"
                    return
                answer = client.get(
                    f"/api/sites/{code}/syncs",
                    params={"after": after, "wait": min(LONG_POLL, max(left, 1.0))},
                )
                answer.raise_for_status()
                view = answer.json()
                if view["completed"] > after:
                    outcome.done_at = datetime.now(UTC)
                    outcome.last = view["last"]
                    outcome.succeeded = bool(view["last"]["succeeded"])
                    outcome.error = view["last"].get("error")
                    return
    except httpx.HTTPError as exc:
        exit_code = h.exit_code(f"site:{code}")
        process = "" if exit_code is None else f" (its process exited with code {exit_code})"
        outcome.error = f"its provider did not answer: {exc}{process}"
    finally:
        outcome.done.set()


def sync_now(url: str, code: str, headers: dict[str, str]) -> None:
    """SyncNow at site `code` through its SMS Provider at `url` (the sync starts, 202)."""
    answer = httpx.post(
        f"{url}/api/sites/{code}/sync", json={"full": False}, timeout=30, headers=headers
    )
    if answer.status_code != 202:
        raise SystemExit(f"SyncNow at {code}: HTTP {answer.status_code}: {answer.text[:300]}")


def sync_hierarchy(h: Hierarchy, timeout: float) -> tuple[datetime, dict[str, Outcome]]:
    """SyncNow at CS1; wait for every site. (the SyncNow moment, each site's outcome)."""
    base = {code: completed(h, code) for code, _, _ in SITES}
    outcomes = {code: Outcome(code) for code, _, _ in SITES}
    deadline = time.monotonic() + timeout

    def watch(code: str, parent: str | None) -> None:
        if parent is not None:
            outcomes[parent].done.wait()
            if not outcomes[parent].succeeded:  # a child syncs on its parent's success only
                outcomes[code].ran = False
                outcomes[code].error = f"parent site {parent} did not sync"
                outcomes[code].done.set()
                return
        follow(h, code, base[code], deadline, outcomes[code])

    threads = [
        threading.Thread(target=watch, args=(code, parent), name=f"follow {code}", daemon=True)
        for code, parent, _ in SITES
    ]
    for thread in threads:
        thread.start()
    start = datetime.now(UTC)
    sync_now(h.site_url("CS1"), "CS1", h.admin())
    for thread in threads:
        thread.join()
    return start, outcomes


# -- reading WSyncMgr.log --------------------------------------------------------------------


@dataclass
class SiteTimes:
    """A site's sync as its WSyncMgr.log shows it; times in seconds (None: not seen)."""

    start: float | None = None
    end: float | None = None
    prep: float | None = None
    update_server: float | None = None
    replication_wait: float | None = None
    site_database: float | None = None
    replicas: float | None = None


def _statmsg(entry: LogEntry) -> int | None:
    if not entry.message.startswith("STATMSG: ID="):
        return None
    return int(entry.message[len("STATMSG: ID=") :].split(" ", 1)[0])


def site_times(log: Path, since: datetime, default_sup: str) -> SiteTimes:
    """The phases of the first sync written to `log` at or after `since`."""
    times = SiteTimes()
    if not log.exists():
        return times
    floor = since.replace(microsecond=since.microsecond // 1000 * 1000)
    entries = [e for e in read_cmtrace(log) if e.time is not None and e.time >= floor]
    if not entries:
        return times
    at: dict[str, datetime] = {}
    done_default = f"Done synchronizing WSUS Server {default_sup}".lower()
    for entry in entries:
        assert entry.time is not None
        text = entry.message
        ident = _statmsg(entry)
        if ident is not None:
            at.setdefault(str(ident), entry.time)
        elif text.lower() == done_default:
            at.setdefault("default done", entry.time)
        elif text.startswith("Set content version") and "default done" in at:
            at.setdefault("version", entry.time)
        elif "6706" in at and text.startswith(REPLICA_ENDS):
            at["replica done"] = entry.time
        if text.startswith("Sync time:") or text.startswith("Sync failed. Will retry"):
            at["end"] = entry.time
            break

    def span(a: str, b: str) -> float | None:
        if a in at and b in at:
            return (at[b] - at[a]).total_seconds()
        return None

    first = entries[0].time
    assert first is not None
    times.start = (first - since).total_seconds()
    times.end = (at["end"] - since).total_seconds() if "end" in at else None
    times.prep = span("6701", "6704")
    if "6705" in at:  # the top-level site: update server, then site database
        times.update_server = span("6704", "6705")
        times.site_database = span("6705", "6702")
    else:  # a child: update server, then database replication brings the CIs
        times.update_server = span("6704", "default done")
        times.replication_wait = span("default done", "version")
    times.replicas = span("6706", "replica done")
    return times


# -- one catalog size ------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    seconds: float
    outcomes: dict[str, Outcome]
    times: dict[str, SiteTimes]
    figures: dict[str, Any] = field(default_factory=dict)


def catalogs(size: int, changes: int, work: Path) -> tuple[Path, Path]:
    month1, month2 = work / f"m1-{size}.cab", work / f"m2-{size}-{changes}.cab"
    if not month1.exists():
        write_export(month1, generate_catalog(size, seed=size))
    if not month2.exists():
        with read_export(month1) as previous:
            write_export(month2, evolve_catalog(previous.records(), changes, seed=size + 1))
    print(f"  {size}: {doc_stats_line(catalog_doc_stats(month1))}", flush=True)
    return month1, month2


def one_sync(h: Hierarchy, label: str, timeout: float) -> Run:
    start, outcomes = sync_hierarchy(h, timeout)
    ends = [o.done_at for o in outcomes.values() if o.done_at is not None]
    seconds = (max(ends) - start).total_seconds() if ends else float("nan")
    times = {code: site_times(h.log(code), start, sup) for code, _, sup in SITES}
    return Run(label, seconds, outcomes, times)


def run_size(
    size: int, changes: int, work: Path, criteria: str, args: argparse.Namespace
) -> tuple[list[Run], dict[str, float], dict[str, float], dict[str, float]]:
    month1, month2 = catalogs(size, changes, work)
    root = work / f"hierarchy-{size}"
    shutil.rmtree(root, ignore_errors=True)  # fresh sites and update servers every run
    with UpdateStore.open(root / "upstream") as store:
        import_export_cabinet(store, month1)
        add_generated_license_files(store)
        products = tuple(c.update_id for c in store.categories("Product"))
    if criteria == "everything":
        products, classifications = (), ()
    else:
        classifications = CLASSES
    h = Hierarchy(root, products, classifications)
    h.write(args.replication_timeout)
    runs: list[Run] = []
    try:
        h.start_upstream()
        h.start_roles()
        cpu_before = h.cpu()
        runs.append(one_sync(h, "full", args.timeout))
        after_full = h.peaks()
        cpu_full = {name: used - cpu_before.get(name, 0.0) for name, used in h.cpu().items()}
        h.stop_upstream()  # next month's catalog, imported while the upstream is stopped
        with UpdateStore.open(h.upstream_dir) as store:
            import_export_cabinet(store, month2)
            add_generated_license_files(store)
        h.start_upstream()
        runs.append(one_sync(h, f"delta {changes}", args.timeout))
        at_end = h.peaks()
    finally:
        h.stop()
    return runs, after_full, at_end, cpu_full


# -- printing --------------------------------------------------------------------------------


def _s(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _result(outcome: Outcome) -> str:
    return "ok" if outcome.succeeded else ("FAILED" if outcome.ran else "NOT RUN")


def print_run(size: int, run: Run) -> bool:
    """Print one sync of the hierarchy; False if a site failed. Its figures go to
    `run.figures` for the JSON line."""
    ok = all(o.succeeded for o in run.outcomes.values())
    print(
        f"\n{size} updates, {run.label} sync: SyncNow at CS1 → every site and SUP done "
        f"{run.seconds:.1f} s{'' if ok else '  (NOT every site succeeded)'}",
        flush=True,
    )
    print(
        f"  {'site':<4} {'result':<7} {'start':>7} {'end':>7} {'sync':>6} {'6701→4':>7} "
        f"{'upd.srv':>7} {'repl.wt':>7} {'site DB':>7} {'replica':>7} {'items':>7} "
        f"{'CIs':>7} {'version':>7}"
    )
    for code, outcome in run.outcomes.items():
        t = run.times[code]
        last = outcome.last or {}
        length = t.end - t.start if t.end is not None and t.start is not None else None
        print(
            f"  {code:<4} {_result(outcome):<7} {_s(t.start, True):>7} "
            f"{_s(t.end, True):>7} {_s(length):>6} {_s(t.prep):>7} {_s(t.update_server):>7} "
            f"{_s(t.replication_wait):>7} {_s(t.site_database):>7} {_s(t.replicas):>7} "
            f"{last.get('items_updated', '-'):>7} {last.get('cis_changed', '-'):>7} "
            f"{last.get('content_version', '-'):>7}"
        )
    for code, outcome in run.outcomes.items():
        if not outcome.succeeded:
            print(f"  {code} {_result(outcome)}: {outcome.error}")
    waiting, work = print_critical_path(run) if ok else (float("nan"), float("nan"))
    # CS1's SUP syncing from the upstream is one full protocol sync of the same catalog, in
    # the same run: the ratio to it is the one in which the machine's speed cancels out (on
    # a shared VM that speed moved by a third within an hour between separate benches).
    top = run.times[SITES[0][0]].update_server if run.label == "full" else None
    ratio = run.seconds / top if ok and top else float("nan")
    if ok and top:
        print(
            f"  {run.seconds:.1f} s = {ratio:.2f}x CS1's SUP syncing the catalog from the "
            f"upstream ({top:.1f} s, one protocol sync in this run)"
        )
    run.figures = {
        "seconds": run.seconds,
        "ratio_to_top_sup_sync": ratio,
        "critical_path": critical_path(run),
        "waiting_seconds": waiting,
        "work_seconds": work,
        "sites": {code: asdict(times) for code, times in run.times.items()},
        "ok": ok,
    }
    return ok


def critical_path(run: Run) -> list[str]:
    """The sites whose syncs end last, top down: CS1, then the child that ended last..."""
    children: dict[str | None, list[str]] = {}
    for code, parent, _ in SITES:
        children.setdefault(parent, []).append(code)
    path: list[str] = []
    here: str | None = None
    while children.get(here):
        ends = {c: run.times[c].end for c in children[here]}
        here = max(ends, key=lambda c: ends[c] if ends[c] is not None else -1.0)
        path.append(here)
    return path


def print_critical_path(run: Run) -> tuple[float, float]:
    """Each site of the critical path: its waiting and its work; (waiting, work) in all."""
    print(f"  critical path: {' → '.join(critical_path(run))}")
    print(
        f"    {'site':<4} {'notified':>8} {'6701→4':>7} {'repl.wt':>7} {'other':>7} "
        f"{'| work':>7} (update server + site DB + replicas)"
    )
    waited = worked = 0.0
    previous_end = 0.0
    for code in critical_path(run):
        t = run.times[code]
        if t.start is None or t.end is None:
            print(f"    {code:<4} (not in its log)")
            return float("nan"), float("nan")
        work = sum(x or 0.0 for x in (t.update_server, t.site_database, t.replicas))
        known = sum(x or 0.0 for x in (t.prep, t.replication_wait))
        other = max(0.0, (t.end - t.start) - work - known)
        notified = t.start - previous_end
        print(
            f"    {code:<4} {notified:>8.2f} {_s(t.prep):>7} {_s(t.replication_wait):>7} "
            f"{other:>7.2f} {'| ' + format(work, '.2f'):>7}"
        )
        waited += notified + known + other
        worked += work
        previous_end = t.end
    tail = run.seconds - previous_end
    print(
        f"    waiting {waited + max(tail, 0.0):.2f} s, work {worked:.2f} s "
        f"(the last site's end to the bench seeing it: {tail:.2f} s)"
    )
    return waited + max(tail, 0.0), worked


def print_memory(
    size: int, after_full: dict[str, float], at_end: dict[str, float], cpu_full: dict[str, float]
) -> None:
    print(f"\n{size} updates, peak memory (VmHWM), and CPU time the full sync took:")
    print(f"  {'process':<26} {'after full':>10} {'at end':>10} {'CPU (full)':>11}")
    for name in at_end:
        note = "  (restarted for the delta)" if name == "upstream" else ""
        print(
            f"  {name:<26} {after_full.get(name, float('nan')):>6.0f} MiB "
            f"{at_end[name]:>6.0f} MiB {cpu_full.get(name, float('nan')):>9.1f} s{note}"
        )
    total = sum(at_end.values())
    print(
        f"  {'sum':<26} {sum(after_full.values()):>6.0f} MiB {total:>6.0f} MiB "
        f"{sum(cpu_full.values()):>9.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--criteria",
        choices=("everything", "products"),
        default="everything",
        help="everything: no products/classifications in the hierarchy file; products: every "
        "generated product with the classifications of bench/site_sync.py",
    )
    parser.add_argument("--changes", type=int, default=100, help="changes before the delta")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per sync, seconds")
    parser.add_argument("--replication-timeout", default="30m", help="of the hierarchy file")
    parser.add_argument("--work", type=Path, help="keep catalogs and data here")
    args = parser.parse_args()
    compile_updatesync()
    print(f"machine: {_machine()}")
    if args.criteria == "everything":
        print("criteria: everything (no products or classifications in the hierarchy file)")
    else:
        print(
            "criteria: every generated product × Critical Updates, Security Updates "
            "(the classifications of bench/site_sync.py)"
        )
    print(
        "hierarchy: CS1 (CAS) → PS1 (SUPs ps1site, ps1sys), PS2; SS1 under PS1; 4 sites + "
        "5 SUPs + the upstream, each its own process on loopback"
    )
    print(
        "times in s; start/end relative to SyncNow at CS1; phases from WSyncMgr.log: "
        "6701→6704, update server 6704→6705 (CS1) or →Done synchronizing its default SUP, "
        "replication wait →Set content version, site DB 6705→6702, replicas 6706→done",
        flush=True,
    )
    failed = False
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-hierarchy-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for size in args.sizes:
            runs, after_full, at_end, cpu_full = run_size(
                size, args.changes, work, args.criteria, args
            )
            for run in runs:
                failed |= not print_run(size, run)
            print_memory(size, after_full, at_end, cpu_full)
            figures[str(size)] = {
                **{run.label.split()[0]: run.figures for run in runs},
                "peak_mib_after_full": after_full,
                "peak_mib_at_end": at_end,
                "cpu_seconds_full": cpu_full,
            }
    print(json.dumps(figures))
    if failed:
        print("\nat least one site's sync FAILED", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
