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
                                  started, 409 while one runs (here, or another
                                  process's sync of the store: `sync_lock`), its
                                  `error` naming the running one; 415 unless the body
                                  is `Content-Type: application/json` (no cross-site
                                  form);
- `GET  /api/sync[?version=V&wait=S]`  the running sync's progress (done, total, ETA; the
                                  phase "categories", "updates" or "other items") and the
                                  last result, successful or not (a failure also as
                                  ConfigMgr writes it: `last_failure`) and the last
                                  consistency audit against the upstream (`audit`: equal,
                                  differs or not available, both digests and counts, when);
                                  with `version`, waits up to S seconds for a state newer
                                  than V (long poll);
- `GET  /api/deployments[?since=N]`  the target groups with their deployment counts, the
                                  totals by action, hidden and dead counts, the deployment
                                  counter; with `since`, the deployments written after N;
- `GET  /api/downstream[?offset=O&limit=L]`  a page of the downstream servers registered
                                  on this one, first registered first (`limit` 100 by
                                  default, at most 1000): `{"total", "offset", "limit",
                                  "next_offset" (null on the last page), "items"}`;
- `GET  /api/updates?since=N[&after=C][&limit=L][&product=..][&classification=..]
  [&language=..]`                 a page of updates as configuration items (site_view.py;
                                  a page may hold fewer than L and not be the last: go on
                                  while `next_after` is not null), each with its
                                  `localized` titles and descriptions in the languages;
- `GET  /api/categories?since=N`  the categories changed after N, parents first, and the
                                  change counter read before them.
- `GET  /api/configuration`       what the site's WSUS configuration manager reads: the
                                  server and its version, its upstream, its subscription
                                  (with the titles of the categories it names) and how many
                                  categories it holds;
- `PUT  /api/configuration`       replace the subscription (body: `{"products": [...],
                                  "classifications": [...], "languages": [...]}`); 422
                                  naming the first id that is not a product or a
                                  classification of this server (checked once it holds
                                  categories: a new server's first sync checks them); 415
                                  unless the body is JSON.

Every route needs a caller: in a hierarchy the site server's signed call (`roles/sup.py`),
standalone (`updatesync updateserver serve`) `Authorization: Bearer` with the admin token
of `--admin-token-file`.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from updatesync import __version__
from updatesync.updateserver.errors import UpdateServerError
from updatesync.updateserver.failures import sync_failure
from updatesync.updateserver.peers import count_downstream_servers, downstream_servers
from updatesync.updateserver.site_view import PAGE, changed_categories, changed_updates
from updatesync.updateserver.store import Subscription, UpdateStore
from updatesync.updateserver.sync import SyncHooks, SyncSettings, default_log, sync_from_upstream
from updatesync.updateserver.sync.audit import last_audit
from updatesync.updateserver.sync_lock import SyncBusy, SyncLease, acquire_sync_lock, adopt

DOWNSTREAM_PAGE: Final = 100
"""Downstream servers per page of `GET /api/downstream` unless `limit` says fewer."""
MAX_DOWNSTREAM_PAGE: Final = 1000


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


SyncFunction = Callable[[UpstreamSyncRequest, SyncHooks], object]
"""Runs one sync, reporting through and stoppable by the hooks (`SyncHooks`: progress,
phase progress "categories" | "updates" | "other items", cancel); returns its result and
raises on failure."""


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
    last_failure: dict[str, Any] | None = None
    """The last failure as ConfigMgr writes it (`failures.Failure.to_json`)."""
    last_finished_at: datetime | None = None
    audit: dict[str, Any] | None = None
    """The last consistency audit against the upstream (`sync/audit.py`): `result` equal,
    differs or not available, both digests and counts, `checked_at`; kept across restarts."""
    version: int = 0
    """Rises with every change (start, progress, end): what long polls wait on."""
    _clock_start: float = field(default=0.0, repr=False)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the pace so far, while a sync runs and has fetched something."""
        if self.running and self.done and self.total > self.done:
            elapsed = time.monotonic() - self._clock_start
            return round(elapsed / self.done * (self.total - self.done), 1)
        return None

    def to_json(self) -> dict[str, Any]:
        return SyncStateView.model_validate(self, from_attributes=True).model_dump()


class SyncStateView(BaseModel):
    """`GET /api/sync`'s JSON: a `SyncState` with its ETA, times in ISO 8601."""

    model_config = ConfigDict(from_attributes=True)

    running: bool
    started_at: str | None
    done: int
    total: int
    eta_seconds: float | None
    phase: str | None
    phase_done: int
    phase_total: int
    last_result: dict[str, Any] | None
    last_error: str | None
    last_failure: dict[str, Any] | None
    last_finished_at: str | None
    audit: dict[str, Any] | None
    version: int

    @field_validator("started_at", "last_finished_at", mode="before")
    @classmethod
    def _iso(cls, value: object) -> object:
        return value.isoformat() if isinstance(value, datetime) else value


class SyncRunner:
    """Runs syncs in a thread it owns, one at a time, and keeps their progress. Given its
    `store`, it takes the store's sync lock before it starts one (refused at once while
    another process syncs the store) and hands it to the sync's thread.

    `close` stops it: a running sync is asked to stop at its next batch boundary (its
    `SyncHooks.cancel` is set), the thread is joined, and no sync starts afterwards.
    """

    def __init__(
        self,
        run: SyncFunction,
        *,
        store: UpdateStore | None = None,
        source: str = "upstream",
        upstream: str | None = None,
        on_finished: Callable[[bool], None] | None = None,
    ) -> None:
        """`on_finished(succeeded)`: told as each sync ends (its metrics count it)."""
        self._run = run
        self._on_finished = on_finished
        self.upstream = upstream
        """The upstream server's URL, None for a disconnected server (what it reports)."""
        self._store = store
        self._source = source
        self._lease: SyncLease | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.state = SyncState()
        if store is not None and upstream is not None:
            kept = last_audit(store, upstream.strip().rstrip("/"))
            self.state.audit = kept.to_json() if kept is not None else None
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._closed = False

    def start(self, request: UpstreamSyncRequest | None = None) -> bool:
        """Start a sync; False if one is already running (the request is not lost: the
        running sync will bring what it would have) or the runner is closed."""
        return self.begin(request) is None

    def begin(self, request: UpstreamSyncRequest | None = None) -> str | None:
        """Start a sync; None when started, else why not: this runner's sync or another
        sync of its store (another process: `sync_lock`) is running, or it is closed."""
        with self._lock:
            if self._closed:
                return "this update server is stopping; no sync starts"
            if self.state.running:
                lease = self._lease
                if lease is not None and self._store is not None:
                    return str(SyncBusy(lease.path.parent, lease.holder))
                started = self.state.started_at
                since = started.isoformat(timespec="seconds") if started else "just now"
                return f"a sync is already running on this update server (started {since})"
            if self._store is not None:
                try:
                    self._lease = acquire_sync_lock(self._store, self._source)
                except SyncBusy as busy:
                    return str(busy)
            self.state.running = True
            self.state.started_at = datetime.now(UTC)
            self.state.done = self.state.total = 0
            self.state.phase = None
            self.state.phase_done = self.state.phase_total = 0
            self.state._clock_start = time.monotonic()
            self._bump()
            self._thread = threading.Thread(
                target=self._work,
                args=(request or UpstreamSyncRequest(), self._lease),
                name="update-server-sync",
                daemon=True,  # close() joins it; daemon only so a hung call cannot block exit
            )
            self._thread.start()
            return None

    def close(self, timeout: float = 30.0) -> None:
        """Refuse new syncs, ask the running one (if any) to stop at its next batch
        boundary, and wait up to `timeout` seconds for its thread to end."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._cancel.set()
        if thread is not None:
            thread.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def is_alive(self) -> bool:
        """Whether the runner's sync thread is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

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

    def _progress(self, done: int, total: int) -> None:
        with self._lock:
            self.state.done, self.state.total = done, total
            self._bump()

    def _phase(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            self.state.phase, self.state.phase_done, self.state.phase_total = phase, done, total
            self._bump()

    def _work(self, request: UpstreamSyncRequest, lease: SyncLease | None) -> None:
        result: dict[str, Any] | None = None
        error: str | None = None
        failure: dict[str, Any] | None = None
        hooks = SyncHooks(progress=self._progress, phase_progress=self._phase, cancel=self._cancel)
        try:
            with adopt(lease):  # the store's sync lock, released when the sync ends
                outcome = self._run(request, hooks)
            result = _jsonable(outcome)
        except Exception as exc:  # reported through GET /api/sync
            error = str(exc) or type(exc).__name__
            failure = sync_failure(exc).to_json()
        if self._on_finished is not None:  # counted before the state shows the sync ended
            self._on_finished(error is None)
        with self._lock:
            self._lease = None
            self.state.running = False
            self.state.last_result = result
            self.state.last_error = error
            self.state.last_failure = failure
            self.state.last_finished_at = datetime.now(UTC)
            if result is not None and isinstance(result.get("audit"), dict):
                self.state.audit = result["audit"]
            self._bump()


def upstream_runner(
    store: UpdateStore,
    upstream_url: str | None,
    *,
    server_name: str | None = None,
    replica: bool = False,
    verify: ssl.SSLContext | None = None,
    on_finished: Callable[[bool], None] | None = None,
) -> SyncRunner:
    """The runner of an update server that syncs `store` from `upstream_url` when asked; a
    replica (`replica`) always syncs as one. Without an upstream (a disconnected server)
    every sync fails, saying how such a server gets its updates. `verify`: what an https
    upstream is verified with (None: the system's trust store); `on_finished`: as
    `SyncRunner`'s."""

    def run(request: UpstreamSyncRequest, hooks: SyncHooks) -> object:
        if upstream_url is None:
            raise UpdateServerError(
                f"update server {server_name or store}: no upstream server to sync from (it is "
                "disconnected); import a WSUS export with `updatesync updateserver import`"
            )
        settings = SyncSettings(
            upstream_url,
            full=request.full,
            replica=request.replica or replica,
            products=request.products,
            classifications=request.classifications,
            languages=request.languages,
            server_name=server_name,
            verify=verify,
        )
        return sync_from_upstream(store, settings, hooks=hooks)

    return SyncRunner(
        run,
        store=store,
        source=upstream_url or "no upstream",
        upstream=upstream_url,
        on_finished=on_finished,
    )


def service_error_logger(store: UpdateStore) -> Callable[[str, BaseException], None]:
    """`on_error` of the MS-WSUSSS service: a failed call goes to SoftwareDistribution.log."""
    log = default_log(store)

    def on_error(operation: str, exc: BaseException) -> None:
        if log is not None:
            log.error("ServerSyncWebService", f"{operation} failed: {exc}", exc=exc)

    return on_error


def _error(message: str, status_code: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


def _refuse_unless_json(request: Request, route: str, what: str) -> JSONResponse | None:
    """415 unless the body is declared JSON: a form or plain text is refused, so a web page
    in the administrator's browser cannot post one (no cross-site form)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        return None
    return _error(
        f"{route} takes a JSON body with Content-Type: application/json, not "
        f"{media_type or 'no content type'} (a form or plain text is refused, so a web page "
        f"cannot {what})",
        415,
    )


async def _subscription_body(
    request: Request,
) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]] | JSONResponse:
    """The body as a JSON object (an empty body is an empty object) and its products,
    classifications and languages (lists of strings), or the 400 to answer."""
    body = await request.body()
    payload: Any = {}
    if body.strip():
        try:
            payload = await request.json()
        except ValueError:
            return _error("the body must be JSON", 400)
    if not isinstance(payload, dict):
        return _error("the body must be a JSON object", 400)
    lists = {}
    for name in ("products", "classifications", "languages"):
        value = payload.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return _error(f"{name} must be a list of strings", 400)
        lists[name] = tuple(value)
    return payload, lists


class AdminEndpoints:
    """The admin API's endpoints for one update server: its store and, when it syncs from
    an upstream, its runner; `clock`, the present the downstream servers not seen for long
    are left out at (the backend's clock)."""

    def __init__(
        self,
        store: UpdateStore,
        runner: SyncRunner | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.runner = runner
        self.clock = clock

    async def status(self, _request: Request) -> JSONResponse:
        return JSONResponse(self.store.status().to_json())

    async def changes(self, request: Request) -> JSONResponse:
        since_text = request.query_params.get("since", "0")
        if not since_text.isdigit():
            return _error(
                f"since must be a change number (a whole number), not {since_text!r}", 400
            )
        keys = self.store.changed_since(int(since_text))
        return JSONResponse(
            {
                "since": int(since_text),
                "change_counter": self.store.change_counter(),
                "revisions": [[k.update_id, k.revision] for k in keys],
            }
        )

    async def sync_state(self, request: Request) -> JSONResponse:
        runner = self.runner
        if runner is None:
            return _error("this update server has no upstream", 404)
        version = request.query_params.get("version")
        if version is None:
            return JSONResponse(runner.state.to_json())
        wait = request.query_params.get("wait", "30")
        if not version.isdigit() or not wait.replace(".", "", 1).isdigit():
            return _error("version and wait must be numbers (wait in seconds)", 400)
        state = await run_in_threadpool(
            runner.wait_for_change, int(version), min(float(wait), 60.0)
        )
        return JSONResponse(state.to_json())

    async def sync_start(self, request: Request) -> JSONResponse:
        refused = _refuse_unless_json(request, "POST /api/sync", "start a sync")
        if refused is not None:
            return refused
        runner = self.runner
        if runner is None:
            return _error("this update server has no upstream; start it with --upstream", 409)
        body = await _subscription_body(request)
        if isinstance(body, JSONResponse):
            return body
        payload, lists = body
        replica = payload.get("replica", False)
        if not isinstance(replica, bool):
            return _error(f"replica must be true or false, not {replica!r}", 400)
        refused = runner.begin(
            UpstreamSyncRequest(full=bool(payload.get("full", False)), replica=replica, **lists)
        )
        if refused is not None:
            return JSONResponse({**runner.state.to_json(), "error": refused}, status_code=409)
        return JSONResponse(runner.state.to_json(), status_code=202)

    async def deployments(self, request: Request) -> JSONResponse:
        since = request.query_params.get("since")
        if since is not None and not since.isdigit():
            return _error(
                f"since must be a deployment counter value (a whole number), not {since!r}", 400
            )
        found = await run_in_threadpool(
            self.store.deployment_summary, int(since) if since is not None else None
        )
        return JSONResponse(_jsonable(found))

    async def downstream(self, request: Request) -> JSONResponse:
        params = request.query_params
        numbers = {}
        for name, default in (("offset", "0"), ("limit", str(DOWNSTREAM_PAGE))):
            text = params.get(name, default)
            if not text.isdigit() or len(text) > 9:
                return _error(f"{name} must be a whole number, not {text[:40]!r}", 400)
            numbers[name] = int(text)
        offset, limit = numbers["offset"], min(max(numbers["limit"], 1), MAX_DOWNSTREAM_PAGE)
        now = self.clock()
        items = await run_in_threadpool(
            downstream_servers, self.store, offset=offset, limit=limit, now=now
        )
        total = await run_in_threadpool(count_downstream_servers, self.store, now=now)
        following = offset + len(items)
        return JSONResponse(
            {
                "total": total,
                "offset": offset,
                "limit": limit,
                "next_offset": following if following < total else None,
                "items": [_jsonable(d) for d in items],
            }
        )

    async def updates(self, request: Request) -> JSONResponse:
        params = request.query_params
        numbers = {}
        for name, default in (("since", "0"), ("after", ""), ("limit", str(PAGE))):
            text = params.get(name, default)
            if text and not text.isdigit():
                return _error(f"{name} must be a whole number, not {text!r}", 400)
            numbers[name] = int(text) if text else None
        page = await run_in_threadpool(
            changed_updates,
            self.store,
            since=numbers["since"] or 0,
            after=numbers["after"],
            products=params.getlist("product"),
            classifications=params.getlist("classification"),
            languages=params.getlist("language"),
            limit=min(numbers["limit"] or PAGE, PAGE),
        )
        return JSONResponse(page.to_json())

    async def configuration(self, _request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(self._configuration))

    async def configure(self, request: Request) -> JSONResponse:
        refused = _refuse_unless_json(request, "PUT /api/configuration", "change it")
        if refused is not None:
            return refused
        body = await _subscription_body(request)
        if isinstance(body, JSONResponse):
            return body
        wanted = Subscription(**body[1])

        def apply() -> dict[str, Any]:
            held = bool(self.store.categories())
            self.store.set_subscription(wanted, check=held)
            return {**self._configuration(), "categories_checked": held}

        try:
            return JSONResponse(await run_in_threadpool(apply))
        except UpdateServerError as exc:
            return _error(str(exc), 422)

    def _configuration(self) -> dict[str, Any]:
        subscription = self.store.subscription()
        titles = {c.update_id: c.title for c in self.store.categories()}
        named = (*subscription.products, *subscription.classifications)
        return {
            "server": "updatesync",
            "version": __version__,
            "upstream": None if self.runner is None else self.runner.upstream,
            "products": list(subscription.products),
            "classifications": list(subscription.classifications),
            "languages": list(subscription.languages),
            "titles": {uid: titles[uid] for uid in named if uid in titles},
            "categories_held": len(titles),
        }

    async def categories(self, request: Request) -> JSONResponse:
        since = request.query_params.get("since", "0")
        if not since.isdigit():
            return _error(f"since must be a whole number, not {since!r}", 400)
        # The counter first: whatever changes while the categories are read is after it.
        counter = await run_in_threadpool(self.store.change_counter)
        found = await run_in_threadpool(changed_categories, self.store, since=int(since))
        return JSONResponse({"change_counter": counter, "items": _jsonable(found)})


ADMIN_API = "/api/"
"""Where the admin API's routes are: behind the site-to-site signature in a hierarchy
(`roles/sup.py`), behind the admin token of `updateserver serve` standalone."""

ROUTES: Final[tuple[tuple[str, str, str], ...]] = (
    ("/api/status", "GET", "status"),
    ("/api/changes", "GET", "changes"),
    ("/api/sync", "GET", "sync_state"),
    ("/api/sync", "POST", "sync_start"),
    ("/api/deployments", "GET", "deployments"),
    ("/api/downstream", "GET", "downstream"),
    ("/api/updates", "GET", "updates"),
    ("/api/categories", "GET", "categories"),
    ("/api/configuration", "GET", "configuration"),
    ("/api/configuration", "PUT", "configure"),
)
"""The admin API: (path, method, `AdminEndpoints` method), in matching order."""


def admin_routes(
    store: UpdateStore,
    runner: SyncRunner | None,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[Route]:
    """The admin API's routes for one update server (`clock`: as `StoreBackend`'s)."""
    endpoints = AdminEndpoints(store, runner, clock)
    return [Route(path, getattr(endpoints, name), methods=[verb]) for path, verb, name in ROUTES]


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
