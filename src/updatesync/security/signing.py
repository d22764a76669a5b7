"""Site-to-site authentication: every call between the roles of a hierarchy is signed, once.

The sites and software update points of one hierarchy share a secret (a file each host
holds a copy of, `shared_secret.py`; nothing assumes a shared disk). A caller signs each
request with HMAC-SHA256 over:

    updatesync-hmac-2 / method / Host (the authority the caller addressed) / path and query /
    time signed (seconds) / nonce (128 random bits) / caller's name / key id / SHA-256 of
    the body

and sends them in `x-updatesync-*` headers with `Authorization: Updatesync-HMAC <hex>`. The
callee (`require_signature`, or `check_request`) refuses with 401 and a JSON `error` saying
why, and writes the same reason to the role's log, a request that:

- carries no signature, or one made with a secret it does not hold;
- was altered on the way (method, Host, path, query or body);
- was signed more than `MAX_SKEW` seconds ago or ahead (a replay, or clocks apart);
- names a nonce it has seen within that window (a replay: `replay.NonceCache`);
- was addressed to another server (its Host is not a name of this role, or another port);
- comes from a caller name the hierarchy does not know (when the role gives the names).

The body is read (up to `max_body`, 413 past it) only after the signature of the headers
holds, and its SHA-256 is computed while it streams. The secret never travels.

A shared secret proves that the caller holds the hierarchy's secret, not which role it is:
any holder can sign with any caller name. The name check only stops names the hierarchy
does not have. See docs/security.md ("Site-to-site signatures").

- `HmacAuth(secret, caller)`: an `httpx.Auth` that signs every request of a client;
- `require_signature(app, secret, ...)`: an ASGI middleware for the signed routes;
- `check_request(secret, method, target, headers, body)`: the same check for one request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import (
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
    MutableMapping,
)
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from updatesync.security.limits import UNREAD_KEPT
from updatesync.security.replay import NonceCache, ReplayCacheFull
from updatesync.security.shared_secret import (
    MIN_SECRET_CHARS,
    SecretError,
    SharedSecret,
    accepted_secrets,
    create_secret,
    load_secret,
)

__all__ = [
    "CALLER_HEADER",
    "DEFAULT_MAX_BODY",
    "DIGEST_HEADER",
    "KEY_HEADER",
    "MAX_SKEW",
    "MIN_SECRET_CHARS",
    "NONCE_HEADER",
    "SCHEME",
    "SYSTEM_CALLERS",
    "TIME_HEADER",
    "HmacAuth",
    "SecretError",
    "SharedSecret",
    "SignatureRefused",
    "Verifier",
    "check_request",
    "create_secret",
    "key_id",
    "load_secret",
    "require_signature",
    "signature",
]

SCHEME = "Updatesync-HMAC"
CALLER_HEADER = "x-updatesync-caller"
TIME_HEADER = "x-updatesync-time"
NONCE_HEADER = "x-updatesync-nonce"
KEY_HEADER = "x-updatesync-key"
DIGEST_HEADER = "x-updatesync-content-sha256"
MAX_SKEW = 300
"""Seconds a signed request stays valid, both ways (the clock difference tolerated)."""
DEFAULT_MAX_BODY = 8 * 1024 * 1024
"""The largest body a signed route reads. The largest the roles send is a replicated file
(at most 64 KB, `file_replication.MAX_FILE_BYTES`) or a SUP's sync request (a few KB);
database replication is pulled with GETs."""
SYSTEM_CALLERS = ("console", "demo")
"""Caller names besides the site codes and SUP FQDNs: the web console and the demo's
status readout."""

_VERSION = "updatesync-hmac-2"
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_CALLER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SignatureRefused(PermissionError):
    """A signed request is refused: `status` is the HTTP status to answer, `caller` the
    name the request gave (if any)."""

    def __init__(self, reason: str, *, status: int = 401, caller: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.caller = caller


def key_id(secret: bytes) -> str:
    """A short name of a secret that reveals nothing of it: tells the current secret from
    the previous one, and hosts whose secret files differ."""
    return hmac.new(bytes(secret), b"updatesync key id", hashlib.sha256).hexdigest()[:16]


def signature(
    secret: bytes,
    method: str,
    host: str,
    target: str,
    timestamp: str,
    nonce: str,
    caller: str,
    body_sha256: str,
) -> str:
    """The hex HMAC-SHA256 of one request; `target` is the path with its query string,
    `host` the Host header (the authority the caller addressed)."""
    text = "\n".join(
        (
            _VERSION,
            method.upper(),
            host.lower(),
            target,
            timestamp,
            nonce,
            caller,
            key_id(secret),
            body_sha256,
        )
    )
    return hmac.new(bytes(secret), text.encode("utf-8"), hashlib.sha256).hexdigest()


def _offered_keys(response: httpx.Response) -> set[str]:
    challenge = response.headers.get("www-authenticate", "")
    found = re.search(r'keys="([^"]*)"', challenge)
    return set(found.group(1).split()) if found else set()


class HmacAuth(httpx.Auth):
    """Signs each request as `caller` (a site code, a SUP's FQDN, or one of
    `SYSTEM_CALLERS`) with the current secret. During a rotation (a `SharedSecret` with a
    previous secret), a callee that does not hold the new secret yet (its 401 names the
    keys it holds) is asked once more, signed with the previous one."""

    requires_request_body = True

    def __init__(self, secret: bytes, caller: str, *, clock: Callable[[], float] = time.time):
        self.secret = secret
        self.caller = caller
        self.clock = clock

    def sign(self, request: httpx.Request, secret: bytes) -> httpx.Request:
        timestamp = str(int(self.clock()))
        nonce = secrets.token_hex(16)
        host = request.headers.get("host") or request.url.netloc.decode("ascii")
        target = request.url.raw_path.decode("ascii")
        digest = hashlib.sha256(request.content).hexdigest()
        request.headers[CALLER_HEADER] = self.caller
        request.headers[TIME_HEADER] = timestamp
        request.headers[NONCE_HEADER] = nonce
        request.headers[KEY_HEADER] = key_id(secret)
        request.headers[DIGEST_HEADER] = digest
        mac = signature(secret, request.method, host, target, timestamp, nonce, self.caller, digest)
        request.headers["authorization"] = f"{SCHEME} {mac}"
        return request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield self.sign(request, self.secret)
        previous = getattr(self.secret, "previous", None)
        if response.status_code != 401 or previous is None:
            return
        offered = _offered_keys(response)
        if key_id(previous) in offered and key_id(self.secret) not in offered:
            yield self.sign(request, previous)


@dataclass(frozen=True, slots=True)
class Signed:
    """What a request's headers proved: who signed it and the SHA-256 of its body."""

    caller: str
    body_sha256: str


def _clip(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


class Verifier:
    """Checks the signature of requests for one callee. `secret`: a `SharedSecret` (the
    previous secret is accepted too during a rotation) or bytes. `callers`: the names that
    may sign (any case; None: any name). `hosts`: the host names this callee is addressed
    by (None: any). `nonces`: the callee's memory of nonces (one per callee)."""

    def __init__(
        self,
        secret: bytes,
        *,
        callers: Iterable[str] | None = None,
        hosts: Iterable[str] | None = None,
        nonces: NonceCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = {key_id(s): s for s in accepted_secrets(secret)}
        self.callers = None if callers is None else frozenset(c.strip().lower() for c in callers)
        self.hosts = (
            None
            if hosts is None
            else frozenset(h.strip().strip("[]").lower() for h in hosts if h and h.strip())
        )
        self.nonces = nonces if nonces is not None else NonceCache()
        self.clock = clock

    @property
    def challenge(self) -> str:
        """The WWW-Authenticate of a 401: the scheme and the ids of the keys held."""
        return f'{SCHEME} keys="{" ".join(self.keys)}"'

    def check(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        *,
        server: tuple[str, int | None] | None = None,
        scheme: str = "http",
    ) -> Signed:
        """The caller and body digest of a request whose headers' signature holds (the body
        is checked against the digest by the caller of this); `SignatureRefused` saying why
        otherwise. `headers` has lower-case names; `server` is the (host, port) the request
        came in on (the ASGI scope's `server`)."""
        caller = headers.get(CALLER_HEADER, "")
        given = headers.get("authorization", "")
        parts = {
            name: headers.get(name, "")
            for name in (CALLER_HEADER, TIME_HEADER, NONCE_HEADER, KEY_HEADER, DIGEST_HEADER)
        }
        missing = [name for name, value in parts.items() if not value]
        if not given.startswith(SCHEME + " ") or missing:
            lacking = f" (missing {', '.join(missing)})" if missing and given else ""
            raise SignatureRefused(
                "this is a site-to-site endpoint: the request carries no signature "
                f"({SCHEME} authorization with the hierarchy's shared secret){lacking}",
                caller=_clip(caller),
            )
        if not _CALLER.fullmatch(caller):
            raise SignatureRefused(f"the caller name {_clip(caller)!r} is not a name")
        sent_at = self._sent_at(parts[TIME_HEADER], caller)
        nonce, digest = parts[NONCE_HEADER], parts[DIGEST_HEADER].lower()
        if not _NONCE.fullmatch(nonce) or not _DIGEST.fullmatch(digest):
            raise SignatureRefused("the request's nonce or body digest is malformed", caller=caller)
        secret = self._secret(parts[KEY_HEADER], caller)
        host = headers.get("host", "")
        expected = signature(
            secret, method, host, target, parts[TIME_HEADER], nonce, caller, digest
        )
        if not hmac.compare_digest(expected, given[len(SCHEME) + 1 :].strip()):
            raise SignatureRefused(
                f"the signature of caller {caller!r} does not hold: the request was altered "
                "on the way (its method, host, path, query or body digest), or it was signed "
                "with another secret",
                caller=caller,
            )
        if self.callers is not None and caller.lower() not in self.callers:
            raise SignatureRefused(
                f"caller {caller!r} is not a site, software update point or system caller "
                "of this hierarchy",
                caller=caller,
            )
        self._check_host(host, caller, server, scheme)
        try:
            fresh = self.nonces.remember(nonce, sent_at + MAX_SKEW, self.clock())
        except ReplayCacheFull as exc:
            raise SignatureRefused(
                f"too many signed requests: {exc}; try again in a few seconds",
                status=503,
                caller=caller,
            ) from None
        if not fresh:
            raise SignatureRefused(
                f"the request of caller {caller!r} was already received (nonce {nonce} used "
                f"within the last {MAX_SKEW} s): a replay",
                caller=caller,
            )
        return Signed(caller, digest)

    def _sent_at(self, timestamp: str, caller: str) -> int:
        if not timestamp.isdigit():
            raise SignatureRefused(
                f"the request's time {_clip(timestamp)!r} is not a number", caller=caller
            )
        sent_at = int(timestamp)
        age = self.clock() - sent_at
        if age > MAX_SKEW:
            raise SignatureRefused(
                f"the request was signed {math.ceil(age)} s ago, beyond the {MAX_SKEW} s "
                "allowed: a replay, or the clocks of the two hosts differ",
                caller=caller,
            )
        if -age > MAX_SKEW:
            raise SignatureRefused(
                f"the request was signed {math.ceil(-age)} s in the future, beyond the "
                f"{MAX_SKEW} s "
                "allowed: a replay prepared ahead, or the clocks of the two hosts differ",
                caller=caller,
            )
        return sent_at

    def _secret(self, key: str, caller: str) -> bytes:
        secret = self.keys.get(key)
        if secret is None:
            held = ", ".join(self.keys)
            raise SignatureRefused(
                f"caller {caller!r} signed with key {_clip(key, 20)!r}, which this server "
                f"does not hold (it holds {held}): the hosts' secret files differ; copy the "
                "current file to every host of the hierarchy",
                caller=caller,
            )
        return secret

    def _check_host(
        self, host: str, caller: str, server: tuple[str, int | None] | None, scheme: str
    ) -> None:
        try:
            parts = urlsplit("//" + host)
            name, port = parts.hostname, parts.port
        except ValueError:
            name = port = None
        if not name:
            raise SignatureRefused(f"the request's Host {_clip(host)!r} is not a host name")
        port = port or (443 if scheme in ("https", "wss") else 80)
        listening = server[1] if server else None
        if listening is not None and port != listening:
            raise SignatureRefused(
                f"the request of caller {caller!r} was addressed to {_clip(host)}, and this "
                f"server listens on port {listening}: it was meant for another server",
                caller=caller,
            )
        bound = server[0].lower() if server and server[0] else None
        if self.hosts is not None and name.lower() not in self.hosts and name.lower() != bound:
            raise SignatureRefused(
                f"the request of caller {caller!r} was addressed to {_clip(host)}, which is "
                f"not this server ({', '.join(sorted(self.hosts))}): it was meant for "
                "another server",
                caller=caller,
            )


_PROCESS_NONCES = NonceCache()
"""The nonces `check_request` remembers when it is given no cache of its own."""


def check_request(
    secret: bytes,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    nonces: NonceCache | None = None,
    callers: Iterable[str] | None = None,
    hosts: Iterable[str] | None = None,
    server: tuple[str, int | None] | None = None,
) -> str:
    """The caller's name when the request's signature holds (headers and `body`);
    `SignatureRefused` (a `PermissionError`) saying why otherwise. Nonces are remembered in
    `nonces`, or in one cache of this process."""
    verifier = Verifier(
        secret,
        callers=callers,
        hosts=hosts,
        nonces=nonces if nonces is not None else _PROCESS_NONCES,
        clock=time.time if now is None else (lambda: now),
    )
    lowered = {k.lower(): v for k, v in headers.items()}
    signed = verifier.check(method, target, lowered, server=server)
    if hashlib.sha256(body).hexdigest() != signed.body_sha256:
        raise SignatureRefused(_ALTERED_BODY.format(caller=signed.caller), caller=signed.caller)
    return signed.caller


_ALTERED_BODY = (
    "the body of caller {caller!r}'s request was altered on the way: its SHA-256 differs "
    "from the signed one"
)


async def _read_body(receive: Receive, signed: Signed, max_body: int) -> bytes | None:
    """The request's body, hashed while it streams; None when the client went away."""
    hasher = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        more = message.get("more_body", False)
        if size > max_body:
            if more and size <= max_body + UNREAD_KEPT:
                # A small overflow is read and dropped before the answer: closing with
                # unread bytes resets the connection, and the client could lose the 413.
                await _drop_rest(receive, max_body + UNREAD_KEPT - size)
            raise SignatureRefused(
                f"the body is over {max_body} bytes, the most a site-to-site call may send",
                status=413,
                caller=signed.caller,
            )
        hasher.update(chunk)
        chunks.append(chunk)
    if hasher.hexdigest() != signed.body_sha256:
        raise SignatureRefused(_ALTERED_BODY.format(caller=signed.caller), caller=signed.caller)
    return b"".join(chunks)


async def _drop_rest(receive: Receive, budget: int) -> None:
    """Read and drop the rest of a refused body, at most `budget` more bytes."""
    while budget >= 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _declared_length(headers: Mapping[str, str]) -> int | None:
    value = headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


def require_signature(
    app: ASGIApp,
    secret: bytes,
    *,
    public: Iterable[str] = (),
    protect: Iterable[str] | None = None,
    callers: Iterable[str] | None = None,
    hosts: Iterable[str] | None = None,
    log: Callable[[str], object] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    nonces: NonceCache | None = None,
    clock: Callable[[], float] = time.time,
) -> ASGIApp:
    """`app` behind a check of every HTTP request's signature; paths starting with one of
    `public` pass unsigned (client-facing routes); when `protect` is given, only paths
    starting with one of those are checked. `callers`, `hosts`: see `Verifier`. A refusal
    is answered with its status and a JSON `error`, and written to `log` (one line). The
    caller's name is put in `scope["updatesync.caller"]`."""
    open_prefixes = tuple(public)
    guarded_prefixes = None if protect is None else tuple(protect)
    verifier = Verifier(secret, callers=callers, hosts=hosts, nonces=nonces, clock=clock)

    def unchecked(path: str) -> bool:
        if open_prefixes and path.startswith(open_prefixes):
            return True
        return guarded_prefixes is not None and not path.startswith(guarded_prefixes)

    async def refuse(scope: Scope, send: Send, exc: SignatureRefused) -> None:
        if log is not None:
            client = scope.get("client") or ("?", 0)
            who = f"caller {exc.caller}" if exc.caller else "no caller"
            log(
                f"Refused {scope['method']} {_clip(scope['path'], 200)} from {client[0]} "
                f"({who}): {exc}"
            )
        headers = [(b"content-type", b"application/json")]
        if exc.status == 401:
            headers.append((b"www-authenticate", verifier.challenge.encode("ascii")))
        if exc.status == 503:
            headers.append((b"retry-after", b"5"))
        payload = json.dumps({"error": f"refused: {exc}"}).encode("utf-8")
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or unchecked(scope["path"]):
            await app(scope, receive, send)
            return
        target = scope.get("raw_path") or scope["path"].encode("utf-8")
        if scope.get("query_string"):
            target = target + b"?" + scope["query_string"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            signed = verifier.check(
                scope["method"],
                target.decode("latin-1"),
                headers,
                server=scope.get("server"),
                scheme=scope.get("scheme", "http"),
            )
            declared = _declared_length(headers)
            if declared is not None and declared > max_body:
                raise SignatureRefused(
                    f"the body has {declared} bytes, over the {max_body} a site-to-site call "
                    "may send",
                    status=413,
                    caller=signed.caller,
                )
            body = await _read_body(receive, signed, max_body)
        except SignatureRefused as exc:
            await refuse(scope, send, exc)
            return
        if body is None:
            return
        scope["updatesync.caller"] = signed.caller
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return guarded
