"""Replay-proof site links (issue "Secure by default", item 5), against real running roles
over real sockets: a software update point's admin API and a site server's site-to-site
routes.

Findings covered (each failed on the code as it was):
- a replayed signed `POST /api/sync` to a SUP's admin API was accepted for 300 s and
  started a second sync (no nonce);
- the host was not signed: a request signed for one role was accepted by another;
- any caller name worked with the secret;
- a timestamp up to 300 s in the future was accepted only by luck of the skew check:
  checked both ways here (301 s ahead is refused).
And item 5's key rotation: both secrets accepted while a rotation goes on, the old one
refused once it is finished.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from upstream import stand_in_upstream

from updatesync.config import Hierarchy, load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.logs.cmtrace import read_cmtrace
from updatesync.logs.softwaredistribution import read_softwaredistribution
from updatesync.metadata.generator import generate_catalog
from updatesync.roles import RoleContext, SiteRole, SupRole, on_loopback
from updatesync.roles.site import HELLO_PATH
from updatesync.security.shared_secret import (
    create_secret,
    finish_rotation,
    load_secret,
    rotate_secret,
)
from updatesync.security.signing import HmacAuth

SUP = "cs1site.contoso.com"


@dataclass
class Running:
    hierarchy: Hierarchy
    secret: bytes
    sup: SupRole
    site: SiteRole

    def signed(self, method: str, url: str, caller: str = "CS1", **kwargs) -> httpx.Request:
        """A request signed as `caller`, not sent: it can then be sent (and sent again)."""
        request = httpx.Request(method, url, **kwargs)
        return HmacAuth(self.secret, caller).sign(request, self.secret)

    def sync_state(self) -> dict:
        auth = HmacAuth(self.secret, "CS1")
        return httpx.get(self.sup.url + "/api/sync", auth=auth, timeout=30).json()

    def sup_log(self) -> list[str]:
        path = self.sup.data / "logs" / "SoftwareDistribution.log"
        return [entry.message for entry in read_softwaredistribution(path)]

    def site_log(self) -> list[str]:
        return [e.message for e in read_cmtrace(self.site.log_dir / "replmgr.log")]


def _placed(tmp_path: Path) -> tuple[Hierarchy, dict]:
    loaded = load_hierarchy(example_hierarchy())
    hierarchy = replace(loaded, data_dir=tmp_path / "data", secret_file=tmp_path / "secret")
    return on_loopback(hierarchy)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """CS1's default SUP (syncing from a stand-in upstream) and the site server PS1."""
    root = tmp_path_factory.mktemp("links")
    with stand_in_upstream(root, generate_catalog(40, seed=11)) as (_store, upstream):
        placed, socks = _placed(root)
        context = RoleContext(placed, create_secret(placed.secret_path), upstream_url=upstream.url)
        sup = SupRole(context, SUP, sock=socks.pop(f"sup:{SUP}")).start()
        site = SiteRole(context, "PS1", sock=socks.pop("site:PS1")).start()
        for sock in socks.values():
            sock.close()
        try:
            yield Running(placed, context.secret, sup, site)
        finally:
            site.stop()
            sup.stop()


def _wait_idle(running: Running) -> dict:
    state = running.sync_state()
    deadline = time.monotonic() + 120
    while state["running"] and time.monotonic() < deadline:
        state = httpx.get(
            running.sup.url + "/api/sync",
            params={"version": state["version"], "wait": 30},
            auth=HmacAuth(running.secret, "CS1"),
            timeout=60,
        ).json()
    assert not state["running"], state
    return state


def test_a_replayed_sync_request_is_refused_and_starts_no_second_sync(running: Running) -> None:
    request = running.signed("POST", running.sup.url + "/api/sync", json={})
    with httpx.Client(timeout=30) as client:
        first = client.send(request)
        assert first.status_code == 202, first.text
        done = _wait_idle(running)
        replayed = client.send(request)
    assert replayed.status_code == 401
    assert "already received" in replayed.json()["error"]
    assert "replay" in replayed.json()["error"]
    after = running.sync_state()
    assert not after["running"]
    assert (after["started_at"], after["version"]) == (done["started_at"], done["version"])
    assert any("Refused POST /api/sync" in m and "already received" in m for m in running.sup_log())


@pytest.mark.parametrize("part", ["body", "path", "query", "host", "method"])
def test_an_altered_request_is_refused(running: Running, part: str) -> None:
    """A request captured on its way and sent with one part changed: never accepted."""
    url = running.sup.url + "/api/sync"
    request = running.signed("POST", url, json={"full": False})
    headers = dict(request.headers)
    content = request.content
    method, target = "POST", url
    if part == "body":
        content = b'{"full": true}'
        headers["content-length"] = str(len(content))
    elif part == "path":
        target = running.sup.url + "/api/sync/"
    elif part == "query":
        target = url + "?full=1"
    elif part == "host":
        headers["host"] = f"localhost:{running.sup.url.rsplit(':', 1)[1]}"
    else:
        method = "PUT"
    before = running.sync_state()
    answer = httpx.request(method, target, headers=headers, content=content, timeout=30)
    assert answer.status_code == 401, answer.text
    assert "altered" in answer.json()["error"]
    assert running.sync_state()["version"] == before["version"]


def test_a_request_signed_for_another_role_is_refused(running: Running) -> None:
    """Signed for the site server PS1 (its host and port), sent to the SUP unchanged."""
    request = running.signed("GET", running.site.url + "/api/status")
    answer = httpx.get(running.sup.url + "/api/status", headers=dict(request.headers), timeout=30)
    assert answer.status_code == 401
    assert "meant for another server" in answer.json()["error"]


def test_a_timestamp_301_s_in_the_future_is_refused(running: Running) -> None:
    """The signed time is whole seconds: rounded up, it is at least 301 s ahead of the
    callee's clock when the callee reads it."""
    ahead = HmacAuth(running.secret, "CS1", clock=lambda: math.ceil(time.time()) + 301)
    answer = httpx.get(running.sup.url + "/api/status", auth=ahead, timeout=30)
    assert answer.status_code == 401
    assert "s in the future, beyond the 300 s allowed" in answer.json()["error"]


def test_an_unknown_caller_is_refused(running: Running) -> None:
    answer = httpx.get(
        running.sup.url + "/api/status", auth=HmacAuth(running.secret, "ZZ9"), timeout=30
    )
    assert answer.status_code == 401
    assert "'ZZ9' is not a site, software update point" in answer.json()["error"]
    known = httpx.get(
        running.sup.url + "/api/status", auth=HmacAuth(running.secret, SUP.upper()), timeout=30
    )
    assert known.status_code == 200


def test_a_replayed_site_to_site_call_is_refused_and_logged(running: Running) -> None:
    request = running.signed("POST", running.site.url + HELLO_PATH, caller="CS1")
    with httpx.Client(timeout=30) as client:
        assert client.send(request).status_code == 200
        replayed = client.send(request)
    assert replayed.status_code == 401
    assert "already received" in replayed.json()["error"]
    assert any(
        f"Refused POST {HELLO_PATH}" in line and "caller CS1" in line for line in running.site_log()
    )


def test_rotation_accepts_both_secrets_until_finished(tmp_path: Path) -> None:
    """`secret rotate`: the roles started from the rotated file accept a call signed with
    the old secret and one signed with the new; after `--finish`, the old one is refused."""
    placed, socks = _placed(tmp_path)
    for name, sock in socks.items():
        if name != f"sup:{SUP}":
            sock.close()
    old = create_secret(placed.secret_path)
    new = rotate_secret(placed.secret_path)
    url = ""
    sup = SupRole(
        RoleContext(placed, load_secret(placed.secret_path)), SUP, sock=socks[f"sup:{SUP}"]
    )
    with sup:
        url = sup.url
        for secret in (old, new):
            answer = httpx.get(url + "/api/status", auth=HmacAuth(secret, "CS1"), timeout=30)
            assert answer.status_code == 200, answer.text
    assert finish_rotation(placed.secret_path)
    with SupRole(RoleContext(placed, load_secret(placed.secret_path)), SUP):  # same port
        refused = httpx.get(url + "/api/status", auth=HmacAuth(old, "CS1"), timeout=30)
        accepted = httpx.get(url + "/api/status", auth=HmacAuth(new, "CS1"), timeout=30)
    assert refused.status_code == 401
    assert "does not hold" in refused.json()["error"]
    assert accepted.status_code == 200
