"""A hierarchy with every role in its own OS process on loopback, for acceptance tests.

`ProcessHierarchy(tmp_path, updates=N)` writes the article's hierarchy (CS1 → PS1 with
ps1site and ps1sys, PS2; SS1 under PS1) with every site and SUP at 127.0.0.1 on a free
port, a shared secret, and a stand-in upstream update server (its own process too) loaded
with a generated catalog. `start()` starts each role as `updatesync serve FILE --role R`
and returns once each has printed that it listens; `stop(role)` / `kill(role)` /
`start_role(role)` stop, kill (SIGKILL) and restart one. A role may be given its own copy
of the hierarchy file (`files`), for instance to reach its parent through a proxy.
`completed(code)` is how many syncs the site finished since its process started, and
`wait_syncs(code, n)` long-polls its SMS Provider until it finished n syncs.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from updatesync.metadata.export import read_export, write_export
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.security.signing import HmacAuth, create_secret, load_secret
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore

SITES = (
    ("CS1", "cs1site.contoso.com", "cas", None, ("cs1site.contoso.com",)),
    ("PS1", "ps1site.contoso.com", "primary", "CS1", ("ps1site.contoso.com", "ps1sys.contoso.com")),
    ("PS2", "ps2site.contoso.com", "primary", "CS1", ("ps2site.contoso.com",)),
    ("SS1", "ss1site.contoso.com", "secondary", "PS1", ("ss1site.contoso.com",)),
)
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def updatesync_command() -> list[str]:
    return [sys.executable, "-m", "updatesync"]


@dataclass
class RoleProcess:
    name: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)


class ProcessHierarchy:
    def __init__(self, root: Path, *, updates: int = 500, replication_timeout: str = "3m"):
        self.root = root
        self.updates = updates
        self.data = root / "data"
        self.secret_file = root / "hierarchy.secret"
        self.site_ports = {code: free_port() for code, *_ in SITES}
        self.sup_ports = {fqdn: free_port() for *_, sups in SITES for fqdn in sups}
        self.upstream_port = free_port()
        self.upstream_dir = root / "upstream"
        self.replication_timeout = replication_timeout
        self.file = root / "hierarchy.toml"
        self.files: dict[str, Path] = {}
        self.processes: dict[str, RoleProcess] = {}
        self.upstream: subprocess.Popen[str] | None = None

    # -- files ----------------------------------------------------------------------------

    def hierarchy_text(self, site_ports: dict[str, int] | None = None) -> str:
        ports = {**self.site_ports, **(site_ports or {})}
        parts = [
            "[hierarchy]",
            'name = "Contoso"',
            f'data_dir = "{self.data.as_posix()}"',
            f'secret_file = "{self.secret_file.as_posix()}"',
            f'replication_timeout = "{self.replication_timeout}"',
            "[hierarchy.logs]",
            "tz_bias = 0",
            "[hierarchy.upstream]",
            'kind = "wsus"',
            f'url = "http://127.0.0.1:{self.upstream_port}"',
        ]
        for code, fqdn, kind, parent, sups in SITES:
            parts += [
                "[[sites]]",
                f'code = "{code}"',
                f'fqdn = "{fqdn}"',
                f'type = "{kind}"',
                'address = "127.0.0.1"',
                f"port = {ports[code]}",
            ]
            if parent:
                parts.append(f'parent = "{parent}"')
            for sup in sups:
                parts += [
                    "[[sites.sups]]",
                    f'fqdn = "{sup}"',
                    'address = "127.0.0.1"',
                    f"port = {self.sup_ports[sup]}",
                ]
        return "\n".join(parts) + "\n"

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.file.write_text(self.hierarchy_text(), encoding="utf-8")
        create_secret(self.secret_file)
        self.month1 = self.root / "month1.cab"
        self.month2 = self.root / "month2.cab"
        write_export(self.month1, generate_catalog(self.updates, 11))
        with read_export(self.month1) as previous:
            write_export(self.month2, evolve_catalog(previous.records(), 100, 12))
        with UpdateStore.open(self.upstream_dir) as store:
            import_export_cabinet(store, self.month1)

    def next_month(self) -> None:
        """Next month's catalog at the upstream (stopped and started around the import)."""
        self.stop_upstream()
        with UpdateStore.open(self.upstream_dir) as store:
            import_export_cabinet(store, self.month2)
        self.start_upstream()

    # -- processes -------------------------------------------------------------------------

    @property
    def role_names(self) -> list[str]:
        sups = [f"sup:{fqdn}" for *_, sups in SITES for fqdn in sups]
        return sups + [f"site:{code}" for code, *_ in SITES]

    def start_upstream(self) -> None:
        command = [
            *updatesync_command(),
            "updateserver",
            "serve",
            "--data",
            str(self.upstream_dir),
            "--port",
            str(self.upstream_port),
        ]
        self.upstream = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        _wait_for_line(self.upstream, "listening on", START_TIMEOUT, [])

    def stop_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.terminate()
            self.upstream.wait(30)
            self.upstream = None

    def start(self) -> None:
        self.prepare()
        self.start_upstream()
        for name in self.role_names:
            self.start_role(name)

    def start_role(self, name: str) -> RoleProcess:
        file = self.files.get(name, self.file)
        command = [*updatesync_command(), "serve", str(file), "--role", name]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        role = RoleProcess(name, process)
        _wait_for_line(process, f"role {name} at", START_TIMEOUT, role.lines)
        self.processes[name] = role
        return role

    def stop_role(self, name: str) -> None:
        role = self.processes.pop(name)
        role.process.terminate()
        role.process.wait(30)

    def kill_role(self, name: str) -> None:
        role = self.processes.pop(name)
        role.process.send_signal(signal.SIGKILL)
        role.process.wait(30)

    def stop(self) -> None:
        for name in list(self.processes):
            self.stop_role(name)
        self.stop_upstream()

    # -- asking the sites -------------------------------------------------------------------

    def site_url(self, code: str) -> str:
        return f"http://127.0.0.1:{self.site_ports[code]}"

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
            f"{self.site_url(code)}/api/sites/{code}/syncs", params={"after": 0}, timeout=30
        )
        return int(answer.json()["completed"])

    def wait_syncs(self, code: str, count: int, timeout: float = 300.0) -> dict:
        """Long-poll the site's provider until it finished `count` syncs since it started."""
        deadline = timeout
        answer: dict = {}
        with httpx.Client(base_url=self.site_url(code), timeout=70) as client:
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


def _wait_for_line(
    process: subprocess.Popen[str], text: str, timeout: float, lines: list[str]
) -> None:
    """Read the process's output until a line contains `text`; keep reading it afterwards
    (so the pipe never fills) in a daemon thread."""
    found: queue.Queue[bool] = queue.Queue()
    stream: IO[str] | None = process.stdout
    assert stream is not None

    def read() -> None:
        seen = False
        for line in stream:
            lines.append(line.rstrip("\n"))
            if not seen and text in line:
                seen = True
                found.put(True)
        if not seen:
            found.put(False)

    threading.Thread(target=read, daemon=True).start()
    try:
        ok = found.get(timeout=timeout)
    except queue.Empty:
        ok = False
    if not ok:
        process.kill()
        raise AssertionError(f"{process.args} did not print {text!r}:\n" + "\n".join(lines))
