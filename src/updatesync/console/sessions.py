"""Who uses the console: sign-in sessions, their CSRF tokens, and the sign-in attempt limit.

A user signs in on `/login` with a password that the top-level site's SMS Provider checks
(`POST /api/sessions`); the console then keeps a `ConsoleSession` in this process's memory
(`Sessions`): a random id that the browser holds in a cookie (`HttpOnly; SameSite=Strict;
Path=/`, and `Secure` when the console is served over HTTPS), the user, its security role,
a CSRF token that every form of the console carries, and the provider session's token and
expiry (the console's session ends with it). A console restart signs everyone out.

The sign-in form has a CSRF token too, before any session: `/login` gives the browser a
random token in a short-lived cookie of its own (`LOGIN_COOKIE`, the same attributes,
`Max-Age` `LOGIN_CSRF_AGE`) and in the form's hidden `csrf` field; `POST /login` compares
the two (`check_csrf`, as every form's token is compared), and signing in deletes it.

`SessionGate` is the ASGI middleware that lets no request reach a page without a session,
before any body is read: a browser asking for a page is sent to `/login?next=...`; a
fragment, a POST or any other request gets 401. `/login` and `/static/` pass. Once a minute
a session's user is asked about again at the SMS Provider (`GET /api/whoami` with the
provider session's token): a user removed there is signed out here, a changed role applies.

`SignInLimit` counts failed sign-ins per user name and client address: after
`MAX_FAILURES` in `FAILURE_WINDOW` the next attempt is refused (429) without asking the
provider.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from updatesync.security.access import Permission, SecurityRole

LOG = logging.getLogger(__name__)

COOKIE = "updatesync_console"
"""The name of the console's session cookie."""
LOGIN_COOKIE = "updatesync_console_login"
"""The cookie that holds the sign-in form's CSRF token until the user signs in."""
LOGIN_CSRF_AGE = 3600
"""Seconds a sign-in form's CSRF token is good for (opening `/login` again renews it)."""
SESSION = "updatesync.console.session"
"""The scope key `SessionGate` puts the request's `ConsoleSession` in."""
CSRF_FIELD = "csrf"
"""The form field every form of the console carries its CSRF token in."""
MAX_FAILURES = 5
FAILURE_WINDOW = 60.0
"""Seconds a failed sign-in counts against its user name and client."""
MAX_SESSIONS = 10_000
"""Sessions kept at most; the oldest goes first."""
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
"""What `new_csrf_token` makes."""
PUBLIC_PREFIXES = ("/static/",)
PUBLIC_PATHS = frozenset({"/login"})


class CsrfRefused(Exception):
    """A form came without its session's CSRF token, or with another one."""


def new_csrf_token() -> str:
    """A new random CSRF token (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def is_csrf_token(text: str | None) -> bool:
    """Whether `text` has the form of a token `new_csrf_token` makes."""
    return text is not None and _TOKEN.fullmatch(text) is not None


def check_csrf(given: str | None, expected: str | None, stale: str) -> None:
    """`CsrfRefused` unless `given` is the CSRF token `expected` (compared in constant
    time); `stale` says what the token should have come from."""
    if not given:
        raise CsrfRefused("missing")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRefused(f"not the one of {stale} (an old page?)")


@dataclass(frozen=True)
class ConsoleSession:
    """One signed-in user of the console."""

    user: str
    role: SecurityRole
    expires: datetime
    provider_token: str = field(repr=False)
    """The SMS Provider's session token (to sign out there too); never sent to a browser."""
    id: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    csrf: str = field(default_factory=new_csrf_token, repr=False)

    def allows(self, permission: Permission) -> bool:
        return self.role.allows(permission)

    @property
    def can_sync(self) -> bool:
        return self.allows(Permission.SYNC)

    def check_csrf(self, given: str | None) -> None:
        """`CsrfRefused` unless `given` is this session's CSRF token."""
        check_csrf(given, self.csrf, "this sign-in")


class Sessions:
    """The console's sessions, in memory, by id; an expired one is gone."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self._by_id: dict[str, ConsoleSession] = {}
        self._lock = threading.Lock()

    def add(self, session: ConsoleSession) -> ConsoleSession:
        with self._lock:
            now = self.clock()
            for key in [k for k, s in self._by_id.items() if s.expires <= now]:
                del self._by_id[key]
            while len(self._by_id) >= MAX_SESSIONS:
                del self._by_id[min(self._by_id, key=lambda k: self._by_id[k].expires)]
            self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> ConsoleSession | None:
        if not session_id:
            return None
        with self._lock:
            session = self._by_id.get(session_id)
            if session is not None and session.expires <= self.clock():
                del self._by_id[session_id]
                return None
        return session

    def end(self, session_id: str) -> ConsoleSession | None:
        with self._lock:
            return self._by_id.pop(session_id, None)

    def replace(self, session: ConsoleSession) -> ConsoleSession:
        """Keep `session` in place of the one of its id (a changed role)."""
        with self._lock:
            self._by_id[session.id] = session
        return session


class SignInLimit:
    """Failed sign-ins per (user name, client address) in the last `window` seconds."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(user: str, client: str) -> tuple[str, str]:
        return (user.strip().lower()[:128], client)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def blocked(self, key: tuple[str, str]) -> bool:
        """Whether the next attempt of `key` is refused: it failed `max_failures` times in
        the window."""
        with self._lock:
            return len(self._recent(key, self.clock())) >= self.max_failures

    def failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            now = self.clock()
            if len(self._failures) >= self.max_keys:
                for k in [k for k in self._failures if not self._recent(k, now)]:
                    del self._failures[k]
                if len(self._failures) >= self.max_keys:
                    self._failures.clear()  # a flood of names: forget rather than grow
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)


def local_target(text: str | None, default: str = "/") -> str:
    """`text` when it is a path of this console (`/...`, not `//host` or a URL), else
    `default`: where a sign-in may send the browser on."""
    if not text or not text.startswith("/") or text.startswith(("//", "/\\")):
        return default
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or any(c in text for c in "\r\n\\"):
        return default
    return text


def cookie_header(session_id: str, *, secure: bool, max_age: int | None, name: str = COOKIE) -> str:
    """The `Set-Cookie` value for the session `session_id` (empty with max_age 0: delete);
    with `name` (`LOGIN_COOKIE`), another cookie of the console, with the same attributes."""
    attributes = [f"{name}={session_id}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        attributes.append(f"Max-Age={max(max_age, 0)}")
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)


def _cookie_of(scope: dict[str, Any]) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            name, _, text = part.strip().partition("=")
            if name == COOKIE:
                return text
    return None


SessionCheck = Callable[[ConsoleSession], Awaitable[SecurityRole | None]]
"""Asks the SMS Provider about a session: its user's role now, or None when the provider no
longer knows the session (the user was removed, the session ended there); an error when the
provider could not be asked (the session is kept: the console does not lock people out
while the provider is down)."""

RECHECK_SECONDS = 60.0
"""How often a session's user is asked about again at the provider."""


class SessionGate:
    """ASGI middleware: every request but `/login` and static files needs a session (see
    the module's docstring); the session is put in `scope[SESSION]`. With `check`, a
    session is asked about at the provider again once `every` seconds have passed since it
    last was: a user removed there (or whose session ended there) is signed out here, and a
    changed role takes effect."""

    def __init__(
        self,
        app: Any,
        sessions: Sessions,
        check: SessionCheck | None = None,
        every: float = RECHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.check = check
        self.every = every
        self.clock = clock
        self._checked: dict[str, float] = {}

    async def _current(self, session: ConsoleSession) -> ConsoleSession | None:
        """The session as the provider sees it now (re-asked every `every` seconds)."""
        if self.check is None:
            return session
        now = self.clock()
        last = self._checked.get(session.id)
        if last is None or now - last < self.every:
            if last is None:  # first seen (just signed in): the provider has just said
                if len(self._checked) > MAX_SESSIONS:
                    self._checked.clear()
                self._checked[session.id] = now
            return session
        self._checked[session.id] = now
        try:
            role = await self.check(session)
        except Exception as exc:  # the provider could not be asked: keep the session
            LOG.warning("console: could not check the session of %s: %s", session.user, exc)
            return session
        if role is None:
            self.sessions.end(session.id)
            self._checked.pop(session.id, None)
            LOG.info("console: %s is no longer signed in at the provider", session.user)
            return None
        if role is not session.role:
            session = self.sessions.replace(replace(session, role=role))
        return session

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        root = scope.get("root_path", "").rstrip("/")
        local = path[len(root) :] if root and path.startswith(root) else path
        if local in PUBLIC_PATHS or local.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        session = self.sessions.get(_cookie_of(scope))
        if session is not None:
            session = await self._current(session)
        if session is not None:
            scope[SESSION] = session
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD") and not local.startswith("/fragments/"):
            query = scope.get("query_string", b"").decode("latin-1")
            target = path + (f"?{query}" if query else "")
            location = f"{root}/login?next={quote(target, safe='/')}"
            await _answer(send, 303, b"", [(b"location", location.encode("latin-1"))])
            return
        await _answer(
            send,
            401,
            b"Sign in to the console first: open /login.\n",
            [(b"content-type", b"text/plain; charset=utf-8")],
        )


async def _answer(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *headers,
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
