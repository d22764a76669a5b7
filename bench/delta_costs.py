"""Benchmark: where a delta sync's time goes when there is little to sync.

`updatesync updateserver sync` of 100 changes (bench/protocol_sync.py's delta) is mostly
fixed costs: the interpreter, the command line's imports, the store's open, the three
authorization calls, GetConfigData, the two GetRevisionIdLists, the history row and the
SoftwareDistribution.log lines. This bench sets up the same pair of servers as
protocol_sync.py (upstream A serving, downstream B synced once, A given next month's 100
changes), then runs B's delta sync again and again from a copy of B, and prints:

- the wall time of the whole command, as protocol_sync.py takes it (a process of its own);
- the same command traced from inside (`--trace`): each step's wall time;
- the same delta as a served downstream runs it (bench/protocol_sync.py's
  `delta_service_seconds`): B served with `--upstream`, the sync triggered through its
  admin API and awaited by long poll, and the run's own seconds from B's history.

Figures are medians of `--runs` runs; on a busy machine compare them with the interpreter's
own start-up, printed first. With `--against SRC` the same runs are made with another
checkout's `src` (another updatesync) for a before/after table in one run, the two
alternating run by run.

    python bench/delta_costs.py [--size 2000] [--runs 5] [--against /path/to/other/src]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import import_catalog
import protocol_sync
from bytecode import compile_updatesync

CLI = [sys.executable, "-m", "updatesync"]
HERE = Path(__file__).resolve()
STEPS = (
    "interpreter",
    "command-line imports",
    "sync modules' imports",
    "store open",
    "GetAuthConfig",
    "GetAuthorizationCookie",
    "GetCookie",
    "GetConfigData",
    "GetRevisionIdList (x2)",
    "GetUpdateData",
    "SoftwareDistribution.log",
    "history row",
    "the rest of the sync",
    "whole command, traced",
    "delta sync, its own process",
    "delta sync, served",
    "served: the run itself",
)


# -- the trace, run inside the command's process ---------------------------------------------


def trace(args: list[str]) -> None:
    """Run `updatesync ARGS` in this process, timing its steps; print them as JSON."""
    started = time.perf_counter()
    took: dict[str, float] = defaultdict(float)

    @contextmanager
    def timed(step: str) -> Any:
        begin = time.perf_counter()
        try:
            yield
        finally:
            took[step] += time.perf_counter() - begin

    with timed("command-line imports"):
        from updatesync.cli import main
    with timed("sync modules' imports"):
        import updatesync.updateserver.store as store_module
        import updatesync.updateserver.sync.run as run_module
        from updatesync.logs.softwaredistribution import SoftwareDistributionLog
        from updatesync.wsusss.client import UpstreamClient

    def wrap(owner: Any, name: str, step: Any) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return

        def timed_call(*a: Any, **k: Any) -> Any:
            with timed(step(*a, **k) if callable(step) else step):
                return original(*a, **k)

        setattr(owner, name, timed_call)

    def operation(_client: Any, request: Any, *_a: Any, **_k: Any) -> str:
        name = type(request).__name__.removesuffix("Request")
        return "GetRevisionIdList (x2)" if name == "GetRevisionIdList" else name

    opened = store_module.UpdateStore.open

    def timed_open(*a: Any, **k: Any) -> Any:
        with timed("store open"):
            return opened(*a, **k)

    store_module.UpdateStore.open = timed_open  # type: ignore[method-assign]
    wrap(UpstreamClient, "_attempts", operation)  # every call, the streamed listing too
    wrap(SoftwareDistributionLog, "write", "SoftwareDistribution.log")
    wrap(getattr(run_module, "_Run", None), "_history", "history row")
    sync = run_module.sync_from_upstream

    def timed_sync(*a: Any, **k: Any) -> Any:
        with timed("sync"):
            return sync(*a, **k)

    import updatesync.updateserver.sync as sync_package

    sync_package.sync_from_upstream = timed_sync  # type: ignore[assignment]
    cli_main = sys.modules["updatesync.cli.main"]
    if hasattr(cli_main, "sync_from_upstream"):  # a command line that imported it at its start
        cli_main.sync_from_upstream = timed_sync
    sys.argv = ["updatesync", *args]
    try:
        main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    took["whole command, traced"] = time.perf_counter() - started
    inside = ("GetAuthConfig", "GetAuthorizationCookie", "GetCookie", "GetConfigData")
    inside += ("GetRevisionIdList (x2)", "GetUpdateData", "SoftwareDistribution.log")
    took["the rest of the sync"] = took.pop("sync", 0.0) - sum(took[s] for s in inside)
    took["the rest of the sync"] -= took["history row"]
    print(json.dumps(took))


# -- the bench --------------------------------------------------------------------------------


def environment(src: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"updatesync {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def serve(data: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = import_catalog_free_port()
    process = subprocess.Popen(
        [*CLI, "updateserver", "serve", "--data", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "listening on" in line:
            return process, f"http://127.0.0.1:{port}"
    raise SystemExit(f"the upstream server did not start: exit {process.wait()}")


def import_catalog_free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wall(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True, env=env)
    return time.perf_counter() - start


def fresh_copy(kept: Path, down: Path) -> None:
    """B as it was before its delta, written back to disk before the run: the copy's dirty
    pages (the whole store) are not the delta's to write (its checkpoint's fsync could)."""
    shutil.rmtree(down)
    shutil.copytree(kept, down)
    os.sync()


class Pair:
    """Upstream A (serving) and downstream B (synced once, kept as B0) set up with `src`'s
    updatesync (None: this one); A then holds next month's 100 changes."""

    def __init__(self, work: Path, size: int, src: Path | None, name: str) -> None:
        self.env = env = environment(src)
        cab = import_catalog.ensure_catalog(size, work)
        nxt = work / f"catalog-{size}-next.cab"
        if not nxt.exists():
            run("catalog", "evolve", str(cab), "--changes", "100", "--seed", "2",
                "--out", str(nxt), env=env)  # fmt: skip
        up, self.down, self.kept = (work / f"{n}-{name}" for n in ("A", "B", "B0"))
        for folder in (up, self.down, self.kept):
            shutil.rmtree(folder, ignore_errors=True)
        run("updateserver", "import", "--data", str(up), str(cab), env=env)
        self.server, self.url = serve(up, env)
        try:
            run("updateserver", "sync", "--data", str(self.down), "--upstream", self.url, env=env)
            run("updateserver", "import", "--data", str(up), str(nxt), env=env)
        except BaseException:
            self.close()
            raise
        shutil.copytree(self.down, self.kept)
        self.figures: dict[str, list[float]] = defaultdict(list)

    def run_once(self) -> None:
        """One of each figure, each from B as it was before the delta."""
        env, figures, kept, down = self.env, self.figures, self.kept, self.down
        sync = ["updateserver", "sync", "--data", str(down), "--upstream", self.url]
        figures["interpreter"].append(wall([sys.executable, "-c", "pass"], env))
        fresh_copy(kept, down)
        figures["delta sync, its own process"].append(wall([*CLI, *sync], env))
        fresh_copy(kept, down)
        traced = subprocess.run(
            [sys.executable, str(HERE), "--trace", *sync],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        for step, seconds in json.loads(traced.stdout.strip().splitlines()[-1]).items():
            figures[step].append(seconds)
        fresh_copy(kept, down)  # as a served downstream runs it: triggered, no process
        served, itself = protocol_sync.served_delta(down, None, self.url, env)
        figures["delta sync, served"].append(served)
        figures["served: the run itself"].append(itself)

    def medians(self) -> dict[str, float]:
        return {step: statistics.median(values) for step, values in self.figures.items()}

    def close(self) -> None:
        self.server.terminate()
        self.server.wait()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--trace":
        trace(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2000, help="updates in the catalog")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, help="keep catalogs and stores here")
    parser.add_argument("--against", type=Path, help="another checkout's src, measured too")
    args = parser.parse_args()
    compile_updatesync()
    if args.against is not None:
        compile_updatesync(args.against / "updatesync")
    print(f"machine: {import_catalog.machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-delta-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        pairs: dict[str, Pair] = {}
        try:
            if args.against is not None:
                pairs["other"] = Pair(work, args.size, args.against, "other")
            pairs["this"] = Pair(work, args.size, None, "this")
            for _ in range(args.runs):  # interleaved: a busy machine weighs on both alike
                for pair in pairs.values():
                    pair.run_once()
        finally:
            for pair in pairs.values():
                pair.close()
        results = {name: pair.medians() for name, pair in pairs.items()}
    names = list(results)
    print(f"delta sync of 100 changes, {args.size} updates, median of {args.runs} runs (ms)")
    print(f"{'step':<30}" + "".join(f"{n:>10}" for n in names))
    for step in STEPS:
        print(f"{step:<30}" + "".join(f"{1000 * results[n].get(step, 0.0):>10.0f}" for n in names))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
