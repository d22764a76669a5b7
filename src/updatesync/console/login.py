"""The console's sign-in and sign-out pages.

`GET /login` shows the form, with a CSRF token in a hidden field and in the short-lived
cookie `LOGIN_COOKIE` (`updatesync.console.sessions`); `POST /login` (user, password, next,
csrf) is refused (403, the console's refusal page) unless its token is the one in the cookie,
then asks the top-level site's SMS Provider (`POST /api/sessions`) whether the password
holds, then starts a console session with the provider session's user, security role and
expiry, sets its cookie (deleting the form's) and sends the browser on to `next` (a path of
the console only). A wrong user name or password shows the form again with 401 and says
nothing of which was wrong; too many failures of one user name from one client give 429.
`POST /logout` (with the session's CSRF token) ends the session here and at the provider.
Every POST must come from the console's own pages (`cross_origin`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from updatesync.console.providers import parse_time
from updatesync.console.sessions import (
    COOKIE,
    CSRF_FIELD,
    LOGIN_COOKIE,
    LOGIN_CSRF_AGE,
    SESSION,
    ConsoleSession,
    CsrfRefused,
    SignInLimit,
    check_csrf,
    cookie_header,
    is_csrf_token,
    local_target,
    new_csrf_token,
)
from updatesync.security.access import SecurityRole

if TYPE_CHECKING:
    from updatesync.console.app import ConsoleState

LOG = logging.getLogger(__name__)

WRONG = "wrong user name or password"


def cross_origin(request: Request) -> str | None:
    """Why a POST did not come from the console's own pages, or None when it did: a browser
    says where a form comes from in `Origin` (and `Sec-Fetch-Site`); a request that says
    nothing, or `Origin: null` (a sandboxed frame, a file, a redirect from elsewhere), is
    refused too."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        return f"this request came from another site (Sec-Fetch-Site: {fetch_site})"
    origin = request.headers.get("origin", "").strip()
    if not origin or origin == "null":
        return (
            "this request does not say which page it came from (no Origin header, or "
            "Origin: null), so it may come from another site"
        )
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        return f"this request came from another site ({origin})"
    return None


def _console(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _form_page(
    request: Request, status_code: int, problem: str = "", user: str = "", target: str = "/"
) -> Response:
    """The sign-in form, with its CSRF token: the one this browser holds in `LOGIN_COOKIE`,
    else a new one. The cookie is set (again) when the form is opened, and when the browser
    sent none."""
    held = request.cookies.get(LOGIN_COOKIE)
    token = held if held is not None and is_csrf_token(held) else new_csrf_token()
    response = _console(request).render(
        request,
        "login.html",
        status_code,
        page_title="Sign in",
        problem=problem,
        user=user,
        next=target,
        login_csrf=token,
    )
    if request.method == "GET" or token != held:
        response.headers.append(
            "set-cookie",
            cookie_header(
                token, secure=_secure(request), max_age=LOGIN_CSRF_AGE, name=LOGIN_COOKIE
            ),
        )
    return response


async def login(request: Request) -> Response:
    """`/login`: the sign-in form, and signing in."""
    target = local_target(request.query_params.get("next"))
    if request.method != "POST":
        return _form_page(request, 200, target=target)
    refused = cross_origin(request)
    if refused is not None:
        return _form_page(
            request, 403, f"Sign in from the console's own sign-in page: {refused}.", "", target
        )
    form = parse_qs((await request.body()).decode("utf-8", "replace"))

    def field(name: str) -> str:
        return (form.get(name) or [""])[0]

    console = _console(request)
    try:
        check_csrf(field(CSRF_FIELD), request.cookies.get(LOGIN_COOKIE), "this browser's form")
    except CsrfRefused as exc:
        return console.refuse(
            request,
            f"Sign in from the console's own sign-in page: this form's CSRF token is {exc}. "
            "Open the sign-in page again and sign in there.",
        )
    user, password = field("user").strip(), field("password")
    target = local_target(field("next") or target)
    client = request.client.host if request.client else "?"
    key = SignInLimit.key(user, client)
    if console.sign_ins.blocked(key):
        LOG.warning("console: sign-in as %r from %s refused: too many failures", user[:64], client)
        return _form_page(
            request,
            429,
            "Too many failed sign-ins with this user name from here: wait a minute, then try "
            "again.",
            user,
            target,
        )
    if not user or not password:
        return _form_page(request, 401, WRONG, user, target)
    try:
        answer = await console.provider_session("POST", json={"user": user, "password": password})
    except httpx.HTTPError as exc:
        return _provider_down(request, exc, user, target)
    if answer.status_code == 401:
        console.sign_ins.failed(key)
        return _form_page(request, 401, WRONG, user, target)
    try:
        body: dict[str, Any] = answer.json() if answer.status_code == 201 else {}
        expires = parse_time(body["expires"])
        if expires is None:
            raise ValueError("a session without an expiry")
        session = ConsoleSession(
            user=str(body["user"]),
            role=SecurityRole(body["role"]),
            expires=expires,
            provider_token=str(body["token"]),
        )
    except (ValueError, KeyError, TypeError):
        what = f"answered HTTP {answer.status_code}: {' '.join(answer.text[:200].split())}"
        return _provider_down(request, what, user, target)
    console.sign_ins.succeeded(key)
    console.sessions.add(session)
    LOG.info("console: %s (%s) signed in", session.user, session.role.value)
    response = RedirectResponse(_base(request) + target, status_code=303)
    seconds = int((session.expires - console.sessions.clock()).total_seconds())
    secure = _secure(request)
    response.headers.append("set-cookie", cookie_header(session.id, secure=secure, max_age=seconds))
    response.headers.append(  # the form's token has done its work
        "set-cookie", cookie_header("", secure=secure, max_age=0, name=LOGIN_COOKIE)
    )
    return response


def _provider_down(request: Request, why: object, user: str, target: str) -> Response:
    top = _console(request).hierarchy.top
    return _form_page(
        request,
        502,
        f"Signing in needs the SMS Provider of the top-level site {top.code} at {top.url}, "
        f"which {why if isinstance(why, str) else f'did not answer: {why}'}. Start it, or "
        "check the console's hierarchy file.",
        user,
        target,
    )


async def logout(request: Request) -> Response:
    """`POST /logout`: end the session (here and at the provider), back to `/login`."""
    console = _console(request)
    refused = cross_origin(request)
    if refused is not None:
        return console.refuse(
            request,
            f"Sign out from the console's own pages: {refused}.",
        )
    session: ConsoleSession = request.scope[SESSION]
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    session.check_csrf((form.get(CSRF_FIELD) or [""])[0])  # the page wrapper answers 403
    console.sessions.end(session.id)
    try:
        await console.provider_session(
            "DELETE", headers={"authorization": f"Bearer {session.provider_token}"}
        )
    except httpx.HTTPError as exc:  # the provider session expires on its own
        LOG.warning("console: the provider did not end the session of %s: %s", session.user, exc)
    LOG.info("console: %s signed out", session.user)
    response = RedirectResponse(_base(request) + "/login", status_code=303)
    response.headers["set-cookie"] = cookie_header("", secure=_secure(request), max_age=0)
    return response


__all__ = ["COOKIE", "cross_origin", "login", "logout"]
