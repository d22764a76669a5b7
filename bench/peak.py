"""Peak memory of an `updatesync` command run as a child process, as the child itself saw it.

`wait4`'s `ru_maxrss` will not do: Linux keeps the largest resident size a process ever had
across fork and exec, so a child started by a large parent (a test worker that has run many
tests, a bench that generated a catalog in-process) reports at least what that parent held
when it started the child. VmHWM in `/proc/self/status` belongs to the memory map, which exec
makes afresh: the child writes it to a file when it exits (`atexit`, so a normal exit or an
error exit; a killed child writes nothing).

    command = peak_command(["updateserver", "sync", ...], peak_file)
    subprocess.run(command, ...)
    peak = read_peak_mib(peak_file)      # None if the child wrote nothing

The tests that bound a command's memory (tests/updateserver/sync/test_flat_memory.py,
tests/updateserver/test_large_catalog.py) measure with this module too.
"""

from __future__ import annotations

import sys
from pathlib import Path

_WRAPPER = """\
import atexit, runpy, sys
_path = sys.argv.pop(1)
def _peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                with open(_path, "w") as out:
                    out.write(line.split()[1])
atexit.register(_peak)
sys.argv[0] = "updatesync"
runpy.run_module("updatesync", run_name="__main__", alter_sys=True)
"""


def peak_command(args: list[str], peak_file: Path) -> list[str]:
    """`python -m updatesync *args`, writing its own peak memory (KiB) to `peak_file` at exit."""
    return [sys.executable, "-c", _WRAPPER, str(peak_file), *args]


def read_peak_mib(peak_file: Path) -> float | None:
    """The peak the child wrote (MiB), or None when it wrote none (killed, or not Linux)."""
    try:
        return int(peak_file.read_text().strip()) / 1024
    except (OSError, ValueError):
        return None


def own_peak_mib() -> float:
    """This process's own peak resident size (MiB): VmHWM, not `ru_maxrss` (see above)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")
