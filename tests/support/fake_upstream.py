"""Test helpers for the server-to-server protocol over real loopback HTTP.

- `FakeUpstream`: a small ASGI upstream (USS) answering MS-WSUSSS from an in-memory catalog
  with the messages of `updatesync.wsusss.messages`: cookies it issued, anchors from its own
  change numbers, the GetConfig / Categories + Classifications selection of SPEC.md section
  7, at most `max_per_request` ids per GetUpdateData (InvalidParameters above), an unknown
  id answered InternalServerError, answers kept under `max_answer_bytes` (fewer documents);
- `FaultInjector`: an ASGI wrapper around ANY upstream app that, for chosen calls of an
  operation, answers a fault, an HTTP error page, garbage, a truncated body, a hostile
  update document, or cuts the connection mid-answer, or never answers;
- `serve(app)`: runs an ASGI app with uvicorn on a free loopback port in a background
  thread, waits for its startup event, yields the base URL and stops it afterwards;
- `upstream_app(store)`: the project's real upstream service over `store` when
  `updatesync.wsusss.service` is importable, else a `FakeUpstream` of the store's revisions.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import ExportRecord
from updatesync.metadata.model import CategoryType, RevisionKey, UpdateRevision, UpdateType
from updatesync.updateserver.store import UpdateStore
from updatesync.wsusss.anchors import Anchor
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import FAULT_HTTP_STATUS, ErrorCode, build_fault
from updatesync.wsusss.messages import (
    AuthorizationCookie,
    Cookie,
    GetAuthConfigRequest,
    GetAuthConfigResponse,
    GetAuthorizationCookieRequest,
    GetAuthorizationCookieResponse,
    GetConfigDataRequest,
    GetConfigDataResponse,
    GetCookieRequest,
    GetCookieResponse,
    GetRevisionIdListRequest,
    GetRevisionIdListResponse,
    GetUpdateDataRequest,
    GetUpdateDataResponse,
    Message,
    RevisionIdList,
    ServerAuthConfig,
    ServerSyncConfigData,
    ServerSyncUpdateData,
    ServerUpdateData,
    parse_request,
)
from updatesync.wsusss.soap import CONTENT_TYPE, parse_soap_action, service_for_path

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>'
    '<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update">&lol4;</upd:Update>'
)
"""An update document with nested entities (the "billion laughs" shape, kept small)."""


# --------------------------------------------------------------------------- ASGI plumbing


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes, content_type: str = CONTENT_TYPE) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


# --------------------------------------------------------------------------- the catalog


@dataclass
class FakeCatalog:
    """Revisions in arrival order; a revision's change number is its position + 1."""

    revisions: list[UpdateRevision] = field(default_factory=list)

    @classmethod
    def from_records(cls, records: Iterable[ExportRecord]) -> FakeCatalog:
        return cls([parse_update(r.xml, where=f"record {r.update_id}") for r in records])

    @classmethod
    def from_store(cls, store: UpdateStore) -> FakeCatalog:
        return cls.from_records(store.iter_records())

    def add(self, records: Iterable[ExportRecord]) -> None:
        self.revisions.extend(FakeCatalog.from_records(records).revisions)

    @property
    def keys(self) -> set[RevisionKey]:
        return {doc.key for doc in self.revisions}

    def by_key(self) -> dict[RevisionKey, UpdateRevision]:
        return {doc.key: doc for doc in self.revisions}

    def select(
        self,
        get_config: bool,
        since: int | None,
        categories: dict[str, bool] | None,
        classifications: dict[str, bool] | None,
    ) -> list[RevisionKey]:
        """SPEC.md section 7: one of each, neither means everything, only one means none;
        `Delta=false` items come regardless of the anchor. Bundle leaves come with bundles."""
        if get_config:
            return [
                d.key
                for n, d in enumerate(self.revisions, 1)
                if d.update_type in (UpdateType.CATEGORY, UpdateType.DETECTOID)
                and (since is None or n > since)
            ]
        if bool(categories) != bool(classifications):
            return []
        kinds = {
            d.update_id: d.category_type
            for d in self.revisions
            if d.is_category and d.category_type is not None
        }
        parents = {d.update_id: d.parent_categories for d in self.revisions if d.is_category}
        picked: list[RevisionKey] = []
        for n, doc in enumerate(self.revisions, 1):
            if doc.update_type not in (UpdateType.SOFTWARE, UpdateType.DRIVER):
                continue
            fresh = since is None or n > since
            if categories and classifications:
                products, classes = doc.products_and_classifications(kinds)
                lineage = set(_ancestors(products, parents))
                hit_product = [categories[c] for c in lineage if c in categories]
                hit_class = [classifications[c] for c in classes if c in classifications]
                if not hit_product or not hit_class:
                    continue
                fresh = fresh or not all(hit_product) or not all(hit_class)
            if fresh:
                picked.append(doc.key)
        listed = dict.fromkeys(picked)
        latest = {d.key: d for d in self.revisions}
        for key in list(listed):
            for leaf in latest[key].bundled_updates:
                if leaf in latest:
                    listed.setdefault(leaf)
        return list(listed)


def _ancestors(ids: Iterable[str], parents: dict[str, tuple[str, ...]]) -> Iterator[str]:
    seen: set[str] = set()
    stack = list(ids)
    while stack:
        uid = stack.pop()
        if uid in seen:
            continue
        seen.add(uid)
        yield uid
        stack.extend(parents.get(uid, ()))


# --------------------------------------------------------------------------- the fake USS


@dataclass
class FakeUpstream:
    """An ASGI upstream over a `FakeCatalog` (see the module docstring)."""

    catalog: FakeCatalog
    max_per_request: int = 100
    max_answer_bytes: int = 2_000_000
    cookie_lifetime: timedelta = timedelta(hours=4)
    auth_cookies: set[bytes] = field(default_factory=set)
    cookies: set[bytes] = field(default_factory=set)
    operations: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        status, payload = self.handle(scope, body)
        await respond(send, status, payload)

    def handle(self, scope: Scope, body: bytes) -> tuple[int, bytes]:
        action = header(scope, "soapaction")
        try:
            request = parse_request(
                body, soap_action=action, service=service_for_path(scope.get("path", "/"))
            )
        except ProtocolError as exc:
            return FAULT_HTTP_STATUS, build_fault(ErrorCode.INVALID_PARAMETERS, str(exc))
        self.operations.append(request.OPERATION)
        try:
            answer = self.answer(request)
        except _Fault as fault:
            return FAULT_HTTP_STATUS, build_fault(fault.code, fault.message, method=action)
        return 200, answer.to_xml()

    def invalidate_cookies(self) -> None:
        """Forget every cookie issued (an upstream restart with a new key would)."""
        self.cookies.clear()

    def answer(self, request: Message) -> Message:
        if isinstance(request, GetAuthConfigRequest):
            return GetAuthConfigResponse(ServerAuthConfig(last_change=datetime.now(UTC)))
        if isinstance(request, GetAuthorizationCookieRequest):
            token = secrets.token_bytes(16)
            self.auth_cookies.add(token)
            return GetAuthorizationCookieResponse(AuthorizationCookie(cookie_data=token))
        if isinstance(request, GetCookieRequest):
            presented = [c.cookie_data for c in request.auth_cookies or ()]
            if not any(data in self.auth_cookies for data in presented):
                raise _Fault(ErrorCode.INVALID_AUTHORIZATION_COOKIE)
            token = secrets.token_bytes(16)
            self.cookies.add(token)
            expiry = datetime.now(UTC) + self.cookie_lifetime
            return GetCookieResponse(Cookie(expiration=expiry, encrypted_data=token))
        cookie = getattr(request, "cookie", None)
        if cookie is None or cookie.encrypted_data not in self.cookies:
            raise _Fault(ErrorCode.INVALID_COOKIE)
        if isinstance(request, GetConfigDataRequest):
            return GetConfigDataResponse(
                ServerSyncConfigData(
                    catalog_only_sync=False,
                    lazy_sync=True,
                    server_hosts_psf_files=False,
                    max_number_of_computer_ids_in_request=0,
                    max_number_of_driver_sets_per_request=0,
                    max_number_of_pnp_hardware_ids_in_request=0,
                    max_number_of_updates_per_request=self.max_per_request,
                    new_config_anchor=self._anchor(),
                )
            )
        if isinstance(request, GetRevisionIdListRequest):
            return self._revision_ids(request)
        if isinstance(request, GetUpdateDataRequest):
            return self._update_data(request)
        raise _Fault(ErrorCode.INVALID_PARAMETERS, request.OPERATION)

    def _anchor(self) -> str:
        return str(Anchor.issue(len(self.catalog.revisions), datetime.now(UTC)))

    def _revision_ids(self, request: GetRevisionIdListRequest) -> GetRevisionIdListResponse:
        flt = request.filter
        if flt is None:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "filter")
        since = None
        if flt.anchor is not None:
            try:
                since = Anchor.parse(flt.anchor).change_number
            except ValueError:
                raise _Fault(ErrorCode.INVALID_PARAMETERS, "filter") from None
        categories = {i.id.lower(): i.delta for i in flt.categories or ()}
        classifications = {i.id.lower(): i.delta for i in flt.classifications or ()}
        keys = self.catalog.select(flt.get_config, since, categories, classifications)
        return GetRevisionIdListResponse(RevisionIdList(self._anchor(), tuple(keys)))

    def _update_data(self, request: GetUpdateDataRequest) -> GetUpdateDataResponse:
        ids = request.update_ids or ()
        if len(ids) > self.max_per_request:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "updateIds")
        known = self.catalog.by_key()
        if any(key not in known for key in ids):
            raise _Fault(ErrorCode.INTERNAL_SERVER_ERROR)
        items: list[ServerSyncUpdateData] = []
        size = 2_000
        for key in ids:
            xml = known[key].xml
            cost = len(xml.encode("utf-8")) * 11 // 10 + 300
            if items and size + cost > self.max_answer_bytes:
                break
            size += cost
            items.append(ServerSyncUpdateData(key, xml_update_blob=xml))
        return GetUpdateDataResponse(ServerUpdateData(tuple(items), ()))


class _Fault(Exception):
    def __init__(self, code: ErrorCode, message: str = "") -> None:
        super().__init__(code.value)
        self.code = code
        self.message = message


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


# --------------------------------------------------------------------------- fault injection

Mischief = Callable[["Exchange"], Awaitable[None]]


@dataclass
class Exchange:
    """One request as the injector sees it; `forward()` runs it through the wrapped app and
    returns (status, body) without sending anything to the client."""

    scope: Scope
    body: bytes
    operation: str
    send: Send
    app: ASGIApp
    receive: Receive

    async def forward(self) -> tuple[int, bytes]:
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": self.body, "more_body": False}
            return await self.receive()

        status = 500
        chunks: list[bytes] = []

        async def capture(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(self.scope, replay, capture)
        return status, b"".join(chunks)


@dataclass(frozen=True)
class Seen:
    """A request as it arrived: path, Content-Type, SOAPAction, operation, body."""

    path: str
    content_type: str | None
    soap_action: str | None
    operation: str
    body: bytes


@dataclass
class Rule:
    """Apply `mischief` to calls number `first` .. `first + times - 1` (1-based) of
    `operation` (None: any operation)."""

    operation: str | None
    mischief: Mischief
    first: int = 1
    times: int = 1
    seen: int = 0
    fired: int = 0


CONTENT_DOWNLOAD = "Content Download"


class FaultInjector:
    """Wraps an ASGI upstream; each request runs the first matching rule, else passes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.rules: list[Rule] = []
        self.operations: list[str] = []
        """The SOAP operations asked for, in order."""
        self.downloads: list[str] = []
        """The Content Download paths asked for (a rule names them `CONTENT_DOWNLOAD`)."""
        self.requests: list[Seen] = []
        self.delivered: list[RevisionKey] = []

    def on(
        self, operation: str | None, mischief: Mischief, *, call: int = 1, times: int = 1
    ) -> Rule:
        rule = Rule(operation, mischief, first=call, times=times)
        self.rules.append(rule)
        return rule

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        action = header(scope, "soapaction")
        try:
            operation = parse_soap_action(action)[1] if action else "?"
        except ProtocolError:
            operation = "?"
        if scope.get("method") in ("GET", "HEAD") and str(scope.get("path", "")).lower().startswith(
            "/content/"
        ):
            # A file of the Content Download service, not a SOAP operation: kept apart.
            operation = CONTENT_DOWNLOAD
            self.downloads.append(str(scope.get("path", "")))
        else:
            self.operations.append(operation)
        self.requests.append(
            Seen(scope.get("path", ""), header(scope, "content-type"), action, operation, body)
        )
        exchange = Exchange(scope, body, operation, send, self.app, receive)
        for rule in self.rules:
            if rule.operation not in (None, operation):
                continue
            rule.seen += 1
            if rule.first <= rule.seen < rule.first + rule.times:
                rule.fired += 1
                await rule.mischief(exchange)
                return
        status, payload = await exchange.forward()
        if operation == "GetUpdateData" and status == 200:
            answer = GetUpdateDataResponse.from_xml(payload)
            self.delivered.extend(item.id for item in answer.result.updates or ())
        await respond(send, status, payload)


# --- mischief ------------------------------------------------------------------------------


def fault(code: ErrorCode | str, message: str = "") -> Mischief:
    async def run(exchange: Exchange) -> None:
        action = header(exchange.scope, "soapaction")
        await respond(exchange.send, FAULT_HTTP_STATUS, build_fault(code, message, method=action))

    return run


def status_page(status: int, body: bytes, content_type: str = "text/html") -> Mischief:
    async def run(exchange: Exchange) -> None:
        await respond(exchange.send, status, body, content_type)

    return run


HTML_500 = (
    b"<!DOCTYPE html><html><head><title>Runtime Error</title></head>"
    b"<body><h1>Server Error in '/' Application.</h1></body></html>"
)


def garbage() -> Mischief:
    return status_page(200, b"\x8b\x1f\x08 garbage, not XML \xff\xfe at all" * 3, CONTENT_TYPE)


def truncated(fraction: float = 0.5) -> Mischief:
    """The real answer cut short, with a Content-Length that matches the cut body."""

    async def run(exchange: Exchange) -> None:
        status, payload = await exchange.forward()
        await respond(exchange.send, status, payload[: int(len(payload) * fraction)])

    return run


def reset(fraction: float = 0.5) -> Mischief:
    """Headers announcing the whole answer, part of the body, then the socket is closed."""

    async def run(exchange: Exchange) -> None:
        status, payload = await exchange.forward()
        await exchange.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", CONTENT_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await exchange.send(
            {
                "type": "http.response.body",
                "body": payload[: int(len(payload) * fraction)],
                "more_body": True,
            }
        )
        raise ConnectionAbortedError("fault injector: connection cut mid-answer")

    return run


def hang() -> Mischief:
    """Never answer; return when the client gives up and disconnects."""

    async def run(exchange: Exchange) -> None:
        while (await exchange.receive())["type"] != "http.disconnect":
            pass

    return run


def hostile_document(document: str = BILLION_LAUGHS) -> Mischief:
    """The real GetUpdateData answer with the first document replaced by `document`."""

    async def run(exchange: Exchange) -> None:
        status, payload = await exchange.forward()
        answer = GetUpdateDataResponse.from_xml(payload)
        updates = list(answer.result.updates or ())
        updates[0] = ServerSyncUpdateData(updates[0].id, xml_update_blob=document)
        result = replace(answer.result, updates=tuple(updates))
        await respond(exchange.send, status, GetUpdateDataResponse(result).to_xml())

    return run


# --------------------------------------------------------------------------- running


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


@contextmanager
def serve(app: ASGIApp, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Run `app` on a free port of `host`; yield its base URL (`http://host:port`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="critical", access_log=False, lifespan="auto", timeout_graceful_shutdown=5
    )
    server = _Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"upstream:{port}", daemon=True
    )
    thread.start()
    try:
        if not server.ready.wait(30) or not server.started:
            raise RuntimeError(f"test upstream on {host}:{port} did not start")
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def free_port_url(host: str = "127.0.0.1") -> str:
    """An address where nothing listens (the port was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return f"http://{host}:{sock.getsockname()[1]}"


def upstream_app(store: UpdateStore, kind: str = "service") -> tuple[ASGIApp, str]:
    """An upstream over `store`: the project's upstream service ("service") when it imports,
    else (or for "fake") a `FakeUpstream` of the store's revisions; with which one it is."""
    if kind == "service":
        try:
            from updatesync.updateserver.store_backend import StoreBackend
            from updatesync.wsusss.service import create_app
        except ImportError:
            pass
        else:
            return create_app(StoreBackend(store)), "service"
    return FakeUpstream(FakeCatalog.from_store(store)), "fake"


def category_ids(catalog: FakeCatalog) -> tuple[list[str], list[str]]:
    """(product ids, classification ids) of the catalog's categories."""
    products = [d.update_id for d in catalog.revisions if d.category_type is CategoryType.PRODUCT]
    classes = [
        d.update_id
        for d in catalog.revisions
        if d.category_type is CategoryType.UPDATE_CLASSIFICATION
    ]
    return products, classes
