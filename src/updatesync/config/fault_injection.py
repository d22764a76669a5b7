"""A test hook, off unless the environment sets it: a process pauses for good at a named point.

Tests that kill a process (SIGKILL) to show that nothing is left half-applied must kill it at
a point they choose, not after some log line, when the work may already have gone on. With
`UPDATESYNC_FAULT=pause-before:<point>:<file>` in its environment, a thread of the process
that reaches `<point>` creates `<file>` and then blocks until the process ends; the test
waits for the file, then kills the process. The variable is read once, when this module
is first imported (at start-up); a malformed value stops the process there. Only the
environment of the process can set it: nothing received over the network reaches it.

The points (`POINTS`):

- `site-database-commit`: a top-level site's sync manager has written the configuration
  items of its site-database phase, in the phase's transaction, not yet committed;
- `update-server-updates-batch`: an update server's sync from its upstream has committed
  its first batch of updates (the updates phase), more to come.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

VARIABLE = "UPDATESYNC_FAULT"
POINTS = frozenset({"site-database-commit", "update-server-updates-batch"})


@dataclass(frozen=True)
class PauseBefore:
    """Pause at `point`: create `signal_file`, then block for good."""

    point: str
    signal_file: Path

    def reached(self, point: str) -> None:
        if point != self.point:
            return
        self.signal_file.touch()
        threading.Event().wait()  # until the test kills the process


def from_environment(environ: Mapping[str, str]) -> PauseBefore | None:
    """The hook `environ` asks for, None when it asks for none."""
    value = environ.get(VARIABLE, "")
    if not value:
        return None
    action, _, rest = value.partition(":")
    point, _, file = rest.partition(":")
    if action != "pause-before" or point not in POINTS or not file:
        raise ValueError(
            f"{VARIABLE}={value!r}: expected pause-before:<point>:<file>, "
            f"the points being {', '.join(sorted(POINTS))}"
        )
    return PauseBefore(point, Path(file))


_HOOK = from_environment(os.environ)


def fault_point(point: str) -> None:
    """A named point of the product: returns at once unless the test hook pauses here."""
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}")
    if _HOOK is not None:
        _HOOK.reached(point)
