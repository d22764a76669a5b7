"""The console asks who you are (issue 11, item 2: "The console has a login page (password,
secure cookie session, CSRF token on every form); buttons it cannot use for this user are
not shown"; item 11: the demo's console asks for a login).

The finding: the console showed every page and the sync buttons to anyone who reached its
port; then (audit) its sign-in form alone carried no CSRF token, only the Origin check.
Here a real top-level site CS1 and a real console run on loopback, the console once over
plain HTTP and once over HTTPS with a certificate of a hierarchy CA; users are added at
CS1's SMS Provider with the Full Administrator's token; what reached CS1 is read from its
SMS Provider's log.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from console_login import SignedIn, add_user, console_user, login_token, post_login
from lxml import html as lxml_html
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.config import Hierarchy, parse_hierarchy
from updatesync.console import create_console_app
from updatesync.roles import RoleContext, on_loopback, start_roles
from updatesync.roles.serving import BackgroundServer
from updatesync.security.pki import client_context, create_ca, issue_certificate
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

COOKIE = "updatesync_console"
"""The session's cookie."""
LOGIN_COOKIE = "updatesync_console_login"
"""The cookie of the login form's CSRF token."""
PAGES = ["/", "/sites/CS1", "/messages", "/alerts", "/timeline", "/logs"]
FRAGMENTS = ["/fragments/hierarchy", "/fragments/sites/CS1", "/fragments/timeline"]


@dataclass
class Running:
    url: str
    """The console over plain HTTP."""
    tls_url: str
    """The same hierarchy's console over HTTPS."""
    ca: Path
    provider: str
    admin: dict[str, str]
    log: Path
    admin_token_file: Path
    hierarchy: Hierarchy
    auth: httpx.Auth

    def user(self, name: str, role: str, *, tls: bool = False) -> SignedIn:
        url = self.tls_url if tls else self.url
        verify = client_context(self.ca) if tls else True
        return console_user(url, self.provider, self.admin, name, role, verify=verify)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("login")
    hierarchy, socks = on_loopback(parse_hierarchy(ONE_SITE.format(data=root / "data")))
    context = RoleContext(hierarchy, b"s" * 32)
    create_ca(root / "pki")
    cert, key = issue_certificate(root / "pki", "console.contoso.com", ["127.0.0.1"])
    roles = start_roles(context, ["site:CS1"], socks=socks)
    try:
        token = (root / "data" / "CS1" / "admin.token").read_text(encoding="utf-8").strip()
        with (
            BackgroundServer(create_console_app(hierarchy, auth=context.auth("console"))) as plain,
            BackgroundServer(
                create_console_app(hierarchy, auth=context.auth("console")),
                ssl_certfile=cert,
                ssl_keyfile=key,
            ) as tls,
        ):
            yield Running(
                plain.url,
                tls.url,
                root / "pki" / "ca.pem",
                hierarchy.top.url,
                {"authorization": f"Bearer {token}"},
                root / "data" / "CS1" / "logs" / PROVIDER_LOG,
                root / "data" / "CS1" / "admin.token",
                hierarchy,
                context.auth("console"),
            )
    finally:
        for role in roles:
            role.stop()


def sync_nows(log: Path) -> int:
    """How many SyncNow calls CS1's SMS Provider took."""
    return log.read_text(encoding="utf-8").count(SYNC_NOW_LOG_LINE) if log.exists() else 0


def login_form(url: str, user: str, password: str, **extra: str) -> httpx.Response:
    """A new browser opens the login page and sends its form."""
    with httpx.Client(timeout=30) as browser:
        return post_login(browser, url, {"user": user, "password": password, **extra})


def session_cookie(answer: httpx.Response) -> str | None:
    """The session cookie an answer sets (`Set-Cookie: updatesync_console=...`), if any."""
    found = [c for c in answer.headers.get_list("set-cookie") if c.startswith(COOKIE + "=")]
    return found[0] if found else None


@pytest.mark.parametrize("path", [*PAGES, "/sites/XX9", "/messages?site=CS1&limit=3"])
def test_every_page_sends_a_browser_to_the_login_page_without_a_session(
    running: Running, path: str
) -> None:
    """Finding: every page was shown to anyone who reached the console."""
    answer = httpx.get(running.url + path, timeout=30)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")
    assert "CS1" not in answer.text
    form = httpx.get(running.url + answer.headers["location"], timeout=30)
    assert form.status_code == 200
    tree = lxml_html.fromstring(form.text)
    assert tree.xpath("//form[@action='/login']//input[@name='password' and @type='password']")
    assert not tree.xpath("//nav")  # nothing of the hierarchy before signing in


@pytest.mark.parametrize(
    ("method", "path"),
    [*(("GET", f) for f in FRAGMENTS), ("POST", "/sync"), ("POST", "/logs"), ("POST", "/logout")],
)
def test_a_fragment_or_a_post_without_a_session_gets_401(
    running: Running, method: str, path: str
) -> None:
    before = sync_nows(running.log)
    answer = httpx.request(
        method, running.url + path, data={"full": "1"}, headers={"origin": running.url}
    )
    assert answer.status_code == 401
    assert "Sign in" in answer.text
    assert sync_nows(running.log) == before


def test_the_right_password_goes_on_to_the_page_asked_for_and_names_the_user(
    running: Running,
) -> None:
    password = add_user(running.provider, running.admin, "ann", "Software Update Manager")
    with httpx.Client(timeout=30) as browser:
        sent = browser.get(running.url + "/messages?site=CS1")
        answer = post_login(
            browser,
            running.url,
            {"user": "Ann", "password": password, "next": "/messages?site=CS1"},
        )
        assert sent.headers["location"] == "/login?next=/messages%3Fsite%3DCS1"
        assert answer.status_code == 303
        assert answer.headers["location"] == "/messages?site=CS1"
        for path in PAGES:
            page = browser.get(running.url + path)
            assert page.status_code == 200, path
            who = lxml_html.fromstring(page.text).xpath("//header//*[@data-user]")[0]
            assert who.get("data-user") == "ann"
            assert "Signed in as ann (Software Update Manager)" in " ".join(
                who.text_content().split()
            )
        assert browser.get(running.url + "/fragments/hierarchy").status_code == 200


def test_next_is_only_a_path_of_the_console(running: Running) -> None:
    password = add_user(running.provider, running.admin, "nat", "Read-only Analyst")
    for elsewhere in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        answer = login_form(running.url, "nat", password, next=elsewhere)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/"


def test_a_wrong_password_shows_the_form_again_with_401_and_no_cookie(
    running: Running,
) -> None:
    add_user(running.provider, running.admin, "bob", "Full Administrator")
    with httpx.Client(timeout=30) as browser:  # one browser: its form's token stays the same
        wrong = post_login(browser, running.url, {"user": "bob", "password": "not it at all"})
        unknown = post_login(browser, running.url, {"user": "nobody", "password": "not it at all"})
    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert "set-cookie" not in answer.headers
        assert "wrong user name or password" in answer.text
        assert lxml_html.fromstring(answer.text).xpath("//form[@action='/login']")
    # nothing says which of the two was wrong
    assert wrong.text.replace("bob", "nobody") == unknown.text


def test_a_read_only_analyst_sees_no_sync_button_and_cannot_sync(running: Running) -> None:
    analyst = running.user("rita", "Read-only Analyst")
    try:
        tree = lxml_html.fromstring(analyst.get("/").text)
        assert not tree.xpath("//form[@action='/sync']")
        assert not tree.xpath("//button[contains(., 'Synchroni')]")
        before = sync_nows(running.log)
        answer = analyst.post_form("/sync", {"full": "1"})
        assert answer.status_code == 403
        assert "rita (Read-only Analyst) cannot start a sync" in answer.text
        assert sync_nows(running.log) == before
    finally:
        analyst.close()


def test_a_software_update_managers_sync_with_the_csrf_token_reaches_the_top_level_site(
    running: Running,
) -> None:
    manager = running.user("sue", "Software Update Manager")
    try:
        tree = lxml_html.fromstring(manager.get("/").text)
        form = tree.xpath("//form[@action='/sync']")[0]
        assert form.xpath(".//input[@name='csrf']/@value") == [manager.csrf]
        before = sync_nows(running.log)
        answer = manager.post_form("/sync", {"full": "0"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/?requested=delta"
        assert sync_nows(running.log) == before + 1
    finally:
        manager.close()


@pytest.mark.parametrize(
    ("path", "data", "files"),
    [
        pytest.param("/sync", {"full": "1"}, None, id="sync"),
        pytest.param("/logout", {}, None, id="logout"),
        pytest.param("/logs", {}, {"logs": ("WSyncMgr.log", b"x", "text/plain")}, id="logs"),
    ],
)
@pytest.mark.parametrize("csrf", [None, "wrong-token"], ids=["no-token", "wrong-token"])
def test_a_form_without_the_sessions_csrf_token_is_refused(
    running: Running,
    path: str,
    data: dict[str, str],
    files: dict[str, tuple[str, bytes, str]] | None,
    csrf: str | None,
) -> None:
    """The Origin check alone trusts every page of the console's own origin; a form must
    also carry its session's CSRF token."""
    admin = running.user("carl", "Full Administrator")
    try:
        before = sync_nows(running.log)
        sent = data | ({"csrf": csrf} if csrf else {})
        answer = admin.client.post(
            admin.url + path, data=sent, files=files, headers=admin.same_origin()
        )
        assert answer.status_code == 403
        assert "CSRF token" in answer.text
        assert sync_nows(running.log) == before
        assert admin.get("/").status_code == 200  # still signed in
    finally:
        admin.close()


def test_signing_out_ends_the_session_here_and_at_the_provider(running: Running) -> None:
    user = running.user("olga", "Read-only Analyst")
    try:
        cookie = user.client.cookies["updatesync_console"]
        answer = user.post_form("/logout")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login"
        assert "Max-Age=0" in answer.headers["set-cookie"]
        # The old cookie, sent again, opens nothing.
        again = httpx.get(running.url + "/", cookies={"updatesync_console": cookie})
        assert again.status_code == 303
        assert again.headers["location"].startswith("/login")
        assert "User olga signed in" in running.log.read_text(encoding="utf-8")
    finally:
        user.close()


def test_the_session_cookie_is_httponly_samesite_strict_and_secure_over_https(
    running: Running,
) -> None:
    password = add_user(running.provider, running.admin, "tess", "Read-only Analyst")
    plain = login_form(running.url, "tess", password)
    with httpx.Client(verify=client_context(running.ca), timeout=30) as browser:
        tls = post_login(browser, running.tls_url, {"user": "tess", "password": password})
        assert browser.get(running.tls_url + "/").status_code == 200
    for answer, secure in ((plain, False), (tls, True)):
        assert answer.status_code == 303
        cookie = session_cookie(answer)
        assert cookie is not None
        attributes = [a.strip() for a in cookie.split(";")]
        assert attributes[0].startswith("updatesync_console=")
        assert "HttpOnly" in attributes
        assert "SameSite=Strict" in attributes
        assert "Path=/" in attributes
        assert ("Secure" in attributes) is secure


def test_the_sixth_wrong_password_in_a_minute_gets_429(running: Running) -> None:
    password = add_user(running.provider, running.admin, "walt", "Read-only Analyst")
    answers = [login_form(running.url, "walt", f"wrong password {n}") for n in range(6)]
    assert [a.status_code for a in answers] == [401] * 5 + [429]
    assert "Too many failed sign-ins" in answers[-1].text
    # Now even the right password waits out the minute; another user is not held back.
    assert login_form(running.url, "walt", password).status_code == 429
    other = add_user(running.provider, running.admin, "wanda", "Read-only Analyst")
    assert login_form(running.url, "wanda", other).status_code == 303


def test_a_login_form_posted_from_another_site_is_refused(running: Running) -> None:
    password = add_user(running.provider, running.admin, "vic", "Read-only Analyst")
    with httpx.Client(timeout=30) as browser:
        token = login_token(browser, running.url)  # even with the form's token and cookie
        answer = browser.post(
            running.url + "/login",
            data={"user": "vic", "password": password, "csrf": token},
            headers={"origin": "http://evil.example"},
        )
    assert answer.status_code == 403
    assert session_cookie(answer) is None


@pytest.mark.parametrize("sent", ["none", "wrong", "another-browsers"])
def test_a_login_form_without_its_csrf_token_is_refused(running: Running, sent: str) -> None:
    """Item 2 ("CSRF token on every form"): the login form carries one too. A sign-in
    posted from the console's own origin, with the right password, but without the token of
    the form this browser was given (none, a made-up one, or one given to another browser)
    gets the console's refusal page, 403, and no session."""
    password = add_user(running.provider, running.admin, "xena", "Full Administrator")
    with httpx.Client(timeout=30) as other, httpx.Client(timeout=30) as browser:
        own = login_token(browser, running.url)
        tokens = {"none": None, "wrong": "x" * len(own), "another-browsers": None}
        if sent == "another-browsers":
            tokens[sent] = login_token(other, running.url)
        token = tokens[sent]
        answer = browser.post(
            running.url + "/login",
            data={"user": "xena", "password": password} | ({"csrf": token} if token else {}),
            headers={"origin": running.url, "sec-fetch-site": "same-origin"},
        )
        assert answer.status_code == 403
        assert session_cookie(answer) is None
        assert "Refused" in answer.text and "CSRF token" in answer.text
        assert browser.get(running.url + "/").status_code == 303  # not signed in
        # The same browser, with its own form's token, signs in.
        right = browser.post(
            running.url + "/login",
            data={"user": "xena", "password": password, "csrf": own},
            headers={"origin": running.url, "sec-fetch-site": "same-origin"},
        )
        assert right.status_code == 303 and session_cookie(right) is not None


def test_the_login_forms_token_cookie_is_httponly_samesite_strict_and_secure_over_https(
    running: Running,
) -> None:
    """The login form's CSRF token is also in a short-lived cookie of its own, which the
    browser sends back with the form; it is gone once signed in."""
    password = add_user(running.provider, running.admin, "yann", "Read-only Analyst")
    for url, secure in ((running.url, False), (running.tls_url, True)):
        verify = client_context(running.ca) if secure else True
        with httpx.Client(timeout=30, verify=verify) as browser:
            page = browser.get(url + "/login")
            token = lxml_html.fromstring(page.text).xpath(
                "//form[@action='/login']//input[@type='hidden' and @name='csrf']/@value"
            )
            (cookie,) = page.headers.get_list("set-cookie")
            attributes = [a.strip() for a in cookie.split(";")]
            assert attributes[0] == f"{LOGIN_COOKIE}={token[0]}"
            assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(attributes)
            assert ("Secure" in attributes) is secure
            assert any(a.startswith("Max-Age=") and 0 < int(a[8:]) <= 3600 for a in attributes)
            signed_in = browser.post(
                url + "/login",
                data={"user": "yann", "password": password, "csrf": token[0]},
                headers={"origin": url, "sec-fetch-site": "same-origin"},
            )
            assert signed_in.status_code == 303
            assert LOGIN_COOKIE not in browser.cookies


def test_sign_in_through_the_helper_over_https(running: Running) -> None:
    user = running.user("hana", "Full Administrator", tls=True)
    try:
        assert user.get("/").status_code == 200
    finally:
        user.close()


def test_the_first_administrator_is_given_a_password_and_signs_in(
    running: Running, tmp_path: Path
) -> None:
    """Item 2: the first Full Administrator, admin, is made with a token and no password;
    `updatesync user password admin` gives it one, and it signs in to the console."""
    password = "the administrator's long password"
    (tmp_path / "password").write_text(password + "\n", encoding="utf-8")
    before = login_form(running.url, "admin", password)
    result = CliRunner().invoke(
        app,
        [
            "user", "password", "admin", "--password-file", str(tmp_path / "password"),
            "--provider", running.provider, "--token-file", str(running.admin_token_file),
        ],
    )  # fmt: skip
    after = login_form(running.url, "admin", password)
    assert before.status_code == 401
    assert result.exit_code == 0, result.output
    assert "set the password of user admin (Full Administrator)" in result.stdout
    assert after.status_code == 303
    assert password not in running.log.read_text(encoding="utf-8")


def test_signing_in_while_the_top_level_site_is_down_says_so(tmp_path: Path) -> None:
    hierarchy, socks = on_loopback(parse_hierarchy(ONE_SITE.format(data=tmp_path / "data")))
    for sock in socks.values():
        sock.close()  # nothing listens at CS1's address
    with BackgroundServer(create_console_app(hierarchy, timeout=3)) as console:
        answer = login_form(console.url, "ann", "a long enough password")
    assert answer.status_code == 502
    assert "set-cookie" not in answer.headers
    assert f"the SMS Provider of the top-level site CS1 at {hierarchy.top.url}" in answer.text


def test_a_user_removed_at_the_provider_is_signed_out_of_the_console(running: Running) -> None:
    """The console asks the SMS Provider about a session again (here at once, `recheck_seconds
    = 0`; a minute by default): once the user is removed there, the next page sends the
    browser to the login page and the session is gone."""
    app = create_console_app(running.hierarchy, auth=running.auth, recheck_seconds=0)
    with BackgroundServer(app) as console:
        password = add_user(running.provider, running.admin, "rita", "Read-only Analyst")
        with httpx.Client(timeout=30) as browser:
            signed_in = post_login(browser, console.url, {"user": "rita", "password": password})
            assert signed_in.status_code == 303
            assert browser.get(console.url + "/").status_code == 200
            assert browser.get(console.url + "/messages").status_code == 200  # asked: known
            removed = httpx.delete(
                f"{running.provider}/api/users/rita", headers=running.admin, timeout=30
            )
            assert removed.status_code == 200
            gone = browser.get(console.url + "/")
            assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
            assert browser.get(console.url + "/alerts").status_code == 303
