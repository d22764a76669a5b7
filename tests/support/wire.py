"""What goes over the wire between two update servers, for tests that count it."""

from __future__ import annotations

from typing import Any

import httpx

from updatesync.metadata.model import RevisionKey
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync import SyncResult, SyncSettings, sync_from_upstream
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.messages import GetUpdateDataRequest, parse_request


class RecordingTransport(httpx.HTTPTransport):
    """Real HTTP; keeps the revision ids of every GetUpdateData request sent."""

    def __init__(self) -> None:
        super().__init__()
        self.requested: list[RevisionKey] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":  # a Content Download GET (license terms' files)
            return super().handle_request(request)
        message = parse_request(request.read())
        if isinstance(message, GetUpdateDataRequest):
            self.requested.extend(message.update_ids or ())
        return super().handle_request(request)


def recorded_sync(
    store: UpdateStore, url: str, **settings: Any
) -> tuple[SyncResult, list[RevisionKey]]:
    """Sync `store` from `url` (`settings`: further `SyncSettings` fields); return the result
    and the ids asked for in GetUpdateData."""
    transport = RecordingTransport()
    with UpstreamClient(url, transport=transport) as client:
        result = sync_from_upstream(store, SyncSettings(url, **settings), client=client)
    return result, transport.requested


def held_documents(store: UpdateStore) -> dict[RevisionKey, str]:
    """Every revision a store holds, with its XML."""
    return {d.key: d.xml for d in store.documents(sorted(store.revision_keys()))}
