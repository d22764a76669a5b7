"""The update server's admin API: JSON over HTTP, as the site server uses it.

WSyncMgr drives a WSUS through the WSUS administration API; updatesync's site server drives
an update server through these routes (mounted beside the MS-WSUSSS services):

- `GET  /api/status`              what the store holds (`updateserver status --json`);
- `GET  /api/changes?since=N`     the revisions that arrived after change number N;
- `POST /api/sync`                start a sync from the upstream (body: `{"full": bool,
                                  "replica": bool, "products": [...],
                                  "classifications": [...], "languages": [...]}`, all
                                  optional; `replica` syncs as a replica of the upstream:
                                  its target groups and deployments too); 202 when
                                  started, 409 while one runs;
- `GET  /api/sync[?version=V&wait=S]`  the running sync's progress (done, total, ETA; the
                                  phase "categories", "updates" or "other items") and the
                                  last result, successful or not; with `version`, waits up
                                  to S seconds for a state newer than V (long poll);
- `GET  /api/deployments[?since=N]`  the target groups with their deployment counts, the
                                  totals by action, hidden and dead counts, the deployment
                                  counter; with `since`, the deployments written after N;
- `GET  /api/downstream`          the downstream servers registered on this one;
- `GET  /api/updates?since=N[&after=C][&limit=L][&product=..][&classification=..]`
                                  a page of updates as configuration items (site_view.py);
- `GET  /api/categories?since=N`  the categories changed after N, parents first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from updatesync.updateserver.errors import UpdateServerError
from updatesync.updateserver.peers import downstream_servers
from updatesync.updateserver.site_view import PAGE, changed_categories, changed_updates
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync import default_log, sync_from_upstream

Progress = Callable[[int, int], None]
PhaseProgress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class UpstreamSyncRequest:
    """What `POST /api/sync` asks for: a full sync or not, a replica's sync or not, and
    (when given) the products, classifications and languages to sync, which replace the
    server's subscription."""

    full: bool = False
    replica: bool = False
    products: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()


SyncFunction = Callable[[UpstreamSyncRequest, Progress, PhaseProgress], object]
"""Runs one sync and returns its result; raises on failure. Phase progress is
("categories" | "updates" | "other items", done in the phase, phase total)."""


@dataclass
class SyncState:
    """What `GET /api/sync` shows."""

    running: bool = False
    started_at: datetime | None = None
    done: int = 0
    total: int = 0
    phase: str | None = None
    phase_done: int = 0
    phase_total: int = 0
    last_result: dict[str, Any] | None = None
    last_error: str | None = None
    last_finished_at: datetime | None = None
    version: int = 0
    """Rises with every change (start, progress, end): what long polls wait on."""
    _clock_start: float = field(default=0.0, repr=False)

    def to_json(self) -> dict[str, Any]:
        eta = None
        if self.running and self.done and self.total > self.done:
            elapsed = time.monotonic() - self._clock_start
            eta = round(elapsed / self.done * (self.total - self.done), 1)
        return {
            "running": self.running,
            "started_at": _iso(self.started_at),
            "done": self.done,
            "total": self.total,
            "eta_seconds": eta,
            "phase": self.phase,
            "phase_done": self.phase_done,
            "phase_total": self.phase_total,
            "last_result": self.last_result,
            "last_error": self.last_error,
            "last_finished_at": _iso(self.last_finished_at),
            "version": self.version,
        }


class SyncRunner:
    """Runs syncs in a background thread, one at a time, and keeps their progress."""

    def __init__(self, run: SyncFunction) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.state = SyncState()
        self._thread: threading.Thread | None = None

    def start(self, request: UpstreamSyncRequest | None = None) -> bool:
        """Start a sync; False if one is already running (the request is not lost: the
        running sync will bring what it would have)."""
        with self._lock:
            if self.state.running:
                return False
            self.state.running = True
            self.state.started_at = datetime.now(UTC)
            self.state.done = self.state.total = 0
            self.state.phase = None
            self.state.phase_done = self.state.phase_total = 0
            self.state._clock_start = time.monotonic()
            self._bump()
            self._thread = threading.Thread(
                target=self._work, args=(request or UpstreamSyncRequest(),), daemon=True
            )
            self._thread.start()
            return True

    def wait_for_change(self, version: int, timeout: float) -> SyncState:
        """The state once its version is past `version`, or after `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self.state.version > version, timeout=timeout)
            return self.state

    def _bump(self) -> None:
        """Call with the lock held."""
        self.state.version += 1
        self._changed.notify_all()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the running sync (if any) ends."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Let the running sync (if any) finish, waiting up to `timeout` seconds: call it
        before the store closes."""
        self.wait(timeout)

    def _progress(self, done: int, total: int) -> None:
        with self._lock:
            self.state.done, self.state.total = done, total
            self._bump()

    def _phase(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            self.state.phase, self.state.phase_done, self.state.phase_total = phase, done, total
            self._bump()

    def _work(self, request: UpstreamSyncRequest) -> None:
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            outcome = self._run(request, self._progress, self._phase)
            result = _jsonable(outcome)
        except Exception as exc:  # reported through GET /api/sync
            error = str(exc) or type(exc).__name__
        with self._lock:
            self.state.running = False
            self.state.last_result = result
            self.state.last_error = error
            self.state.last_finished_at = datetime.now(UTC)
            self._bump()


def upstream_runner(
    store: UpdateStore,
    upstream_url: str | None,
    *,
    server_name: str | None = None,
    replica: bool = False,
) -> SyncRunner:
    """The runner of an update server that syncs `store` from `upstream_url` when asked; a
    replica (`replica`) always syncs as one. Without an upstream (a disconnected server)
    every sync fails, saying how such a server gets its updates."""

    def run(request: UpstreamSyncRequest, progress: Progress, phase: PhaseProgress) -> object:
        if upstream_url is None:
            raise UpdateServerError(
                f"update server {server_name or store}: no upstream server to sync from (it is "
                "disconnected); import a WSUS export with `updatesync updateserver import`"
            )
        return sync_from_upstream(
            store,
            upstream_url,
            full=request.full,
            replica=request.replica or replica,
            products=request.products,
            classifications=request.classifications,
            languages=request.languages,
            progress=progress,
            phase_progress=phase,
            server_name=server_name,
        )

    return SyncRunner(run)


def service_error_logger(store: UpdateStore) -> Callable[[str, BaseException], None]:
    """`on_error` of the MS-WSUSSS service: a failed call goes to SoftwareDistribution.log."""
    log = default_log(store)

    def on_error(operation: str, exc: BaseException) -> None:
        if log is not None:
            log.error("ServerSyncWebService", f"{operation} failed: {exc}", exc=exc)

    return on_error


def admin_routes(store: UpdateStore, runner: SyncRunner | None) -> list[Route]:
    """The admin API's routes for one update server."""

    async def status(_request: Request) -> JSONResponse:
        return JSONResponse(store.status().to_json())

    async def changes(request: Request) -> JSONResponse:
        since_text = request.query_params.get("since", "0")
        if not since_text.isdigit():
            return JSONResponse(
                {"error": f"since must be a change number (a whole number), not {since_text!r}"},
                status_code=400,
            )
        keys = store.changed_since(int(since_text))
        return JSONResponse(
            {
                "since": int(since_text),
                "change_counter": store.change_counter(),
                "revisions": [[k.update_id, k.revision] for k in keys],
            }
        )

    async def sync_state(request: Request) -> JSONResponse:
        if runner is None:
            return JSONResponse({"error": "this update server has no upstream"}, status_code=404)
        version = request.query_params.get("version")
        if version is None:
            return JSONResponse(runner.state.to_json())
        wait = request.query_params.get("wait", "30")
        if not version.isdigit() or not wait.replace(".", "", 1).isdigit():
            return JSONResponse(
                {"error": "version and wait must be numbers (wait in seconds)"}, status_code=400
            )
        state = await run_in_threadpool(
            runner.wait_for_change, int(version), min(float(wait), 60.0)
        )
        return JSONResponse(state.to_json())

    async def sync_start(request: Request) -> JSONResponse:
        if runner is None:
            return JSONResponse(
                {"error": "this update server has no upstream; start it with --upstream"},
                status_code=409,
            )
        body = await request.body()
        payload: Any = {}
        if body.strip():
            try:
                payload = await request.json()
            except ValueError:
                return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        lists = {}
        for name in ("products", "classifications", "languages"):
            value = payload.get(name, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return JSONResponse({"error": f"{name} must be a list of strings"}, status_code=400)
            lists[name] = tuple(value)
        replica = payload.get("replica", False)
        if not isinstance(replica, bool):
            return JSONResponse(
                {"error": f"replica must be true or false, not {replica!r}"}, status_code=400
            )
        started = runner.start(
            UpstreamSyncRequest(full=bool(payload.get("full", False)), replica=replica, **lists)
        )
        return JSONResponse(runner.state.to_json(), status_code=202 if started else 409)

    async def deployments(request: Request) -> JSONResponse:
        since = request.query_params.get("since")
        if since is not None and not since.isdigit():
            return JSONResponse(
                {
                    "error": f"since must be a deployment counter value (a whole number), "
                    f"not {since!r}"
                },
                status_code=400,
            )
        found = await run_in_threadpool(
            store.deployment_summary, int(since) if since is not None else None
        )
        return JSONResponse(_jsonable(found))

    async def downstream(_request: Request) -> JSONResponse:
        return JSONResponse([_jsonable(d) for d in downstream_servers(store)])

    async def updates(request: Request) -> JSONResponse:
        params = request.query_params
        numbers = {}
        for name, default in (("since", "0"), ("after", ""), ("limit", str(PAGE))):
            text = params.get(name, default)
            if text and not text.isdigit():
                return JSONResponse(
                    {"error": f"{name} must be a whole number, not {text!r}"}, status_code=400
                )
            numbers[name] = int(text) if text else None
        page = await run_in_threadpool(
            changed_updates,
            store,
            since=numbers["since"] or 0,
            after=numbers["after"],
            products=params.getlist("product"),
            classifications=params.getlist("classification"),
            limit=min(numbers["limit"] or PAGE, PAGE),
        )
        return JSONResponse(_jsonable(page))

    async def categories(request: Request) -> JSONResponse:
        since = request.query_params.get("since", "0")
        if not since.isdigit():
            return JSONResponse(
                {"error": f"since must be a whole number, not {since!r}"}, status_code=400
            )
        found = await run_in_threadpool(changed_categories, store, since=int(since))
        return JSONResponse({"change_counter": store.change_counter(), "items": _jsonable(found)})

    return [
        Route("/api/status", status, methods=["GET"]),
        Route("/api/changes", changes, methods=["GET"]),
        Route("/api/sync", sync_state, methods=["GET"]),
        Route("/api/sync", sync_start, methods=["POST"]),
        Route("/api/deployments", deployments, methods=["GET"]),
        Route("/api/downstream", downstream, methods=["GET"]),
        Route("/api/updates", updates, methods=["GET"]),
        Route("/api/categories", categories, methods=["GET"]),
    ]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _jsonable(value: object) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
