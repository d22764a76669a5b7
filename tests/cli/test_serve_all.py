"""`updatesync serve FILE --role all` as a real process: every role of a file written for this
host listens at the address and port the file gives it (TLS on), so `updatesync sync-now
--hierarchy FILE` reaches the top-level site through the same file and the sync runs; a file
written for many hosts runs from its loopback copy, which the command names."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.support.hierarchy_processes import ProcessHierarchy

from updatesync.config import load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.roles.supervisor import updatesync_command
from updatesync.security.pki import issue_certificate

pytestmark = pytest.mark.slow

ROLE_LINE = re.compile(r"^role (\S+) at (\S+)$", re.MULTILINE)
RUNNING = re.compile(r"^updatesync: (\d+) role\(s\) running", re.MULTILINE)
START_TIMEOUT = 300.0
CONSOLE = ("--console-port", "0")


class Serving:
    """`updatesync serve FILE --role all` (any console port) with its output in a file."""

    def __init__(self, file: Path, output: Path) -> None:
        self.output = output
        with output.open("wb") as stream:
            self.process = subprocess.Popen(
                [*updatesync_command(), "serve", str(file), "--role", "all", *CONSOLE],
                stdin=subprocess.DEVNULL,
                stdout=stream,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def wait_running(self) -> dict[str, str]:
        """Wait for the line saying every role runs; the URL of each role, by name."""
        deadline = time.monotonic() + START_TIMEOUT
        while not RUNNING.search(self.text()):
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.2)
        return {m[1]: m[2] for m in ROLE_LINE.finditer(self.text())}

    def stop(self) -> int:
        """SIGTERM, as systemd stops a service; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def _sync_now(file: Path, token_file: Path) -> subprocess.CompletedProcess[str]:
    token = ("--token-file", str(token_file))
    return subprocess.run(
        [*updatesync_command(), "sync-now", "--hierarchy", str(file), "--site", "CS1", *token],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_role_listens_where_the_file_says_and_sync_now_reaches_it(tmp_path: Path) -> None:
    """Finding: `--role all` put every role on a port of its own choosing, so `sync-now
    --hierarchy FILE` called CS1 at the file's port and found nothing there."""
    h = ProcessHierarchy(tmp_path, updates=60)
    issue_certificate(h.pki, "localhost", ["127.0.0.1"], file_name="console")
    h.prepare()
    h.start_upstream()
    served = Serving(h.file, tmp_path / "serve.out")
    try:
        roles = served.wait_running()
        placed = load_hierarchy(h.file)
        expected = {f"site:{site.code}": site.url for site in placed.sites}
        expected |= {f"sup:{sup.fqdn}": sup.url for site in placed.sites for sup in site.sups}
        assert {name: url for name, url in roles.items() if name != "console"} == expected
        assert all(url.startswith("https://127.0.0.1:") for url in expected.values())
        assert "loopback" not in served.text(), "no copy of a file written for this host"

        token = h.data / "CS1" / "admin.token"
        done = _sync_now(h.file, token)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "sync requested at CS1 (delta)" in " ".join(done.stdout.split())
        answer = h.wait_syncs("CS1", 1)
        assert answer["completed"] >= 1
    finally:
        code = served.stop()
        h.stop_upstream()
    assert code == 0, served.text()
    assert "updatesync: stopped" in served.text()


def test_a_file_for_many_hosts_runs_from_its_loopback_copy(tmp_path: Path) -> None:
    """The shipped example names hosts of its own (none of them this one) and gives every
    SUP port 8530: `--role all` runs every role at 127.0.0.1 at free ports, as written in a
    copy of the file that it names, and `sync-now --hierarchy COPY` reaches CS1."""
    file = tmp_path / "hierarchy.toml"
    text = example_hierarchy().read_text(encoding="utf-8")
    file.write_text(text.replace('kind = "microsoft-update"', 'kind = "none"'), encoding="utf-8")
    copy = tmp_path / "data" / "loopback" / "hierarchy.toml"
    served = Serving(file, tmp_path / "serve.out")
    try:
        roles = served.wait_running()
        said = "".join(served.text().split())
        assert "".join(f"written in {copy}".split()) in said, served.text()
        assert "".join(f"sync-now --hierarchy {copy}".split()) in said, served.text()
        placed = load_hierarchy(copy)
        assert roles["site:CS1"] == placed.site("CS1").url
        assert roles["sup:ps1sys.contoso.com"] == placed.find_sup("ps1sys.contoso.com")[1].url
        done = _sync_now(copy, tmp_path / "data" / "CS1" / "admin.token")
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        code = served.stop()
    assert code == 0, served.text()
