"""What one sync from an upstream is asked to do (`SyncSettings`) and the hooks it reports
through and is stopped by (`SyncHooks`).

`SyncSettings` is plain data: where to sync from, the subscription to apply, whether the
sync is full or a replica's, the account name sent for authorization, and the bounds of
its retries. `SyncHooks` carries the callables and the cancellation flag of one run:
progress reports, the clock, the sleep of the ServerBusy back-off, and an Event that, once
set, stops the sync at the next batch boundary.
"""

from __future__ import annotations

import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from updatesync.updateserver.store import Progress

__all__ = [
    "DEFAULT_BUSY_BACKOFF",
    "DEFAULT_BUSY_RETRIES",
    "DEFAULT_MAX_AUTHORIZATIONS",
    "DEFAULT_MAX_BUSY_BACKOFF",
    "PhaseProgress",
    "SyncHooks",
    "SyncSettings",
]

DEFAULT_BUSY_RETRIES: Final = 5
DEFAULT_BUSY_BACKOFF: Final = 5.0
DEFAULT_MAX_BUSY_BACKOFF: Final = 120.0
DEFAULT_MAX_AUTHORIZATIONS: Final = 5
"""Authorizations per run, the first one included."""

PhaseProgress = Callable[[str, int, int], None]
"""(phase: "categories" | "updates" | "other items", done in the phase, phase total)."""


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """One sync from the upstream at `upstream_url` (see `sync.run`).

    `products`, `classifications`, `languages`: when given (non-empty), each replaces that
    part of the stored subscription (the others are kept). `full`: send no anchors, so the
    upstream lists everything (only what the store lacks is fetched) and, for a replica,
    sends every deployment. `replica`: this server is a replica of the upstream: after the
    updates, GetDeployments brings the target groups and deployments. `server_name` is the
    account name sent for authorization (None: this host's FQDN). The ServerBusy back-off
    (`retry_policy.SERVER_BUSY`) waits half to all of `busy_backoff` seconds, doubling up to
    `max_busy_backoff`, at most `busy_retries` times per call; `max_authorizations` bounds
    the authorizations of one run. `verify`: what an https upstream's certificate is
    verified with (None: the system's trust store; a hierarchy's own CA for a SUP syncing
    from another SUP of its hierarchy). `audit`: end a successful sync with the consistency
    audit against the upstream (`sync.audit`).
    """

    upstream_url: str
    products: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    full: bool = False
    replica: bool = False
    server_name: str | None = None
    busy_retries: int = DEFAULT_BUSY_RETRIES
    busy_backoff: float = DEFAULT_BUSY_BACKOFF
    max_busy_backoff: float = DEFAULT_MAX_BUSY_BACKOFF
    max_authorizations: int = DEFAULT_MAX_AUTHORIZATIONS
    verify: ssl.SSLContext | None = None
    audit: bool = True

    def __post_init__(self) -> None:
        # Lists are accepted where tuples are declared; the settings stay hashable.
        for name in ("products", "classifications", "languages"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


@dataclass(frozen=True, slots=True)
class SyncHooks:
    """How one sync reports and is stopped.

    `progress` is called with (revisions fetched, revisions to fetch); the total grows when
    the update list arrives. `phase_progress` is called with ("categories", "updates" or,
    for a replica, "other items"; done, total) counted within the phase, as WSyncMgr
    reports them. `cancel`, once set, stops the sync before its next batch (GetUpdateData
    answer, or a replica's GetDeployments): what was committed stays, no anchor is saved
    past it, and the next sync resumes from the saved anchors. `now` is the clock the
    cookie expiry is checked against, `sleep` the ServerBusy back-off's wait, `rng` the
    random source of its jitter (None: the process's own).
    """

    progress: Progress | None = None
    phase_progress: PhaseProgress | None = None
    cancel: threading.Event | None = None
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random | None = None
