"""An update server's upstream side, for tests: a stand-in upstream and a SUP's sync runner.

- `stand_in_upstream(root, records)`: the records exported to a cabinet, imported into a
  store (a stand-in Microsoft Update, with the texts of the catalog's license terms) and
  served over MS-WSUSSS on loopback; yields the store and its server.
- `sync_runner(store, upstream)`: the runner behind a SUP's admin API (`POST /api/sync`) that
  syncs `store` from `upstream` with what the request asks (full, replica, subscription), as
  the product's runner does, through a client that does not retry (a failing upstream fails
  the sync at once). `upstream` may be a callable, asked at each sync, so a test can move the
  upstream; `on_request` sees each request before its sync (to record it, or hold the sync),
  `on_finished` each sync's end (as the update server's metrics do).
- `update_server_app(store, runner)`: a SUP's update server: MS-WSUSSS and the admin API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.applications import Starlette

from updatesync.metadata.export import ExportRecord, write_export
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.admin_api import SyncRunner, UpstreamSyncRequest, admin_routes
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.license_terms import add_generated_license_files
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync import SyncHooks, SyncSettings, sync_from_upstream
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.service import create_app


@contextmanager
def stand_in_upstream(
    root: Path,
    records: Iterable[ExportRecord],
    *,
    name: str = "microsoft-update",
    license_files: bool = True,
) -> Iterator[tuple[UpdateStore, BackgroundServer]]:
    """`license_files`: it serves the license terms' files of the catalog, as Microsoft
    Update does (False: it has none of them yet)."""
    cabinet = root / f"{name}.cab"
    write_export(cabinet, records)
    store = UpdateStore.open(root / name)
    try:
        import_export_cabinet(store, cabinet)
        if license_files:
            add_generated_license_files(store)
        with BackgroundServer(create_app(StoreBackend(store))) as server:
            yield store, server
    finally:
        store.close()


def sync_runner(
    store: UpdateStore,
    upstream: str | Callable[[], str],
    *,
    on_request: Callable[[UpstreamSyncRequest], None] | None = None,
    on_finished: Callable[[bool], None] | None = None,
) -> SyncRunner:
    def run(request: UpstreamSyncRequest, hooks: SyncHooks) -> object:
        if on_request is not None:
            on_request(request)
        url = upstream() if callable(upstream) else upstream
        settings = SyncSettings(
            url,
            full=request.full,
            replica=request.replica,
            products=request.products,
            classifications=request.classifications,
            languages=request.languages,
        )
        with UpstreamClient(url, retries=0) as client:
            return sync_from_upstream(store, settings, hooks=hooks, client=client)

    return SyncRunner(
        run,
        store=store,
        source="the stand-in upstream",
        upstream=None if callable(upstream) else upstream,
        on_finished=on_finished,
    )


def update_server_app(store: UpdateStore, runner: SyncRunner | None = None) -> Starlette:
    return create_app(StoreBackend(store), extra_routes=admin_routes(store, runner))
