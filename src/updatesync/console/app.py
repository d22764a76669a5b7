"""The web console of a hierarchy: server-rendered pages over every site's SMS Provider.

`create_console_app(hierarchy, auth=..., title=...)` is an ASGI app (Starlette, Jinja2). It
holds no database: each page asks the providers of the hierarchy's sites over HTTP, at the
addresses of the hierarchy file, with `auth` (the authorization the providers take); a site
whose provider does not answer is shown grey with the reason, never as an error page.

Pages: `/` the hierarchy as a picture, with the sync buttons (`POST /sync`, SyncNow at the
top-level site); `/sites/{code}` a site's and its SUPs' sync status; `/messages` status
messages of every site, filtered; `/alerts` alerts and their history; `/timeline` one sync of
the whole hierarchy on a time axis; `/logs` the sync runs that the log tracker rebuilds
from uploaded logs (`updatesync.console.logs_page`); `/logs/{code}` and `/logs/{code}/{log}`
each site's and SUP's own logs, read as CMTrace shows them and tailed live
(`updatesync.console.log_viewer`). `/fragments/...` give the live parts
alone, which the one script of the console (`static/console.js`) fetches every second while
a sync runs.

Every page but `/login` needs a signed-in user (`updatesync.console.sessions`,
`updatesync.console.login`); the header names the user and its security role; every form
carries the session's CSRF token (the sign-in form, before any session, one of its own),
checked on every POST besides the request's `Origin`; the
sync buttons are shown only to a role that may start a sync (Software Update Manager, Full
Administrator), and `POST /sync` refuses the others (403).
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from updatesync.config import Hierarchy, Site
from updatesync.console.log_viewer import log_fragment, log_href, log_list, log_view
from updatesync.console.login import cross_origin, login, logout
from updatesync.console.logs_page import logs_page
from updatesync.console.picture import layout
from updatesync.console.providers import (
    DEFAULT_TIMEOUT,
    MAX_MESSAGES,
    ProviderDown,
    Providers,
    parse_time,
)
from updatesync.console.sessions import (
    CSRF_FIELD,
    RECHECK_SECONDS,
    SESSION,
    ConsoleSession,
    CsrfRefused,
    SessionGate,
    Sessions,
    SignInLimit,
)
from updatesync.console.states import (
    LEGEND,
    PHASE_NAMES,
    message_text,
    site_failure,
    site_views,
    state_style,
)
from updatesync.console.timeline import format_duration, load_timeline
from updatesync.console.uploads import UploadLimits
from updatesync.security.access import SecurityRole
from updatesync.security.limits import JSON_BODY_LIMIT, BodyLimits, BodyRefused
from updatesync.vocabulary import CATALOGUE, SYNC_FAILED, SYNC_MANAGER

LOG = logging.getLogger(__name__)

SITE_TYPES = {
    "cas": "central administration site",
    "primary": "primary site",
    "secondary": "secondary site",
}
LINK_STATUS = {0: "healthy", 1: "degraded", 2: "error"}
MESSAGE_FILTERS = ("site", "component", "id", "severity", "since", "until", "limit")
DEFAULT_MESSAGES = 200
"""Status messages shown at most when the form does not say."""


class FormError(ValueError):
    """A filter of a page's form that cannot be used; the message says which and why."""


def _format_time(value: datetime | None, with_date: bool = True) -> str:
    if value is None:
        return "—"
    moment = value.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}"


def _error_code(value: int | None) -> str:
    if value is None:
        return "—"
    return "0" if value == 0 else f"0x{value & 0xFFFFFFFF:08X}"


def _breakable(name: str) -> Markup:
    """A field name such as LastReplicationLinkCheckTime, allowed to wrap between words."""
    return Markup("<wbr>").join(re.split(r"(?<=[a-z])(?=[A-Z])", name))


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("updatesync.console", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(log_href=log_href, SYNC_MANAGER=SYNC_MANAGER)  # the log viewer's links
    env.filters["time"] = _format_time
    env.filters["clock"] = lambda v: _format_time(v, with_date=False)
    env.filters["error_code"] = _error_code
    env.filters["iso"] = lambda v: _format_time(parse_time(v))
    env.filters["words"] = _breakable
    env.filters["duration"] = format_duration
    env.globals.update(
        SITE_TYPES=SITE_TYPES,
        LINK_STATUS=LINK_STATUS,
        PHASE_NAMES=PHASE_NAMES,
        LEGEND=LEGEND,
        message_text=message_text,
        state_style=state_style,
    )
    return env


def _parse_time(text: str, name: str) -> datetime | None:
    """A time from a form: ISO 8601 or the browser's `datetime-local`; UTC unless it says."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FormError(
            f"{name}: {text!r} is not a time; give it as 2014-01-16T18:57:46 (UTC)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _time_query(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class ConsoleState:
    """What every page of one console reads: its hierarchy, how to reach the providers, its
    title, its templates and its upload limits (`app.state.console`)."""

    hierarchy: Hierarchy
    auth: httpx.Auth | None
    title: str
    timeout: float
    transport: httpx.AsyncBaseTransport | None
    upload_limits: UploadLimits
    verify: ssl.SSLContext | bool = True
    env: Environment = field(default_factory=_environment)
    sessions: Sessions = field(default_factory=Sessions)
    sign_ins: SignInLimit = field(default_factory=SignInLimit)
    sites: list[Site] = field(init=False)

    def __post_init__(self) -> None:
        self.sites = list(self.hierarchy.walk())

    def providers(self) -> Providers:
        return Providers(
            self.hierarchy,
            auth=self.auth,
            timeout=self.timeout,
            transport=self.transport,
            verify=self.verify,
        )

    async def provider_role(self, session: ConsoleSession) -> SecurityRole | None:
        """The role of `session`'s user at the top-level site's SMS Provider now (`GET
        /api/whoami` with the provider session's token), None when the provider refuses the
        session (the user was removed, the session ended there); httpx's error when it
        cannot be asked."""
        async with httpx.AsyncClient(
            timeout=self.timeout, transport=self.transport, verify=self.verify
        ) as http:
            answer = await http.get(
                self.hierarchy.top.url + "/api/whoami",
                headers={"authorization": f"Bearer {session.provider_token}"},
            )
        if answer.status_code in (401, 403):
            return None
        answer.raise_for_status()
        return SecurityRole(answer.json()["role"])

    async def provider_session(self, method: str, **kwargs: Any) -> httpx.Response:
        """Sign in (`POST`) or out (`DELETE`) at the top-level site's SMS Provider; the
        request's own credential only (a password, a session), never the console's."""
        path = "/api/sessions" if method == "POST" else "/api/sessions/current"
        async with httpx.AsyncClient(
            timeout=self.timeout, transport=self.transport, verify=self.verify
        ) as http:
            return await http.request(method, self.hierarchy.top.url + path, **kwargs)

    def render(
        self, request: Request, template: str, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(
            base=request.scope.get("root_path", "").rstrip("/"),
            title=self.title,
            hierarchy=self.hierarchy,
            sites=self.sites,
            path=request.url.path,
            who=request.scope.get(SESSION),
            csrf_field=CSRF_FIELD,
            **values,
        )
        return HTMLResponse(html, status_code=status_code, headers={"cache-control": "no-store"})

    def refuse(self, request: Request, problem: str) -> HTMLResponse:
        """The 403 page of a request the console will not do, saying why."""
        return self.render(request, "problem.html", 403, page_title="Refused", problem=problem)

    def site_or_none(self, code: str) -> Site | None:
        try:
            return self.hierarchy.site(code)
        except KeyError:
            return None


def _console(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


Endpoint = Callable[[Request], Awaitable[Response]]


def _page(handler: Endpoint) -> Endpoint:
    """`handler`, with any failure shown as a page that says what happened."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except FormError as exc:
            return _console(request).render(
                request, "problem.html", 400, page_title="Bad request", problem=str(exc)
            )
        except CsrfRefused as exc:
            return _console(request).refuse(
                request,
                f"This form did not come from a page of your sign-in: its CSRF token "
                f"is {exc}. Open the page again and use its form.",
            )
        except BodyRefused:
            raise  # the server answers it (too big or too slow), not a console failure
        except Exception as exc:
            LOG.exception("console: %s failed", request.url.path)
            return _console(request).render(
                request,
                "problem.html",
                500,
                page_title="Console error",
                problem=f"The console failed while building {request.url.path}: "
                f"{type(exc).__name__}: {exc}",
            )

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


# -- the hierarchy ---------------------------------------------------------------------------


async def _hierarchy(console: ConsoleState) -> dict[str, Any]:
    async with console.providers() as providers:
        views = site_views(await providers.snapshots())
    return {
        "views": views,
        "picture": layout(views),
        "live": any(v.live for v in views),
        "now": datetime.now(UTC),
    }


async def _index(request: Request, problem: str = "", status_code: int = 200) -> Response:
    console = _console(request)
    requested = request.query_params.get("requested", "")
    return console.render(
        request,
        "index.html",
        status_code,
        page_title="Hierarchy",
        requested=requested,
        problem=problem,
        **await _hierarchy(console),
    )


@_page
async def index(request: Request) -> Response:
    """`/`: the hierarchy as a picture, with the sync buttons."""
    return await _index(request)


@_page
async def hierarchy_fragment(request: Request) -> Response:
    console = _console(request)
    return console.render(request, "_hierarchy.html", **await _hierarchy(console))


@_page
async def sync(request: Request) -> Response:
    """The sync buttons: SyncNow at the top-level site, then back to the picture."""
    console = _console(request)
    refused = cross_origin(request)
    if refused is not None:
        return console.refuse(
            request,
            f"A sync is requested only from the console's own pages: {refused}. "
            "Use the sync buttons of the console's hierarchy page.",
        )
    session: ConsoleSession = request.scope[SESSION]
    if not session.can_sync:
        return console.refuse(
            request,
            f"User {session.user} ({session.role.value}) cannot start a sync: that "
            "needs the security role Software Update Manager or Full Administrator.",
        )
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    session.check_csrf((form.get(CSRF_FIELD) or [""])[0])
    full = (form.get("full") or ["0"])[0].lower() in ("1", "true", "yes", "on")
    async with console.providers() as providers:
        try:
            await providers.sync_now(full=full)
        except ProviderDown as exc:
            top = console.hierarchy.top.code
            return await _index(
                request,
                problem=f"The sync was not requested: SyncNow goes to the top-level site "
                f"{top}. {exc}.",
                status_code=502,
            )
    base = request.scope.get("root_path", "").rstrip("/")
    target = f"{base}/?requested={'full' if full else 'delta'}"
    return RedirectResponse(target, status_code=303)


# -- one site --------------------------------------------------------------------------------


async def _site(console: ConsoleState, code: str) -> dict[str, Any]:
    site = console.hierarchy.site(code)
    async with console.providers() as providers:
        snapshots = await providers.snapshots()
        recent = await providers.status_messages(
            [("site", site.code), ("limit", 15)], codes=[site.code]
        )
        failure = None
        status = next(s for s in snapshots if s.code == site.code).status or {}
        if status.get("LastSyncState") == SYNC_FAILED:
            failed = await providers.status_messages(
                [("site", site.code), ("id", SYNC_FAILED), ("limit", 20)], codes=[site.code]
            )
            failure = site_failure(failed.items)
    views = {v.code: v for v in site_views(snapshots)}
    view = views[site.code]
    return {
        "failure": failure,
        "next_retry": parse_time(status.get("NextRetryTime")),
        "now": datetime.now(UTC),
        "view": view,
        "site": site,
        "parent": views.get(site.parent) if site.parent else None,
        "children": [views[c.code] for c in console.hierarchy.children(site.code)],
        "recent": recent.items,
        "live": view.live,
    }


@_page
async def site(request: Request) -> Response:
    """`/sites/{code}`: a site's and its SUPs' sync status."""
    console = _console(request)
    code = request.path_params["code"]
    if console.site_or_none(code) is None:
        return _unknown_site(request, code)
    values = await _site(console, code)
    return console.render(request, "site.html", page_title=values["site"].code, **values)


@_page
async def site_fragment(request: Request) -> Response:
    console = _console(request)
    code = request.path_params["code"]
    if console.site_or_none(code) is None:
        return _unknown_site(request, code)
    return console.render(request, "_site.html", **await _site(console, code))


def _unknown_site(request: Request, code: str) -> Response:
    console = _console(request)
    known = ", ".join(s.code for s in console.sites)
    return console.render(
        request,
        "problem.html",
        404,
        page_title="Unknown site",
        problem=f"The hierarchy has no site {code!r}; its sites are {known}.",
    )


# -- status messages -------------------------------------------------------------------------


def _message_filters(
    console: ConsoleState, query: Mapping[str, str]
) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """The form's values as given, and the providers' query parameters."""
    form = {k: query.get(k, "").strip() for k in MESSAGE_FILTERS}
    params: list[tuple[str, Any]] = []
    if form["site"]:
        site = console.site_or_none(form["site"])
        if site is None:
            raise FormError(
                f"site: the hierarchy has no site {form['site']!r} "
                f"(its sites: {', '.join(s.code for s in console.sites)})"
            )
        form["site"] = site.code
        params.append(("site", site.code))
    if form["component"]:
        params.append(("component", form["component"]))
    if form["id"]:
        try:
            ids = [int(p) for p in form["id"].replace(",", " ").split()]
        except ValueError:
            raise FormError(
                f"message id: {form['id']!r} is not a list of numbers; give e.g. 6702, 6703"
            ) from None
        params += [("id", i) for i in ids]
    if form["severity"]:
        severity = form["severity"].upper()[:1]
        if severity not in ("I", "W", "E"):
            raise FormError(f"severity: {form['severity']!r} is not I, W or E")
        form["severity"] = severity
        params.append(("severity", severity))
    for name in ("since", "until"):
        moment = _parse_time(form[name], name)
        if moment is not None:
            params.append((name, _time_query(moment)))
            form[name] = moment.strftime("%Y-%m-%dT%H:%M:%S")  # as the form's input shows it
    limit = DEFAULT_MESSAGES
    if form["limit"]:
        try:
            limit = min(max(int(form["limit"]), 1), MAX_MESSAGES)
        except ValueError:
            raise FormError(f"limit: {form['limit']!r} is not a number") from None
    form["limit"] = str(limit)
    params.append(("limit", limit))
    return form, params


@_page
async def messages(request: Request) -> Response:
    """`/messages`: status messages of every site, filtered."""
    console = _console(request)
    form, params = _message_filters(console, request.query_params)
    async with console.providers() as providers:
        found = await providers.status_messages(params)
    limit = int(form["limit"])
    return console.render(
        request,
        "messages.html",
        page_title="Status messages",
        form=form,
        messages=found.items[:limit],
        more=len(found.items) > limit,
        down=found.down,
        catalogue=CATALOGUE,
        components=sorted({m["Component"] for m in found.items} | {SYNC_MANAGER}),
    )


# -- alerts ----------------------------------------------------------------------------------


@_page
async def alerts(request: Request) -> Response:
    """`/alerts`: alerts and their history."""
    console = _console(request)
    form = {k: request.query_params.get(k, "").strip() for k in ("site", "state")}
    params: list[tuple[str, Any]] = []
    if form["site"]:
        site = console.site_or_none(form["site"])
        if site is None:
            raise FormError(f"site: the hierarchy has no site {form['site']!r}")
        form["site"] = site.code
        params.append(("site", site.code))
    if form["state"]:
        if form["state"] not in ("raised", "canceled"):
            raise FormError(f"state: {form['state']!r} is not raised or canceled")
        params.append(("state", form["state"]))
    async with console.providers() as providers:
        found = await providers.alerts(params)
    return console.render(
        request,
        "alerts.html",
        page_title="Alerts",
        form=form,
        groups=_alert_groups(found.items),
        down=found.down,
    )


# -- the timeline ----------------------------------------------------------------------------


async def _timeline(request: Request) -> dict[str, Any]:
    console = _console(request)
    since = _parse_time(request.query_params.get("since", ""), "since")
    async with console.providers() as providers:
        timeline = await load_timeline(providers, console.sites, since=since)
    query = f"?{urlencode({'since': _time_query(since)})}" if since else ""
    return {"timeline": timeline, "live": timeline.live, "query": query, "since": since}


@_page
async def timeline(request: Request) -> Response:
    """`/timeline`: one sync of the whole hierarchy on a time axis."""
    values = await _timeline(request)
    return _console(request).render(request, "timeline.html", page_title="Timeline", **values)


@_page
async def timeline_fragment(request: Request) -> Response:
    return _console(request).render(request, "_timeline.html", **await _timeline(request))


# -- uploaded logs ---------------------------------------------------------------------------


@_page
async def logs(request: Request) -> Response:
    """`/logs`: the sync runs the log tracker rebuilds from uploaded logs."""
    console = _console(request)
    if request.method == "POST":
        refused = cross_origin(request)
        if refused is not None:
            return console.refuse(
                request,
                f"Logs are uploaded only from the console's own page: {refused}.",
            )
    status, values = await logs_page(request, console.upload_limits, request.scope[SESSION])
    return console.render(request, "logs.html", status, page_title="Logs", **values)


def _alert_groups(alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Occurrences grouped by site, type and instance; the newest occurrence tells the
    alert's state; groups with a raised alert first, then by newest occurrence."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for alert in alerts:  # newest raised first
        key = (alert["SiteCode"], alert["AlertType"], alert["Instance"])
        group = groups.setdefault(
            key,
            {
                "site": alert["SiteCode"],
                "type": alert["AlertType"],
                "instance": alert["Instance"],
                "name": alert["Name"],
                "state": alert["State"],
                "latest": alert["RaisedAt"],
                "occurrences": [],
            },
        )
        group["occurrences"].append(alert)
    return sorted(
        groups.values(),
        key=lambda g: (g["state"] != "raised", -g["latest"].timestamp()),
    )


ROUTES = [
    Route("/login", _page(login), methods=["GET", "POST"]),
    Route("/logout", _page(logout), methods=["POST"]),
    Route("/", index),
    Route("/sync", sync, methods=["POST"]),
    Route("/sites/{code}", site),
    Route("/messages", messages),
    Route("/alerts", alerts),
    Route("/timeline", timeline),
    Route("/logs", logs, methods=["GET", "POST"]),
    Route("/logs/{code}", _page(log_list)),
    Route("/logs/{code}/{name:path}", _page(log_view)),
    Route("/fragments/logs/{code}/{name:path}", _page(log_fragment)),
    Route("/fragments/hierarchy", hierarchy_fragment),
    Route("/fragments/sites/{code}", site_fragment),
    Route("/fragments/timeline", timeline_fragment),
    Mount(
        "/static",
        StaticFiles(directory=str(resources.files("updatesync.console") / "static")),
        name="static",
    ),
]
"""Every page of the console; each reads its console from `request.app.state.console`."""


def create_console_app(
    hierarchy: Hierarchy,
    *,
    auth: httpx.Auth | None = None,
    title: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
    upload_limits: UploadLimits | None = None,
    verify: ssl.SSLContext | bool = True,
    recheck_seconds: float = RECHECK_SECONDS,
) -> Starlette:
    """The console of `hierarchy`. `auth` is given to every call to a site's SMS Provider
    (reads and SyncNow); `timeout` is how long a provider may take before its site shows as
    unreachable; `transport` replaces the network (tests); `upload_limits` bound what the
    `/logs` page takes (50 MB in all by default); `verify` checks each provider's certificate
    (the hierarchy's CA); `recheck_seconds` how often a signed-in user is asked about again
    at the top-level site's SMS Provider."""
    sessions = Sessions()

    async def check(session: ConsoleSession) -> SecurityRole | None:
        console: ConsoleState = app.state.console
        return await console.provider_role(session)

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(SessionGate, sessions=sessions, check=check, every=recheck_seconds)],
    )
    limits = upload_limits or UploadLimits()
    # The /logs page answers a too big upload itself, after reading (and dropping) up to
    # `limits.drain` bytes; past that, and on every other page past 1 MB, the server does.
    app.state.body_limits = BodyLimits(prefixes={"/logs": limits.drain + JSON_BODY_LIMIT})
    app.state.console = ConsoleState(
        hierarchy=hierarchy,
        auth=auth,
        title=title or f"{hierarchy.name} · updatesync",
        timeout=timeout,
        transport=transport,
        upload_limits=limits,
        verify=verify,
        sessions=sessions,
    )
    return app
