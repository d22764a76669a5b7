"""The SMS Provider's routes for users, security roles, API tokens and login sessions.

Users and API tokens are global data: they are added, removed and revoked at the top-level
site's provider (a child site's provider refuses with 409, naming where to go) and reach
every site by database replication. Every route but signing in needs a token; managing
users and tokens needs the Full Administrator role.

- `POST /api/users` {"name", "role", "password"} → 201; `GET /api/users`;
  `PUT /api/users/{name}/password` {"password"} → 200 (a user made without one, such as the
  first Full Administrator `admin`, can then sign in; its sessions elsewhere stay);
  `DELETE /api/users/{name}` (its tokens are revoked with it; the last Full Administrator
  cannot be removed);
- `POST /api/tokens` {"user", "expires_days"} → 201 with the token, shown this once;
  `GET /api/tokens`; `DELETE /api/tokens/{id}`;
- `POST /api/sessions` {"user", "password"} → 201 a login session's token (expires after
  `SESSION_LIFETIME`; kept at this site only); 401 on a wrong user or password, without
  saying which; `DELETE /api/sessions/current` signs the session out;
- `GET /api/whoami` → {"user", "role"}.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.security.access import (
    SESSION_PREFIX,
    Permission,
    Principal,
    SecurityRole,
    hash_password,
    new_token,
    normal_user_name,
    parse_role,
    verify_password,
)
from updatesync.site.api.auth import CurrentPrincipal, require
from updatesync.site.database.models import TOKEN_SESSION, TokenRecord, UserRecord
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError

SESSION_LIFETIME = timedelta(hours=8)
"""How long a login session's token is valid."""
MIN_PASSWORD = 12
"""Characters a password needs at least."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NewUser(_Model):
    name: str = Field(description="The user name: letters, digits, '.', '_', '@' or '-'.")
    role: str = Field(
        description='The security role: "Full Administrator", "Software Update Manager" or '
        '"Read-only Analyst" (any case, hyphens for spaces).'
    )
    password: str | None = Field(
        default=None,
        description=f"The password for signing in (at least {MIN_PASSWORD} characters); none: "
        "the user works with API tokens only.",
    )


class NewPassword(_Model):
    password: str = Field(
        description=f"The user's new password for signing in (at least {MIN_PASSWORD} characters)."
    )


class UserView(_Model):
    name: str = Field(description="The user name.")
    role: str = Field(description="The security role.")
    created: datetime = Field(description="When the user was added.")
    has_password: bool = Field(description="The user can sign in with a password.")


class NewTokenRequest(_Model):
    user: str = Field(description="The user the token acts as.")
    expires_days: int | None = Field(
        default=None, ge=1, le=3650, description="Days the token is valid; none: until revoked."
    )


class TokenView(_Model):
    id: str = Field(description="The token's id (what `token revoke` takes).")
    user: str = Field(description="The user it acts as.")
    created: datetime = Field(description="When it was made.")
    expires: datetime | None = Field(description="When it stops working; none: never.")


class IssuedToken(TokenView):
    token: str = Field(description="The token itself: shown this once, never stored.")
    role: str = Field(description="The security role of its user.")


class SignIn(_Model):
    user: str = Field(description="The user name.")
    password: str = Field(description="Its password.")


class Session(_Model):
    token: str = Field(description="The session's token: send it as `Authorization: Bearer`.")
    user: str = Field(description="The user signed in.")
    role: str = Field(description="Its security role.")
    expires: datetime = Field(description="When the session ends.")


class WhoAmI(_Model):
    user: str = Field(description="Who the request's token belongs to.")
    role: str = Field(description="Its security role.")


class ProviderState(Protocol):
    """What these routes use of the provider's state (`provider.ProviderState`)."""

    @property
    def db(self) -> SiteDatabase: ...
    @property
    def log(self) -> CMTraceLog: ...
    @property
    def site_code(self) -> str: ...
    @property
    def parent_site(self) -> str | None: ...
    def own_site(self, site: str) -> str:
        """`site` in upper case when it is the provider's site; else 404."""
        ...


def _state(request: Request) -> ProviderState:
    state: ProviderState = request.app.state.provider
    return state


State = Annotated[ProviderState, Depends(_state)]
Administrator = Annotated[Principal, require(Permission.ADMINISTER)]

router = APIRouter(tags=["access"])


def _at_top(provider: ProviderState) -> None:
    if provider.parent_site is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"users and API tokens are global data, written at the top-level site: ask the "
            f"top-level site's SMS Provider (site {provider.site_code} receives them from "
            f"{provider.parent_site} by database replication)",
        )


def _user_view(user: UserRecord) -> UserView:
    return UserView(
        name=user.name,
        role=user.role,
        created=user.created_at,
        has_password=user.password_hash is not None,
    )


def _token_view(token: TokenRecord) -> dict[str, Any]:
    return {
        "id": token.token_id,
        "user": token.user_name,
        "created": token.created_at,
        "expires": token.expires_at,
    }


def _name(text: str) -> str:
    try:
        return normal_user_name(text)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"the password has {len(password)} characters; give at least {MIN_PASSWORD}",
        )


@router.post(
    "/api/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserView,
    summary="Add a user with a security role",
)
def add_user(body: NewUser, provider: State, who: Administrator) -> UserView:
    """Add an administrative user with one of the built-in security roles."""
    _at_top(provider)
    name = _name(body.name)
    try:
        role = parse_role(body.role)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if body.password is not None:
        _check_password(body.password)
    hashed = hash_password(body.password) if body.password is not None else None
    try:
        user = provider.db.users.add(name, role.value, hashed)
    except SiteDatabaseError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    provider.log.info(f"User {who.user} added user {name} ({role.value})")
    return _user_view(user)


@router.get("/api/users", response_model=list[UserView], summary="The users")
def list_users(provider: State, _who: Administrator) -> list[UserView]:
    """Every user, by name, with its security role."""
    return [_user_view(u) for u in provider.db.users.list()]


@router.delete("/api/users/{name}", response_model=UserView, summary="Remove a user")
def remove_user(
    name: Annotated[str, Path(description="The user name.")], provider: State, who: Administrator
) -> UserView:
    """Remove a user; its tokens and sessions stop working at once."""
    _at_top(provider)
    key = _name(name)
    users = provider.db.users.list()
    target = next((u for u in users if u.name == key), None)
    if target is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no user {key}")
    admins = [u for u in users if u.role == SecurityRole.FULL_ADMINISTRATOR.value]
    if target.role == SecurityRole.FULL_ADMINISTRATOR.value and len(admins) == 1:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"user {key} is the last Full Administrator; add another one first",
        )
    removed = provider.db.users.remove(key)
    if removed is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no user {key}")
    provider.log.info(f"User {who.user} removed user {key}")
    return _user_view(removed)


@router.put("/api/users/{name}/password", response_model=UserView, summary="Set a user's password")
def set_password(
    name: Annotated[str, Path(description="The user name.")],
    body: NewPassword,
    provider: State,
    who: Administrator,
) -> UserView:
    """Give a user a password for signing in (the console's login page), or a new one."""
    _at_top(provider)
    key = _name(name)
    _check_password(body.password)
    user = provider.db.users.set_password(key, hash_password(body.password))
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no user {key}")
    provider.log.info(f"User {who.user} set the password of user {key}")
    return _user_view(user)


@router.post(
    "/api/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=IssuedToken,
    summary="Make an API token for a user",
)
def issue_token(body: NewTokenRequest, provider: State, who: Administrator) -> IssuedToken:
    """A new API token acting as `user`, with its security role; the answer is the only
    place the token is ever shown (only its hash is stored)."""
    _at_top(provider)
    name = _name(body.user)
    user = provider.db.users.get(name)
    if user is None or not user.active:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no user {name}")
    token = new_token()
    expires = datetime.now(UTC) + timedelta(days=body.expires_days) if body.expires_days else None
    record = provider.db.users.add_token(
        name, token.token_id, token.secret_hash, expires_at=expires
    )
    provider.log.info(f"User {who.user} made API token {token.token_id} for user {name}")
    return IssuedToken(token=token.text, role=user.role, **_token_view(record))


@router.get("/api/tokens", response_model=list[TokenView], summary="The API tokens")
def list_tokens(provider: State, _who: Administrator) -> list[TokenView]:
    """The API tokens not revoked, oldest first (their ids, never the tokens)."""
    return [TokenView(**_token_view(k)) for k in provider.db.users.tokens()]


@router.delete("/api/tokens/{token_id}", response_model=TokenView, summary="Revoke a token")
def revoke_token(
    token_id: Annotated[str, Path(description="The token's id.")],
    provider: State,
    who: Administrator,
) -> TokenView:
    """Revoke an API token: it stops working at every site as soon as the revocation
    replicates (at once at this site)."""
    _at_top(provider)
    revoked = provider.db.users.revoke_token(token_id.strip().lower())
    if revoked is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"there is no token {token_id} that is not revoked yet"
        )
    provider.log.info(f"User {who.user} revoked token {revoked.token_id}")
    return TokenView(**_token_view(revoked))


@router.post(
    "/api/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=Session,
    responses={401: {"description": "Wrong user name or password."}},
    summary="Sign in with a password",
)
def sign_in(body: SignIn, provider: State) -> Session:
    """A login session: a token that expires after a few hours (and ends at sign-out)."""
    try:
        name = normal_user_name(body.user)
    except ValueError:
        name = ""
    user = provider.db.users.get(name) if name else None
    stored = user.password_hash if user is not None and user.active else None
    if not verify_password(stored, body.password) or user is None:
        provider.log.warning(f"A sign-in as {body.user[:64]!r} was refused")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "wrong user name or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = new_token(SESSION_PREFIX)
    expires = datetime.now(UTC) + SESSION_LIFETIME
    provider.db.users.add_token(
        user.name, token.token_id, token.secret_hash, kind=TOKEN_SESSION, expires_at=expires
    )
    provider.log.info(f"User {user.name} signed in (session {token.token_id})")
    return Session(token=token.text, user=user.name, role=user.role, expires=expires)


@router.delete(
    "/api/sessions/current",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out",
)
def sign_out(provider: State, who: CurrentPrincipal) -> Response:
    """End the login session the request's token belongs to."""
    record = provider.db.users.token(who.token_id) if who.token_id else None
    if record is None or record[0].kind != TOKEN_SESSION:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "the request's token is not a login session; revoke an API token with "
            "DELETE /api/tokens/{id}",
        )
    provider.db.users.revoke_token(record[0].token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/whoami", response_model=WhoAmI, summary="Who the token belongs to")
def whoami(who: CurrentPrincipal) -> WhoAmI:
    """The user and security role of the request's token."""
    return WhoAmI(user=who.user, role=who.role.value)
