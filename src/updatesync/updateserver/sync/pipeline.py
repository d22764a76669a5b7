"""Three stages of a sync that overlap: fetch, parse, commit, linked by bounded queues.

`run_stages(produce, transform, consume)` runs `produce` in a thread of its own (the fetch
stage: GetUpdateData over HTTP), `transform` on each item it produces in a second thread
(the parse stage: each document parsed), and `consume` on each transformed item in the
calling thread (the commit stage: one transaction a batch, the progress reports, the
cancellation check). While batch N-1 is committed, batch N is parsed and batch N+1 fetched;
httpx's socket reads, lxml's parsing and the database drivers release the GIL, so the
stages do overlap. The queues hold at most `depth` items each, so at most 2 x depth + 3
batches are in memory, whatever the length of the list.

Order and errors: items reach `consume` in the order produced. An error in a stage travels
down the queues in its place: every item produced before it is still transformed and
consumed, nothing after it is, and `run_stages` raises that very exception (a failed
GetUpdateData leaves the store exactly as the one-batch-at-a-time loop left it). An error
in `transform` also stops `produce` at once; an error in `consume` (or a Ctrl-C) stops both
threads, and `run_stages` returns only once they have ended (a call in progress is let
finish: it is bounded by the client's time-outs).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

__all__ = ["DEFAULT_DEPTH", "run_stages"]

DEFAULT_DEPTH: Final = 2
_POLL: Final = 0.1  # seconds a blocked stage waits before looking whether it must stop

_P = TypeVar("_P")
_Q = TypeVar("_Q")


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


class _End:
    pass


_END: Final = _End()


class _Link(Generic[_P]):
    """A bounded queue between two stages, which a stage stops waiting on once told to."""

    def __init__(self, depth: int, stopping: Callable[[], bool]) -> None:
        self.items: queue.Queue[_P | _Failed | _End] = queue.Queue(maxsize=depth)
        self.stopping = stopping

    def put(self, item: _P | _Failed | _End) -> bool:
        """Hand `item` on; False when the stages are stopping (nobody will take it)."""
        while not self.stopping():
            try:
                self.items.put(item, timeout=_POLL)
            except queue.Full:
                continue
            return True
        return False

    def get(self, alive: Callable[[], bool]) -> _P | _Failed | _End:
        """The next item; `_END` if the stages are stopping or the feeding stage is gone."""
        while True:
            try:
                return self.items.get(timeout=_POLL)
            except queue.Empty:
                if self.stopping() or not alive():
                    # One last look: the feeder may have put its last item and ended.
                    try:
                        return self.items.get_nowait()
                    except queue.Empty:
                        return _END


def run_stages(
    produce: Callable[[Callable[[_P], bool]], None],
    transform: Callable[[_P], _Q],
    consume: Callable[[_Q], None],
    *,
    depth: int = DEFAULT_DEPTH,
    name: str = "sync",
) -> None:
    """Run the three stages (module docstring). `produce(emit)` calls `emit(item)` for each
    item and returns when done, or as soon as `emit` returns False (the stages are
    stopping)."""
    stop = threading.Event()  # the caller is done: every stage stops
    stop_fetching = threading.Event()  # the parse stage failed: the fetch stage stops
    fetched: _Link[_P] = _Link(depth, lambda: stop.is_set() or stop_fetching.is_set())
    parsed: _Link[_Q] = _Link(depth, stop.is_set)

    def fetch_stage() -> None:
        try:
            produce(fetched.put)
        except BaseException as exc:
            fetched.put(_Failed(exc))
        else:
            fetched.put(_END)

    def parse_stage() -> None:
        while True:
            item = fetched.get(fetcher.is_alive)
            if isinstance(item, _End | _Failed):
                parsed.put(item)
                return
            try:
                result = transform(item)
            except BaseException as exc:
                stop_fetching.set()
                parsed.put(_Failed(exc))
                return
            if not parsed.put(result):
                return

    fetcher = threading.Thread(target=fetch_stage, name=f"{name}-fetch", daemon=True)
    parser = threading.Thread(target=parse_stage, name=f"{name}-parse", daemon=True)
    fetcher.start()
    parser.start()
    try:
        while True:
            item = parsed.get(parser.is_alive)
            if isinstance(item, _End):
                return
            if isinstance(item, _Failed):
                raise item.error
            consume(item)
    finally:
        stop.set()
        parser.join()
        fetcher.join()
