"""Who calls a site server's admin surfaces, and whether they may: tokens, roles, the
Full Administrator of a new hierarchy.

- `ProviderAuth(db, secret)`: finds the `Principal` of an API token or login session (by
  its id, then one argon2 verification, remembered), refusing a revoked, expired or unknown
  token or a removed user.
- `AuthMiddleware`: an ASGI middleware that refuses (401, `WWW-Authenticate: Bearer`, a JSON
  `detail` saying what to send) every request without a valid credential, before its body
  is read, except on the public paths; a call signed with the hierarchy's site-to-site
  secret (`security/signing.py`, as the console and the demo sign theirs) counts as the
  hierarchy itself, with full rights. With `need`, it also refuses (403) a principal
  without that permission (`/metrics` when the file asks for a token).
- `require(permission)`: the route dependency that answers 403 naming the role needed.
- `bootstrap_admin(db, token_file, log)`: the first start of a top-level site creates the
  Full Administrator `admin` and writes its token to `token_file` (0600, never over an
  existing file; an existing file's token is adopted, read as every secret file is:
  refused when group or others may read it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.security.access import (
    SESSION_PREFIX,
    Permission,
    Principal,
    Receive,
    Scope,
    SecurityRole,
    Send,
    TokenVerifier,
    bearer_of,
    forbidden_text,
    hash_of_token,
    new_token,
    send_json,
    split_token,
    unauthorized_text,
)
from updatesync.security.private_files import create_private_file, read_private_file
from updatesync.security.signing import SCHEME, require_signature
from updatesync.site.database.models import TOKEN_SESSION
from updatesync.site.database.site_db import SiteDatabase

PRINCIPAL = "updatesync.principal"
"""The scope key the middleware puts the request's `Principal` in."""
ADMIN_USER = "admin"
ADMIN_TOKEN_FILE = "admin.token"


class Unauthorized(Exception):
    """The request's credential is missing or not valid; the message says why."""


class ProviderAuth:
    """The tokens of one site database, and the site-to-site secret of the hierarchy
    (None: signed calls are refused)."""

    def __init__(
        self,
        db: SiteDatabase,
        secret: bytes | None,
        *,
        callers: Iterable[str] | None = None,
        hosts: Iterable[str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`callers`, `hosts`: the caller names and this server's names a signed call must
        carry (see `security.signing.Verifier`; None: not checked)."""
        self.db = db
        self.secret = secret
        self.callers = None if callers is None else tuple(callers)
        self.hosts = None if hosts is None else tuple(hosts)
        self.clock = clock
        self._verifier = TokenVerifier()

    def principal(self, token: str) -> Principal:
        """The principal of `token`; `Unauthorized` saying why not."""
        parts = split_token(token)
        if parts is None:
            raise Unauthorized("the bearer token is not an updatesync token")
        prefix, token_id, secret = parts
        found = self.db.users.token(token_id)
        if found is None:
            raise Unauthorized(f"token {token_id} is not known at site {self.db.site_code}")
        record, user = found
        if (record.kind == TOKEN_SESSION) != (prefix == SESSION_PREFIX):
            raise Unauthorized(f"token {token_id} is not known at site {self.db.site_code}")
        if not self._verifier.verify(token_id, record.secret_hash, secret):
            raise Unauthorized(f"token {token_id} does not hold")
        if record.revoked_at is not None:
            raise Unauthorized(f"token {token_id} was revoked")
        if not record.valid_at(self.clock()):
            raise Unauthorized(f"token {token_id} expired; sign in again or make a new token")
        if not user.active or record.created_at < user.created_at:
            # A token older than its user belongs to a removed user of the same name.
            raise Unauthorized(f"user {user.name} was removed")
        return Principal(user.name, SecurityRole(user.role), token_id=token_id)


class AuthMiddleware:
    """Authenticates every HTTP request to `app` (see the module's docstring). `public`:
    (method, path) pairs that pass without a credential; `prefixes`: only paths starting
    with one of these are guarded (default: all)."""

    def __init__(
        self,
        app: Any,
        *,
        auth: ProviderAuth,
        public: Iterable[tuple[str, str]] = (),
        prefixes: Iterable[str] | None = None,
        need: Permission | None = None,
    ) -> None:
        self.app = app
        self.auth = auth
        self.public = frozenset((m.upper(), p) for m, p in public)
        self.prefixes = None if prefixes is None else tuple(prefixes)
        self.need = need
        self._signed = (
            require_signature(
                self._as_hierarchy, auth.secret, callers=auth.callers, hosts=auth.hosts
            )
            if auth.secret
            else None
        )

    async def _as_hierarchy(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[PRINCIPAL] = Principal.of_hierarchy(str(scope.get("updatesync.caller", "")))
        await self.app(scope, receive, send)

    def _guarded(self, scope: Scope) -> bool:
        path = scope["path"]
        if (scope["method"].upper(), path) in self.public:
            return False
        return self.prefixes is None or path.startswith(self.prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._guarded(scope):
            await self.app(scope, receive, send)
            return
        authorization = _header(scope, b"authorization")
        if authorization.startswith(SCHEME + " "):
            if self._signed is None:
                await _refuse(send, "this server takes no site-to-site signature")
                return
            await self._signed(scope, receive, send)  # the hierarchy has every permission
            return
        token = bearer_of(scope)
        if token is None:
            await _refuse(send, "no token")
            return
        try:
            principal = await run_in_threadpool(self.auth.principal, token)
        except Unauthorized as exc:
            await _refuse(send, f"refused: {exc}")
            return
        if self.need is not None and not principal.allows(self.need):
            await send_json(send, 403, {"detail": forbidden_text(principal, self.need)}, False)
            return
        scope[PRINCIPAL] = principal
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


async def _refuse(send: Send, reason: str) -> None:
    await send_json(send, 401, {"detail": unauthorized_text(reason)}, bearer=True)


# -- route dependencies ---------------------------------------------------------------------


_BEARER_SCHEME = HTTPBearer(
    auto_error=False,
    description="An updatesync API token (`updatesync token new USER`), or a session's "
    "(`POST /api/sessions`).",
)
"""Documents the token in the OpenAPI document (the middleware has checked it already)."""


def current_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER_SCHEME)],
) -> Principal:
    """The request's principal (the middleware put it there); 401 when there is none."""
    principal = request.scope.get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            unauthorized_text("no token"),
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(permission: Permission) -> Any:
    """A route dependency: the principal when it has `permission`, else 403 naming the
    security role needed."""

    def check(principal: CurrentPrincipal) -> Principal:
        if not principal.allows(permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, forbidden_text(principal, permission))
        return principal

    return Depends(check)


# -- the first Full Administrator -----------------------------------------------------------


def bootstrap_admin(db: SiteDatabase, token_file: Path, log: CMTraceLog | None) -> Path | None:
    """At a top-level site whose database never held a user: create the Full Administrator
    `admin` and write its token to `token_file` (mode 0600, created exclusively; an existing
    file's token is adopted instead, so the file stays valid). Returns the file when it was
    written now; None when the database had users already. `InsecureFileError` when the
    existing file may be read by group or others."""
    if db.users.count_ever():
        return None
    token = new_token()
    try:
        create_private_file(token_file, (token.text + "\n").encode("ascii"))
    except FileExistsError:
        _adopt(db, token_file, log)
        return None
    db.users.add(ADMIN_USER, SecurityRole.FULL_ADMINISTRATOR.value, None)
    db.users.add_token(ADMIN_USER, token.token_id, token.secret_hash)
    if log is not None:
        log.info(
            f"Created the Full Administrator user {ADMIN_USER}; its API token is in "
            f"{token_file} (readable by its owner only)"
        )
    return token_file


def _adopt(db: SiteDatabase, token_file: Path, log: CMTraceLog | None) -> None:
    """A new database beside an existing admin token file: the file's token becomes the
    Full Administrator's again. A file group or others may read is not adopted
    (`InsecureFileError`, naming it and `chmod 600`)."""
    text = read_private_file(token_file, "the admin token file").decode("utf-8").strip()
    parts = split_token(text)
    if parts is None:
        if log is not None:
            log.error(
                f"{token_file} holds no updatesync token; no Full Administrator was created. "
                "Remove the file and restart the site server to create one"
            )
        return
    db.users.add(ADMIN_USER, SecurityRole.FULL_ADMINISTRATOR.value, None)
    db.users.add_token(ADMIN_USER, parts[1], hash_of_token(text))
    if log is not None:
        log.info(
            f"Created the Full Administrator user {ADMIN_USER} with the API token already "
            f"in {token_file}"
        )
