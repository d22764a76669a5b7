"""Hosts apart on one Linux machine: a network namespace per host, joined by a bridge.

`Network(hosts)` lays out one network namespace per host (`Host`: a short name and the
names and addresses it answers to), all named `<prefix><random>-<host>` so that parallel
runs never meet, and one more namespace holding only a bridge (`br0`). Each host
namespace has its loopback up and one link, `eth0`, a veth pair whose other end is a port of
the bridge, with the host's addresses on it (in one /24). `/etc/netns/<namespace>/hosts`
maps every host name of the network to its address, so that a name resolves to the same
address inside every namespace (`ip netns exec` mounts that file over /etc/hosts). Nothing is
made in the machine's own network namespace: no interface, route or address there reaches
the hosts, so the test process cannot talk to them by mistake; it asks a host to do it
(`run`, `start`).

`Network.unavailable()` says why namespaces cannot be made here (not Linux, not root, no
`ip`), None when they can; `create()` also raises `NetworkUnavailable` when `ip netns add`
is refused or the bridge and links cannot be made. `destroy()` removes every namespace, link
and /etc/netns folder it made, and is safe to call after a failure part way through
`create()`.

`run(host, argv)` runs a command in a host's namespace and waits; `start(host, argv, output)`
starts a long-running one (`HostProcess`: its output in a file, `wait_for(pattern)` until a
line matches, `stop()` with SIGTERM then SIGKILL); `cut(host)` / `restore(host)` set the
host's link down and up (`ip link set eth0 down` inside the host): until it is up again
the host's routes are gone, so it reaches no other host (a new connection fails at once with
"Network is unreachable", one already open waits for its timeout) and none reaches it;
`drop_connections(host)` closes the ones already open to other hosts (`ss -K`), so that
the next request fails at once too.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

NETNS_ETC = Path("/etc/netns")
LINK = "eth0"
"""The host's link, inside its namespace."""
BRIDGE = "br0"
PREFIX_LEN = 24
TAIL_LINES = 15
"""Lines of a process's output shown when it fails."""


class NetworkUnavailable(Exception):
    """Network namespaces cannot be made on this machine; the message says why."""


class IpFailed(RuntimeError):
    """An `ip` command failed; the message gives it and what it said."""


@dataclass(frozen=True)
class Host:
    """A host: its short name (`cs1`) and the (host name, address) pairs it answers to; its
    first pair is its own name."""

    name: str
    names: tuple[tuple[str, str], ...]

    @property
    def address(self) -> str:
        return self.names[0][1]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise IpFailed(f"ip {' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
    return done


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"({path} unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


class HostProcess:
    """A long-running command started in a host's namespace, its output in `output`."""

    def __init__(self, host: str, argv: Sequence[str], output: Path, process: subprocess.Popen):
        self.host = host
        self.argv = list(argv)
        self.output = output
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for(self, pattern: str, timeout: float, *, what: str) -> re.Match[str]:
        """Wait until a line of the output matches `pattern`; AssertionError naming `what`,
        the end of its output, when the process ends or `timeout` passes first."""
        compiled = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            text = self.output.read_text(errors="replace") if self.output.exists() else ""
            found = compiled.search(text)
            if found:
                return found
            code = self.process.poll()
            if code is not None:
                raise AssertionError(
                    f"{what} on host {self.host} ended (exit code {code}) before printing "
                    f"{pattern!r}; the end of its output ({self.output}):\n{_tail(self.output)}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{what} on host {self.host} did not print {pattern!r} within {timeout:g} "
                    f"s; the end of its output ({self.output}):\n{_tail(self.output)}"
                )
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(0.1)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, a wait, then SIGKILL: the process (and what it started) is gone after."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        _signal_group(self.process.pid, signal.SIGKILL)  # anything it left behind
        if self.process.poll() is None:
            self.process.wait(10)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group `pid` leads (each process is started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Network:
    """The hosts' namespaces and the bridge between them (see the module)."""

    def __init__(self, hosts: Sequence[Host], *, prefix: str = "us") -> None:
        tag = secrets.token_hex(3)
        self.hosts = {host.name: host for host in hosts}
        self.bridge_ns = f"{prefix}{tag}-br"
        self.namespaces = {host.name: f"{prefix}{tag}-{host.name}" for host in hosts}
        self.processes: list[HostProcess] = []
        self._made: list[str] = []

    # -- whether it can be done ----------------------------------------------------------

    @staticmethod
    def unavailable() -> str | None:
        """Why network namespaces cannot be made here, or None."""
        if not sys.platform.startswith("linux"):
            return f"network namespaces need Linux, not {sys.platform}"
        if os.geteuid() != 0:
            return "making network namespaces needs root (CI runs this test as root)"
        if shutil.which("ip") is None:
            return "the `ip` command (iproute2) is not installed"
        return None

    # -- making and removing -------------------------------------------------------------

    def hosts_file(self) -> str:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        for host in self.hosts.values():
            lines += [f"{address}\t{name}" for name, address in host.names]
        return "\n".join(lines) + "\n"

    def create(self) -> Network:
        """Make the namespaces, the bridge, the links and the hosts files."""
        reason = self.unavailable()
        if reason is not None:
            raise NetworkUnavailable(reason)
        first = _ip("netns", "add", self.bridge_ns, check=False)
        if first.returncode != 0:
            raise NetworkUnavailable(f"`ip netns add` was refused: {first.stderr.strip()}")
        self._made.append(self.bridge_ns)
        try:
            self._lay_out()
        except IpFailed as exc:  # a kernel without bridges or veth, a limited container
            raise NetworkUnavailable(f"cannot make the hosts' network: {exc}") from None
        return self

    def _lay_out(self) -> None:
        br = self.bridge_ns
        _ip("-n", br, "link", "add", BRIDGE, "type", "bridge")
        _ip("-n", br, "link", "set", BRIDGE, "up")
        hosts_text = self.hosts_file()
        for host in self.hosts.values():
            ns = self.namespaces[host.name]
            _ip("netns", "add", ns)
            self._made.append(ns)
            etc = NETNS_ETC / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts_text)
            port = f"p-{host.name}"  # the bridge's end of the host's link
            _ip("-n", br, *f"link add {port} type veth peer name {LINK} netns {ns}".split())
            _ip("-n", br, "link", "set", port, "master", BRIDGE)
            _ip("-n", br, "link", "set", port, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            for _, address in host.names:
                _ip("-n", ns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", LINK)
            _ip("-n", ns, "link", "set", LINK, "up")

    def destroy(self) -> None:
        """Stop every process started here, then remove every namespace (their links go
        with them) and /etc/netns folder made; never raises."""
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):  # the rest must still go
                process.stop()
        for ns in reversed(self._made):
            _ip("netns", "delete", ns, check=False)
            shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
        self._made.clear()

    def __enter__(self) -> Network:
        try:
            return self.create()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.destroy()

    # -- inside a host -------------------------------------------------------------------

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[host], *argv]

    def run(
        self,
        host: str,
        argv: Sequence[str],
        *,
        timeout: float = 120.0,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` in `host`'s namespace and wait for it (output captured)."""
        return subprocess.run(
            self.command(host, argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )

    def start(
        self,
        host: str,
        argv: Sequence[str],
        output: Path,
        *,
        env: Mapping[str, str] | None = None,
    ) -> HostProcess:
        """Start `argv` in `host`'s namespace, its output (and errors) to `output`; stopped
        by `destroy()` at the latest."""
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("ab") as sink:
            process = subprocess.Popen(
                self.command(host, argv),
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        started = HostProcess(host, argv, output, process)
        self.processes.append(started)
        return started

    def cut(self, host: str) -> None:
        """Set the host's link down: it reaches no other host, and none reaches it."""
        _ip("-n", self.namespaces[host], "link", "set", LINK, "down")

    def drop_connections(self, host: str) -> None:
        """Close (`ss -K`) the host's open TCP connections to other hosts at once, as a cut
        link ends them in time: after `cut`, a kept-alive connection would otherwise hold its
        next request for the caller's whole timeout. Its connections within itself stay."""
        own = {address for _, address in self.hosts[host].names}
        others = [
            address
            for other in self.hosts.values()
            for _, address in other.names
            if address not in own
        ]
        peers = " or ".join(f"dst {address}" for address in others)
        done = self.run(host, ["ss", "-K", "-t", "state", "established", f"( {peers} )"])
        if done.returncode != 0:
            raise IpFailed(f"ss -K in {host} failed: {done.stderr.strip() or done.stdout}")

    def restore(self, host: str) -> None:
        """Set the host's link up again."""
        _ip("-n", self.namespaces[host], "link", "set", LINK, "up")
