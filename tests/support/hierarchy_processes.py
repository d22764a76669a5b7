"""A hierarchy with every role in its own OS process on loopback, for acceptance tests.

`ProcessHierarchy(tmp_path, updates=N)` writes the article's hierarchy (the example file:
CS1 → PS1 with ps1site and ps1sys, PS2; SS1 under PS1) with every site and SUP at 127.0.0.1
on a free port (`loopback_file`), a shared secret, TLS on (a CA under `root/pki` and a
certificate per host valid at 127.0.0.1; a test calling a role passes `verify=h.verify`),
and a stand-in upstream update server (its own process too, plain HTTP as an upstream
outside the hierarchy may be) loaded with a generated catalog. `start()` runs each role as
its own process with the product's supervisor (as `updatesync serve FILE --role all
--processes` does) and returns once each answers; `stop_role(role)` / `kill_role(role)` /
`start_role(role)` stop, kill (SIGKILL) and restart one. A role may be given its own copy
of the hierarchy file (`files`, written by `write_file`), for instance to reach its parent
through a proxy.
`completed(code)` is how many syncs the site finished since its process started, and
`wait_syncs(code, n)` long-polls its SMS Provider until it finished n syncs.

`database=new` gives every site and SUP a database of its own in the hierarchy file (its
`database` key, which each role's process reads): `new(name)` gives a fresh database's URL
for the role `name` (a site code or a SUP's FQDN), such as `lambda name:
databases.new(name).url` (tests/conftest.py); without it every role keeps SQLite in its data
folder. `site_database(code)` and `store(fqdn)` open a role's database wherever it is.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from updatesync.config import load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.metadata.export import read_export, write_export
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.roles import free_port, loopback_file, parse_role
from updatesync.roles.supervisor import (
    ChildProcess,
    Supervisor,
    update_server_process,
    updatesync_command,
)
from updatesync.security.pki import CA_CERT, client_context, create_ca, issue_certificate
from updatesync.security.signing import HmacAuth, create_secret, load_secret
from updatesync.site.database.site_db import SiteDatabase
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.license_terms import add_generated_license_files
from updatesync.updateserver.store import UpdateStore

START_TIMEOUT = 120.0


class ProcessHierarchy:
    def __init__(
        self,
        root: Path,
        *,
        updates: int = 500,
        replication_timeout: str = "3m",
        database: Callable[[str], str] | None = None,
    ):
        self.root = root
        self.updates = updates
        self.data = root / "data"
        self.secret_file = root / "hierarchy.secret"
        self.upstream_port = free_port()
        self.upstream_dir = root / "upstream"
        self.replication_timeout = replication_timeout
        self.file = root / "hierarchy.toml"
        self.files: dict[str, Path] = {}
        self.ports: dict[str, int] = {}
        self.databases: dict[str, str] = {}
        """The database URL of each site (by code) and SUP (by FQDN) given one."""
        self.source = example_hierarchy()
        if database is not None:
            self.source = root / "hierarchy-databases.toml"
            self._with_databases(self.source, database)
        self.pki = root / "pki"
        self._certificates()
        self.verify = client_context(self.pki / CA_CERT)
        self.ports = self.write_file(self.file)
        self.supervisor: Supervisor | None = None
        self.upstream: ChildProcess | None = None

    # -- files ----------------------------------------------------------------------------

    def _certificates(self) -> None:
        create_ca(self.pki)
        example = load_hierarchy(example_hierarchy())
        hosts = {s.fqdn for s in example.sites} | {
            sup.fqdn for s in example.sites for sup in s.sups
        }
        for host in sorted(hosts):
            issue_certificate(self.pki, host, ["127.0.0.1"])

    def _with_databases(self, dest: Path, database: Callable[[str], str]) -> None:
        """Write to `dest` the example hierarchy with a `database` key for every site and SUP,
        the URL `database(name)` gives for it (`databases`)."""
        lines: list[str] = []
        after_header = False
        for line in example_hierarchy().read_text(encoding="utf-8").splitlines():
            lines.append(line)
            named = re.fullmatch(r'(?:code|fqdn) = "([^"]+)"', line)
            if after_header and named:
                url = database(named.group(1))
                self.databases[named.group(1)] = url
                lines.append(f"database = {json.dumps(url)}")
            after_header = line.startswith(("[[sites]]", "[[sites.sups]]"))
        example = load_hierarchy(example_hierarchy())
        roles = [s.code for s in example.sites] + [p.fqdn for s in example.sites for p in s.sups]
        assert sorted(self.databases) == sorted(roles), self.databases
        dest.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def cert_of(self, fqdn: str) -> tuple[Path, Path]:
        return self.pki / f"{fqdn}.pem", self.pki / f"{fqdn}.key"

    def write_file(self, dest: Path, ports: Mapping[str, int] | None = None) -> dict[str, int]:
        """Write the hierarchy file with every role on loopback at this hierarchy's ports,
        or at `ports` (by role name) for those given; the port of every role."""
        settings = {
            "data_dir": self.data,
            "secret_file": self.secret_file,
            "replication_timeout": self.replication_timeout,
            "schedule": "36500d",  # no scheduled sync during a test
            "schedule_start": None,
            "alerts": None,  # the default overdue limit, past the schedule
            "logs": {"tz_bias": 0},
            "upstream": {"kind": "wsus", "url": f"http://127.0.0.1:{self.upstream_port}"},
            "criteria": None,  # every update of the stand-in upstream
            "tls": {"ca": (self.pki / CA_CERT).as_posix(), "dir": self.pki.as_posix()},
        }
        return loopback_file(
            self.source, dest, settings=settings, ports={**self.ports, **(ports or {})}
        )

    @property
    def site_ports(self) -> dict[str, int]:
        return {n.split(":", 1)[1]: p for n, p in self.ports.items() if n.startswith("site:")}

    @property
    def sup_ports(self) -> dict[str, int]:
        return {n.split(":", 1)[1]: p for n, p in self.ports.items() if n.startswith("sup:")}

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        create_secret(self.secret_file)
        self.month1 = self.root / "month1.cab"
        self.month2 = self.root / "month2.cab"
        write_export(self.month1, generate_catalog(self.updates, 11))
        with read_export(self.month1) as previous:
            write_export(self.month2, evolve_catalog(previous.records(), 100, 12))
        with UpdateStore.open(self.upstream_dir) as store:
            import_export_cabinet(store, self.month1)
            add_generated_license_files(store)

    def next_month(self) -> None:
        """Next month's catalog at the upstream (stopped and started around the import)."""
        self.stop_upstream()
        with UpdateStore.open(self.upstream_dir) as store:
            import_export_cabinet(store, self.month2)
            add_generated_license_files(store)
        self.start_upstream()

    # -- processes -------------------------------------------------------------------------

    @property
    def role_names(self) -> list[str]:
        return parse_role(load_hierarchy(self.file), "all")

    def start_upstream(self) -> None:
        self.upstream = update_server_process(
            self.upstream_dir, self.upstream_port, self.root / "upstream.out"
        ).start()
        try:
            self.upstream.wait_ready(time.monotonic() + START_TIMEOUT)
        except BaseException:
            self.stop_upstream()
            raise

    def stop_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.stop()
            self.upstream = None

    def start(self) -> None:
        self.prepare()
        self.start_upstream()
        self.supervisor = Supervisor(
            self.file,
            self.role_names,
            self.root / "processes",
            files=self.files,
            start_timeout=START_TIMEOUT,
        ).start()

    def start_role(self, name: str) -> ChildProcess:
        assert self.supervisor is not None
        return self.supervisor.start_role(name)

    def stop_role(self, name: str) -> None:
        assert self.supervisor is not None
        self.supervisor.stop_role(name)

    def kill_role(self, name: str) -> None:
        assert self.supervisor is not None
        self.supervisor.kill_role(name)

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        self.stop_upstream()

    # -- asking the sites -------------------------------------------------------------------

    def site_url(self, code: str) -> str:
        return f"https://127.0.0.1:{self.site_ports[code]}"

    def sync_now(self, code: str = "CS1") -> None:
        subprocess.run(
            [*updatesync_command(), "sync-now", "--site", code, "--hierarchy", str(self.file)],
            check=True,
            capture_output=True,
            text=True,
        )

    def completed(self, code: str) -> int:
        """How many syncs the site finished since its process started."""
        answer = httpx.get(
            f"{self.site_url(code)}/api/sites/{code}/syncs",
            params={"after": 0},
            timeout=30,
            verify=self.verify,
            auth=self.signed(),
        )
        return int(answer.json()["completed"])

    def wait_syncs(self, code: str, count: int, timeout: float = 300.0) -> dict:
        """Long-poll the site's provider until it finished `count` syncs since it started."""
        deadline = timeout
        answer: dict = {}
        with httpx.Client(
            base_url=self.site_url(code), timeout=70, auth=self.signed(), verify=self.verify
        ) as client:
            while deadline > 0:
                answer = client.get(
                    f"/api/sites/{code}/syncs", params={"after": count - 1, "wait": 30}
                ).json()
                if answer["completed"] >= count:
                    return answer
                deadline -= 30
        raise AssertionError(f"site {code} finished {answer.get('completed')} of {count} syncs")

    def signed(self, caller: str = "CS1") -> HmacAuth:
        return HmacAuth(load_secret(self.secret_file), caller)

    def log(self, code: str, name: str = "WSyncMgr.log") -> Path:
        return self.data / code / "logs" / name

    # -- the roles' databases ----------------------------------------------------------------

    def site_database(self, code: str) -> SiteDatabase:
        """The site database of `code`, where the hierarchy file puts it (close it after)."""
        return SiteDatabase.open(self.data / code, url=self.databases.get(code))

    def store(self, fqdn: str) -> UpdateStore:
        """The store of the SUP `fqdn`'s update server, where the hierarchy file puts it."""
        return UpdateStore.open(self.data / fqdn, url=self.databases.get(fqdn))
