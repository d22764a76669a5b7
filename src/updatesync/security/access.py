"""Who may do what on an admin surface: security roles, passwords and API tokens.

ConfigMgr gives each administrative user a security role; updatesync has three of its
built-in roles, spelled as ConfigMgr spells them:

- **Full Administrator**: everything, users and tokens included;
- **Software Update Manager**: start syncs, and read;
- **Read-only Analyst**: read.

A route needs one `Permission` (`READ`, `SYNC` or `ADMINISTER`); `needed_role(permission)`
names the smallest role that has it (what a 403 says). `parse_role` accepts a role's name in
any case, with spaces, hyphens or underscores ("full-administrator").

Secrets are kept only as argon2 hashes (argon2-cffi, salted): `hash_password` /
`verify_password` for passwords; API tokens are random, shown once, and look like
`ust_<id>_<secret>` (`usr_...` for a login session): the id (16 hex digits) finds the one
stored hash to verify, so a lookup never scans every hash. `TokenVerifier` keeps, in memory
only, which (id, stored hash) pairs were verified already, so a token costs one argon2
verification per process, not one per request; a revoked or changed row is looked up anew
each time.

`static_token_guard(app, token, protect=...)` is an ASGI guard for a surface with one admin
token held in a file (the standalone update server's admin API); `load_or_create_token_file`
reads that file or creates it (mode 0600, with a new random token).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from updatesync.security.private_files import (
    InsecureFileError,
    create_private_file,
    read_private_file,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BEARER = "Bearer"


class Permission(enum.Enum):
    """What a route needs."""

    READ = "read"
    SYNC = "sync"
    ADMINISTER = "administer"


class SecurityRole(enum.Enum):
    """A built-in security role, by its ConfigMgr name."""

    FULL_ADMINISTRATOR = "Full Administrator"
    SOFTWARE_UPDATE_MANAGER = "Software Update Manager"
    READ_ONLY_ANALYST = "Read-only Analyst"

    @property
    def permissions(self) -> frozenset[Permission]:
        return _PERMISSIONS[self]

    def allows(self, permission: Permission) -> bool:
        return permission in self.permissions


_PERMISSIONS: dict[SecurityRole, frozenset[Permission]] = {
    SecurityRole.FULL_ADMINISTRATOR: frozenset(Permission),
    SecurityRole.SOFTWARE_UPDATE_MANAGER: frozenset({Permission.READ, Permission.SYNC}),
    SecurityRole.READ_ONLY_ANALYST: frozenset({Permission.READ}),
}

_ROLE_ORDER = (
    SecurityRole.READ_ONLY_ANALYST,
    SecurityRole.SOFTWARE_UPDATE_MANAGER,
    SecurityRole.FULL_ADMINISTRATOR,
)


def needed_role(permission: Permission) -> SecurityRole:
    """The smallest built-in role that has `permission`."""
    return next(role for role in _ROLE_ORDER if role.allows(permission))


def _folded(text: str) -> str:
    return re.sub(r"[\s_-]+", " ", text.strip()).casefold()


def parse_role(text: str) -> SecurityRole:
    """The role named `text` (any case; spaces, hyphens or underscores between words);
    `ValueError` listing the roles otherwise."""
    wanted = _folded(text)
    for role in SecurityRole:
        if _folded(role.value) == wanted:
            return role
    names = ", ".join(f'"{r.value}"' for r in SecurityRole)
    raise ValueError(f"{text!r} is not a security role; the roles are {names}")


USER_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")


def normal_user_name(name: str) -> str:
    """`name` in lower case; `ValueError` unless it is 1-64 letters, digits, `.`, `_`,
    `@` or `-`, starting with a letter or digit."""
    normal = name.strip().lower()
    if not USER_NAME.fullmatch(normal):
        raise ValueError(
            f"user name {name!r}: use 1 to 64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or a digit"
        )
    return normal


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from: a user with a role, or the hierarchy itself (a call
    signed with the site-to-site secret, with full rights)."""

    user: str
    role: SecurityRole
    token_id: str | None = None
    system: bool = False

    def allows(self, permission: Permission) -> bool:
        return self.system or self.role.allows(permission)

    @classmethod
    def of_hierarchy(cls, caller: str) -> Principal:
        return cls(user=f"site-to-site:{caller}", role=SecurityRole.FULL_ADMINISTRATOR, system=True)


# -- hashing ----------------------------------------------------------------------------------

_PASSWORDS = PasswordHasher()
"""argon2id with the library's defaults (RFC 9106's second recommended profile)."""
_TOKENS = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
"""argon2id for 256-bit random tokens: guessing is hopeless at any cost, so the cost is the
OWASP minimum, keeping a first request with a token fast."""


def hash_password(password: str) -> str:
    """The salted argon2id hash of `password`."""
    return _PASSWORDS.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the `stored` hash (False when there is none)."""
    if not stored:
        _PASSWORDS.hash(password)  # the same time whether or not the user has a password
        return False
    try:
        return _PASSWORDS.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


API_PREFIX = "ust"
SESSION_PREFIX = "usr"
_TOKEN = re.compile(r"(ust|usr)_([0-9a-f]{16})_([A-Za-z0-9_-]{32,128})")


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: `text` is shown once; only `secret_hash` is stored."""

    token_id: str
    text: str
    secret_hash: str


def new_token(prefix: str = API_PREFIX) -> NewToken:
    """A new random token (`ust_` an API token, `usr_` a login session)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewToken(token_id, f"{prefix}_{token_id}_{secret}", _TOKENS.hash(secret))


def split_token(text: str) -> tuple[str, str, str] | None:
    """(prefix, token id, secret) of a token's text; None when it is not one."""
    match = _TOKEN.fullmatch(text.strip())
    return (match[1], match[2], match[3]) if match else None


def hash_of_token(text: str) -> str:
    """The stored hash of an existing token's text (adopting a token file again)."""
    parts = split_token(text)
    if parts is None:
        raise ValueError("not an updatesync token")
    return _TOKENS.hash(parts[2])


class TokenVerifier:
    """Verifies a token's secret against its stored hash, remembering (in memory) the
    pairs already verified, by a SHA-256 of the secret."""

    def __init__(self, limit: int = 4096) -> None:
        self._verified: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def verify(self, token_id: str, stored_hash: str, secret: str) -> bool:
        digest = hashlib.sha256(secret.encode("utf-8")).digest()
        key = (token_id, stored_hash)
        with self._lock:
            known = self._verified.get(key)
        if known is not None:
            return hmac.compare_digest(known, digest)
        try:
            ok = _TOKENS.verify(stored_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        if ok:
            with self._lock:
                if len(self._verified) >= self._limit:
                    self._verified.clear()
                self._verified[key] = digest
        return ok


# -- the answers of a refused request ---------------------------------------------------------


def unauthorized_text(reason: str) -> str:
    return (
        f"{reason}: send `Authorization: Bearer <token>` with an updatesync API token "
        "(the Full Administrator's is in the top-level site's data folder, admin.token; "
        "`updatesync token new USER` makes one)"
    )


def forbidden_text(principal: Principal, permission: Permission) -> str:
    need = needed_role(permission)
    return (
        f"user {principal.user} ({principal.role.value}) may not do this: it needs the "
        f"security role {need.value} or higher; ask a Full Administrator"
    )


async def send_json(send: Send, status: int, payload: dict[str, Any], bearer: bool) -> None:
    """Answer a refused request with a JSON body (and `WWW-Authenticate: Bearer` on 401)."""
    headers = [(b"content-type", b"application/json")]
    if bearer:
        headers.append((b"www-authenticate", BEARER.encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode("utf-8")})


def bearer_of(scope: Scope) -> str | None:
    """The token of the request's `Authorization: Bearer` header; None without one."""
    for key, value in scope.get("headers", ()):
        if key.lower() == b"authorization":
            text = value.decode("latin-1").strip()
            scheme, _, token = text.partition(" ")
            if scheme.lower() == BEARER.lower() and token.strip():
                return token.strip()
    return None


# -- one admin token in a file ----------------------------------------------------------------


class TokenFileError(Exception):
    """A token file cannot be read or written; the message says which and what to do."""


def load_or_create_token_file(path: Path) -> tuple[str, bool]:
    """(the token in `path`, whether it was created now). A missing file is created (mode
    0600, never over an existing one) with a new random token."""
    token = new_token().text
    try:
        create_private_file(path, (token + "\n").encode("ascii"))
    except FileExistsError:
        return read_token_file(path), False
    except OSError as exc:
        raise TokenFileError(f"cannot create the admin token file {path}: {exc}") from exc
    return token, True


def read_token_file(path: Path) -> str:
    """The token in `path` (surrounding white space ignored); refused when group or others
    may read or change the file, as every secret file is."""
    try:
        text = read_private_file(path, "the token file").decode("utf-8").strip()
    except FileNotFoundError:
        raise TokenFileError(f"the token file {path} does not exist") from None
    except InsecureFileError as exc:
        raise TokenFileError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(f"cannot read the token file {path}: {exc}") from exc
    if not text:
        raise TokenFileError(f"the token file {path} is empty; write a token in it")
    return text


def static_token_guard(app: ASGIApp, token: str, *, protect: Iterable[str]) -> ASGIApp:
    """`app` with every HTTP request to a path starting with one of `protect` refused
    (401, JSON `error`) unless it carries `Authorization: Bearer <token>`."""
    prefixes = tuple(protect)
    expected = hashlib.sha256(token.encode("utf-8")).digest()

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(prefixes):
            await app(scope, receive, send)
            return
        given = bearer_of(scope)
        if given is None or not hmac.compare_digest(
            hashlib.sha256(given.encode("utf-8")).digest(), expected
        ):
            reason = "no token" if given is None else "the token is not this server's admin token"
            await send_json(
                send,
                401,
                {
                    "error": f"refused: {reason}; send `Authorization: Bearer <token>` with the "
                    "token in the server's admin token file (--admin-token-file)"
                },
                bearer=True,
            )
            return
        await app(scope, receive, send)

    return guarded
