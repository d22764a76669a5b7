"""Signing in to a running console, as a browser does, for tests of its pages.

`add_user(provider_url, admin, name, role)` adds a user with a password at the top-level
site's SMS Provider with the Full Administrator's token (as `updatesync user add` does) and
returns the password; `sign_in(console_url, user, password)` opens the console's login page
and posts its form (with the form's CSRF token, from the console's origin) as a browser does
(`post_login`), and returns a `SignedIn`: an httpx client holding the session cookie, and
the session's CSRF token read from a page. `console_user(...)` does both.
`lone_provider(root)` runs a real SMS Provider of a site database of its own, for a console
whose other sites need not run, and `with_top_at(hierarchy, url)` points the hierarchy's
top-level site at it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from tokens import bearer, token_for

from updatesync.config import Hierarchy
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.roles.serving import BackgroundServer
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.site_db import SiteDatabase

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class SignedIn:
    """A client of the console with a signed-in session."""

    url: str
    user: str
    client: httpx.Client
    csrf: str

    def same_origin(self) -> dict[str, str]:
        """What a browser sends with a form posted from one of the console's pages."""
        return {"origin": self.url, "sec-fetch-site": "same-origin"}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(self.url + path, **kwargs)

    def post_form(
        self, path: str, data: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A form of the console's pages posted with its CSRF token, from the console."""
        headers = self.same_origin() | kwargs.pop("headers", {})
        return self.client.post(
            self.url + path, data={"csrf": self.csrf, **(data or {})}, headers=headers, **kwargs
        )

    def close(self) -> None:
        self.client.close()


def add_user(
    provider_url: str,
    admin: dict[str, str],
    name: str,
    role: str = "Full Administrator",
    *,
    verify: Any = True,
) -> str:
    """Add `name` with `role` and a new password at the provider (or give an existing user
    a new password); the password."""
    password = secrets.token_urlsafe(18)
    added = httpx.post(
        f"{provider_url}/api/users",
        json={"name": name, "role": role, "password": password},
        headers=admin,
        timeout=30,
        verify=verify,
    )
    if added.status_code == 409:
        added = httpx.put(
            f"{provider_url}/api/users/{name}/password",
            json={"password": password},
            headers=admin,
            timeout=30,
            verify=verify,
        )
    assert added.status_code in (200, 201), added.text
    return password


def login_token(client: httpx.Client, console_url: str) -> str:
    """Open the console's login page as a browser does (`client` keeps the cookie it sets);
    the CSRF token of its form."""
    page = client.get(console_url + "/login")
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None, "no CSRF token on the login page"
    return found.group(1)


def post_login(client: httpx.Client, console_url: str, data: dict[str, str]) -> httpx.Response:
    """The login page opened, then its form posted with `data` from the console's origin."""
    token = login_token(client, console_url)
    return client.post(
        console_url + "/login",
        data={"csrf": token, **data},
        headers={"origin": console_url, "sec-fetch-site": "same-origin"},
    )


def sign_in(console_url: str, user: str, password: str, *, verify: Any = True) -> SignedIn:
    """Sign in through the console's login form; the client keeps the session cookie."""
    client = httpx.Client(timeout=60, verify=verify)
    answer = post_login(client, console_url, {"user": user, "password": password, "next": "/"})
    assert answer.status_code == 303, answer.text
    assert "updatesync_console=" in answer.headers.get("set-cookie", ""), answer.headers
    page = client.get(console_url + "/logs")
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None, "no CSRF token on the console's page"
    return SignedIn(console_url, user, client, found.group(1))


def console_user(
    console_url: str,
    provider_url: str,
    admin: dict[str, str],
    name: str = "operator",
    role: str = "Full Administrator",
    *,
    verify: Any = True,
) -> SignedIn:
    """A user `name` with `role`, signed in to the console."""
    password = add_user(provider_url, admin, name, role, verify=verify)
    return sign_in(console_url, name, password, verify=verify)


@contextmanager
def lone_provider(root: Path, site_code: str = "CS1") -> Iterator[tuple[str, dict[str, str]]]:
    """A real SMS Provider of a new site database under `root`: its address and the
    headers of a Full Administrator's token."""
    with SiteDatabase.open(root / site_code, site_code=site_code) as db:
        app = create_provider_app(
            db, log=CMTraceLog(root / "SMSProv.log", component="SMS Provider"), site_code=site_code
        )
        admin = bearer(token_for(db, "root"))
        with BackgroundServer(app) as server:
            yield server.url, admin


def with_top_at(hierarchy: Hierarchy, url: str) -> Hierarchy:
    """`hierarchy` with its top-level site at `url` (plain HTTP)."""
    parts = urlsplit(url)
    top = hierarchy.top.code
    sites = tuple(
        replace(s, address=parts.hostname, port=parts.port) if s.code == top else s
        for s in hierarchy.sites
    )
    return replace(hierarchy, sites=sites)
