"""Two update servers for license-terms tests: an upstream holding a generated catalog's
metadata but not yet its license terms' files, served on loopback, and an empty downstream,
both on the test's kind of database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from databases import Databases

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import ExportRecord, write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import UpdateRevision
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync import SyncResult, SyncSettings, sync_from_upstream
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.service import create_app

UPDATES = 300
SEED = 9


@dataclass
class Pair:
    upstream: UpdateStore
    downstream: UpdateStore
    url: str
    records: list[ExportRecord]
    docs: list[UpdateRevision]
    data: Path

    def sync(self) -> SyncResult:
        with UpstreamClient(self.url, retries=0) as client:
            return sync_from_upstream(
                self.downstream, SyncSettings(self.url, server_name="dss.test"), client=client
            )

    def with_terms(self) -> list[UpdateRevision]:
        return [d for d in self.docs if d.eula_files]


@contextmanager
def license_pair(root: Path, databases: Databases) -> Iterator[Pair]:
    records = list(generate_catalog(UPDATES, seed=SEED))
    write_export(root / "m1.cab", records)
    upstream = UpdateStore.open(root / "A", url=databases.new().url)
    downstream = UpdateStore.open(root / "B", url=databases.new().url)
    import_export_cabinet(upstream, root / "m1.cab")
    try:
        with BackgroundServer(create_app(StoreBackend(upstream))) as server:
            docs = [parse_update(r.xml) for r in records]
            yield Pair(upstream, downstream, server.url, records, docs, root)
    finally:
        upstream.close()
        downstream.close()
