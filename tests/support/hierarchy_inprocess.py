"""The article's hierarchy with every role in this process, on loopback, for tests.

`InProcessHierarchy(root, updates=N)` loads the example hierarchy file shipped with the
package (CS1 → PS1 with SUPs ps1site and ps1sys, PS2; SS1 under PS1), as `updatesync demo`
does: its data folder under `root`, criteria covering the generated catalog, every site and
SUP at 127.0.0.1 on a port reserved by `on_loopback`, and a stand-in Microsoft Update (an
update server loaded with a generated catalog of N updates) as the top-level SUP's upstream.
`start()` starts every role; each talks to the others over signed HTTPS only: a CA under
`root/pki` issues every host a certificate valid at 127.0.0.1, and every call between roles
verifies its peer against it (`tls=False`: plain HTTP). A test calling a role itself passes
`verify=h.verify`.

A role may see its own copy of the hierarchy (`views`: role name → function of the
hierarchy), for instance PS1 reaching its parent CS1 at another address.

`database=new` puts every site and SUP on a database of its own, as the hierarchy file's
`database` key does: `new(name)` gives a fresh database's URL for the role `name` (a site
code or a SUP's FQDN), such as `lambda name: databases.new(name).url` (tests/conftest.py);
without it every role keeps SQLite in its data folder.

- `article_patterns(file)` turns a WSyncMgr.log of the article into patterns and
  `assert_in_order(patterns, ours)` checks that our log has them as an ordered subsequence.
- `forward_to(url, secret)` is an ASGI app passing every request on to `url`, a signed one
  signed again with `secret` as the same caller (a signature covers the address the caller
  addressed, so a relay must hold the secret): a site reached at another address.
- `sync_now()` asks CS1's SMS Provider to SyncNow, with the Full Administrator's token
  (`admin_token`, `admin()`: the header) that CS1 wrote at its first start; `wait_all(n)` waits (on
  `SiteRole.wait_for_sync`) until every site finished its n-th sync since its start;
- `stop_role(name)` / `restart_role(name)` stop one role and start it again on its port;
- `revisions(fqdn)` the (update id, revision) set a SUP's update server holds, from its
  signed admin API; `log(code)` the messages of a site's WSyncMgr.log.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from updatesync.config import Criteria, Hierarchy, load_hierarchy
from updatesync.config.hierarchy import TlsSettings
from updatesync.config.schedule import IntervalSchedule
from updatesync.demo import DEMO_CLASSIFICATIONS, example_hierarchy
from updatesync.logs.cmtrace import parse_rendered, read_cmtrace
from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.roles import RoleContext, SiteRole, SupRole, on_loopback, parse_role
from updatesync.roles.serving import BackgroundServer
from updatesync.security.access import read_token_file
from updatesync.security.pki import CA_CERT, create_ca, issue_certificate
from updatesync.security.signing import (
    CALLER_HEADER,
    DIGEST_HEADER,
    KEY_HEADER,
    NONCE_HEADER,
    TIME_HEADER,
    HmacAuth,
    create_secret,
    load_secret,
)
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.outcome import SiteSyncResult
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.license_terms import add_generated_license_files
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.service import create_app

SITE_CODES = ("CS1", "PS1", "PS2", "SS1")
SYNC_TIMEOUT = 60.0
"""Seconds a test waits for a sync before it fails (a hung sync fails, it does not hang)."""

View = Callable[[Hierarchy], Hierarchy]


NO_SCHEDULED_SYNC = IntervalSchedule(timedelta(days=36500), text="36500d")
"""A schedule whose next sync is decades away."""


class InProcessHierarchy:
    def __init__(
        self,
        root: Path,
        *,
        updates: int = 200,
        seed: int = 7,
        adjust: View | None = None,
        views: Mapping[str, View] | None = None,
        tls: bool = True,
        database: Callable[[str], str] | None = None,
        license_files: bool = True,
    ) -> None:
        self.root = root
        self.database = database
        self.license_files = license_files
        """The stand-in Microsoft Update serves the license terms' files (else none yet:
        `add_generated_license_files(h.mu)` gives them later)."""
        self.tls = tls
        self.updates = updates
        self.seed = seed
        self.adjust = adjust
        self.views = dict(views or {})
        self.roles: dict[str, SiteRole | SupRole] = {}
        self.contexts: dict[str, RoleContext] = {}
        self._socks: dict[str, socket.socket] = {}

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> InProcessHierarchy:
        self.root.mkdir(parents=True, exist_ok=True)
        catalog = self.root / "catalog.cab"
        write_export(catalog, generate_catalog(self.updates, self.seed))
        self.mu = UpdateStore.open(self.root / "microsoft-update.local")
        import_export_cabinet(self.mu, catalog)
        if self.license_files:
            add_generated_license_files(self.mu)
        self.upstream = BackgroundServer(create_app(StoreBackend(self.mu))).start()
        products = tuple(c.update_id for c in self.mu.categories("Product"))
        hierarchy = replace(
            load_hierarchy(example_hierarchy()),
            data_dir=self.root / "hierarchy",
            secret_file=None,
            criteria=Criteria(products, DEMO_CLASSIFICATIONS, ("en",)),
            # The example's daily sync at 02:00 would start one at every site when a test
            # runs across that time: no scheduled sync during a test.
            schedule=NO_SCHEDULED_SYNC,
        )
        if self.adjust is not None:
            hierarchy = self.adjust(hierarchy)
        if self.database is not None:
            hierarchy = on_databases(hierarchy, self.database)
        if self.tls:
            hierarchy = hierarchy.with_tls(self._certificates(hierarchy))
        hierarchy, self._socks = on_loopback(hierarchy)
        self.hierarchy = hierarchy
        create_secret(hierarchy.secret_path)
        self.secret = load_secret(hierarchy.secret_path)
        self.context = RoleContext(hierarchy, self.secret, upstream_url=self.upstream.url)
        self.verify = self.context.verify
        try:
            for name in parse_role(hierarchy, "all"):  # the SUPs first
                self.start_role(name, sock=self._socks.pop(name))
        except BaseException:
            self.stop()
            raise
        return self

    def _certificates(self, hierarchy: Hierarchy) -> TlsSettings:
        """A CA under `root/pki` and a certificate for every host, valid at 127.0.0.1."""
        pki = self.root / "pki"
        create_ca(pki)
        hosts = {s.fqdn for s in hierarchy.sites} | {
            sup.fqdn for s in hierarchy.sites for sup in s.sups
        }
        for host in sorted(hosts):
            issue_certificate(pki, host, ["127.0.0.1"])
        return TlsSettings(pki / CA_CERT, pki)

    def context_of(self, name: str) -> RoleContext:
        view = self.views.get(name)
        if view is None:
            return self.context
        return replace(self.context, hierarchy=view(self.hierarchy))

    def start_role(self, name: str, *, sock: socket.socket | None = None) -> SiteRole | SupRole:
        """Start one role (again) on its port; a restarted site counts its syncs from 0."""
        kind, _, value = name.partition(":")
        context = self.context_of(name)
        role: SiteRole | SupRole
        if kind == "sup":
            role = SupRole(context, value, sock=sock).start()
        else:
            role = SiteRole(context, value, sock=sock).start()
        self.roles[name] = role
        return role

    def stop_role(self, name: str) -> None:
        self.roles.pop(name).stop()

    def restart_role(self, name: str) -> SiteRole | SupRole:
        if name in self.roles:
            self.stop_role(name)
        return self.start_role(name)

    def stop(self) -> None:
        for name in reversed(list(self.roles)):
            self.stop_role(name)
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
        if getattr(self, "upstream", None) is not None:
            self.upstream.stop()
            self.mu.close()

    def __enter__(self) -> InProcessHierarchy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- looking at it -------------------------------------------------------------------------

    def site(self, code: str) -> SiteRole:
        role = self.roles[f"site:{code}"]
        assert isinstance(role, SiteRole)
        return role

    def db(self, code: str) -> SiteDatabase:
        return self.site(code).db

    def url(self, code: str) -> str:
        return self.hierarchy.site(code).url

    def sup_fqdns(self) -> list[str]:
        return [sup.fqdn for site in self.hierarchy.walk() for sup in site.sups]

    @property
    def admin_token(self) -> str:
        """The Full Administrator's token the top-level site wrote at its first start."""
        return read_token_file(self.site("CS1").admin_token_file)

    def admin(self) -> dict[str, str]:
        """The header that authenticates as the Full Administrator."""
        return {"authorization": f"Bearer {self.admin_token}"}

    def sync_now(self, code: str = "CS1", *, full: bool = False) -> None:
        answer = httpx.post(
            f"{self.url(code)}/api/sites/{code}/sync",
            json={"full": full},
            headers=self.admin(),
            verify=self.verify,
        )
        answer.raise_for_status()

    def wait(self, code: str, count: int, timeout: float = SYNC_TIMEOUT) -> None:
        assert self.site(code).wait_for_sync(count, timeout), (
            f"{code} did not finish sync {count} within {timeout} s; it finished "
            f"{len(self.site(code).results)}"
        )

    def wait_all(self, count: int, codes: Iterable[str] = SITE_CODES) -> None:
        for code in codes:
            self.wait(code, count)

    def wait_idle(self, codes: Iterable[str] = SITE_CODES) -> None:
        """Every site's sync manager idle, no request waiting, no notification undelivered."""
        for code in codes:
            site = self.site(code)
            assert site.notifier.wait_delivered(SYNC_TIMEOUT), f"{code}: notifications pending"
            assert site.server.wait_idle(SYNC_TIMEOUT), f"{code}: still syncing"

    def revisions(self, fqdn: str) -> set[tuple[str, int]]:
        """What the SUP's update server holds, from its admin API (signed)."""
        _, sup = self.hierarchy.find_sup(fqdn)
        answer = httpx.get(
            f"{sup.url}/api/changes",
            params={"since": 0},
            auth=HmacAuth(self.secret, "CS1"),
            timeout=30,
            verify=self.verify,
        )
        answer.raise_for_status()
        return {(uid.lower(), int(rev)) for uid, rev in answer.json()["revisions"]}

    def cis(self, code: str) -> dict[str, tuple[int, str]]:
        """update id → (revision, xml_sha256) of the site database's CIs."""
        return {
            ci.update_id: (ci.revision, ci.xml_sha256)
            for ci in self.db(code).content.configuration_items()
        }

    def log(self, code: str) -> list[str]:
        return [e.message for e in read_cmtrace(self.site(code).log_dir / "WSyncMgr.log")]

    def signed(self, caller: str) -> HmacAuth:
        return HmacAuth(self.secret, caller)

    def results(self, code: str) -> list[SiteSyncResult]:
        return list(self.site(code).results)


_SIGNING_HEADERS = {
    b"host",
    b"authorization",
    CALLER_HEADER.encode(),
    TIME_HEADER.encode(),
    NONCE_HEADER.encode(),
    KEY_HEADER.encode(),
    DIGEST_HEADER.encode(),
}


def on_databases(hierarchy: Hierarchy, new: Callable[[str], str]) -> Hierarchy:
    """`hierarchy` with every site and SUP on a database of its own: `new(name)` the URL of a
    fresh one for a site code or a SUP's FQDN (the hierarchy file's `database` keys)."""
    sites = tuple(
        replace(
            site,
            database=new(site.code),
            sups=tuple(replace(sup, database=new(sup.fqdn)) for sup in site.sups),
        )
        for site in hierarchy.sites
    )
    return replace(hierarchy, sites=sites)


def forward_to(target: str, secret: bytes | None = None) -> Callable[..., Any]:
    """An ASGI app that passes each HTTP request on to `target` and answers what it answers;
    with `secret`, a signed request is signed again for `target`, as its caller."""
    target = target.rstrip("/")

    async def app(
        scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = (scope.get("raw_path") or scope["path"].encode()).decode("ascii")
        query = scope["query_string"].decode("ascii")
        given = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
        caller = given.get(CALLER_HEADER.encode())
        auth = HmacAuth(secret, caller) if secret is not None and caller else None
        dropped_in = _SIGNING_HEADERS if auth is not None else {b"host"}
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in dropped_in]
        async with httpx.AsyncClient(timeout=70, auth=auth) as client:
            answer = await client.request(
                scope["method"],
                target + path + (f"?{query}" if query else ""),
                headers=headers,
                content=body,
            )
        dropped = {"content-length", "transfer-encoding", "content-encoding", "connection"}
        await send(
            {
                "type": "http.response.start",
                "status": answer.status_code,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1"))
                    for k, v in answer.headers.items()
                    if k.lower() not in dropped
                ]
                + [(b"content-length", str(len(answer.content)).encode("ascii"))],
            }
        )
        await send({"type": "http.response.body", "body": answer.content})

    return app


# -- the article's log lines as patterns ----------------------------------------------------

_TOKEN = re.compile(
    r"(?P<source>\{[0-9A-Fa-f-]{36}\})"  # the update source's id: the same in ours
    r"|(?P<statmsg>STATMSG: ID=\d+)"  # which status message: the same in ours
    r"|(?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})"
    r"|(?P<date>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} \d+ [\d:.]+ \d{4})"
    r"|(?P<duration>\d+d\d+h\d+m\d+s)"
    r"|(?P<path>[A-Z]:\\[^\s,]*\\inboxes\\[^\s,]*)"
    r"|(?P<number>(?<![A-Za-z])\d+)"
)
SKIPPED = ("Sleeping 2 more minutes",)
"""Lines of the article that SPEC says updatesync need not write."""


def _pattern(line: str) -> re.Pattern[str]:
    if line.startswith("Synchronizing update "):
        return re.compile(r"Synchronizing update [0-9a-f-]{36} - .+")
    parts: list[str] = []
    end = 0
    for match in _TOKEN.finditer(line):
        parts.append(re.escape(line[end : match.start()]))
        kind, text = match.lastgroup, match.group()
        if kind in ("source", "statmsg"):
            parts.append(re.escape(text))
        elif kind == "guid":
            parts.append(r"[0-9A-Fa-f-]{36}")
        elif kind == "date":
            parts.append(r"\w{3} \w{3} \d+ [\d:.]+ \d{4}")
        elif kind == "duration":
            parts.append(r"\d+d\d{2}h\d{2}m\d{2}s")
        elif kind == "path":
            # E:\ConfigMgr\inboxes\WSyncMgr.box\outbox\CS1.SYN: any folder holding the site's
            # inboxes, then the same names with this system's separator.
            inside = text.split("\\inboxes\\", 1)[1].split("\\")
            parts.append(".+" + re.escape(os.sep.join(["", "inboxes", *inside])))
        else:
            parts.append(r"\d+")
        end = match.end()
    parts.append(re.escape(line[end:]))
    return re.compile("".join(parts))


def article_patterns(rendered: Path) -> list[re.Pattern[str]]:
    """The WSyncMgr lines of a rendered article log as patterns: numbers, update ids, times,
    PIDs and paths as wildcards; the lines we need not write and the intermediate progress
    lines (`ETA`) left out."""
    lines = [message for message, _component in parse_rendered(rendered.read_text("utf-8"))]
    return [_pattern(m) for m in lines if not m.startswith(SKIPPED) and "ETA in" not in m]


def assert_in_order(patterns: list[re.Pattern[str]], ours: list[str]) -> None:
    """Each pattern matches one of `ours`, in the same order (other lines may be between)."""
    position = 0
    for pattern in patterns:
        while position < len(ours) and not pattern.fullmatch(ours[position]):
            position += 1
        assert position < len(ours), (
            f"missing, in the article's order: {pattern.pattern}\nour log:\n" + "\n".join(ours)
        )
        position += 1
