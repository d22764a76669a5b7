"""The console's sync button is not a door for other sites (issue 11, "Unauthenticated
writes": the console's `POST /sync` with no `Origin` or `Origin: null`).

The finding: the console took `POST /sync` (SyncNow at the top-level site: a sync of the
whole hierarchy) from a request that said no origin, or `Origin: null` (a sandboxed frame, a
`file:` page, some redirects), so a page elsewhere could start a sync through a browser that
reaches the console. Here a real top-level site CS1 and a real console run on loopback; what
reached CS1 is read from its SMS Provider's log. A Software Update Manager is signed in to the
console (the console asks for a login too), and each form carries the session's CSRF token:
only the origin is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from console_login import SignedIn, console_user

from updatesync.config import parse_hierarchy
from updatesync.console import create_console_app
from updatesync.roles import RoleContext, on_loopback, start_roles
from updatesync.roles.serving import BackgroundServer
from updatesync.site.api.provider import SYNC_NOW_LOG_LINE
from updatesync.vocabulary import PROVIDER_LOG

ONE_SITE = """
[hierarchy]
name = "One"
data_dir = "{data}"
schedule = "36500d"

[hierarchy.upstream]
kind = "none"

[[sites]]
code = "CS1"
fqdn = "cs1site.contoso.com"
type = "cas"
"""


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SignedIn, Path]]:
    root = tmp_path_factory.mktemp("origin")
    hierarchy, socks = on_loopback(parse_hierarchy(ONE_SITE.format(data=root / "data")))
    context = RoleContext(hierarchy, b"s" * 32)
    roles = start_roles(context, ["site:CS1"], socks=socks)
    try:
        # The console calls the provider as a role of the hierarchy (signed).
        with BackgroundServer(
            create_console_app(hierarchy, auth=context.auth("console"))
        ) as server:
            token = (root / "data" / "CS1" / "admin.token").read_text(encoding="utf-8").strip()
            admin = {"authorization": f"Bearer {token}"}
            user = console_user(
                server.url, hierarchy.top.url, admin, "manager", "Software Update Manager"
            )
            yield user, root / "data" / "CS1" / "logs" / PROVIDER_LOG
            user.close()
    finally:
        for role in roles:
            role.stop()


def sync_nows(log: Path) -> int:
    """How many SyncNow calls CS1's SMS Provider took."""
    return log.read_text(encoding="utf-8").count(SYNC_NOW_LOG_LINE) if log.exists() else 0


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        pytest.param({}, "no Origin header, or Origin: null", id="no-origin"),
        pytest.param({"origin": "null"}, "no Origin header, or Origin: null", id="origin-null"),
        pytest.param(
            {"origin": "http://evil.example"}, "came from another site", id="another-site"
        ),
        pytest.param(
            {"origin": "{url}", "sec-fetch-site": "cross-site"},
            "Sec-Fetch-Site: cross-site",
            id="cross-site-fetch",
        ),
    ],
)
def test_a_sync_posted_without_the_consoles_own_origin_is_refused(
    console: tuple[SignedIn, Path], headers: dict[str, str], why: str
) -> None:
    """Finding: `POST /sync` with no `Origin` or `Origin: null` started a sync of the whole
    hierarchy."""
    user, log = console
    before = sync_nows(log)
    sent = {k: v.format(url=user.url) for k, v in headers.items()}
    answer = user.client.post(
        user.url + "/sync", data={"full": "1", "csrf": user.csrf}, headers=sent, timeout=30
    )
    assert answer.status_code == 403
    assert "A sync is requested only from the console&#39;s own pages" in answer.text
    assert why in answer.text
    assert sync_nows(log) == before


def test_a_sync_posted_from_the_consoles_own_page_reaches_the_top_level_site(
    console: tuple[SignedIn, Path],
) -> None:
    user, log = console
    before = sync_nows(log)
    answer = user.client.post(
        user.url + "/sync",
        data={"full": "0", "csrf": user.csrf},
        headers={"origin": user.url, "sec-fetch-site": "same-origin"},
        timeout=30,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/?requested=delta"
    assert sync_nows(log) == before + 1
