"""The downstream side of MS-WSUSSS on the wire: a synchronous SOAP 1.1 client of an upstream.

`UpstreamClient` posts one request per call to the upstream's Server Sync Web Service
(`<base>/ServerSyncWebService/ServerSyncWebService.asmx`) or, for GetAuthorizationCookie,
to the DSS Authorization Web Service named by GetAuthConfig's `ServiceUrl` (relative to the
base, as a real WSUS sends it: `DssAuthWebService/DssAuthWebService.asmx`). Every request
carries `Content-Type: text/xml; charset=utf-8` and the quoted `SOAPAction` of its
operation (SPEC.md section 7, observed in exchanges 000001 to 000019).

What is retried here, and what is not (the protocol's own faults are the sync engine's
business, `updateserver.sync`):

- retried (policy `UPSTREAM_CALL` of `retry_policy`, through tenacity), with exponential
  back-off and full jitter (each wait drawn between 0 and `backoff` doubled per attempt,
  capped at `max_backoff`), up to `retries` times after the first attempt: network errors
  (connection refused or reset, a body cut short) and time-outs, and an HTTP 5xx answer
  whose body is NOT a SOAP fault (a proxy's 502/503, an IIS error page). When the retries
  are spent, `UpstreamUnavailable` names the URL, the attempts and the last cause;
- not retried: a SOAP fault (any status) becomes `faults.WsusssFault`; any other status
  outside 2xx without a fault body becomes `UpstreamHttpError`; a 2xx body that is not a
  usable SOAP envelope (truncated, garbage, HTML) becomes `errors.ProtocolError`. Such a
  body came through an intact HTTP exchange, so asking again would most likely return the
  same bytes; the sync engine keeps whatever it committed and the next run picks up from
  there.

`list_revisions_into` is GetRevisionIdList read as it arrives (`stream_read`): its keys go
to a sink in batches instead of into one tuple, so a listing of any length takes flat
memory; `get_revision_id_list` still answers the whole tuple for small listings.

Each call is recorded in `calls` (`CallRecord`: operation, URL, attempts, HTTP status, and
for GetUpdateData the number of ids asked for), and `on_call`, when given, sees each record
as it is made: tests and benchmarks count what a downstream asked for from these.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

import httpx

from updatesync.metadata.model import RevisionKey
from updatesync.retry_policy import UPSTREAM_CALL
from updatesync.wsusss.content import MAX_CONTENT_BYTES, content_path
from updatesync.wsusss.errors import ProtocolError, WsusssError
from updatesync.wsusss.faults import WsusssFault, fault_from_element, is_fault
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
    GetDeploymentsRequest,
    GetDeploymentsResponse,
    GetRevisionIdListRequest,
    GetRevisionIdListResponse,
    GetRevisionSetDigestRequest,
    GetRevisionSetDigestResponse,
    GetUpdateDataRequest,
    GetUpdateDataResponse,
    IdAndDelta,
    LanguageAndDelta,
    Message,
    PingRequest,
    PingResponse,
    RevisionIdList,
    RevisionSetDigest,
    ServerAuthConfig,
    ServerSyncConfigData,
    ServerSyncDeploymentResult,
    ServerSyncFilter,
    ServerUpdateData,
    operation_for,
)
from updatesync.wsusss.soap import (
    CONTENT_TYPE,
    DEFAULT_MAX_RESPONSE_BYTES,
    SERVER_SYNC_PATH,
    parse_envelope,
)
from updatesync.wsusss.stream_read import (
    DEFAULT_MAX_ELEMENT_BYTES,
    DEFAULT_MAX_LISTING_BYTES,
    StreamedListing,
    read_revision_id_list,
)

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_BACKOFF",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "PROTOCOL_VERSION",
    "CallRecord",
    "ContentUnavailable",
    "RevisionSink",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamHttpError",
    "UpstreamUnavailable",
]

DEFAULT_TIMEOUT: Final = 120.0
"""Seconds per network step (connect, each read, each write). A full `GetRevisionIdList`
of a large catalog is tens of MB, so reads get generous time."""
DEFAULT_RETRIES: Final = 3
DEFAULT_BACKOFF: Final = 1.0
DEFAULT_MAX_BACKOFF: Final = 30.0
PROTOCOL_VERSION: Final = "1.20"
"""The protocol version sent in GetCookie: what Windows Server 2025 sends (exchange 000003)."""

_USER_AGENT: Final = "updatesync"
_M = TypeVar("_M", bound=Message)
_T = TypeVar("_T")
_LISTING: Final = "GetRevisionIdList"


class UpstreamError(WsusssError):
    """The upstream could not be talked to at the HTTP level."""


class UpstreamUnavailable(UpstreamError):
    """Network errors, time-outs or 5xx answers persisted through every retry. `error` is the
    last attempt's network error (None for an HTTP answer), `status` its HTTP status (None
    when no answer came)."""

    def __init__(
        self,
        url: str,
        operation: str,
        attempts: int,
        cause: str,
        *,
        error: BaseException | None = None,
        status: int | None = None,
    ) -> None:
        self.url = url
        self.operation = operation
        self.attempts = attempts
        self.cause = cause
        self.error = error
        self.status = status
        super().__init__(
            f"{operation} to {url} failed after {attempts} attempt"
            f"{'s' if attempts != 1 else ''}: {cause}; check that the upstream is running "
            "and reachable from here (address, port, proxy, firewall), then sync again"
        )


class UpstreamHttpError(UpstreamError):
    """An HTTP status that is neither success nor a SOAP fault nor worth retrying."""

    def __init__(self, url: str, operation: str, status: int, detail: str) -> None:
        self.url = url
        self.operation = operation
        self.status = status
        if status == 404:
            hint = "the address does not point at a WSUS upstream; check the upstream URL"
        elif status in (401, 403, 407):
            hint = (
                "the upstream (or a proxy) wants credentials, which updatesync does not send; "
                "allow anonymous server-to-server access on the upstream"
            )
        else:
            hint = "check the upstream URL and the upstream's logs"
        super().__init__(f"{operation} to {url}: HTTP {status} ({detail}); {hint}")


class ContentUnavailable(UpstreamError):
    """A file could not be had from the upstream's Content Download service: `reason` says
    why in a few words (an HTTP status, a network error, a size past the limit)."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        super().__init__(f"download of {url} failed: {reason}")


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One operation as the client made it. `ids` is the number of revisions a
    GetUpdateData asked for (0 for other operations); `status` the last HTTP status seen
    (None when no answer came)."""

    operation: str
    url: str
    attempts: int
    status: int | None
    ids: int = 0


class RevisionSink(Protocol):
    """Where `UpstreamClient.list_revisions_into` puts the keys it reads."""

    def restart(self) -> None:
        """Forget what was added: the call is being made (again) from the start."""

    def add(self, keys: list[RevisionKey]) -> None:
        """The next listed keys, in the order listed."""


@dataclass(slots=True)
class _Status:
    """The last HTTP status an attempt saw (None before any answer)."""

    status: int | None = None


class _Retry(Exception):
    """An attempt failed in a way worth retrying; `cause` says how, `error` is the network
    error behind it (None for an HTTP answer)."""

    def __init__(self, cause: str, error: BaseException | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.error = error


class UpstreamClient:
    """A synchronous client of one upstream server (MS-WSUSSS, SOAP 1.1 over HTTP/S).

    `base_url` is the upstream's root, e.g. `http://wsus.example:8530` (a path prefix is
    kept). `timeout` is per network step in seconds; `retries`, `backoff` and `max_backoff`
    bound the retries described in the module docstring (`retries=0`: one attempt only).
    `transport` replaces httpx's network transport (tests, in-process upstreams);
    `sleep` is what waits between attempts. `max_response_bytes` caps a response body;
    a streamed listing (`list_revisions_into`) is capped by `max_listing_bytes` as a whole
    and `max_element_bytes` per element instead.
    Use as a context manager, or call `close()`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        transport: httpx.BaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_listing_bytes: int = DEFAULT_MAX_LISTING_BYTES,
        max_element_bytes: int = DEFAULT_MAX_ELEMENT_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        on_call: Callable[[CallRecord], None] | None = None,
        verify: ssl.SSLContext | bool = True,
        rng: random.Random | None = None,
    ) -> None:
        """`verify`: what an https upstream's certificate is verified with (True: the
        system's trust store; an `ssl.SSLContext` trusting a hierarchy's own CA). `rng`: the
        random source of the retries' jitter (None: the process's own)."""
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, not {retries}")
        if backoff < 0 or max_backoff < 0:
            raise ValueError(f"backoff ({backoff}) and max_backoff ({max_backoff}) must be >= 0")
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL as exc:
            raise ValueError(
                f"upstream URL {base_url!r} is not a valid address ({exc}); give it as e.g. "
                "http://wsus.example:8530"
            ) from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(
                f"upstream URL {base_url!r} is not an http:// or https:// address with a host; "
                "give it as e.g. http://wsus.example:8530"
            )
        self.base_url = str(base_url).rstrip("/")
        self.server_sync_url = self.base_url + SERVER_SYNC_PATH
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_response_bytes = max_response_bytes
        self.max_listing_bytes = max_listing_bytes
        self.max_element_bytes = max_element_bytes
        self.calls: list[CallRecord] = []
        self._policy = UPSTREAM_CALL.scaled(backoff, max_backoff).with_attempts(retries + 1)
        self._sleep = sleep
        self._rng = rng
        self._on_call = on_call
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": _USER_AGENT},
            verify=verify,
        )

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> UpstreamClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- what was asked -------------------------------------------------------------------

    @property
    def update_ids_requested(self) -> int:
        """How many revision ids every GetUpdateData so far asked for, in total."""
        return sum(call.ids for call in self.calls if call.operation == "GetUpdateData")

    def service_url(self, relative: str) -> str:
        """An absolute URL for a service URL GetAuthConfig returned (relative to the base)."""
        return str(httpx.URL(self.base_url + "/").join(relative.strip()))

    # -- operations ------------------------------------------------------------------------

    def get_auth_config(self) -> ServerAuthConfig:
        """GetAuthConfig (3.1.4.1): the authorization plug-ins and their service URLs."""
        return self._call(GetAuthConfigRequest(), GetAuthConfigResponse).result

    def get_authorization_cookie(
        self, service_url: str, account_name: str, account_guid: str
    ) -> AuthorizationCookie:
        """GetAuthorizationCookie (3.1.4.2) at `service_url` (as GetAuthConfig gave it)."""
        request = GetAuthorizationCookieRequest(account_name, account_guid)
        response = self._call(
            request, GetAuthorizationCookieResponse, url=self.service_url(service_url)
        )
        return response.result

    def get_cookie(
        self,
        auth_cookies: Sequence[AuthorizationCookie],
        old_cookie: Cookie | None = None,
        protocol_version: str = PROTOCOL_VERSION,
    ) -> Cookie:
        """GetCookie (3.1.4.3): the session cookie every later call carries."""
        request = GetCookieRequest(tuple(auth_cookies), old_cookie, protocol_version)
        return self._call(request, GetCookieResponse).result

    def get_config_data(self, cookie: Cookie, config_anchor: str | None) -> ServerSyncConfigData:
        """GetConfigData (3.1.4.4): limits, languages and the new config anchor."""
        request = GetConfigDataRequest(cookie, config_anchor)
        return self._call(request, GetConfigDataResponse).result

    def get_revision_id_list(self, cookie: Cookie, filter: ServerSyncFilter) -> RevisionIdList:
        """GetRevisionIdList (3.1.4.5): the revisions the filter selects, and a new anchor."""
        request = GetRevisionIdListRequest(cookie, filter)
        return self._call(request, GetRevisionIdListResponse).result

    def list_revisions_into(
        self, cookie: Cookie, filter: ServerSyncFilter, sink: RevisionSink
    ) -> StreamedListing:
        """GetRevisionIdList (3.1.4.5), read as it arrives: the listed keys go to `sink` in
        batches (`sink.restart()` first at every attempt, so a retried call does not list
        twice); returns the new anchor and how many ids were listed. Memory stays flat
        whatever the length of the list (`stream_read`); a streamed answer is capped by
        `max_listing_bytes` as a whole and `max_element_bytes` per element, not by
        `max_response_bytes`. Faults, retries and records as for every other call."""
        request = GetRevisionIdListRequest(cookie, filter)
        return self._attempts(
            request,
            self.server_sync_url,
            lambda body, headers, seen: self._stream_listing(
                self.server_sync_url, body, headers, seen, sink
            ),
        )

    def get_update_data(self, cookie: Cookie, ids: Sequence[RevisionKey]) -> ServerUpdateData:
        """GetUpdateData (3.1.4.6) for `ids` (at most MaxNumberOfUpdatesPerRequest)."""
        request = GetUpdateDataRequest(cookie, tuple(ids))
        return self._call(request, GetUpdateDataResponse, ids=len(ids)).result

    def get_deployments(
        self, cookie: Cookie, deployment_anchor: str | None, sync_anchor: str | None
    ) -> ServerSyncDeploymentResult:
        """GetDeployments (3.1.4.10): target groups and approvals (replica servers)."""
        request = GetDeploymentsRequest(cookie, deployment_anchor, sync_anchor)
        return self._call(request, GetDeploymentsResponse).result

    def download_content(
        self, digest: str, file_name: str, *, max_bytes: int = MAX_CONTENT_BYTES
    ) -> bytes:
        """GET the file with this SHA-1 digest (base64) and name from the upstream's Content
        Download service ([MS-WSUSSS] 2.1, 3.2.4.4), at the base URL of its web services.
        One attempt (what failed is asked for again at the next sync); the caller checks
        the digest. Raises `ContentUnavailable`."""
        url = self.base_url + content_path(digest, file_name)
        status: int | None = None
        try:
            with self._http.stream("GET", url) as response:
                status = response.status_code
                if status != 200:
                    raise ContentUnavailable(url, f"HTTP {status}", status)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ContentUnavailable(url, f"over {max_bytes:,} bytes", status)
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise ContentUnavailable(url, f"timed out ({type(exc).__name__})", status) from exc
        except httpx.TransportError as exc:
            raise ContentUnavailable(
                url, f"network error ({type(exc).__name__}: {exc or 'no detail'})", status
            ) from exc
        finally:
            self._record(CallRecord("Content Download", url, 1, status))

    def get_revision_set_digest(
        self,
        cookie: Cookie,
        config_anchor: str,
        update_anchor: str,
        categories: Sequence[str] = (),
        classifications: Sequence[str] = (),
        languages: Sequence[int] = (),
    ) -> RevisionSetDigest:
        """updatesync's audit extension (`messages/audit.py`, not MS-WSUSSS): the digest of
        what the upstream had listed at the two anchors. A real WSUS answers with a fault."""
        request = GetRevisionSetDigestRequest(
            cookie,
            config_anchor,
            update_anchor,
            tuple(IdAndDelta(uid, True) for uid in categories) or None,
            tuple(IdAndDelta(uid, True) for uid in classifications) or None,
            tuple(LanguageAndDelta(lcid, True) for lcid in languages) or None,
        )
        return self._call(request, GetRevisionSetDigestResponse).result

    def ping(self, ping_level: int = 0) -> PingResponse:
        """Ping (3.1.4.12) of the Server Sync Web Service."""
        return self._call(PingRequest(ping_level), PingResponse)

    # -- one call, with retries ------------------------------------------------------------

    def _call(
        self, request: Message, response_type: type[_M], *, url: str | None = None, ids: int = 0
    ) -> _M:
        target = url or self.server_sync_url

        def attempt(body: bytes, headers: dict[str, str], seen: _Status) -> _M:
            seen.status, data = self._post(target, body, headers)
            return self._read(data, seen.status, response_type, target, operation_for(request).name)

        return self._attempts(request, target, attempt, ids=ids)

    def _attempts(
        self,
        request: Message,
        target: str,
        attempt: Callable[[bytes, dict[str, str], _Status], _T],
        *,
        ids: int = 0,
    ) -> _T:
        """`attempt(body, headers, status)` until it does not ask for a retry (`_Retry`) or
        the retries are spent; one `CallRecord` whatever the outcome."""
        operation = operation_for(request)
        body = request.to_xml()
        headers = {"Content-Type": CONTENT_TYPE, "SOAPAction": operation.soap_action}
        attempts = 0
        seen = _Status()

        def once() -> _T:
            nonlocal attempts
            attempts += 1
            return attempt(body, headers, seen)

        retrying = self._policy.retrying(
            lambda error: isinstance(error, _Retry), sleep=self._sleep, rng=self._rng
        )
        try:
            try:
                return retrying(once)
            except _Retry as retry:
                raise UpstreamUnavailable(
                    target,
                    operation.name,
                    attempts,
                    retry.cause,
                    error=retry.error,
                    status=seen.status if retry.error is None else None,
                ) from None
        finally:
            self._record(CallRecord(operation.name, target, attempts, seen.status, ids))

    def _record(self, record: CallRecord) -> None:
        self.calls.append(record)
        if self._on_call is not None:
            self._on_call(record)

    def _stream_listing(
        self,
        target: str,
        body: bytes,
        headers: dict[str, str],
        seen: _Status,
        sink: RevisionSink,
    ) -> StreamedListing:
        """One attempt of a streamed GetRevisionIdList: a 2xx body is parsed as it arrives,
        its keys go to `sink` (restarted first); any other status is read as `_read` does."""
        try:
            with self._http.stream("POST", target, content=body, headers=headers) as response:
                seen.status = status = response.status_code
                if not 200 <= status < 300:
                    data = self._capped(response, target)
                    return self._read(data, status, GetRevisionIdListResponse, target, _LISTING)
                sink.restart()
                try:
                    return read_revision_id_list(
                        response.iter_bytes(),
                        sink.add,
                        max_bytes=self.max_listing_bytes,
                        max_element_bytes=self.max_element_bytes,
                    )
                except ProtocolError as exc:
                    raise ProtocolError(
                        f"{exc.message} (answer from {target}, HTTP {status}); the upstream or "
                        "a proxy in between sent something that is not an MS-WSUSSS answer",
                        where=exc.where,
                        operation=exc.operation or _LISTING,
                        element=exc.element,
                    ) from exc
        except httpx.TimeoutException as exc:
            raise _Retry(f"timed out ({type(exc).__name__}: {exc or 'no detail'})", exc) from exc
        except httpx.TransportError as exc:
            raise _Retry(
                f"network error ({type(exc).__name__}: {exc or 'no detail'})", exc
            ) from exc

    def _capped(self, response: httpx.Response, url: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise ProtocolError(
                    f"response from {url} is over {self.max_response_bytes:,} bytes; "
                    "refusing to read more (raise max_response_bytes if such an "
                    "answer is expected)",
                    where="HTTP body",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            with self._http.stream("POST", url, content=body, headers=headers) as response:
                return response.status_code, self._capped(response, url)
        except httpx.TimeoutException as exc:
            raise _Retry(f"timed out ({type(exc).__name__}: {exc or 'no detail'})", exc) from exc
        except httpx.TransportError as exc:
            raise _Retry(
                f"network error ({type(exc).__name__}: {exc or 'no detail'})", exc
            ) from exc

    def _read(
        self, data: bytes, status: int, response_type: type[_M], url: str, operation: str
    ) -> _M:
        if 200 <= status < 300:
            try:
                return response_type.from_xml(data, max_bytes=self.max_response_bytes)
            except ProtocolError as exc:
                raise ProtocolError(
                    f"{exc.message} (answer from {url}, HTTP {status}); the upstream or a proxy "
                    "in between sent something that is not an MS-WSUSSS answer",
                    where=exc.where,
                    operation=exc.operation or operation,
                    element=exc.element,
                ) from exc
        try:
            element = parse_envelope(data, max_bytes=self.max_response_bytes, operation=operation)
        except ProtocolError as exc:
            detail = exc.message
        else:
            if is_fault(element):
                fault: WsusssFault = fault_from_element(element, operation=operation)
                raise fault
            detail = f"a SOAP body holding {element.tag} instead of a fault"
        reason = f"HTTP {status}: {detail}"
        if status >= 500:
            raise _Retry(reason)
        raise UpstreamHttpError(url, operation, status, detail)
