"""The article's hierarchy with every role in its own OS process, as in production.

Four site servers and five SUPs (`updatesync serve FILE --role ...`), each with its own
database, data folder and logs, and a stand-in upstream, all on loopback. PS1 reaches its
parent CS1 through a proxy of the test, which kills CS1's process in the middle of PS1's
database replication: once PS1 holds a first page of CS1's changes and asks for the next,
and CS1 has finished its sync. The tests share one hierarchy (module fixtures) and pass
alone and in any order: `first_sync` brings it through its first sync (with the cut) once
and keeps what each site held then; a test that syncs again counts from what it finds.

Every test runs twice: on the hierarchy with every site and SUP on SQLite (each role's file
in its data folder), and on the same hierarchy with every site's and SUP's database on
PostgreSQL (a database of its own each, the `database` key of the hierarchy file); the
stand-in upstream, outside the hierarchy, keeps SQLite. The `hierarchy` fixture is
parametrised at module scope, so pytest runs all the tests on one hierarchy, stops it, then
starts the other (one running at a time, whatever order pytest-randomly gives). Starting the
hierarchy and its first sync are most of the time, so the PostgreSQL half runs every test,
not only the first. Without a PostgreSQL server for the tests (UPDATESYNC_TEST_POSTGRESQL,
see tests/support/databases.py) the PostgreSQL half skips, saying so.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
from databases import KINDS, Databases, require_server
from hierarchy_inprocess import article_patterns, assert_in_order
from hierarchy_processes import ProcessHierarchy
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from updatesync.logs.cmtrace import read_cmtrace
from updatesync.roles.serving import BackgroundServer, bind
from updatesync.security.signing import (
    CALLER_HEADER,
    DIGEST_HEADER,
    KEY_HEADER,
    NONCE_HEADER,
    TIME_HEADER,
    HmacAuth,
)
from updatesync.site.database.engine import DATABASE_FILE as SITE_DATABASE_FILE
from updatesync.updateserver.database import DATABASE_FILE as STORE_DATABASE_FILE

SIGNING_HEADERS = {
    "authorization",
    CALLER_HEADER,
    TIME_HEADER,
    NONCE_HEADER,
    KEY_HEADER,
    DIGEST_HEADER,
}
"""What a signature puts in a request's headers."""

pytestmark = pytest.mark.slow

SITE_CODES = ("CS1", "PS1", "PS2", "SS1")
SUPS = (
    "cs1site.contoso.com",
    "ps1site.contoso.com",
    "ps1sys.contoso.com",
    "ps2site.contoso.com",
    "ss1site.contoso.com",
)


class CuttingProxy:
    """Forwards PS1's calls to CS1; once armed, the call after the first page of changes
    kills CS1's process and is answered 502, as a dead parent would leave it. The kill waits
    until CS1 has finished its first sync (a page of changes can come while it is still
    ending it), so CS1 dies with its sync and its notifications done, whatever the timing."""

    def __init__(self, hierarchy: ProcessHierarchy) -> None:
        self.hierarchy = hierarchy
        self.armed = True
        self.cut = threading.Event()
        self.pages_forwarded = 0
        self.sock = bind("127.0.0.1", 0)
        self.port = int(self.sock.getsockname()[1])
        app = Starlette(routes=[Route("/{path:path}", self.forward, methods=["GET", "POST"])])
        # The proxy is CS1 at another address: it serves CS1's certificate (valid at 127.0.0.1).
        cert, key = hierarchy.cert_of("cs1site.contoso.com")
        self.server = BackgroundServer(app, sock=self.sock, ssl_certfile=cert, ssl_keyfile=key)

    async def forward(self, request: Request) -> Response:
        path = request.url.path
        changes = path.endswith("/replication/changes")
        if changes and self.armed and self.pages_forwarded >= 1:
            self.armed = False
            await anyio.to_thread.run_sync(self.hierarchy.wait_syncs, "CS1", 1)
            await anyio.to_thread.run_sync(self.hierarchy.kill_role, "site:CS1")
            self.cut.set()
            return Response(b"parent gone", status_code=502)
        target = self.hierarchy.site_url("CS1") + path
        if request.url.query:
            target += "?" + request.url.query
        # A signature covers the address its caller addressed: the proxy, which holds the
        # hierarchy's secret, signs the call again for CS1, as the same caller.
        caller = request.headers.get(CALLER_HEADER)
        auth = self.hierarchy.signed(caller) if caller else None
        headers = {
            k: v
            for k, v in request.headers.items()
            if k != "host" and not (auth is not None and k in SIGNING_HEADERS)
        }
        try:
            async with httpx.AsyncClient(
                timeout=30, auth=auth, verify=self.hierarchy.verify
            ) as client:
                answer = await client.request(
                    request.method, target, headers=headers, content=await request.body()
                )
        except httpx.HTTPError as exc:
            return Response(str(exc).encode(), status_code=502)
        if changes and answer.status_code == 200:
            page = json.loads(answer.content)
            if page["last_seq"] > page["after"]:
                self.pages_forwarded += 1
        return Response(
            answer.content, status_code=answer.status_code, media_type="application/json"
        )


@pytest.fixture(scope="module", params=KINDS)
def hierarchy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProcessHierarchy]:
    """The hierarchy running, every role its own process, every site's and SUP's database
    on SQLite (each in its data folder) or on PostgreSQL (a database of its own each)."""
    kind = str(request.param)
    if kind == "postgresql":
        require_server()
    root = tmp_path_factory.mktemp(f"hierarchy-{kind}")
    with ExitStack() as stack:
        databases = Databases(kind, root / "databases")
        stack.callback(databases.close)  # dropped last, once every role has stopped
        new = None if kind == "sqlite" else lambda name: databases.new(name).url
        h = ProcessHierarchy(root, updates=1500, database=new)
        h.kind = kind  # type: ignore[attr-defined]
        proxy = CuttingProxy(h)
        h.proxy = proxy  # type: ignore[attr-defined]
        ps1_file = root / "hierarchy-ps1.toml"
        h.write_file(ps1_file, {"site:CS1": proxy.port})
        h.files["site:PS1"] = ps1_file
        proxy.server.start()
        stack.callback(proxy.server.stop)
        stack.callback(h.stop)
        h.start()
        yield h


def _cis(h: ProcessHierarchy, code: str) -> set[tuple[str, int, str]]:
    with h.site_database(code) as db:
        return {(c.update_id, c.revision, c.xml_sha256) for c in db.content.configuration_items()}


def _versions(h: ProcessHierarchy) -> dict[str, int]:
    out = {}
    for code in SITE_CODES:
        answer = httpx.get(
            f"{h.site_url(code)}/api/sites/{code}/content-version",
            timeout=30,
            auth=h.signed(),
            verify=h.verify,
        )
        out[code] = answer.json()["ContentVersion"]
    return out


def _revisions(h: ProcessHierarchy) -> dict[str, set[tuple[str, int]]]:
    out = {}
    for fqdn in SUPS:
        with h.store(fqdn) as store:
            out[fqdn] = {(k.update_id, k.revision) for k in store.revision_keys()}
    return out


def _messages(path: Path) -> list[str]:
    return [entry.message for entry in read_cmtrace(path)]


@dataclass(frozen=True)
class FirstSync:
    """What the sites held right after the hierarchy's first sync."""

    last: dict[str, dict]
    versions: dict[str, int]
    revisions: dict[str, set[tuple[str, int]]]
    cis: dict[str, set[tuple[str, int, str]]]
    replication: list[str]
    wsync: dict[str, list[str]]


@pytest.fixture(scope="module")
def first_sync(hierarchy: ProcessHierarchy) -> FirstSync:
    """One Sync Now at CS1 through the whole hierarchy, PS1's replication cut on the way: CS1's
    process is killed after PS1's first page of changes (after its own sync and its
    notifications), then brought back."""
    h = hierarchy
    proxy: CuttingProxy = h.proxy  # type: ignore[attr-defined]
    h.sync_now("CS1")
    assert proxy.cut.wait(300), "PS1 never replicated a second page through the proxy"
    h.start_role("site:CS1")
    last = {code: h.wait_syncs(code, 1)["last"] for code in ("PS1", "PS2", "SS1")}
    return FirstSync(
        last=last,
        versions=_versions(h),
        revisions=_revisions(h),
        cis={code: _cis(h, code) for code in SITE_CODES},
        replication=_messages(h.log("PS1", "rcmctrl.log")),
        wsync={code: _messages(h.log(code)) for code in SITE_CODES},
    )


def test_every_site_and_sup_keeps_its_database_where_the_file_says(
    hierarchy: ProcessHierarchy,
) -> None:
    h = hierarchy
    kind: str = h.kind  # type: ignore[attr-defined]
    files = {p.name for p in h.data.rglob("*.sqlite") if p.is_file()}
    default = {SITE_DATABASE_FILE, STORE_DATABASE_FILE}
    assert default & files == (default if kind == "sqlite" else set())
    assert sorted(h.databases) == (sorted([*SITE_CODES, *SUPS]) if kind == "postgresql" else [])
    for code in SITE_CODES:
        with h.site_database(code) as db:
            assert db.engine.url.get_backend_name() == kind, code
    for fqdn in SUPS:
        with h.store(fqdn) as store:
            assert store.engine.url.get_backend_name() == kind, fqdn


def test_one_sync_now_reaches_every_site_even_when_replication_is_cut(
    first_sync: FirstSync, fixtures_dir: Path
) -> None:
    for code, last in first_sync.last.items():
        assert last["succeeded"], (code, last)

    versions = first_sync.versions
    assert len(set(versions.values())) == 1, versions
    revisions = first_sync.revisions
    assert len({frozenset(r) for r in revisions.values()}) == 1, {
        k: len(v) for k, v in revisions.items()
    }
    cis = first_sync.cis
    assert len(cis["CS1"]) > 1000  # three pages of replication at least (500 a page)
    assert cis["PS1"] == cis["CS1"] == cis["PS2"] == cis["SS1"]

    # The cut: PS1's replication failed, then resumed, and its sync waited for it.
    assert any(
        "CS1" in m and ("failed" in m.lower() or "unreach" in m.lower())
        for m in first_sync.replication
    )
    wsync = first_sync.wsync
    assert sum(m.startswith("STATMSG: ID=6702") for m in wsync["CS1"]) == 1
    assert f"Successfully synced site with parent CS1, version {versions['PS1']}" in wsync["PS1"]
    assert f"Successfully synced site with parent PS1, version {versions['SS1']}" in wsync["SS1"]

    article = fixtures_dir / "logs" / "msdocs-2014-hierarchy"
    assert_in_order(article_patterns(article / "CS1-WSyncMgr.rendered.txt"), wsync["CS1"])
    assert_in_order(article_patterns(article / "PS1-WSyncMgr.rendered.txt"), wsync["PS1"])


@pytest.mark.usefixtures("first_sync")
def test_a_child_down_during_the_sync_gets_it_when_it_returns_and_only_once(
    hierarchy: ProcessHierarchy,
) -> None:
    h = hierarchy
    outbound = h.data / "CS1" / "inboxes" / "replmgr.box" / "outbound" / "PS2"
    done = {code: h.completed(code) for code in ("CS1", "PS1", "SS1")}
    found = "Found parent sync notification file CS1.SYN."
    notified = _messages(h.log("PS2")).count(found)
    delivered = _delivered_to_ps2(h)
    h.stop_role("site:PS2")
    try:
        h.next_month()
        h.sync_now("CS1")
        for code in ("CS1", "PS1", "SS1"):
            assert h.wait_syncs(code, done[code] + 1)["last"]["succeeded"], code
        waiting = list(outbound.glob("*"))
        assert len(waiting) == 1, waiting
    finally:
        h.start_role("site:PS2")
    assert h.wait_syncs("PS2", 1)["last"]["succeeded"]
    assert not list(outbound.glob("*"))
    versions = _versions(h)
    assert len(set(versions.values())) == 1, versions
    assert _cis(h, "PS2") == _cis(h, "CS1")
    assert _messages(h.log("PS2")).count(found) == notified + 1
    assert _delivered_to_ps2(h) == delivered + 1


def _delivered_to_ps2(h: ProcessHierarchy) -> int:
    delivered = [m for m in _messages(h.log("CS1", "replmgr.log")) if m.startswith("Delivered")]
    return sum("to site PS2" in m for m in delivered)


def test_a_site_to_site_call_without_valid_credentials_is_refused(
    hierarchy: ProcessHierarchy,
) -> None:
    h = hierarchy
    ps1 = h.site_url("PS1")
    dropped = httpx.post(
        f"{ps1}/site/v1/replication/files/WSyncMgr.box/CS1.SYN?id=feedface&from=CS1",
        content=b"",
        verify=h.verify,
    )
    assert dropped.status_code == 401
    changes = httpx.get(f"{h.site_url('CS1')}/site/v1/replication/changes?after=0", verify=h.verify)
    assert changes.status_code == 401
    forged = httpx.get(
        f"{h.site_url('CS1')}/site/v1/replication/changes?after=0",
        auth=HmacAuth(b"not-the-hierarchy-secret-not-the-secret", "PS1"),
        verify=h.verify,
    )
    assert forged.status_code == 401
    sup = f"https://127.0.0.1:{h.sup_ports['ps1site.contoso.com']}"
    assert httpx.post(f"{sup}/api/sync", json={}, verify=h.verify).status_code == 401
    signed = httpx.get(f"{sup}/api/sync", auth=h.signed("PS1"), verify=h.verify)
    assert signed.status_code == 200
    # Over TLS only: plain HTTP to a role's port gets no answer.
    with pytest.raises(httpx.HTTPError):
        httpx.get(sup.replace("https://", "http://") + "/api/sync", timeout=10)
    assert not (h.data / "PS1" / "inboxes" / "WSyncMgr.box" / "CS1.SYN").exists()


@pytest.mark.usefixtures("first_sync")
def test_the_client_policy_of_ps1_lists_its_sups_until_the_tables_disagree(
    hierarchy: ProcessHierarchy,
) -> None:
    h = hierarchy
    url = f"{h.site_url('PS1')}/policy/v1/software-update-points"
    policy = httpx.get(url, verify=h.verify).json()
    cs1_version = _versions(h)["CS1"]
    assert policy["update_source_id"] == "{C2D17964-BBDD-4339-B9F3-12D7205B39CC}"
    assert policy["content_version"] == cs1_version
    assert [loc["fqdn"] for loc in policy["locations"]] == [
        "ps1site.contoso.com",
        "ps1sys.contoso.com",
    ]
    assert policy["locations"][0]["intranet_url"].startswith("https://ps1site.contoso.com:")
    with h.site_database("PS1") as db:
        db.content.set_version(cs1_version + 1)
        try:
            forced = httpx.get(url, verify=h.verify).json()
        finally:
            db.content.set_version(cs1_version)
    assert forced["locations"] == []
    assert "content version" in forced["reason"]
    assert len(httpx.get(url, verify=h.verify).json()["locations"]) == 2
