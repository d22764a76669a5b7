"""The upstream side of MS-WSUSSS (the USS) as an ASGI application.

The service speaks the protocol and checks what the specification makes it check (cookies,
protocol version, anchors, request sizes); what it serves comes from a backend, so the
protocol stays apart from storage: `updatesync.updateserver.store_backend.StoreBackend` serves an
update server's store. Paths are matched without regard to case and with doubled slashes
collapsed, as Windows downstream servers send them.

Faults follow [MS-WSUSSS] 2.2.9: HTTP 500, `soap:Fault` with `detail/ErrorCode`.

Sizes are bounded before anything is stored: GetAuthorizationCookie's accountName must be
an FQDN (at most 255 characters, labels of at most 63, RFC 1035 2.3) and its accountGuid a
GUID (2.2.5.1), GetCookie's protocolVersion at most 16 characters; anything else is the
protocol's InvalidParameters fault naming the parameter. How many downstream servers are
kept, per source address and in all, and for how long, is the backend's business.

GetDeployments (3.1.4.10) serves a replica its upstream's target groups, the deployments
and dead deployments after the deployment anchor it sends (all of them without one) and
the hidden updates; the new anchor carries the backend's deployment counter, as the
revision anchors carry its change counter. A downstream that calls it is noted as a
replica (only a replica may call it).

Large answers are streamed (`stream_write.py`): GetRevisionIdList's keys are read from the
backend as they are written, GetUpdateData's documents written one after another; an answer
over `CHUNK_CHARS` goes out chunked, without Content-Length, a smaller one whole. Every check
is made before the first byte, so every fault is still a fault; a failure after it cuts the
connection (`AnswerCut`). At most `SOAP_WORKERS` answers are worked on at once.
"""

from __future__ import annotations

import logging
import posixpath
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Send

from updatesync.config.memory import tune_gc, tune_malloc
from updatesync.metadata.model import RevisionKey
from updatesync.security.limits import JSON_BODY_LIMIT, MB, BodyLimits
from updatesync.wsusss.anchors import Anchor, AnchorError
from updatesync.wsusss.content import CONTENT_PREFIX, parse_content_path
from updatesync.wsusss.cookies import CookieAuthority, CookieClaims, CookieError
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import FAULT_HTTP_STATUS, ErrorCode, build_fault
from updatesync.wsusss.messages import (
    AuthPlugInInfo,
    Cookie,
    GetAuthConfigRequest,
    GetAuthConfigResponse,
    GetAuthorizationCookieRequest,
    GetAuthorizationCookieResponse,
    GetConfigDataRequest,
    GetConfigDataResponse,
    GetCookieRequest,
    GetCookieResponse,
    GetDeploymentsRequest,
    GetDeploymentsResponse,
    GetRevisionIdListRequest,
    GetRevisionSetDigestRequest,
    GetRevisionSetDigestResponse,
    GetUpdateDataRequest,
    Message,
    MonitoredServicesResponse,
    PingRequest,
    PingResponse,
    RevisionSetDigest,
    ServerAuthConfig,
    ServerSyncConfigData,
    ServerSyncDeployment,
    ServerSyncDeploymentResult,
    ServerSyncLanguageData,
    ServerSyncTargetGroup,
    ServerSyncUpdateData,
    ServerSyncUrlData,
    UnsupportedOperationError,
    parse_protocol_version,
    parse_request,
)
from updatesync.wsusss.soap import CONTENT_TYPE, escape_text, service_for_path
from updatesync.wsusss.stream_write import (
    CHUNK_CHARS,
    StreamedMessage,
    revision_id_list,
    update_data,
)

logger = logging.getLogger(__name__)

MAX_UPDATES_PER_REQUEST = 100
"""What Windows advertises (SPEC section 7; exchange 000005)."""
SOAP_BODY_LIMIT = 2 * MB
"""The largest SOAP request taken. The biggest of the captured exchanges is under 1 KB, and
a GetUpdateData of `MAX_UPDATES_PER_REQUEST` updates about 10 KB: ample headroom."""
SOAP_WORKERS = 4
"""At most this many SOAP answers are worked on at once (each in a worker thread, one step of
a streamed answer at a time); further requests wait their turn. The GIL lets no more than one
run anyway, and each answer being built holds its documents: fifty downstream servers asking
at once would otherwise hold fifty answers' worth, and spread them over as many threads'
malloc arenas."""
RESPONSE_BUDGET = 2_000_000
"""GetUpdateData answers stay under this many bytes ([MS-WSUSSS] note 37)."""
AUTHORIZATION_LIFETIME = timedelta(minutes=240)
UNSUPPORTED = "unsupported"
"""The operation `on_answer` is told of a well-formed request for an operation not served."""
PROTOCOL_VERSION = "1.20"


MAX_ACCOUNT_NAME_CHARS = 255
"""GetAuthorizationCookie's accountName is an FQDN (3.1.4.2): RFC 1035 2.3.4 bounds a name
to 255 octets and each label to 63."""
MAX_LABEL_CHARS = 63
MAX_PROTOCOL_VERSION_CHARS = 16
"""GetCookie's protocolVersion is "x.y" (1.1 ... 1.20); the schema gives no size (Unverified
bound: 16 characters)."""
_ACCOUNT_LABEL = re.compile(r"[A-Za-z0-9_-]+")
_ACCOUNT_GUID = re.compile(
    r"\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?"
)


def is_account_name(name: str) -> bool:
    """Whether `name` may be a downstream server's accountName: an FQDN of RFC 1035 2.3
    characters (letters, digits, hyphens; underscores tolerated, as host names carry them),
    at most 255 characters, labels of 1 to 63; a trailing dot allowed."""
    if not name or len(name) > MAX_ACCOUNT_NAME_CHARS:
        return False
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return all(
        len(label) <= MAX_LABEL_CHARS and _ACCOUNT_LABEL.fullmatch(label) for label in labels
    )


def parse_account_guid(text: str | None) -> uuid.UUID | None:
    """The downstream server's GUID of an accountGuid (the 2.2.5.1 pattern, braces
    tolerated), None when it is not one."""
    value = (text or "").strip()
    if _ACCOUNT_GUID.fullmatch(value) is None:
        return None
    return uuid.UUID(value)


class RevisionsNotFound(Exception):
    """A backend holds none of, or not all of, the revisions asked for."""

    def __init__(self, missing: Sequence[RevisionKey]) -> None:
        self.missing = tuple(missing)
        super().__init__(", ".join(str(k) for k in self.missing[:3]))


@dataclass(frozen=True, slots=True)
class ServedDocument:
    """One revision as GetUpdateData serves it."""

    key: RevisionKey
    xml: str
    file_digests: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RevisionQuery:
    """A GetRevisionIdList filter with its anchor decoded: `since` is a change number."""

    get_config: bool
    since: int | None
    categories: tuple[tuple[str, bool], ...] = ()
    classifications: tuple[tuple[str, bool], ...] = ()
    languages: tuple[tuple[int, bool], ...] = ()
    """The filter's `Languages` (LCID, Delta); empty: every language."""
    through: int | None = None
    """List only what had arrived when the change counter stood here (the anchor handed out
    with the listing carries it)."""


@dataclass(frozen=True, slots=True)
class DigestQuery:
    """GetRevisionSetDigest with its anchors decoded: the categories and detectoids held at
    change number `config_through`, the updates `categories` and `classifications` select
    (every update when both are empty) at `updates_through`."""

    config_through: int
    updates_through: int
    categories: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()
    languages: tuple[int, ...] = ()
    """LanguageIDs (none: every language)."""


@dataclass(frozen=True, slots=True)
class DeploymentAnswer:
    """What a backend serves for GetDeployments, read at one moment: `counter` is its
    deployment counter then (the number of the anchor handed out), `deployments` and
    `dead_deployments` those changed after the number asked for, the rest in full."""

    counter: int
    groups: tuple[ServerSyncTargetGroup, ...]
    deployments: tuple[ServerSyncDeployment, ...] = ()
    dead_deployments: tuple[str, ...] = ()
    hidden_updates: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Language:
    language_id: int
    short_name: str
    long_name: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    server_id: str
    cookie_key: bytes
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class UpstreamBackend(Protocol):
    """What the service needs from the server it fronts."""

    def identity(self) -> ServerIdentity: ...

    def change_counter(self) -> int: ...

    def languages(self, since: Anchor | None = None) -> Sequence[Language]:
        """The LanguageUpdateList: every language without `since`, else those whose
        settings changed after that config anchor was issued (3.1.4.4.3.1)."""
        ...

    def list_revisions(self, query: RevisionQuery) -> Iterable[RevisionKey]:
        """The revisions `query` selects, in the order they arrived; may be read lazily
        (a listing is streamed to the downstream as it is read)."""
        ...

    def documents(self, keys: Sequence[RevisionKey]) -> Iterable[ServedDocument]:
        """The documents of `keys`, in that order; may be read lazily, a few at a time as
        the answer is written, but RevisionsNotFound (when one is not held) must come before
        the first document."""
        ...

    def file_urls(self, digests: Sequence[str]) -> dict[str, str]: ...

    def content_file(self, digest: str) -> tuple[str, bytes] | None:
        """(file name, bytes) of the content file with this SHA-1 digest (base64) that the
        Content Download service may serve, None when there is none."""
        ...

    def deployments(self, since: int | None) -> DeploymentAnswer:
        """Target groups, deployments changed after deployment counter value `since`
        (all without), dead deployments after it, hidden updates."""
        ...

    def revision_set_digest(self, query: DigestQuery) -> RevisionSetDigest:
        """updatesync's audit extension: the digest of what the downstream's listings held
        (`DigestQuery`)."""
        ...

    def register_downstream(
        self, account_guid: str, account_name: str, address: str | None, protocol_version: str
    ) -> None: ...

    def note_downstream(
        self,
        account_guid: str,
        *,
        protocol_version: str | None = None,
        sync_anchor: str | None = None,
        is_replica: bool | None = None,
    ) -> None: ...


class AnswerCut(Exception):
    """Writing a streamed answer failed after its first bytes were sent (logged already)."""


class _Fault(Exception):
    def __init__(self, code: ErrorCode, message: str = "") -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass
class UpstreamService:
    """The protocol logic, one method per operation, on top of a backend."""

    backend: UpstreamBackend
    max_updates_per_request: int = MAX_UPDATES_PER_REQUEST
    response_budget: int = RESPONSE_BUDGET
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    on_error: Callable[[str, BaseException], None] | None = None
    stream_threshold: int = CHUNK_CHARS
    """Answers longer than this many bytes are sent in chunks (no Content-Length)."""
    on_answer: Callable[[str | None, str | None], None] | None = None
    """Told of each request once answered: its operation (`UNSUPPORTED` for a well-formed
    request of an operation not served, None when the request could not be read) and the
    fault's ErrorCode (None: answered without a fault). A streamed answer is told when its
    last chunk is written, or cut (`InternalServerError`); one the downstream stopped
    reading is not told."""

    def __post_init__(self) -> None:
        ident = self.backend.identity()
        self.identity = ident
        self.authority = CookieAuthority(ident.cookie_key, ident.server_id)

    # -- dispatch ---------------------------------------------------------------------

    def handle(
        self,
        body: bytes,
        path: str,
        soap_action: str | None,
        peer: str | None,
        url: str | None = None,
    ) -> tuple[int, bytes]:
        """Answer one POST: (HTTP status, response body). `url` (the service address as
        the downstream called it) goes into a fault's `faultactor`, as Windows does."""
        status, answer = self.answer(body, path, soap_action, peer, url)
        return status, answer if isinstance(answer, bytes) else b"".join(answer)

    def answer(
        self,
        body: bytes,
        path: str,
        soap_action: str | None,
        peer: str | None,
        url: str | None = None,
    ) -> tuple[int, bytes | Iterator[bytes]]:
        """Answer one POST as `handle` does, a large answer as an iterator of chunks.

        Everything checked before the first byte (cookie, filter, anchor, the first page of a
        listing) still ends in a fault. An answer that fits in `stream_threshold` characters
        is returned whole (sent with its Content-Length); a larger one is the chunks read so
        far followed by the rest as it is written. Should writing the rest fail (its
        database gone), the failure is logged and `on_error` told, and the iterator raises
        `AnswerCut`: the connection is to be closed without ending the answer, so the
        downstream sees a truncated body, never a complete-looking one."""
        service = service_for_path(path)
        operation: str | None = None
        try:
            if service is None:
                raise _Fault(ErrorCode.INVALID_PARAMETERS, "path")
            try:
                request = parse_request(body, soap_action=soap_action, service=service)
            except UnsupportedOperationError as exc:
                operation = UNSUPPORTED
                raise _Fault(ErrorCode.INVALID_PARAMETERS, exc.operation or "operation") from exc
            except ProtocolError as exc:
                raise _Fault(ErrorCode.INVALID_PARAMETERS, exc.element or "") from exc
            operation = type(request).OPERATION
            message = self._dispatch(request, peer)
            if not isinstance(message, StreamedMessage):
                whole = message.to_xml()
                self._answered(operation, None)
                return 200, whole
            chunks = message.chunks()
            start: list[bytes] = []
            size = 0
            for chunk in chunks:
                start.append(chunk)
                size += len(chunk)
                if size >= self.stream_threshold:
                    return 200, self._guarded(start, chunks, message.operation)
            self._answered(operation, None)
            return 200, b"".join(start)
        except _Fault as fault:
            self._answered(operation, fault.code)
            return FAULT_HTTP_STATUS, build_fault(
                fault.code, fault.message, method=soap_action, actor=url
            )
        except Exception as exc:  # the downstream gets a fault, the log gets the cause
            logger.exception("upstream service: %s failed", soap_action)
            if self.on_error is not None:
                self.on_error(soap_action or path, exc)
            self._answered(operation, ErrorCode.INTERNAL_SERVER_ERROR)
            return FAULT_HTTP_STATUS, build_fault(
                ErrorCode.INTERNAL_SERVER_ERROR, method=soap_action, actor=url
            )

    def _answered(self, operation: str | None, fault: ErrorCode | None) -> None:
        if self.on_answer is not None:
            self.on_answer(operation, None if fault is None else fault.value)

    def _guarded(
        self, start: list[bytes], rest: Iterator[bytes], operation: str
    ) -> Iterator[bytes]:
        yield from start
        start.clear()
        try:
            yield from rest
        except Exception as exc:
            logger.error(
                "upstream service: %s failed while its answer was sent: %s", operation, exc
            )
            if self.on_error is not None:
                self.on_error(operation, exc)
            self._answered(operation, ErrorCode.INTERNAL_SERVER_ERROR)
            raise AnswerCut(operation) from exc
        self._answered(operation, None)

    def _dispatch(self, request: Message, peer: str | None) -> Message | StreamedMessage:
        match request:
            case GetAuthConfigRequest():
                return self.get_auth_config()
            case GetAuthorizationCookieRequest():
                return self.get_authorization_cookie(request, peer)
            case GetCookieRequest():
                return self.get_cookie(request)
            case GetConfigDataRequest():
                return self.get_config_data(request)
            case GetRevisionIdListRequest():
                return self.get_revision_id_list(request)
            case GetUpdateDataRequest():
                return self.get_update_data(request)
            case GetDeploymentsRequest():
                return self.get_deployments(request)
            case GetRevisionSetDigestRequest():
                return self.get_revision_set_digest(request)
            case PingRequest():
                return self.ping()
        raise _Fault(ErrorCode.INVALID_PARAMETERS, type(request).OPERATION)

    # -- authorization ------------------------------------------------------------------

    def get_auth_config(self) -> GetAuthConfigResponse:
        config = ServerAuthConfig(
            last_change=self.identity.started_at, auth_info=(AuthPlugInInfo(),)
        )
        return GetAuthConfigResponse(config)

    def get_authorization_cookie(
        self, request: GetAuthorizationCookieRequest, peer: str | None
    ) -> GetAuthorizationCookieResponse:
        name = (request.account_name or "").strip()
        if not is_account_name(name):
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "accountName")
        account = parse_account_guid(request.account_guid)
        if account is None:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "accountGuid")
        self.backend.register_downstream(str(account), name, peer, "")
        cookie = self.authority.authorization_cookie(account, self.clock(), AUTHORIZATION_LIFETIME)
        return GetAuthorizationCookieResponse(cookie)

    def get_cookie(self, request: GetCookieRequest) -> GetCookieResponse:
        cookies = request.auth_cookies or ()
        if len(cookies) != 1:
            raise _Fault(ErrorCode.INVALID_AUTHORIZATION_COOKIE, "authCookies")
        now = self.clock()
        try:
            claims = self.authority.verify_authorization(cookies[0].cookie_data, now)
        except CookieError as exc:
            raise _Fault(ErrorCode.INVALID_AUTHORIZATION_COOKIE, "authCookies") from exc
        version = request.protocol_version or ""
        if len(version) > MAX_PROTOCOL_VERSION_CHARS:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "protocolVersion")
        try:
            major, _minor = parse_protocol_version(version)
        except (ProtocolError, ValueError):
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "protocolVersion") from None
        if major != 1:
            raise _Fault(ErrorCode.INCOMPATIBLE_PROTOCOL_VERSION, "protocolVersion")
        cookie = self.authority.cookie(
            claims.dss_id, now, protocol_version=version, not_after=claims.expires_at
        )
        self.backend.note_downstream(str(claims.dss_id), protocol_version=version)
        return GetCookieResponse(cookie)

    def _session(self, cookie: Cookie | None) -> CookieClaims:
        if cookie is None or not cookie.encrypted_data:
            raise _Fault(ErrorCode.INVALID_COOKIE)
        try:
            claims = self.authority.verify(cookie.encrypted_data, self.clock())
        except CookieError as exc:
            raise _Fault(ErrorCode.INVALID_COOKIE) from exc
        if claims.protocol_version is not None:
            major, _minor = parse_protocol_version(claims.protocol_version)
            if major != 1:
                raise _Fault(ErrorCode.INCOMPATIBLE_PROTOCOL_VERSION, "cookie")
        return claims

    # -- metadata -------------------------------------------------------------------------

    def get_config_data(self, request: GetConfigDataRequest) -> GetConfigDataResponse:
        self._session(request.cookie)
        try:
            known = Anchor.parse_optional(request.config_anchor)
        except AnchorError:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "configAnchor") from None
        # With a config anchor, only the languages changed since (000004: none).
        languages = tuple(
            ServerSyncLanguageData(lang.language_id, lang.short_name, lang.long_name, lang.enabled)
            for lang in self.backend.languages(known)
        )
        anchor = Anchor.issue(self.backend.change_counter(), self.clock())
        config = ServerSyncConfigData(
            catalog_only_sync=True,
            lazy_sync=False,
            server_hosts_psf_files=False,
            max_number_of_computer_ids_in_request=0,
            max_number_of_driver_sets_per_request=0,
            max_number_of_pnp_hardware_ids_in_request=0,
            max_number_of_updates_per_request=self.max_updates_per_request,
            new_config_anchor=anchor.format(),
            protocol_version=PROTOCOL_VERSION,
            language_update_list=languages,
            max_updates_per_request_in_get_update_decryption_data=self.max_updates_per_request,
        )
        return GetConfigDataResponse(config)

    def get_revision_id_list(self, request: GetRevisionIdListRequest) -> StreamedMessage:
        """The listing, streamed: every check (cookie, filter, anchor against the change
        counter) is made before it is read; it stops at the counter its new anchor carries."""
        claims = self._session(request.cookie)
        wanted = request.filter
        if wanted is None:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "filter")
        try:
            anchor = Anchor.parse_optional(wanted.anchor)
        except AnchorError:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "filter") from None
        counter = self.backend.change_counter()
        if anchor is not None and anchor.change_number > counter:
            # The anchor was issued by a store that held more than this one does now
            # (restored from a backup, or another server at the same address).
            raise _Fault(ErrorCode.SERVER_CHANGED, "filter")
        query = RevisionQuery(
            get_config=wanted.get_config,
            since=anchor.change_number if anchor is not None else None,
            categories=tuple((i.id.lower(), i.delta) for i in wanted.categories or ()),
            classifications=tuple((i.id.lower(), i.delta) for i in wanted.classifications or ()),
            languages=tuple((i.id, i.delta) for i in wanted.languages or ()),
            through=counter,
        )
        listed = iter(self.backend.list_revisions(query))
        new_anchor = Anchor.issue(counter, self.clock()).format()
        if not wanted.get_config:
            self.backend.note_downstream(str(claims.dss_id), sync_anchor=new_anchor)
        return revision_id_list(new_anchor, lambda: listed)

    def get_update_data(self, request: GetUpdateDataRequest) -> StreamedMessage:
        self._session(request.cookie)
        ids = request.update_ids
        if ids is None or len(ids) > self.max_updates_per_request:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "updateIds")
        documents = self.backend.documents(list(ids))
        digests: list[str] = []

        def updates() -> Iterator[ServerSyncUpdateData]:
            size, written = 600, 0
            try:
                for doc in documents:
                    # Escaped once: sized by it, then written as it is (update_data).
                    blob = escape_text(doc.xml, element="XmlUpdateBlob")
                    blob_size = len(blob) if blob.isascii() else len(blob.encode("utf-8"))
                    cost = blob_size + 250 + 40 * len(doc.file_digests)
                    if written and size + cost > self.response_budget:
                        return  # the downstream asks again for the rest
                    size += cost
                    written += 1
                    digests.extend(doc.file_digests)
                    yield ServerSyncUpdateData(
                        doc.key, xml_update_blob=blob, file_digest_list=doc.file_digests or None
                    )
            except RevisionsNotFound as exc:  # a real WSUS faults the whole call (000017)
                raise _Fault(ErrorCode.INTERNAL_SERVER_ERROR) from exc

        def file_urls() -> tuple[ServerSyncUrlData, ...]:
            urls = self.backend.file_urls(digests) if digests else {}
            return tuple(
                ServerSyncUrlData(digest, urls[digest], "")
                for digest in dict.fromkeys(digests)
                if digest in urls
            )

        return update_data(updates(), file_urls, blobs_escaped=True)

    def get_deployments(self, request: GetDeploymentsRequest) -> GetDeploymentsResponse:
        claims = self._session(request.cookie)
        try:
            since = Anchor.parse_optional(request.deployment_anchor)
        except AnchorError:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "deploymentAnchor") from None
        if not request.sync_anchor:  # 3.1.4.10: present, neither null nor empty
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "syncAnchor")
        try:
            synced = Anchor.parse(request.sync_anchor)
        except AnchorError:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "syncAnchor") from None
        if synced.change_number > self.backend.change_counter():
            raise _Fault(ErrorCode.SERVER_CHANGED, "syncAnchor")  # as in GetRevisionIdList
        answer = self.backend.deployments(since.change_number if since is not None else None)
        if since is not None and since.change_number > answer.counter:
            # Issued by a store that had written more deployments than this one holds.
            raise _Fault(ErrorCode.SERVER_CHANGED, "deploymentAnchor")
        anchor = Anchor.issue(answer.counter, self.clock()).format()
        self.backend.note_downstream(str(claims.dss_id), is_replica=True)
        return GetDeploymentsResponse(
            ServerSyncDeploymentResult(
                anchor,
                groups=answer.groups,
                deployments=answer.deployments,
                dead_deployments=answer.dead_deployments,
                hidden_updates=answer.hidden_updates,
                accepted_eulas=(),
            )
        )

    def get_revision_set_digest(
        self, request: GetRevisionSetDigestRequest
    ) -> GetRevisionSetDigestResponse:
        """updatesync's extension (`messages/audit.py`): the digest of what this server had
        listed at the two anchors of the downstream's last sync, checked as GetRevisionIdList
        checks an anchor."""
        self._session(request.cookie)
        counter = self.backend.change_counter()
        through: list[int] = []
        for name, text in (
            ("configAnchor", request.config_anchor),
            ("updateAnchor", request.update_anchor),
        ):
            try:
                anchor = Anchor.parse(text or "")
            except AnchorError:
                raise _Fault(ErrorCode.INVALID_PARAMETERS, name) from None
            if anchor.change_number > counter:
                raise _Fault(ErrorCode.SERVER_CHANGED, name)
            through.append(anchor.change_number)
        query = DigestQuery(
            through[0],
            through[1],
            tuple(i.id.lower() for i in request.categories or ()),
            tuple(i.id.lower() for i in request.classifications or ()),
            tuple(i.id for i in request.languages or ()),
        )
        return GetRevisionSetDigestResponse(self.backend.revision_set_digest(query))

    def ping(self) -> PingResponse:
        now = self.clock()
        return PingResponse(
            MonitoredServicesResponse(
                success_flag=True,
                services_time=now,
                is_https=False,
                config_file_last_modified_time=self.identity.started_at,
                config_file_next_expiration_time=now,
                config_file_expiration_modulo_in_minutes=0,
                services_name="updatesync",
            )
        )


_END = object()


def _not_found() -> Response:
    return Response("Not found.\n", status_code=404, media_type="text/plain")


async def _in_workers(
    chunks: Iterator[bytes], workers: anyio.CapacityLimiter
) -> AsyncIterator[bytes]:
    """The chunks, each written in a worker thread of `workers` (a slow reader holds none)."""
    while True:
        chunk = await anyio.to_thread.run_sync(next, chunks, _END, limiter=workers)
        if chunk is _END:
            return
        yield chunk  # type: ignore[misc]


class _CutOnError(StreamingResponse):
    """A chunked answer that, when writing it fails (`AnswerCut`), ends without its last
    chunk: the server then closes the connection, and the client sees a truncated body."""

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except AnswerCut:
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def create_app(
    backend: UpstreamBackend,
    *,
    extra_routes: Sequence[Route] = (),
    on_error: Callable[[str, BaseException], None] | None = None,
    on_answer: Callable[[str | None, str | None], None] | None = None,
) -> Starlette:
    """The ASGI application: the two SOAP services, the Content Download service (`GET
    /Content/<folder>/<name>`, `content.py`: the files the backend's `content_file` gives,
    anything else 404), plus `extra_routes` (an admin API, /metrics); `on_answer`:
    `UpstreamService.on_answer`.
    Its request bodies (`app.state.body_limits`, applied where it is served): a SOAP request
    at most `SOAP_BODY_LIMIT`, a call to `extra_routes` at most `JSON_BODY_LIMIT`."""
    service = UpstreamService(backend, on_error=on_error, on_answer=on_answer)
    workers = anyio.CapacityLimiter(SOAP_WORKERS)
    tune_malloc()  # config.memory: answers built in worker threads, their large chunks
    tune_gc()  # and its collector not run every 700 objects an answer makes

    async def content(request: Request) -> Response:
        """The USS Content Download service (2.1): GET a file by its digest; 404 otherwise."""
        parsed = parse_content_path(re.sub("/{2,}", "/", request.url.path))
        if parsed is None:
            return _not_found()
        digest, extension = parsed
        found = await anyio.to_thread.run_sync(backend.content_file, digest, limiter=workers)
        if found is None or posixpath.splitext(found[0])[1].lower() != extension.lower():
            return _not_found()
        data = found[1]
        return Response(
            data if request.method == "GET" else b"",
            media_type="application/octet-stream",
            headers={"Content-Length": str(len(data))},
        )

    async def soap(request: Request) -> Response:
        if request.method in ("GET", "HEAD") and request.url.path.lower().startswith(
            CONTENT_PREFIX
        ):
            return await content(request)
        if request.method != "POST":
            return Response(
                "This is an MS-WSUSSS SOAP endpoint: POST a SOAP 1.1 request.\n",
                status_code=405,
                headers={"Allow": "POST"},
                media_type="text/plain",
            )
        body = await request.body()
        peer = request.client.host if request.client else None
        url = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        status, payload = await anyio.to_thread.run_sync(
            service.answer,
            body,
            request.url.path,
            request.headers.get("soapaction"),
            peer,
            url,
            limiter=workers,
        )
        if isinstance(payload, bytes):
            return Response(payload, status_code=status, media_type=CONTENT_TYPE)
        return _CutOnError(_in_workers(payload, workers), status, media_type=CONTENT_TYPE)

    routes = [*extra_routes, Route("/{path:path}", soap, methods=["GET", "HEAD", "POST"])]
    app = Starlette(routes=routes)
    app.state.service = service
    app.state.soap_workers = workers
    app.state.body_limits = BodyLimits(
        default=SOAP_BODY_LIMIT, prefixes={route.path: JSON_BODY_LIMIT for route in extra_routes}
    )
    return app
