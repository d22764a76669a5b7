"""The console's log viewer: each site's and SUP's own logs, read as CMTrace shows them.

The logs are read from the site's SMS Provider (`GET /api/sites/{site}/logs...`,
`updatesync.site.api.logs`), so the console may run on another host than the sites:

- `/logs/{code}`: the logs of the site server and of its SUPs, with size and last change;
- `/logs/{code}/{name}`: one log as a table, the end of it first (Log Text, Component,
  Date/Time, Thread; errors red, warnings yellow); `?at=<ISO time>` opens it at the page that
  holds the first entry at or after that time, which the page scrolls to and marks (the
  links of the status messages and of the timeline's bars); `?from=start` from its first
  entry (the `.lo_`'s). The script of the console
  (`static/console.js`) filters and highlights the lines and fetches
  `/fragments/logs/{code}/{name}?file=F&offset=N` every second while the page is open,
  appending the lines written since (a live tail);
- `log_href(site, component, time)`: the link to the log of a site component at a time.

A log's name is checked against what a log's name may be before it is sent to the provider
(which looks it up among the logs it knows), so no request reaches another route of it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from updatesync.console.providers import ProviderDown, parse_time, utc_text
from updatesync.site.api.logs import LOG_OF_COMPONENT
from updatesync.vocabulary import UPDATE_SERVER_LOG

if TYPE_CHECKING:
    from updatesync.console.app import ConsoleState

_NAME = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/)?[A-Za-z0-9_-]+\.log")
"""`WSyncMgr.log`, or a SUP's `<fqdn>/SoftwareDistribution.log`."""
_FILE = re.compile(r"[0-9a-f]{0,16}(?:-[0-9a-f]{8})?")
PAGE_BYTES = 256 * 1024
"""What one page of the viewer reads at most (the provider's default)."""


def log_href(base: str, site: str, component: str, moment: Any, sup: str | None = None) -> str:
    """The viewer of the log that `component` of `site` writes, at `moment`; "" when the
    component writes no log the provider knows. With `sup`: that SUP's
    SoftwareDistribution.log."""
    name = f"{sup}/{UPDATE_SERVER_LOG}" if sup else LOG_OF_COMPONENT.get(component)
    if name is None:
        return ""
    at = moment if isinstance(moment, datetime) else parse_time(moment)
    query = f"?{urlencode({'at': utc_text(at)})}" if at is not None else ""
    return f"{base}/logs/{site}/{quote(name, safe='/')}{query}"


def _console(request: Request) -> ConsoleState:
    console: ConsoleState = request.app.state.console
    return console


def _not_found(request: Request, problem: str) -> Response:
    return _console(request).render(
        request, "problem.html", 404, page_title="No such log", problem=problem
    )


def _site_code(request: Request) -> str | None:
    site = _console(request).site_or_none(request.path_params["code"])
    return None if site is None else site.code


async def _read(
    request: Request, code: str, name: str, params: dict[str, Any]
) -> dict[str, Any] | None:
    async with _console(request).providers() as providers:
        return await providers.call(
            code,
            "GET",
            f"/api/sites/{code}/logs/{quote(name, safe='/')}",
            params=params,
            missing_ok=True,
        )


def _lines(page: dict[str, Any]) -> list[dict[str, Any]]:
    for line in page["Lines"]:
        line["Time"] = parse_time(line["Time"])
    return page["Lines"]


async def log_list(request: Request) -> Response:
    """`/logs/{code}`: the logs of a site server and of its SUPs."""
    console = _console(request)
    code = _site_code(request)
    if code is None:
        return _not_found(request, f"The hierarchy has no site {request.path_params['code']!r}.")
    problem, logs = "", []
    async with console.providers() as providers:
        try:
            logs = await providers.call(code, "GET", f"/api/sites/{code}/logs")
        except ProviderDown as exc:
            problem = str(exc)
    for log in logs:
        log["Modified"] = parse_time(log["Modified"])
    return console.render(
        request,
        "log_list.html",
        page_title=f"{code} logs",
        site=console.hierarchy.site(code),
        logs=logs,
        problem=problem,
    )


async def log_view(request: Request) -> Response:
    """`/logs/{code}/{name}`: one log, its end first (or the page of `?at=`), tailed live."""
    console = _console(request)
    code, name = _site_code(request), request.path_params["name"]
    if code is None or not _NAME.fullmatch(name):
        return _not_found(request, f"No log {name!r} at site {request.path_params['code']!r}.")
    at = request.query_params.get("at", "").strip()
    try:
        moment = parse_time(at) if at else None
    except ValueError:
        return console.render(
            request,
            "problem.html",
            400,
            page_title="Bad request",
            problem=f"at: {at!r} is not a time; give it as 2014-01-16T18:57:46Z (UTC)",
        )
    params: dict[str, Any] = {"limit": PAGE_BYTES}
    if moment is not None:
        params["at"] = utc_text(moment)
    elif request.query_params.get("from") == "start":
        params["file"] = ""  # the start of the .lo_ (or of the .log)
    problem, page = "", None
    try:
        page = await _read(request, code, name, params)
    except ProviderDown as exc:
        problem = str(exc)
    if page is None and not problem:
        return _not_found(
            request,
            f"Site {code}'s SMS Provider reads no log {name!r}: see the logs of {code} (a SUP "
            "on another host keeps its SoftwareDistribution.log there).",
        )
    return console.render(
        request,
        "log_view.html",
        page_title=f"{code} {name.rpartition('/')[2]}",
        site=console.hierarchy.site(code),
        name=name,
        quoted=quote(name, safe="/"),
        page=page,
        lines=_lines(page) if page else [],
        at=utc_text(moment) if moment is not None else "",
        problem=problem,
    )


async def log_fragment(request: Request) -> Response:
    """`/fragments/logs/{code}/{name}?file=F&offset=N`: the lines written since (the rows
    of the viewer's table, with the cursor to ask with next)."""
    code, name = _site_code(request), request.path_params["name"]
    file = request.query_params.get("file", "")
    offset = request.query_params.get("offset", "0")
    if code is None or not _NAME.fullmatch(name):
        return _not_found(request, f"No log {name!r}.")
    if not _FILE.fullmatch(file) or not offset.isdigit() or len(offset) > 13:
        return _console(request).render(
            request,
            "problem.html",
            400,
            page_title="Bad request",
            problem=f"file={file!r}, offset={offset!r}: not a cursor of this log",
        )
    page = await _read(
        request, code, name, {"file": file, "offset": int(offset), "limit": PAGE_BYTES}
    )
    if page is None:
        return _not_found(request, f"No log {name!r} at site {code}.")
    return _console(request).render(
        request, "_log_rows.html", page=page, lines=_lines(page), wrapped=True
    )
