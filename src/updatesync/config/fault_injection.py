"""A test hook, off unless the environment sets it: a process pauses at a named point, for
good or until the test releases it.

Tests that kill a process (SIGKILL) to show that nothing is left half-applied must kill it at
a point they choose, not after some log line, when the work may already have gone on. With
`UPDATESYNC_FAULT=pause-before:<point>:<file>` in its environment, a thread of the process
that reaches `<point>` creates `<file>` and then blocks until the process ends; the test
waits for the file, then kills the process. With `UPDATESYNC_FAULT=hold-at:<point>:<file>`,
the first thread that reaches `<point>` creates `<file>` and waits there until the test
removes it, then goes on (once: later arrivals go straight on); the test does what it wants
the process to meet (a network link cut, say) while it holds. The variable is read once,
when this module is first imported (at start-up); a malformed value stops the process there.
Only the environment of the process can set it: nothing received over the network reaches it.

The points (`POINTS`):

- `site-database-commit`: a top-level site's sync manager has written the configuration
  items of its site-database phase, in the phase's transaction, not yet committed;
- `update-server-updates-batch`: an update server's sync from its upstream has committed
  its first batch of updates (the updates phase), more to come;
- `replication-between-pages`: a child site's database replication has applied (committed)
  a page of its parent's changes that does not reach the parent's head, and has not yet
  asked for the next page.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

VARIABLE = "UPDATESYNC_FAULT"
POINTS = frozenset(
    {"site-database-commit", "update-server-updates-batch", "replication-between-pages"}
)
ACTIONS = ("pause-before", "hold-at")
HOLD_POLL_SECONDS = 0.05
"""How often a held thread looks whether its file is gone (another process removes it)."""


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


@dataclass(frozen=True)
class HoldAt:
    """Hold the first thread that reaches `point`: create `signal_file`, wait until it is
    removed, then go on. Later arrivals (and other points) go straight on."""

    point: str
    signal_file: Path
    _taken: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def reached(self, point: str) -> None:
        if point != self.point:
            return
        with self._lock:
            if self._taken.is_set():
                return
            self._taken.set()
        self.signal_file.touch()
        released = threading.Event()  # another process releases it: look at the file
        while self.signal_file.exists():
            released.wait(HOLD_POLL_SECONDS)


def from_environment(environ: Mapping[str, str]) -> PauseBefore | HoldAt | None:
    """The hook `environ` asks for, None when it asks for none."""
    value = environ.get(VARIABLE, "")
    if not value:
        return None
    action, _, rest = value.partition(":")
    point, _, file = rest.partition(":")
    if action not in ACTIONS or point not in POINTS or not file:
        raise ValueError(
            f"{VARIABLE}={value!r}: expected pause-before:<point>:<file> or "
            f"hold-at:<point>:<file>, the points being {', '.join(sorted(POINTS))}"
        )
    if action == "hold-at":
        return HoldAt(point, Path(file))
    return PauseBefore(point, Path(file))


_HOOK = from_environment(os.environ)


def fault_point(point: str) -> None:
    """A named point of the product: returns at once unless the test hook pauses here."""
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}")
    if _HOOK is not None:
        _HOOK.reached(point)
