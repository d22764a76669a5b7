"""Site-to-site authentication: every call between the roles of a hierarchy is signed.

The sites and software update points of one hierarchy share a secret (a file each host
holds a copy of; nothing assumes a shared disk). A caller signs each request with
HMAC-SHA256 over its method, path and query, a timestamp, its own name and the SHA-256 of
its body; the callee recomputes it and refuses (HTTP 401, with a JSON `error` that says
why) a request that is unsigned, signed with another secret, altered on the way, or older
than `MAX_SKEW` (a replayed capture). The secret never travels.

- `load_secret(path)` / `create_secret(path)`: the shared secret file;
- `HmacAuth(secret, caller)`: an `httpx.Auth` that signs every request of a client;
- `require_signature(app, secret)`: an ASGI middleware that refuses unsigned requests
  except on the paths listed as public.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, MutableMapping
from pathlib import Path
from typing import Any

import httpx

from updatesync.security.private_files import private_dir

SCHEME = "Updatesync-HMAC"
CALLER_HEADER = "x-updatesync-caller"
TIME_HEADER = "x-updatesync-time"
MAX_SKEW = 300
"""Seconds a signed request stays valid (and the clock difference tolerated between hosts)."""
MIN_SECRET_CHARS = 32

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SecretError(Exception):
    """The shared secret file is missing or unusable; the message says which and what to do."""


def create_secret(path: str | os.PathLike[str]) -> bytes:
    """Write a new random secret to `path` (readable by its owner only) and return it."""
    target = Path(path)
    private_dir(target.parent)
    value = secrets.token_hex(32)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
    return value.encode("ascii")


def load_secret(path: str | os.PathLike[str]) -> bytes:
    """The secret in `path` (surrounding white space ignored)."""
    target = Path(path)
    try:
        value = target.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SecretError(
            f"the hierarchy's shared secret file {target} does not exist; create it once with "
            f"`updatesync secret new {target}` and copy it to every host of the hierarchy"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"cannot read the shared secret file {target}: {exc}") from exc
    if len(value) < MIN_SECRET_CHARS:
        raise SecretError(
            f"the shared secret in {target} has {len(value)} characters; it needs at least "
            f"{MIN_SECRET_CHARS} (`updatesync secret new FILE` writes a good one)"
        )
    return value.encode("utf-8")


def signature(
    secret: bytes, method: str, target: str, timestamp: str, caller: str, body: bytes
) -> str:
    """The hex HMAC-SHA256 of one request; `target` is the path with its query string."""
    text = "\n".join((method.upper(), target, timestamp, caller, hashlib.sha256(body).hexdigest()))
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


class HmacAuth(httpx.Auth):
    """Signs each request as `caller` (a site code or a SUP's FQDN)."""

    requires_request_body = True

    def __init__(self, secret: bytes, caller: str, *, clock: Callable[[], float] = time.time):
        self.secret = secret
        self.caller = caller
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        timestamp = str(int(self.clock()))
        target = request.url.raw_path.decode("ascii")
        mac = signature(
            self.secret, request.method, target, timestamp, self.caller, request.content
        )
        request.headers[CALLER_HEADER] = self.caller
        request.headers[TIME_HEADER] = timestamp
        request.headers["authorization"] = f"{SCHEME} {mac}"
        yield request


def check_request(
    secret: bytes,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    *,
    now: float | None = None,
) -> str:
    """The caller's name when the request's signature holds; `PermissionError` saying why
    otherwise."""
    caller = headers.get(CALLER_HEADER, "")
    timestamp = headers.get(TIME_HEADER, "")
    given = headers.get("authorization", "")
    if not given.startswith(SCHEME + " ") or not caller or not timestamp:
        raise PermissionError(
            "this is a site-to-site endpoint: the request carries no signature "
            f"({SCHEME} authorization with the hierarchy's shared secret)"
        )
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise PermissionError(f"the request's time {timestamp!r} is not a number") from None
    moment = time.time() if now is None else now
    if abs(moment - sent_at) > MAX_SKEW:
        raise PermissionError(
            f"the request was signed {int(moment - sent_at)} s from now, beyond the "
            f"{MAX_SKEW} s allowed: a replay, or the clocks of the two hosts differ"
        )
    expected = signature(secret, method, target, timestamp, caller, body)
    if not hmac.compare_digest(expected, given[len(SCHEME) + 1 :].strip()):
        raise PermissionError(
            f"the signature of caller {caller!r} does not hold: it signed with another "
            "secret, or the request was altered on the way"
        )
    return caller


def require_signature(
    app: ASGIApp,
    secret: bytes,
    *,
    public: Iterable[str] = (),
    protect: Iterable[str] | None = None,
) -> ASGIApp:
    """`app` behind a check of every HTTP request's signature; paths starting with one of
    `public` pass unsigned (client-facing routes); when `protect` is given, only paths
    starting with one of those are checked. The caller's name is put in
    `scope["updatesync.caller"]`."""
    open_prefixes = tuple(public)
    guarded_prefixes = None if protect is None else tuple(protect)

    def unchecked(path: str) -> bool:
        if open_prefixes and path.startswith(open_prefixes):
            return True
        return guarded_prefixes is not None and not path.startswith(guarded_prefixes)

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or unchecked(scope["path"]):
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        target = scope.get("raw_path") or scope["path"].encode("utf-8")
        if scope.get("query_string"):
            target = target + b"?" + scope["query_string"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            caller = check_request(secret, scope["method"], target.decode("latin-1"), headers, body)
        except PermissionError as exc:
            payload = json.dumps({"error": f"refused: {exc}"}).encode("utf-8")
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", SCHEME.encode("ascii")),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return
        scope["updatesync.caller"] = caller
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return guarded
