"""The acceptance of issue 11 ("Secure by default") on the demo, as a user would check it.

`updatesync demo --data D` runs as its own process and keeps serving after its two rounds
of syncs; on it:

- an unauthenticated `POST /api/sites/CS1/sync` gets 401;
- with `Authorization: Bearer $(cat D/admin.token)`, over HTTPS verified by `D/pki/ca.pem`,
  it gets 202;
- a Read-only Analyst's token (made with `updatesync user add` and `token new` through the
  provider) gets 403;
- no socket of the demo listens on 0.0.0.0 (or ::);
- a 200 MB POST is refused (413 or 401) with the process growing by less than 20 MB;
- README.md gives the web console's address as the demo serves it (`https://`).

The findings behind them: anyone who could reach a port could start a sync of the whole
hierarchy; roles listened on every interface; bodies were read whole before any check.
"""

from __future__ import annotations

import os
import re
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from big_bodies import GROWTH, MB, Peak, big_post
from sockets import listening

from updatesync.cli.serve import DEFAULT_CONSOLE_PORT
from updatesync.config import Hierarchy, load_hierarchy
from updatesync.roles.supervisor import ChildProcess, updatesync_command

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 300.0
"""Seconds the demo has for its two rounds before it serves."""
SOAP = "/ServerSyncWebService/ServerSyncWebService.asmx"
SERVING = re.compile(r"^serving; the web console at (https://\S+?)/, ", re.MULTILINE)
WIDE = "400"
"""Columns the demo prints to (its lines are not wrapped)."""


@dataclass
class Demo:
    process: ChildProcess
    data: Path
    hierarchy: Hierarchy
    console_url: str

    @property
    def ca(self) -> ssl.SSLContext:
        """The demo's CA, as a user gives it to curl (--cacert D/pki/ca.pem)."""
        return ssl.create_default_context(cafile=str(self.data / "pki" / "ca.pem"))

    @property
    def top(self) -> str:
        return self.hierarchy.top.url

    def updatesync(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*updatesync_command(), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "COLUMNS": WIDE},
        )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`updatesync demo --data D`, serving once it has printed `serving; ...`."""
    data = tmp_path_factory.mktemp("demo")
    command = [*updatesync_command(), "demo", "--data", str(data), "--updates", "300"]
    command += ["--port", "0", "--console-port", "0"]
    process = ChildProcess("demo", command, data.parent / f"{data.name}.out", SERVING)
    # Only the readiness probe goes unverified (the demo makes its CA as it starts); every
    # check below verifies the demo's certificates against D/pki/ca.pem.
    process.verify = False
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", WIDE)  # one line per line: the announcement is found whole
        process.start()
    try:
        console_url = process.wait_ready(time.monotonic() + START_TIMEOUT)
        yield Demo(process, data, load_hierarchy(data / "hierarchy.toml"), console_url)
    finally:
        process.stop()


def _sync(demo: Demo, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.post(
        f"{demo.top}/api/sites/CS1/sync",
        json={"full": False},
        headers=headers,
        verify=demo.ca,
        timeout=30,
    )


def test_a_sync_without_a_token_is_refused(demo: Demo) -> None:
    answer = _sync(demo, None)
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "admin.token" in answer.json()["detail"]  # says where a token is


def test_the_demo_prints_where_its_files_are_and_keeps_the_token_private(demo: Demo) -> None:
    said = demo.process.text()
    token = demo.data / "admin.token"
    assert f"the Full Administrator's API token, for the commands you run: {token}" in said
    assert str(demo.data / "pki" / "ca.pem") in said
    assert str(demo.data / "hierarchy.toml") in said
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(demo.data.stat().st_mode) == 0o700
    assert demo.top.startswith("https://127.0.0.1:")


def test_a_read_only_analyst_may_read_but_not_start_a_sync(demo: Demo, tmp_path: Path) -> None:
    """The analyst and its token are made with the CLI, through CS1's SMS Provider."""
    password = tmp_path / "password"
    password.write_text("a long enough password\n")
    common = ["--hierarchy", str(demo.data / "hierarchy.toml")]
    common += ["--token-file", str(demo.data / "admin.token")]
    added = demo.updatesync(
        "user", "add", "analyst", "--role", "Read-only Analyst", "--password-file",
        str(password), *common,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "added user analyst (Read-only Analyst)" in added.stdout
    made = demo.updatesync("token", "new", "analyst", *common)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("ust_")

    answer = _sync(demo, token)
    assert answer.status_code == 403, answer.text
    assert "Software Update Manager" in answer.json()["detail"]  # the role needed
    status = httpx.get(
        f"{demo.top}/api/sites/CS1/sync-status",
        headers={"authorization": f"Bearer {token}"},
        verify=demo.ca,
        timeout=30,
    )
    assert status.status_code == 200 and status.json()["SiteCode"] == "CS1"


def test_the_admin_token_starts_a_sync_over_verified_https(demo: Demo) -> None:
    """`curl --cacert D/pki/ca.pem -H "Authorization: Bearer $(cat D/admin.token)" ...`;
    then waits for the sync it started to reach every site, so that it leaves the demo as
    it was (the token works at every site's provider: users and tokens replicate)."""
    token = (demo.data / "admin.token").read_text().strip()
    bearer = {"authorization": f"Bearer {token}"}

    def syncs(site: str, **params: object) -> dict[str, object]:
        answer = httpx.get(
            f"{demo.hierarchy.site(site).url}/api/sites/{site}/syncs",
            params=params,
            headers=bearer,
            verify=demo.ca,
            timeout=90,
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    codes = [site.code for site in demo.hierarchy.sites]
    before = {code: int(str(syncs(code)["completed"])) for code in codes}
    answer = _sync(demo, token)
    assert answer.status_code == 202, answer.text
    assert answer.json()["SiteCode"] == "CS1"
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{demo.top}/api/whoami", verify=ssl.create_default_context(), timeout=30)
    for code in codes:
        done = syncs(code, after=before[code], wait=60)
        assert done["completed"] == before[code] + 1, (code, done)


def test_no_socket_of_the_demo_listens_on_every_interface(demo: Demo) -> None:
    bound = listening(demo.process.pid)
    roles = len(demo.hierarchy.sites) + sum(len(s.sups) for s in demo.hierarchy.sites)
    # every site and SUP, the console and the stand-in Microsoft Update
    assert len(bound) >= roles + 2, bound
    assert not [a for a in bound if a[0] in ("0.0.0.0", "::")], bound
    assert {address for address, _ in bound} == {"127.0.0.1"}, bound


def test_200_mb_posts_are_refused_and_the_demo_grows_by_less_than_20_mb(demo: Demo) -> None:
    sup = demo.hierarchy.top.sups[0].url
    targets = [
        (demo.top, "/api/sites/CS1/sync", {}),  # the SMS Provider
        (demo.top, "/site/v1/hello", {}),  # a signed site-to-site path
        (sup, SOAP, {"content-type": "text/xml"}),  # MS-WSUSSS
        (sup, "/api/sync", {}),  # the update server's admin API
        (demo.console_url, "/sync", {"origin": demo.console_url}),  # the console
    ]
    peak = Peak(demo.process.pid)
    for url, path, headers in targets:
        context = demo.ca if url.startswith("https:") else None
        for chunked in (False, True):
            status, text = big_post(url, path, chunked=chunked, headers=headers, context=context)
            assert status in (413, 401), (url, path, chunked, status, text)
    assert peak.growth() < GROWTH, f"the demo grew by {peak.growth() / MB:.1f} MB"
    assert demo.process.poll() is None
    assert httpx.get(f"{demo.top}/docs", verify=demo.ca, timeout=30).status_code == 200


def test_the_readme_gives_the_consoles_address_as_the_demo_serves_it(demo: Demo) -> None:
    """Audit: README.md sent the demo's user to `http://127.0.0.1:8450/` for the web console,
    which the demo serves over HTTPS only. The address the README gives has the scheme and
    host the demo prints, and the port the demo's console listens on by default; there a
    browser trusting the demo's CA gets the sign-in page."""
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    found = re.search(r"the web console on `([^`]+)`", readme)
    assert found is not None, "README.md no longer says where the demo's web console is"
    given, printed = urlsplit(found.group(1)), urlsplit(demo.console_url)
    assert (printed.scheme, printed.hostname) == ("https", "127.0.0.1")
    assert (given.scheme, given.hostname) == (printed.scheme, printed.hostname)
    assert given.port == DEFAULT_CONSOLE_PORT
    page = httpx.get(f"{demo.console_url}/login", verify=demo.ca, timeout=30)
    assert page.status_code == 200 and "Sign in" in page.text
