"""The article's hierarchy on separate hosts: a Linux network namespace per host.

How the hosts are laid out (`tests/support/netns.py`): one network namespace per host,
named `us<random>-<host>` so that parallel runs never meet, each with loopback up and one
link `eth0` (a veth pair) to a bridge that lives in a namespace of its own; every host
has its own address in 10.77.0.0/24 and the same `/etc/netns/<namespace>/hosts`, which maps
each name of the hierarchy to its address:

    upstream  upstream.contoso.com 10.77.0.10   `updatesync updateserver serve` (plain HTTP,
                                                as a WSUS outside the hierarchy may be)
    cs1       cs1site.contoso.com  10.77.0.11   site:CS1, sup:cs1site (site database on
                                                PostgreSQL, over its UNIX socket)
    ps1       ps1site.contoso.com  10.77.0.12   site:PS1, sup:ps1site, and sup:ps1sys at
              ps1sys.contoso.com   10.77.0.13   a second address of the same host
    ps2       ps2site.contoso.com  10.77.0.14   site:PS2, sup:ps2site
    ss1       ss1site.contoso.com  10.77.0.15   site:SS1, sup:ss1site
    admin     admin.contoso.com    10.77.0.20   `updatesync sync-now`, the provider queries

Every role runs as `ip netns exec <host> <venv>/bin/updatesync serve FILE --role <role>`,
with TLS (a CA and certificates from `updatesync pki`), the signed site links of the shared
secret (`updatesync secret new`) and the Full Administrator's token of the top-level site.
The test process itself sends nothing to the hosts' addresses: it prepares files, starts
processes in the namespaces, asks the admin host to call the providers
(`tests/support/netns_admin.py`), and reads the roles' logs and SQLite databases and CS1's
PostgreSQL database (a UNIX socket) from the file system.

The second sync cuts PS1's link during its database replication from CS1, at a point the
test chooses: PS1 runs with `UPDATESYNC_FAULT=hold-at:replication-between-pages:<file>`,
so it stops after the first page of CS1's changes; the test sets PS1's link down (its
open connections to other hosts closed too, so that the next call fails at once), lets it
go on, sees it report the degraded link (rcmctrl.log, SMS_SUPSyncStatus's
ReplicationLinkStatus, the `replication_link_degraded` alert), sets the link up, and sees
it complete with CS1's content, nothing lost or applied twice, the alert canceled.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from databases import postgresql_database
from netns import Host, HostProcess, Network, NetworkUnavailable

from updatesync.config.fault_injection import VARIABLE as FAULT_VARIABLE
from updatesync.logs.cmtrace import read_cmtrace
from updatesync.site.database.site_db import SiteDatabase

pytestmark = pytest.mark.slow

HOSTS = (
    Host("upstream", (("upstream.contoso.com", "10.77.0.10"),)),
    Host("cs1", (("cs1site.contoso.com", "10.77.0.11"),)),
    Host("ps1", (("ps1site.contoso.com", "10.77.0.12"), ("ps1sys.contoso.com", "10.77.0.13"))),
    Host("ps2", (("ps2site.contoso.com", "10.77.0.14"),)),
    Host("ss1", (("ss1site.contoso.com", "10.77.0.15"),)),
    Host("admin", (("admin.contoso.com", "10.77.0.20"),)),
)
ROLES = {
    "cs1": ("sup:cs1site.contoso.com", "site:CS1"),
    "ps1": ("sup:ps1site.contoso.com", "sup:ps1sys.contoso.com", "site:PS1"),
    "ps2": ("sup:ps2site.contoso.com", "site:PS2"),
    "ss1": ("sup:ss1site.contoso.com", "site:SS1"),
}
SITES = {
    "CS1": "cs1site.contoso.com",
    "PS1": "ps1site.contoso.com",
    "PS2": "ps2site.contoso.com",
    "SS1": "ss1site.contoso.com",
}
PAGE = re.compile(r"Replicated (\d+) changes from CS1 \(sequence (\d+) of (\d+)\)")
"""PS1's rcmctrl.log line for a page of CS1's changes it applied."""
SITE_PORT = 8440
UPSTREAM_PORT = 8530
UPDATES = 400
"""Updates of the first month's catalog."""
CHANGES = 700
"""Changes of the second month: more than one page (500 rows) of database replication."""
START_TIMEOUT = 120.0
SYNC_TIMEOUT = 300.0

HIERARCHY = """\
[hierarchy]
name = "Contoso"
data_dir = "{data}"
secret_file = "{secret}"
schedule = "36500d"
replication_timeout = "5m"

[hierarchy.logs]
tz_bias = 0

[hierarchy.upstream]
kind = "wsus"
url = "http://upstream.contoso.com:{upstream_port}"

[hierarchy.tls]
ca = "{pki}/ca.pem"
dir = "{pki}"

[[sites]]
code = "CS1"
fqdn = "cs1site.contoso.com"
type = "cas"
database = "{cs1_database}"

[[sites.sups]]
fqdn = "cs1site.contoso.com"

[[sites]]
code = "PS1"
fqdn = "ps1site.contoso.com"
type = "primary"
parent = "CS1"

[[sites.sups]]
fqdn = "ps1site.contoso.com"

[[sites.sups]]
fqdn = "ps1sys.contoso.com"

[[sites]]
code = "PS2"
fqdn = "ps2site.contoso.com"
type = "primary"
parent = "CS1"

[[sites.sups]]
fqdn = "ps2site.contoso.com"

[[sites]]
code = "SS1"
fqdn = "ss1site.contoso.com"
type = "secondary"
parent = "PS1"

[[sites.sups]]
fqdn = "ss1site.contoso.com"
"""


def _updatesync() -> list[str]:
    """The venv's `updatesync` command."""
    script = Path(sys.executable).parent / "updatesync"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "updatesync"]


def _wait_until(
    check: Callable[[], bool], timeout: float, what: str, tail: Path | None = None
) -> None:
    """Wait (bounded) until `check()` is true; AssertionError saying `what` did not happen,
    with the end of the log `tail`."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            end = ""
            if tail is not None and tail.exists():
                end = (
                    "; the end of "
                    + str(tail)
                    + ":\n"
                    + "\n".join(tail.read_text(errors="replace").splitlines()[-15:])
                )
            raise AssertionError(f"{what} did not happen within {timeout:g} s{end}")
        time.sleep(0.1)  # another process writes what `check` looks for: nothing to await


class Deployment:
    """The hierarchy's files, processes and questions, on the hosts of `network`."""

    def __init__(self, root: Path, network: Network, cs1_database: str) -> None:
        self.root = root
        self.network = network
        self.data = root / "data"
        self.pki = root / "pki"
        self.secret = root / "hierarchy.secret"
        self.file = root / "hierarchy.toml"
        self.upstream_dir = root / "upstream"
        self.cs1_database = cs1_database
        self.roles: dict[str, HostProcess] = {}
        self.upstream: HostProcess | None = None
        self.starts: dict[str, int] = {}
        self.env = {k: v for k, v in os.environ.items() if k != FAULT_VARIABLE}

    # -- files, made in the test's own namespace (no network) ----------------------------

    def cli(self, *commands: list[str]) -> None:
        """Run `updatesync` commands side by side (file work only: no network) and wait."""
        running = [
            (
                args,
                subprocess.Popen(
                    [*_updatesync(), *args],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env=self.env,
                ),
            )
            for args in commands
        ]
        for args, process in running:
            output, _ = process.communicate(timeout=300)
            assert process.returncode == 0, f"updatesync {' '.join(args)}: {output}"

    def prepare(self) -> None:
        month1, month2 = self.root / "month1.cab", self.root / "month2.cab"
        self.cli(
            ["pki", "init", str(self.pki)],
            ["secret", "new", str(self.secret)],
            [
                "catalog",
                "generate",
                "--updates",
                str(UPDATES),
                "--out",
                str(month1),
                "--seed",
                "11",
                "--content",
                str(self.root / "content"),
            ],
        )
        names = sorted({name for host in HOSTS[1:5] for name, _ in host.names})
        self.cli(
            *(["pki", "issue", str(self.pki), "--host", name] for name in names),
            [
                "catalog",
                "evolve",
                str(month1),
                "--out",
                str(month2),
                "--changes",
                str(CHANGES),
                "--seed",
                "12",
                "--content",
                str(self.root / "content"),
            ],
            # The upstream plays Microsoft Update: the license terms' files come with the
            # metadata, from the content folder copied beside the export.
            [
                "updateserver",
                "import",
                str(month1),
                "--data",
                str(self.upstream_dir),
                "--content",
                str(self.root / "content"),
            ],
        )
        self.file.write_text(
            HIERARCHY.format(
                data=self.data,
                secret=self.secret,
                pki=self.pki,
                upstream_port=UPSTREAM_PORT,
                cs1_database=self.cs1_database,
            )
        )

    def log(self, code: str, name: str = "WSyncMgr.log") -> Path:
        return self.data / code / "logs" / name

    def messages(self, code: str, name: str = "WSyncMgr.log") -> list[str]:
        path = self.log(code, name)
        return [entry.message for entry in read_cmtrace(path)] if path.exists() else []

    # -- processes in the hosts -----------------------------------------------------------

    def start_upstream(self) -> None:
        self.starts["upstream"] = self.starts.get("upstream", 0) + 1
        output = self.root / "out" / f"upstream-{self.starts['upstream']}.out"
        self.upstream = self.network.start(
            "upstream",
            [
                *_updatesync(),
                "updateserver",
                "serve",
                "--data",
                str(self.upstream_dir),
                "--host",
                HOSTS[0].address,
                "--port",
                str(UPSTREAM_PORT),
            ],
            output,
            env=self.env,
        )
        self.upstream.wait_for(r"^listening on http://", START_TIMEOUT, what="the upstream")

    def next_month(self) -> None:
        """The upstream stopped, next month's catalog imported, the upstream started."""
        assert self.upstream is not None
        self.upstream.stop()
        self.cli(
            [
                "updateserver",
                "import",
                str(self.root / "month2.cab"),
                "--data",
                str(self.upstream_dir),
                "--content",
                str(self.root / "content"),
            ]
        )
        self.start_upstream()

    def start_role(self, host: str, role: str, env: Mapping[str, str] | None = None) -> None:
        self.starts[role] = self.starts.get(role, 0) + 1
        output = self.root / "out" / f"{role.replace(':', '-')}-{self.starts[role]}.out"
        self.roles[role] = self.network.start(
            host,
            [*_updatesync(), "serve", str(self.file), "--role", role],
            output,
            env={**self.env, **(env or {})},
        )

    def wait_ready(self, role: str) -> None:
        self.roles[role].wait_for(rf"^role {re.escape(role)} at https://", START_TIMEOUT, what=role)

    def start_all(self) -> None:
        for host, roles in ROLES.items():
            for role in roles:
                self.start_role(host, role)
        for roles in ROLES.values():
            for role in roles:
                self.wait_ready(role)

    def restart(self, host: str, role: str, env: Mapping[str, str]) -> None:
        self.roles[role].stop()
        self.start_role(host, role, env)
        self.wait_ready(role)

    # -- the admin host ---------------------------------------------------------------------

    @property
    def token_file(self) -> Path:
        return self.data / "CS1" / "admin.token"

    def sync_now(self) -> None:
        done = self.network.run(
            "admin",
            [
                *_updatesync(),
                "sync-now",
                "--site",
                "CS1",
                "--hierarchy",
                str(self.file),
                "--ca",
                str(self.pki / "ca.pem"),
                "--token-file",
                str(self.token_file),
            ],
            env=self.env,
        )
        assert done.returncode == 0, f"sync-now at CS1 failed: {done.stdout}{done.stderr}"
        assert "sync requested at CS1" in done.stdout, done.stdout

    def ask(self, *args: str, timeout: float = SYNC_TIMEOUT + 30) -> dict | list:
        script = Path(__file__).parent / "support" / "netns_admin.py"
        done = self.network.run(
            "admin",
            [
                sys.executable,
                str(script),
                "--ca",
                str(self.pki / "ca.pem"),
                "--token-file",
                str(self.token_file),
                *args,
            ],
            timeout=timeout,
            env=self.env,
        )
        assert done.returncode == 0, f"the admin host asked {args}: {done.stderr}"
        return json.loads(done.stdout)

    def provider(self, code: str) -> str:
        return f"https://{SITES[code]}:{SITE_PORT}"

    def get_each(self, paths: Mapping[str, str]) -> dict[str, Any]:
        """The answers of the sites' providers (by site code) to `paths` (by site code), asked
        by one process of the admin host."""
        answers = self.ask("get", *(self.provider(code) + path for code, path in paths.items()))
        assert isinstance(answers, list) and len(answers) == len(paths), answers
        return dict(zip(paths, answers, strict=True))

    def get(self, code: str, path: str) -> dict | list:
        return self.get_each({code: path})[code]

    def wait_syncs(self, counts: Mapping[str, int]) -> dict[str, dict]:
        """Each site's last sync once it has finished its count (by site code) since its
        server started."""
        specs = [x for code, n in counts.items() for x in (self.provider(code), code, str(n))]
        try:
            answers = self.ask("syncs", str(SYNC_TIMEOUT), *specs)
        except AssertionError as exc:
            tails = "".join(
                f"\nthe end of {code}'s WSyncMgr.log:\n" + "\n".join(self.messages(code)[-15:])
                for code in counts
            )
            raise AssertionError(f"{exc}{tails}") from None
        assert isinstance(answers, dict)
        return answers

    def versions(self) -> dict[str, int]:
        answers = self.get_each({code: f"/api/sites/{code}/content-version" for code in SITES})
        return {code: int(answer["ContentVersion"]) for code, answer in answers.items()}

    def ci_counts(self) -> dict[str, int]:
        answers = self.get_each({code: f"/api/sites/{code}/cis?limit=1" for code in SITES})
        return {code: int(answer["Count"]) for code, answer in answers.items()}


@pytest.fixture
def network() -> Iterator[Network]:
    """The hosts' namespaces, removed (with every process started in them) at the end."""
    reason = Network.unavailable()
    if reason is not None:
        pytest.skip(reason)
    hosts = Network(HOSTS)
    try:
        hosts.create()
    except NetworkUnavailable as exc:
        hosts.destroy()
        pytest.skip(str(exc))
    try:
        yield hosts
    finally:
        hosts.destroy()


def _cis(db: SiteDatabase) -> list[tuple[str, int, str]]:
    return [(c.update_id, c.revision, c.xml_sha256) for c in db.content.configuration_items()]


def _link_alerts(db: SiteDatabase) -> list:
    """PS1's replication_link_degraded alerts about CS1, newest first."""
    return [
        a
        for a in db.alerts.find(site_code="PS1")
        if a.alert_type.value == "replication_link_degraded" and a.instance == "CS1"
    ]


@pytest.fixture
def cs1_database() -> Iterator[str]:
    """CS1's site database: a new database on the test PostgreSQL server (skips, saying why,
    without one), dropped at the end, after the hosts and their processes are gone."""
    with postgresql_database("netns") as made:
        yield made.url


def test_the_hierarchy_on_separate_hosts_syncs_and_survives_a_cut_link(
    cs1_database: str, network: Network, tmp_path: Path
) -> None:
    _run(Deployment(tmp_path, network, cs1_database), network, tmp_path)


def _run(d: Deployment, network: Network, tmp_path: Path) -> None:
    d.prepare()
    d.start_upstream()
    d.start_all()

    # One Sync Now at CS1, from the admin host, reaches every site.
    d.sync_now()
    first = {code: a["last"] for code, a in d.wait_syncs(dict.fromkeys(SITES, 1)).items()}
    for code, last in first.items():
        assert last["succeeded"], (code, last)
    versions = d.versions()
    assert len(set(versions.values())) == 1, versions
    counts = d.ci_counts()
    assert len(set(counts.values())) == 1 and counts["CS1"] >= UPDATES, counts

    # The second sync: PS1 holds after the first page of CS1's changes, its link is cut.
    held = tmp_path / "ps1-held"
    d.next_month()
    d.restart("ps1", "site:PS1", {FAULT_VARIABLE: f"hold-at:replication-between-pages:{held}"})
    done_line = re.compile(r"Done synchronizing WSUS Server ps1site\.contoso\.com", re.I)
    sup_syncs = sum(bool(done_line.search(m)) for m in d.messages("PS1"))
    rcm_before = len(d.messages("PS1", "rcmctrl.log"))
    with SiteDatabase.open(d.data / "PS1") as ps1_db:
        link = ps1_db.replication.link("CS1")
        assert link is not None
        held_before = link.applied_seq  # CS1's changes PS1 held after the first sync
    d.sync_now()
    _wait_until(
        held.exists,
        SYNC_TIMEOUT,
        "PS1 holding between two pages of replication",
        d.log("PS1", "rcmctrl.log"),
    )
    # Its own SUP has synced from CS1's: what is left of PS1's sync is database replication.
    _wait_until(
        lambda: sum(bool(done_line.search(m)) for m in d.messages("PS1")) > sup_syncs,
        SYNC_TIMEOUT,
        "PS1's sync of its SUP ps1site",
        d.log("PS1"),
    )
    with SiteDatabase.open(d.data / "PS1") as ps1_db:
        earlier = len(_link_alerts(ps1_db))  # PS1 may have started before CS1 answered
    network.cut("ps1")
    # Its connections to CS1 closed too: the next page is asked for on a new connection,
    # which fails at once, whether or not the one kept alive since the last page has expired.
    network.drop_connections("ps1")
    held.unlink()  # PS1 goes on, without a link
    degraded = "Replication link to CS1 is degraded"
    _wait_until(
        lambda: any(degraded in m for m in d.messages("PS1", "rcmctrl.log")[rcm_before:]),
        90,
        "PS1 logging its degraded link to CS1",
        d.log("PS1", "rcmctrl.log"),
    )
    raised = "Raised alert replication_link_degraded at site PS1"
    _wait_until(
        lambda: any(raised in m for m in d.messages("PS1", "alerts.log")),
        60,
        "PS1 raising replication_link_degraded",
        d.log("PS1", "alerts.log"),
    )
    with SiteDatabase.open(d.data / "PS1") as ps1_db:
        statuses = ps1_db.sups.sync_statuses(site_code="PS1")
        assert statuses and all(s.replication_link_status == 1 for s in statuses), statuses
        alerts = _link_alerts(ps1_db)
        assert len(alerts) == earlier + 1 and alerts[0].state.value == "raised", alerts
    network.restore("ps1")

    # PS1 completes once its link is back: CS1's content, nothing lost or applied twice.
    # PS1's is its first since its restart.
    waited = d.wait_syncs({"CS1": 2, "PS2": 2, "SS1": 2, "PS1": 1})
    last = {code: answer["last"] for code, answer in waited.items()}
    for code, outcome in last.items():
        assert outcome["succeeded"], (code, outcome)
    after = d.versions()
    assert len(set(after.values())) == 1 and after["CS1"] > versions["CS1"], after
    counts = d.ci_counts()
    assert len(set(counts.values())) == 1, counts
    with (
        SiteDatabase.open(d.data / "CS1", url=d.cs1_database) as cs1_db,
        SiteDatabase.open(d.data / "PS1") as ps1_db,
    ):
        link = ps1_db.replication.link("CS1")
        assert link is not None and link.applied_seq == cs1_db.replication.head()
        ps1_cis, cs1_cis = _cis(ps1_db), _cis(cs1_db)
    assert len(ps1_cis) == len(set(ps1_cis)) == counts["PS1"]
    assert set(ps1_cis) == set(cs1_cis)

    replication = d.messages("PS1", "rcmctrl.log")[rcm_before:]
    pages = [PAGE.fullmatch(m) for m in replication if m.startswith("Replicated ")]
    assert len(pages) >= 2 and all(pages), replication  # the cut came between two pages
    # Each change came once: the pages, the cut one's successor included, add up to CS1's new
    # changes (a page applied again would count twice), and the last reaches CS1's head.
    sizes = [int(page.group(1)) for page in pages if page is not None]
    assert sum(sizes) == link.applied_seq - held_before, replication
    assert pages[-1] is not None and pages[-1].group(2) == pages[-1].group(3), replication
    states = [m for m in replication if "Replication link to CS1 is" in m]
    assert any(degraded in m for m in states), states
    assert states[-1].startswith("Replication link to CS1 is healthy"), states
    assert f"Successfully synced site with parent CS1, version {after['PS1']}" in d.messages("PS1")

    # What an administrator sees at PS1's provider: the link healthy, the alert canceled.
    def canceled() -> bool:
        alerts = d.get("PS1", "/api/alerts?site=PS1")
        assert isinstance(alerts, list)
        ours = [a for a in alerts if a["AlertType"] == "replication_link_degraded"]
        assert len(ours) == earlier + 1 and ours[0]["Instance"] == "CS1", ours
        return ours[0]["State"] == "canceled"

    _wait_until(
        canceled, 60, "PS1's replication_link_degraded alert canceled", d.log("PS1", "alerts.log")
    )
    status = d.get("PS1", "/api/sites/PS1/sup-sync-status")
    assert isinstance(status, list) and status
    assert all(s["ReplicationLinkStatus"] == 0 for s in status), status
