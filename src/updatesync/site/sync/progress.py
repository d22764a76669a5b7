"""The update server's progress as WSyncMgr.log's `sync:` lines, and WSyncMgr's time formats.

`WsusProgress` writes the default SUP's lines (`sync: WSUS synchronizing updates, processed
N out of M items (P%), ETA in ...` every 10%, the 100% line once), `ReplicaProgress` a
replica's (`sync: Replica WSUS synchronizing other items ...` and nothing else).
"""

from __future__ import annotations

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.vocabulary import PHASE_WSUS_OTHER_ITEMS, PHASE_WSUS_UPDATES

_UPDATES = PHASE_WSUS_UPDATES.progress_name
_OTHER_ITEMS = PHASE_WSUS_OTHER_ITEMS.progress_name


class WsusProgress:
    """Turns the update server's progress into WSyncMgr's `sync:` lines."""

    def __init__(self, log: CMTraceLog) -> None:
        self.log = log
        self.phase: str | None = None
        self.last: tuple[int, int] | None = None
        self.logged_percent = -1

    def __call__(self, phase: str, done: int, total: int, eta: float | None) -> None:
        if phase != self.phase:
            self.finish()
            self.phase, self.last, self.logged_percent = phase, None, -1
            self.log.info(f"sync: WSUS synchronizing {phase}")
        if not total or phase != _UPDATES:
            return
        repeated = self.last == (done, total)
        self.last = (done, total)
        percent = done * 100 // total
        if done >= total:
            # WSyncMgr writes the 100% line when the count completes and again at the end;
            # the same complete count reported again (a later state change) adds nothing.
            if repeated:
                return
            self.log.info(
                f"sync: WSUS synchronizing updates, processed {total} out of {total} items (100%)"
            )
            return
        if percent >= self.logged_percent + 10 and done < total:
            self.logged_percent = percent
            line = (
                f"sync: WSUS synchronizing updates, processed {done} out of {total} items "
                f"({percent}%)"
            )
            if eta is not None:
                line += f", ETA in {format_eta(eta)}"
            self.log.info(line)

    def finish(self) -> None:
        if self.phase == _UPDATES and self.last is not None:
            done, total = self.last
            if done >= total:
                self.log.info(
                    f"sync: WSUS synchronizing updates, processed {total} out of {total} items "
                    "(100%)"
                )
            self.last = None


class ReplicaProgress(WsusProgress):
    """A replica's sync as WSyncMgr shows it: the "other items" (GetDeployments) only. The
    replica's metadata sync writes no `sync:` line, however long it runs (WSyncMgr writes
    none; the replica's update server tells its progress: `GET /api/sync` of its admin API)."""

    def __call__(self, phase: str, done: int, total: int, eta: float | None) -> None:
        if phase != _OTHER_ITEMS:
            return
        if phase != self.phase:
            self.phase, self.last = phase, None
            self.log.info("sync: Replica WSUS synchronizing other items")
        if not total or not done or (done, total) == self.last:
            return  # nothing counted yet, or nothing new
        self.last = (done, total)
        self.log.info(
            f"sync: Replica WSUS synchronizing other items, processed {done} out of {total} "
            f"items ({done * 100 // total}%)"
        )

    def finish(self) -> None:
        self.last = None


def format_sync_time(seconds: float) -> str:
    """`0d00h03m53s`, as WSyncMgr writes the sync time."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}d{hours:02d}h{minutes:02d}m{secs:02d}s"


def format_eta(seconds: float) -> str:
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"
