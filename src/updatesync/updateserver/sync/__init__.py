"""The update server's sync from its upstream over MS-WSUSSS (see `sync.run`)."""

from updatesync.updateserver.sync.context import default_log
from updatesync.updateserver.sync.outcome import SyncCancelled, SyncFailed, SyncResult
from updatesync.updateserver.sync.run import sync_from_upstream
from updatesync.updateserver.sync.settings import (
    DEFAULT_BUSY_BACKOFF,
    DEFAULT_BUSY_RETRIES,
    DEFAULT_MAX_AUTHORIZATIONS,
    DEFAULT_MAX_BUSY_BACKOFF,
    PhaseProgress,
    SyncHooks,
    SyncSettings,
)

__all__ = [
    "DEFAULT_BUSY_BACKOFF",
    "DEFAULT_BUSY_RETRIES",
    "DEFAULT_MAX_AUTHORIZATIONS",
    "DEFAULT_MAX_BUSY_BACKOFF",
    "PhaseProgress",
    "SyncCancelled",
    "SyncFailed",
    "SyncHooks",
    "SyncResult",
    "SyncSettings",
    "default_log",
    "sync_from_upstream",
]
