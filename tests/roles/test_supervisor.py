"""`updatesync serve FILE --role all --processes`: every role of the file in its own process,
each answering where it says it listens, and no process left once the supervisor stops."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from updatesync.config import load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.roles import loopback_file
from updatesync.roles.serving import bind
from updatesync.security.access import read_token_file

pytestmark = pytest.mark.slow

ROLE_LINE = re.compile(r"^role (\S+) at (\S+) \(pid (\d+)\)$", re.MULTILINE)
RUNNING = re.compile(r"^updatesync: (\d+) role\(s\) running", re.MULTILINE)
START_TIMEOUT = 300.0
CONSOLE = ("--console-port", "0")
ONE_SITE = """
[hierarchy]
name = "One"
data_dir = "data"

[hierarchy.upstream]
kind = "none"

[[sites]]
code = "CS1"
fqdn = "cs1site.contoso.com"
type = "cas"

[[sites.sups]]
fqdn = "cs1site.contoso.com"
"""


class Served:
    """`updatesync serve FILE --role all --processes` with its output in a file."""

    def __init__(self, file: Path, output: Path) -> None:
        self.output = output
        with output.open("wb") as stream:
            self.process = subprocess.Popen(
                [*_updatesync(), "serve", str(file), "--role", "all", "--processes", *CONSOLE],
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def wait_running(self) -> dict[str, tuple[str, int]]:
        """Wait for the line saying every role runs; (url, pid) by role name."""
        deadline = time.monotonic() + START_TIMEOUT
        while not RUNNING.search(self.text()):
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.2)
        return {m[1]: (m[2], int(m[3])) for m in ROLE_LINE.finditer(self.text())}

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text()):
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _updatesync() -> list[str]:
    return [sys.executable, "-m", "updatesync"]


def _alive(pid: int, file: Path) -> bool:
    """True while `pid` is a process serving `file` (not a zombie, not a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state != "Z" and str(file) in command


def _serving(file: Path) -> list[int]:
    """Every live process serving `file`."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [pid for pid in pids if _alive(pid, file)]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _probe(url: str) -> str:
    return url.replace("//0.0.0.0:", "//127.0.0.1:")


def _gone(pids: list[int], file: Path, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    left = pids
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [pid for pid in left if _alive(pid, file)]
    return left


def test_a_child_that_dies_is_reported_and_the_others_are_stopped(tmp_path: Path) -> None:
    source = tmp_path / "one.toml"
    source.write_text(ONE_SITE, encoding="utf-8")
    file = tmp_path / "hierarchy.toml"
    loopback_file(source, file)
    served = Served(file, tmp_path / "serve.out")
    try:
        roles = served.wait_running()
        assert set(roles) == {"sup:cs1site.contoso.com", "site:CS1", "console"}
        os.kill(roles["site:CS1"][1], signal.SIGKILL)
        assert served.process.wait(120) == 1, served.text()
        text = served.text()
        assert f"site:CS1 (pid {roles['site:CS1'][1]}) exited with code -9" in text
        assert "role site:CS1 at" in text  # the end of its output
        assert str(tmp_path / "data" / "processes" / "site-CS1.out") in text.replace("\n", "")
        assert _gone([pid for _, pid in roles.values()], file) == []
    finally:
        served.stop()


def test_a_role_that_cannot_start_stops_the_others_and_says_why(tmp_path: Path) -> None:
    source = tmp_path / "one.toml"
    source.write_text(ONE_SITE, encoding="utf-8")
    file = tmp_path / "hierarchy.toml"
    taken = bind("127.0.0.1", 0)
    try:
        port = int(taken.getsockname()[1])
        loopback_file(source, file, ports={"site:CS1": port})
        served = Served(file, tmp_path / "serve.out")
        try:
            assert served.process.wait(START_TIMEOUT) == 1, served.text()
        finally:
            served.stop()
    finally:
        taken.close()
    text = " ".join(served.text().split())
    assert "site:CS1" in text and "exited with code 1" in text, text
    assert f"cannot listen on 127.0.0.1:{port}" in text, text
    assert _serving(file) == []


def test_every_role_of_the_example_runs_in_its_own_process_and_ctrl_c_leaves_none(
    tmp_path: Path,
) -> None:
    """The shipped example names hosts of its own and gives every SUP port 8530: run with
    `--role all --processes`, each role gets a free loopback port in a copy of the file
    (same data folder and secret), runs in a process of its own, a child of the supervisor,
    and answers where the copy says; the top site's token works; Ctrl-C leaves no process
    behind. (A file already on loopback is run as it is: tests/cli/test_serve_all.py.)"""
    file = tmp_path / "hierarchy.toml"
    file.write_text(example_hierarchy().read_text(encoding="utf-8"), encoding="utf-8")
    copy = tmp_path / "data" / "loopback" / "hierarchy.toml"
    served = Served(file, tmp_path / "serve.out")
    try:
        roles = served.wait_running()
        assert str(copy) in "".join(served.text().split()), served.text()
        sites, sups = {"CS1", "PS1", "PS2", "SS1"}, {"cs1site", "ps1site", "ps1sys", "ps2site"}
        assert set(roles) == {
            *(f"site:{code}" for code in sites),
            *(f"sup:{name}.contoso.com" for name in sups | {"ss1site"}),
            "console",
        }
        placed = load_hierarchy(copy)
        ports = {f"site:{site.code}": site.port for site in placed.sites} | {
            f"sup:{sup.fqdn}": sup.port for site in placed.sites for sup in site.sups
        }
        assert len(set(ports.values())) == len(ports), "one port per role"
        for name, (url, pid) in roles.items():
            assert _parent(pid) == served.process.pid, name
            assert httpx.get(_probe(url) + "/", timeout=30).status_code < 500, name
            if name != "console":
                assert url == f"http://127.0.0.1:{ports[name]}", (name, url)
        assert (tmp_path / "data" / "hierarchy.secret").exists(), "the file's own secret"
        cs1 = roles["site:CS1"][0]
        token_file = tmp_path / "data" / "CS1" / "admin.token"
        assert f"the Full Administrator's API token is in {token_file}" in served.text()
        token = read_token_file(token_file)
        answer = httpx.get(
            f"{cs1}/api/sites/CS1/content-version",
            timeout=30,
            headers={"authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200, answer.text
        # The console answers (its pages need a sign-in: the login page, then).
        assert httpx.get(_probe(roles["console"][0]) + "/login", timeout=30).status_code == 200

        served.process.send_signal(signal.SIGINT)
        assert served.process.wait(120) == 0, served.text()
        assert _gone([pid for _, pid in roles.values()], copy) == []
        assert _serving(copy) == []
        assert "updatesync: stopped" in served.text()
    finally:
        served.stop()
