"""What every step of one sync shares: the store, the upstream and its client, the
settings and hooks, the log, and the running tally."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from updatesync.logs.softwaredistribution import SoftwareDistributionLog
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync.outcome import SyncCancelled, Tally
from updatesync.updateserver.sync.settings import SyncHooks, SyncSettings
from updatesync.vocabulary import UPDATE_SERVER_LOG
from updatesync.wsusss.client import UpstreamClient

__all__ = ["LOG_SOURCE", "SyncContext", "default_log"]

LOG_SOURCE: Final = "CatalogSyncAgentCore.ExecuteSyncProtocol"
_LOG_FILE: Final = Path("logs") / UPDATE_SERVER_LOG


def default_log(store: UpdateStore) -> SoftwareDistributionLog | None:
    """The SoftwareDistribution.log in the server's data folder (`store.data_dir`: the folder
    it was opened with, whatever its database, or its SQLite file's), else None."""
    if store.data_dir is None:
        return None
    return SoftwareDistributionLog(Path(store.data_dir) / _LOG_FILE)


@dataclass(slots=True)
class SyncContext:
    """One sync's shared state. `url` is the upstream's root without a trailing slash;
    `server_name` the account name sent for authorization."""

    store: UpdateStore
    url: str
    client: UpstreamClient
    settings: SyncSettings
    hooks: SyncHooks
    log: SoftwareDistributionLog | None
    server_name: str
    tally: Tally = field(default_factory=Tally)

    def note(self, message: str) -> None:
        """An information line of the sync in SoftwareDistribution.log."""
        if self.log is not None:
            self.log.info(LOG_SOURCE, message, process=self.log.service_process)

    def stop_if_cancelled(self) -> None:
        """Raise `SyncCancelled` when the sync was asked to stop: called only at batch
        boundaries, where nothing is half-written."""
        cancel = self.hooks.cancel
        if cancel is not None and cancel.is_set():
            raise SyncCancelled(
                f"the sync from {self.url} was cancelled (its update server is stopping)"
            )
