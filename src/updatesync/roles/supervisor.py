"""Each role of a hierarchy in its own OS process: `updatesync serve FILE --role all
--processes`.

The supervisor starts every role named (each SUP, then each site, then the console) as a
child process, `python -m updatesync serve FILE --role NAME` with the same options, which
runs the role at the address and port the hierarchy file gives it, as on a host of its own.
A child's output goes to `<output_dir>/<role>.out`. A role is ready when it has printed where
it listens and answers HTTP there (HTTPS with TLS on: its certificate must chain to the
hierarchy's CA; the probe reaches it at loopback, so its name is not checked). The
supervisor restarts nothing by itself: `exited()` names the children that ended on their
own, and `stop()` stops every child (SIGTERM, a wait, then SIGKILL for what is left), so
that no process outlives it.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from updatesync.config import HierarchyError, load_hierarchy
from updatesync.roles.context import RoleError
from updatesync.security.pki import TlsError, client_context
from updatesync.security.private_files import private_dir

START_TIMEOUT = 120.0
"""Seconds a role has to answer after its process starts."""
STOP_TIMEOUT = 30.0
"""Seconds the children have to end after SIGTERM before they are killed."""
TAIL_LINES = 20
"""Lines of a child's output shown when it fails."""
_POLL = 0.1


class ChildFailed(RoleError):
    """A child process did not become ready, or ended on its own; the message says which,
    its exit code and the end of its output."""


class Cancelled(RoleError):
    """The supervisor was told to stop while it was starting the roles."""


class ChildProcess:
    """One child process: its command, its output file, and the URL it announced.

    `announce` finds, in the child's output, the line that says where it listens: group 1
    of the pattern is the URL."""

    def __init__(
        self, name: str, command: Sequence[str], output: Path, announce: re.Pattern[str]
    ) -> None:
        self.name = name
        self.command = list(command)
        self.output = output
        self.announce = announce
        self.url = ""
        self.verify: ssl.SSLContext | bool = True
        """What the readiness probe verifies an https role's certificate with."""
        self._process: subprocess.Popen[bytes] | None = None
        self._offset = 0

    @property
    def pid(self) -> int:
        return self._process.pid if self._process is not None else 0

    def start(self) -> ChildProcess:
        private_dir(self.output.parent)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.output.open("ab") as stream:
            self._offset = stream.tell()
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return self

    def poll(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return self._process.poll() if self._process is not None else None

    def text(self) -> str:
        """The child's output since it started."""
        try:
            with self.output.open("rb") as stream:
                stream.seek(self._offset)
                return stream.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def failure(self, reason: str = "") -> ChildFailed:
        """The error saying this child failed: its exit code once it has ended, else
        `reason`, with the end of its output."""
        code = self.poll()
        ended = f"exited with code {code}" if code is not None else reason
        return ChildFailed(
            f"{self.name} (pid {self.pid}) {ended}; the end of its output ({self.output}):\n"
            + (self.tail() or "(nothing)")
        )

    def wait_ready(self, deadline: float, cancel: threading.Event | None = None) -> str:
        """Wait until the child announced its URL and answers HTTP there; the URL."""
        while not self.url:
            found = self.announce.search(self.text())
            if found:
                self.url = found.group(1)
                break
            self._pause(deadline, cancel, "did not say where it listens in time")
        probe = _reachable(self.url)
        # A local probe: no proxy.
        with httpx.Client(timeout=5, trust_env=False, verify=self.verify) as client:
            while True:
                try:
                    client.get(probe + "/")
                    return self.url
                except httpx.HTTPError:
                    self._pause(deadline, cancel, f"did not answer at {self.url} in time")

    def _pause(self, deadline: float, cancel: threading.Event | None, late: str) -> None:
        if self.poll() is not None:
            raise self.failure()
        if time.monotonic() > deadline:
            raise self.failure(late)
        if cancel is not None and cancel.wait(_POLL):
            raise Cancelled(f"stopped while {self.name} was starting")
        if cancel is None:
            time.sleep(_POLL)

    def terminate(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to end (reaping it); its exit code, None if still running."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL."""
        stop_all([self], timeout)


def stop_all(children: Sequence[ChildProcess], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every child, wait up to `timeout` for all, SIGKILL what is left and reap it."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        if child.wait(max(deadline - time.monotonic(), 0)) is None:
            child.kill()
            child.wait()


def _reachable(url: str) -> str:
    """The URL to probe a server listening on every interface at: its loopback address."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in ("0.0.0.0", "::"):
        loopback = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
        netloc = f"{loopback}:{parts.port}" if parts.port else loopback
        return urlunsplit(parts._replace(netloc=netloc))
    return url.rstrip("/")


def updatesync_command() -> list[str]:
    """How to run the `updatesync` command with this Python."""
    return [sys.executable, "-m", "updatesync"]


def update_server_process(data: Path, port: int, output: Path) -> ChildProcess:
    """A stand-alone update server (`updatesync updateserver serve`) as a child process on
    loopback, not started yet: a stand-in upstream for a hierarchy run on one machine."""
    command = [*updatesync_command(), "updateserver", "serve", "--data", str(data)]
    announce = re.compile(r"^listening on (http://\S+?):\s", re.MULTILINE)
    return ChildProcess("upstream", [*command, "--port", str(port)], output, announce)


class Supervisor:
    """Runs each named role of a hierarchy file as its own process.

    `names`: role names as `parse_role` gives them (`sup:FQDN`, `site:CODE`), and `console`
    for the web console (on `console_host`, `console_port`). `upstream`: passed on as
    `--upstream`. `files`: a role's own copy of the hierarchy file, by role name (the others
    run `file`)."""

    def __init__(
        self,
        file: Path,
        names: Sequence[str],
        output_dir: Path,
        *,
        upstream: str | None = None,
        console_port: int | None = None,
        console_host: str | None = None,
        files: Mapping[str, Path] | None = None,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.file = file
        self.names = list(names)
        self.output_dir = output_dir
        self.upstream = upstream
        self.console_port = console_port
        self.console_host = console_host
        self.files = dict(files or {})
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.children: dict[str, ChildProcess] = {}
        self._verify: ssl.SSLContext | bool | None = None

    def probe_verify(self) -> ssl.SSLContext | bool:
        """What the readiness probes verify with: the hierarchy's CA (names not checked: the
        probe reaches each role at loopback); True without TLS, or when the file cannot be
        read (the child then says why)."""
        if self._verify is None:
            self._verify = True
            try:
                tls = load_hierarchy(self.file).tls
                if tls is not None:
                    context = client_context(tls.ca)
                    context.check_hostname = False
                    self._verify = context
            except (HierarchyError, TlsError, OSError):
                pass
        return self._verify

    def command(self, name: str) -> list[str]:
        file = self.files.get(name, self.file)
        command = [*updatesync_command(), "serve", str(file), "--role", name]
        if self.upstream is not None:
            command += ["--upstream", self.upstream]
        if name == "console" and self.console_port is not None:
            command += ["--console-port", str(self.console_port)]
        if name == "console" and self.console_host is not None:
            command += ["--host", self.console_host]
        return command

    def output(self, name: str) -> Path:
        return self.output_dir / (re.sub(r"[^A-Za-z0-9._-]", "-", name) + ".out")

    def start(self, cancel: threading.Event | None = None) -> Supervisor:
        """Start every role and wait until each answers: the SUPs first, then the sites
        (a site's sync needs its SUPs), then the console, each group in parallel. If one
        fails, or `cancel` is set, every child started is stopped and the error raised."""
        waves = [
            [n for n in self.names if n.startswith("sup:")],
            [n for n in self.names if n.startswith("site:")],
            [n for n in self.names if not n.startswith(("sup:", "site:"))],
        ]
        try:
            for wave in waves:
                for name in wave:
                    self._launch(name)
                deadline = time.monotonic() + self.start_timeout
                for name in wave:
                    self.children[name].wait_ready(deadline, cancel)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, name: str) -> ChildProcess:
        if name in self.children and self.children[name].poll() is None:
            raise RoleError(f"{name} is already running (pid {self.children[name].pid})")
        announce = re.compile(rf"^role {re.escape(name)} at (\S+)", re.MULTILINE)
        child = ChildProcess(name, self.command(name), self.output(name), announce)
        child.verify = self.probe_verify()
        child.start()
        self.children[name] = child
        return child

    def start_role(self, name: str) -> ChildProcess:
        """Start one role (again) and wait until it answers."""
        child = self._launch(name)
        try:
            child.wait_ready(time.monotonic() + self.start_timeout)
        except BaseException:
            child.stop(self.stop_timeout)
            raise
        return child

    def stop_role(self, name: str) -> int | None:
        """Stop one role (SIGTERM, then SIGKILL after the timeout); its exit code."""
        child = self.children.pop(name)
        child.stop(self.stop_timeout)
        return child.poll()

    def kill_role(self, name: str) -> None:
        """Kill one role's process at once (SIGKILL), as a crash would end it."""
        child = self.children.pop(name)
        child.kill()
        child.wait()

    def exited(self) -> list[ChildProcess]:
        """The children that have ended on their own."""
        return [child for child in self.children.values() if child.poll() is not None]

    def stop(self) -> None:
        """Stop every child: the console and the sites before the SUPs."""
        stop_all(list(reversed(self.children.values())), self.stop_timeout)
        self.children.clear()

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
