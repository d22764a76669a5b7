"""TLS on every link (issue 11, item 1; and item 10's wrong certificate path).

Finding: every role spoke plain HTTP; anyone on the path could read and change a sync, and
pose as a site or SUP. With `[hierarchy.tls]` every site and SUP serves HTTPS only, and every
call between roles verifies the peer against the hierarchy's CA. Each test runs real roles
(or a real server) over real sockets.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner
from upstream import stand_in_upstream

from updatesync.cli import app
from updatesync.config import Hierarchy, load_hierarchy
from updatesync.logs.runs import SyncRun
from updatesync.logs.tracker import track_paths
from updatesync.metadata.generator import generate_catalog
from updatesync.roles import (
    ConsoleRole,
    RoleContext,
    SiteRole,
    SupRole,
    on_loopback,
    parse_role,
    start_roles,
)
from updatesync.roles.context import Role, RoleError
from updatesync.roles.serving import BackgroundServer
from updatesync.roles.supervisor import updatesync_command
from updatesync.security.access import read_token_file
from updatesync.security.pki import client_context, create_ca, issue_certificate, server_files
from updatesync.security.signing import HmacAuth, create_secret, load_secret
from updatesync.wsusss.client import UpstreamClient

SUP = "cs1site.contoso.com"
WAIT = 60.0


def hierarchy_file(root: Path, upstream: str, *, sup_keys: str = "") -> Path:
    file = root / "hierarchy.toml"
    file.write_text(
        f"""
[hierarchy]
name = "TLS"
data_dir = "data"
schedule = "36500d"

[hierarchy.upstream]
kind = "wsus"
url = "{upstream}"

[hierarchy.tls]
ca = "pki/ca.pem"

[[sites]]
code = "CS1"
fqdn = "{SUP}"
type = "cas"
address = "127.0.0.1"

[[sites.sups]]
fqdn = "{SUP}"
address = "127.0.0.1"
{sup_keys}
""",
        encoding="utf-8",
    )
    return file


def pki(root: Path, *hosts: str, ips: tuple[str, ...] = ("127.0.0.1",)) -> Path:
    create_ca(root)
    for host in hosts:
        issue_certificate(root, host, ips)
    return root / "ca.pem"


@contextmanager
def running(hierarchy: Hierarchy, names: list[str] | None = None) -> Iterator[list[Role]]:
    """Every role of `hierarchy` (or those named) on loopback, in this process."""
    hierarchy, socks = on_loopback(hierarchy)
    create_secret(hierarchy.secret_path)
    context = RoleContext(hierarchy, load_secret(hierarchy.secret_path))
    roles = start_roles(context, names or parse_role(hierarchy, "all"), socks=socks)
    try:
        yield roles
    finally:
        for role in reversed(roles):
            role.stop()
        for sock in socks.values():
            sock.close()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("upstream")
    with stand_in_upstream(root, generate_catalog(40, seed=5)) as (_store, server):
        yield server.url


def _admin(site: SiteRole) -> dict[str, str]:
    """The Full Administrator's header: the token the top-level site wrote at its start."""
    return {"authorization": f"Bearer {read_token_file(site.admin_token_file)}"}


def test_a_site_and_its_sup_sync_over_https_verified_by_the_hierarchy_ca(
    tmp_path: Path, upstream: str
) -> None:
    """Item 1: a site and its SUP with TLS on complete a sync, every call over HTTPS."""
    ca = pki(tmp_path / "pki", SUP)
    hierarchy = load_hierarchy(hierarchy_file(tmp_path, upstream))
    with running(hierarchy) as roles:
        sup, site = roles
        assert isinstance(site, SiteRole) and isinstance(sup, SupRole)
        assert site.url.startswith("https://127.0.0.1:") and sup.url.startswith("https://")
        answer = httpx.post(
            f"{site.url}/api/sites/CS1/sync",
            json={"full": False},
            headers=_admin(site),
            verify=client_context(ca),
        )
        assert answer.status_code == 202
        assert site.wait_for_sync(1, WAIT)
        result = site.results[-1]
        assert result.succeeded, result.error
        assert site.db.content.ci_count() > 0


def test_plain_http_to_a_tls_role_gets_no_answer(tmp_path: Path, upstream: str) -> None:
    """Item 1: a role with TLS on serves HTTPS only; plain HTTP to its port fails."""
    pki(tmp_path / "pki", SUP)
    hierarchy = load_hierarchy(hierarchy_file(tmp_path, upstream))
    with running(hierarchy, ["sup:" + SUP]) as (sup,):
        plain = sup.url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.get(plain + "/api/status", timeout=10)


def test_a_client_trusting_another_ca_is_refused(tmp_path: Path, upstream: str) -> None:
    """Item 1: peers are verified; a client that does not trust the hierarchy's CA (or a
    server whose certificate another CA issued) is refused before any request is sent."""
    pki(tmp_path / "pki", SUP)
    other = pki(tmp_path / "other", SUP)
    hierarchy = load_hierarchy(hierarchy_file(tmp_path, upstream))
    with running(hierarchy, ["sup:" + SUP]) as (sup,):
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(sup.url + "/api/status", verify=client_context(other), timeout=10)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(sup.url + "/api/status", timeout=10)  # the system's trust store


def test_a_site_refuses_an_impostor_sup(tmp_path: Path, upstream: str) -> None:
    """Item 1: a SUP whose certificate the hierarchy's CA did not issue (an impostor at the
    SUP's address) gets no call from its site: the site's WSUS configuration manager cannot
    connect to it (WCM.log names the certificate), so the sync refuses the SUP it did not
    configure, as WSyncMgr.log says it."""
    pki(tmp_path / "pki", SUP)
    pki(tmp_path / "impostor", SUP)
    hierarchy = load_hierarchy(hierarchy_file(tmp_path, upstream))
    top = hierarchy.top
    impostor = replace(
        top.sups[0],
        cert=tmp_path / "impostor" / f"{SUP}.pem",
        key=tmp_path / "impostor" / f"{SUP}.key",
    )
    forged = replace(hierarchy, sites=(replace(top, sups=(impostor,)),))
    with running(forged) as roles:
        site = roles[-1]
        assert isinstance(site, SiteRole)
        httpx.post(
            f"{site.url}/api/sites/CS1/sync",
            json={"full": False},
            headers=_admin(site),
            verify=client_context(tmp_path / "pki" / "ca.pem"),
        ).raise_for_status()
        assert site.wait_for_sync(1, WAIT)
        result = site.results[-1]
        assert not result.succeeded
        assert (result.error or "").startswith("WSUS server not configured.")
        trust = "Could not establish trust relationship for the SSL/TLS secure channel."
        state = site.db.wsus.state(SUP)
        assert state is not None and trust in (state.last_error or "")
        assert state.last_error_code == 0x80072F8F  # ERROR_WINHTTP_SECURE_FAILURE
        wcm = (site.log_dir / "WCM.log").read_text(encoding="utf-8")
        assert f"System.Net.WebException: The underlying connection was closed: {trust}" in wcm
        assert "Setting new configuration state to 3 (WSUS_CONFIG_FAILED)" in wcm
        # the log tracker links the sync's failure to the configuration failure behind it
        runs = track_paths([site.log_dir])
        [sync] = [r for r in runs if isinstance(r, SyncRun)]
        assert sync.site == "CS1" and sync.configuration_failure is not None
        cause = sync.configuration_failure["error"]["message"]
        assert trust.rstrip(".") in cause


def test_a_certificate_for_another_host_name_is_refused(tmp_path: Path) -> None:
    """Item 1: host names are checked: a certificate the CA issued for another host (and not
    for 127.0.0.1) is refused at 127.0.0.1."""
    ca = pki(tmp_path / "pki", "other.contoso.com", ips=())
    cert, key = (
        tmp_path / "pki" / "other.contoso.com.pem",
        tmp_path / "pki" / "other.contoso.com.key",
    )

    async def hello(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hello"})

    with BackgroundServer(hello, ssl_certfile=cert, ssl_keyfile=key) as server:
        assert server.url.startswith("https://")
        with pytest.raises(httpx.ConnectError, match=r"mismatch|doesn't match|not valid for"):
            httpx.get(server.url + "/", verify=client_context(ca), timeout=10)


def test_the_plain_http_port_serves_only_the_protocol(tmp_path: Path, upstream: str) -> None:
    """Item 1: where the file asks (`http_port`), a SUP also serves MS-WSUSSS over plain HTTP
    for downstream servers that need it; its admin API stays on HTTPS only."""
    ca = pki(tmp_path / "pki", SUP)
    file = hierarchy_file(tmp_path, upstream, sup_keys="http_port = 8530")
    hierarchy = load_hierarchy(file)
    with running(hierarchy, ["sup:" + SUP]) as (sup,):
        assert isinstance(sup, SupRole)
        assert sup.http_url.startswith("http://127.0.0.1:")
        with UpstreamClient(sup.http_url, retries=0) as client:
            assert client.get_auth_config().last_change  # MS-WSUSSS answers on plain HTTP
        secret = load_secret(sup.context.hierarchy.secret_path)
        signed = HmacAuth(secret, "CS1")
        plain = httpx.get(sup.http_url + "/api/status", auth=signed, timeout=10)
        assert plain.status_code != 200
        assert "revisions" not in plain.text
        tls = httpx.get(sup.url + "/api/status", auth=signed, verify=client_context(ca))
        assert tls.status_code == 200
        assert "revisions" in tls.json()


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _joined(text: str) -> str:
    """Without any white space: a long path the terminal folded is whole again."""
    return re.sub(r"\s+", "", text)


def test_a_missing_certificate_is_one_error_naming_the_file_and_the_key(
    tmp_path: Path, upstream: str
) -> None:
    """Item 10: a wrong certificate path gives one error naming the file, the key of the
    hierarchy file and the command that issues one; exit 1, no traceback."""
    create_ca(tmp_path / "pki")  # the CA, but no certificate for the SUP
    file = hierarchy_file(tmp_path, upstream, sup_keys='cert = "certs/sup.pem"\nkey = "x.key"')
    create_secret(tmp_path / "data" / "hierarchy.secret")
    result = CliRunner().invoke(app, ["serve", str(file), "--role", f"sup:{SUP}"])
    assert result.exit_code == 1
    said = _squeezed(result.output)
    assert "Traceback" not in result.output
    assert said.startswith("error: sup:cs1site.contoso.com: the certificate ")
    assert str(tmp_path / "certs" / "sup.pem") in _joined(result.output)
    assert "does not exist" in said
    assert f"cert and key of [[sites.sups]] fqdn = '{SUP}'" in said
    assert f"updatesync pki issue DIR --host {SUP}" in said


def test_a_missing_ca_bundle_is_one_error_naming_it(tmp_path: Path, upstream: str) -> None:
    """Item 10: the CA bundle named by `[hierarchy.tls] ca` is missing: one error."""
    file = hierarchy_file(tmp_path, upstream)
    create_secret(tmp_path / "data" / "hierarchy.secret")
    result = CliRunner().invoke(app, ["serve", str(file), "--role", "site:CS1"])
    assert result.exit_code == 1
    said = _squeezed(result.output)
    assert "Traceback" not in result.output
    assert said.startswith("error: ")
    assert "[hierarchy.tls]" in said
    assert str(tmp_path / "pki" / "ca.pem") in _joined(result.output)
    assert "does not exist" in said
    assert "updatesync pki init" in said


def test_a_standalone_update_server_serves_https_with_cert_and_key(tmp_path: Path) -> None:
    """Item 1: `updatesync updateserver serve --cert --key` serves MS-WSUSSS and its admin
    API over HTTPS only (WSUS: 8531), verified by the CA that issued its certificate; one
    of the two options alone is one error line."""
    ca = pki(tmp_path / "pki", "wsus.contoso.com")
    cert, key = server_files(tmp_path / "pki", "wsus.contoso.com")
    data = tmp_path / "server"
    command = [*updatesync_command(), "updateserver", "serve", "--data", str(data), "--port", "0"]
    alone = subprocess.run(
        [*command, "--cert", str(cert)], capture_output=True, text=True, timeout=120
    )
    assert alone.returncode == 2 and alone.stderr.startswith("error: --cert and --key go")
    process = subprocess.Popen(
        [*command, "--cert", str(cert), "--key", str(key)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert process.stdout is not None
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "admin API's token" in line:
                break
        found = re.search(r"listening on (https://\S+):", "".join(lines))
        assert found, "".join(lines)
        url = found.group(1)
        token = (data / "admin.token").read_text().strip()
        status = httpx.get(
            f"{url}/api/status",
            headers={"authorization": f"Bearer {token}"},
            verify=client_context(ca),
            timeout=30,
        )
        assert status.status_code == 200 and "revisions" in status.json()
        plain = url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{plain}/api/status", timeout=10)
    finally:
        process.terminate()
        process.wait(30)


def test_the_web_console_serves_https_with_its_own_certificate(
    tmp_path: Path, upstream: str
) -> None:
    """Item 1: the console is a role too: with TLS on it serves HTTPS only, with
    `console.pem`/`console.key` of `[hierarchy.tls] dir` (`pki issue --name console`); without
    them it does not start, and says which files and how to issue them."""
    ca = pki(tmp_path / "pki", SUP)
    hierarchy = load_hierarchy(hierarchy_file(tmp_path, upstream))
    context = RoleContext(hierarchy, b"s" * 40)
    with pytest.raises(RoleError) as missing:
        ConsoleRole(context).start()
    said = " ".join(str(missing.value).split())
    assert said.startswith("console: the certificate ") and "console.pem" in said
    assert "--name console" in said

    issue_certificate(tmp_path / "pki", "localhost", ["127.0.0.1"], file_name="console")
    with ConsoleRole(context) as console:
        assert console.url.startswith("https://127.0.0.1:")
        login = httpx.get(f"{console.url}/login", verify=client_context(ca), timeout=30)
        assert login.status_code == 200 and "Sign in" in login.text
        with pytest.raises(httpx.HTTPError):
            httpx.get(console.url.replace("https://", "http://") + "/login", timeout=10)
