"""The peak memory of an `updatesync` command in a child process, measured as the benches
measure it (`bench/peak.py`: the child's own VmHWM, written at exit; `wait4`'s `ru_maxrss`
would carry the test worker's own size into the child's figure)."""

from __future__ import annotations

import importlib.util
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "bench_peak", Path(__file__).resolve().parents[2] / "bench" / "peak.py"
)
assert _SPEC is not None and _SPEC.loader is not None
_peak = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_peak)


@dataclass(frozen=True)
class Measured:
    """A finished command: its exit status, its output (stdout and stderr), its peak MiB."""

    returncode: int
    output: str
    peak_mib: float


def run_measured(args: list[str], scratch: Path) -> Measured:
    """Run `updatesync *args` to its end; its peak memory is read from a file in `scratch`."""
    peak_file = scratch / "peak-kib"
    done = subprocess.run(
        _peak.peak_command(args, peak_file),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    peak = _peak.read_peak_mib(peak_file)
    assert peak is not None, f"updatesync {' '.join(args)} wrote no peak:\n{done.stdout}"
    return Measured(done.returncode, done.stdout, peak)
