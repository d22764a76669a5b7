"""Limits on request bodies, applied before any application reads one.

`LimitedBodies(app, limits)` is an ASGI middleware; `roles.serving` puts every application it
serves inside one (`limit_bodies`), so that no port of updatesync reads a body without it:

- **a size per path**: `BodyLimits.default` bytes (1 MB, enough for every JSON API and form
  of the product), or the limit of the longest matching prefix of `BodyLimits.prefixes`.
  A request whose Content-Length says more is refused before a byte of its body is read;
  a body sent without one (chunked) is counted as it arrives and refused the moment it
  passes the limit. Either way the answer is `413` with a plain-text line naming the limit,
  and the connection is closed: the rest of the body is never read.
- **a time**: a body must arrive within `body_timeout` seconds plus one second for every
  `min_rate` bytes it declares (or may have); a client that sends a byte a second is cut
  off with `408`. The server closes idle keep-alive connections after `KEEP_ALIVE_TIMEOUT`,
  and a connection whose request line and headers take longer than `HEADER_TIMEOUT`.
- an application that answers before reading a body bigger than `UNREAD_KEPT` (a refused
  signature or token: 401) has `Connection: close` added to its answer, so the body is
  never read.

An application declares limits of its own in `app.state.body_limits` (the console's log
uploads) or by being wrapped in `LimitedBodies` by whoever builds it (an update server:
its SOAP requests). Authentication that reads the body (the site-to-site signature) runs
inside, so the limit applies first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import anyio

MB = 1024 * 1024
JSON_BODY_LIMIT = 1 * MB
"""The default: every JSON API, form and site-to-site call of the product."""
BODY_TIMEOUT = 30.0
"""Seconds a request body may take, before the time its size allows (see `MIN_RATE`)."""
MIN_RATE = 64 * 1024
"""Bytes a second a body is expected to arrive at, at least, past `BODY_TIMEOUT`."""
KEEP_ALIVE_TIMEOUT = 5
"""Seconds an idle keep-alive connection is kept open."""
HEADER_TIMEOUT = 30.0
"""Seconds a request's line and headers may take to arrive (`roles.serving` checks it)."""
UNREAD_KEPT = 64 * 1024
"""A body up to this size, answered before it was read, leaves the connection open (the
server reads that much ahead of the application anyway); a bigger one closes it."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def size_text(count: int) -> str:
    """`1 MB`, `64 KB`, `100 bytes`."""
    if count >= MB and count % MB == 0:
        return f"{count // MB} MB"
    if count >= MB:
        return f"{count / MB:.1f} MB"
    if count >= 1024:
        return f"{count / 1024:.0f} KB"
    return f"{count} bytes"


@dataclass(frozen=True)
class BodyLimits:
    """How big and how slow a request body may be, by path."""

    default: int = JSON_BODY_LIMIT
    prefixes: Mapping[str, int] = field(default_factory=dict)
    """A path prefix (`/logs`, `/api/`) → its limit in bytes; the longest match wins."""
    body_timeout: float | None = None
    """Seconds before the time the size allows; None: `BODY_TIMEOUT`."""
    min_rate: int | None = None
    """Bytes a second; None: `MIN_RATE`."""

    def limit_for(self, path: str) -> int:
        best, limit = -1, self.default
        for prefix, value in self.prefixes.items():
            if path.startswith(prefix) and len(prefix) > best:
                best, limit = len(prefix), value
        return limit

    def seconds_for(self, size: int) -> float:
        """How long a body of at most `size` bytes may take to arrive."""
        base = BODY_TIMEOUT if self.body_timeout is None else self.body_timeout
        rate = MIN_RATE if self.min_rate is None else self.min_rate
        return base + size / max(rate, 1)


class BodyRefused(Exception):
    """Raised to the application reading a body that is too big or too slow; the client
    is answered by `LimitedBodies`, whatever the application does with it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _content_length(scope: Scope) -> int | str | None:
    """The declared length; None when there is none; the text when it is not a number."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else text
    return None


_CLOSE = (b"connection", b"close")


def _chunked(scope: Scope) -> bool:
    """Whether the request's body comes without a length (Transfer-Encoding)."""
    return any(name.lower() == b"transfer-encoding" for name, _ in scope.get("headers", ()))


async def _answer(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Body:
    """One request's body as the application receives it: counted and timed."""

    def __init__(self, receive: Receive, limit: int, path: str, seconds: float) -> None:
        self._receive = receive
        self.limit = limit
        self.path = path
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.seen = 0
        self.complete = False
        self.refused: BodyRefused | None = None

    def _refuse(self, status: int, message: str) -> BodyRefused:
        self.refused = BodyRefused(status, message)
        return self.refused

    def too_big(self) -> BodyRefused:
        return self._refuse(
            413,
            f"request body too large: {self.path} takes at most {size_text(self.limit)}; "
            "nothing more of it was read",
        )

    async def receive(self) -> Message:
        if self.refused is not None:
            return {"type": "http.disconnect"}
        if self.complete:  # the body has arrived: waiting for the client to go is not timed
            return await self._receive()
        remaining = self.deadline - time.monotonic()
        try:
            with anyio.fail_after(max(remaining, 0.001)):
                message = await self._receive()
        except TimeoutError:
            raise self._refuse(
                408,
                f"request body too slow: {self.path} waits at most {math.ceil(self.seconds)} s "
                f"for a body of this size; send it at once",
            ) from None
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise self.too_big()
            self.complete = not message.get("more_body", False)
        return message


class LimitedBodies:
    """ASGI middleware: every request body within `limits` (see the module)."""

    def __init__(self, app: App, limits: BodyLimits | None = None) -> None:
        self.app = app
        self.limits = limits or BodyLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        limit = self.limits.limit_for(path)
        declared = _content_length(scope)
        if isinstance(declared, str):
            await _answer(send, 400, f"Content-Length {declared!r} is not a number of bytes")
            return
        body = _Body(receive, limit, path, self.limits.seconds_for(min(declared or limit, limit)))
        if declared is not None and declared > limit:
            await _answer(send, 413, body.too_big().message)
            return
        started = False
        # A body the server may not hold whole unread (past uvicorn's 64 KB read-ahead, or of
        # unknown length). A small one is read by the server anyway and the connection kept:
        # closing with unread bytes would reset it, and could lose the answer.
        big_body = (declared or 0) > UNREAD_KEPT or (declared is None and _chunked(scope))

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if body.refused is not None and not started:
                return  # the application's own answer to a refused body: ours goes instead
            if message["type"] == "http.response.start":
                started = True
                if big_body and not body.complete:
                    # Answered before the body was read (a refused signature or token): the
                    # connection is closed after the answer, so the rest is never read and
                    # the client is not left sending into a full window.
                    message = {**message, "headers": [*message.get("headers", ()), _CLOSE]}
            await send(message)

        try:
            await self.app(scope, body.receive, guarded_send)
        except Exception:
            if body.refused is None:
                raise
        if body.refused is not None and not started:
            await _answer(send, body.refused.status, body.refused.message)


def limit_bodies(app: Any, limits: BodyLimits | None = None) -> LimitedBodies:
    """`app` inside `LimitedBodies`: with `limits`, else those the application declares in
    `app.state.body_limits`, else the defaults. An application already inside one is
    returned as it is."""
    if isinstance(app, LimitedBodies):
        return app
    if limits is None:
        state = getattr(app, "state", None)
        declared = getattr(state, "body_limits", None)
        limits = declared if isinstance(declared, BodyLimits) else BodyLimits()
    return LimitedBodies(app, limits)
