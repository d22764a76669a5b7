"""`GET /metrics` of an update server, and what every `/metrics` of updatesync shares.

Metrics are kept with `prometheus_client`, each server in a `CollectorRegistry` of its own
(never the library's global registry): several roles run in one process (the demo, `serve
--role all`), and each answers for itself. What a scrape reads from a database (revisions
held, the last sync) comes from a custom collector, read at the time of the scrape; what
happens between two scrapes (protocol requests, syncs) is counted as it happens.

An update server exposes:

- `updatesync_build_info{version,python}` 1 (every `/metrics` of updatesync has it);
- `updatesync_update_server_revisions{server}`: the revisions its store holds;
- `updatesync_update_server_last_sync_timestamp_seconds{server}` and
  `updatesync_update_server_last_sync_success{server}` (1 succeeded, 0 failed): its last
  import or sync, from the store's sync history (absent before the first);
- `updatesync_update_server_downstream_servers{server}`: the downstream servers registered
  on it and seen lately (those `GET /api/downstream` lists);
- `updatesync_update_server_syncs_total{server,result}` (`success`, `failed`): the syncs
  from its upstream that ended since the server started;
- `updatesync_wsusss_requests_total{operation,fault}`: the MS-WSUSSS requests it answered,
  by operation (`GetCookie`, `GetRevisionIdList`, ...; `unknown` when the request could not
  be read) and fault (`none` when it answered, else the fault's ErrorCode:
  `InvalidCookie`, `InvalidParameters`, `InternalServerError`, ...).

The answer is the Prometheus text format (version 0.0.4 unless the scraper asks for a newer
one or for OpenMetrics in its `Accept`).
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Info
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from updatesync import __version__
from updatesync.updateserver.peers import count_downstream_servers
from updatesync.updateserver.store import UpdateStore

METRICS_PATH: Final = "/metrics"
SUCCESS: Final = "success"
FAILED: Final = "failed"
RESULTS: Final = (SUCCESS, FAILED)
"""The `result` label of the sync counters."""
NO_FAULT: Final = "none"
"""The `fault` label of a request answered without a fault."""
UNKNOWN_OPERATION: Final = "unknown"


def new_registry() -> CollectorRegistry:
    """A registry of one server's metrics, with `updatesync_build_info` in it."""
    registry = CollectorRegistry(auto_describe=True)
    build = Info(
        "updatesync_build",
        "The updatesync version this server runs and the Python it runs on.",
        registry=registry,
    )
    build.info({"version": __version__, "python": platform.python_version()})
    return registry


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry's metrics as the scraper's `Accept` asks (the text format by default):
    the body and its content type."""
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type


def metrics_route(registry: CollectorRegistry, what: str, *, path: str = METRICS_PATH) -> Route:
    """A Starlette route answering `GET /metrics` from `registry`; `what` names the server
    in the 503 answered when a collector cannot read its database."""

    async def metrics(request: Request) -> Response:
        try:
            body, content_type = await run_in_threadpool(
                exposition, registry, request.headers.get("accept")
            )
        except Exception as exc:
            return PlainTextResponse(
                f"{what}: the database could not be read for metrics: {exc}\n", status_code=503
            )
        return Response(body, media_type=content_type)

    return Route(path, metrics, methods=["GET"], name="metrics")


class _StoreCollector:
    """What an update server's store holds, read at the time of each scrape."""

    def __init__(self, store: UpdateStore, server: str, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.server = server
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        return ()  # read only when scraped, never at registration

    def collect(self) -> Iterator[Metric]:
        labels = ["server"]
        status = self.store.status()
        revisions = GaugeMetricFamily(
            "updatesync_update_server_revisions",
            "Revisions the update server's store holds (updates, categories, detectoids).",
            labels=labels,
        )
        revisions.add_metric([self.server], status.revisions)
        yield revisions
        last_time = GaugeMetricFamily(
            "updatesync_update_server_last_sync_timestamp_seconds",
            "When the update server's last sync or import ended (Unix time).",
            labels=labels,
        )
        last_ok = GaugeMetricFamily(
            "updatesync_update_server_last_sync_success",
            "Whether the update server's last sync or import succeeded (1) or failed (0).",
            labels=labels,
        )
        history = self.store.history(limit=1)
        if history:
            last = history[0]
            last_time.add_metric([self.server], last.finished_at.timestamp())
            last_ok.add_metric([self.server], 1.0 if last.error is None else 0.0)
        yield last_time
        yield last_ok
        downstream = GaugeMetricFamily(
            "updatesync_update_server_downstream_servers",
            "Downstream servers registered on the update server and seen lately.",
            labels=labels,
        )
        downstream.add_metric([self.server], count_downstream_servers(self.store, now=self.clock()))
        yield downstream


class UpdateServerMetrics:
    """The metrics of one update server: its registry, the counters its MS-WSUSSS service
    (`count_request`) and its sync runner (`count_sync`) feed, and its store's gauges."""

    def __init__(
        self,
        store: UpdateStore,
        server: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.server = server
        self.registry = new_registry()
        self.requests = Counter(
            "updatesync_wsusss_requests",
            "MS-WSUSSS requests the update server answered, by operation and fault "
            "(none: answered without one).",
            ["operation", "fault"],
            registry=self.registry,
        )
        self.syncs = Counter(
            "updatesync_update_server_syncs",
            "Syncs of the update server from its upstream that ended, by result.",
            ["server", "result"],
            registry=self.registry,
        )
        for result in RESULTS:
            self.syncs.labels(server, result)
        self.registry.register(_StoreCollector(store, server, clock))

    def count_request(self, operation: str | None, fault: str | None) -> None:
        """One MS-WSUSSS request answered: its operation (None: unreadable) and its fault's
        ErrorCode (None: answered without one)."""
        self.requests.labels(operation or UNKNOWN_OPERATION, fault or NO_FAULT).inc()

    def count_sync(self, succeeded: bool) -> None:
        self.syncs.labels(self.server, SUCCESS if succeeded else FAILED).inc()

    def route(self) -> Route:
        return metrics_route(self.registry, f"update server {self.server}")
