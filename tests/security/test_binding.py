"""Each role listens where the hierarchy file says, never on every interface by default
(issue 11, "Safe binding").

The finding: a role whose address in the hierarchy file is a host name listened on 0.0.0.0,
and the console always did, with no option. Here each role runs as its own process (`updatesync
serve FILE --role ...`) and the test reads, from /proc, the addresses its listening sockets
are bound to.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sockets import listening

from updatesync.config import load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.roles import RoleError, listen_address, local_address, loopback_file
from updatesync.roles.supervisor import ChildProcess, Supervisor, updatesync_command
from updatesync.security.signing import create_secret

START_TIMEOUT = 120.0
SUP = "sup:cs1site.contoso.com"


def write_file(root: Path, *, address: str | None, extra: str = "") -> Path:
    """The example hierarchy on free loopback ports, every site and SUP at `address` (None:
    no address, the FQDN is used), with `extra` added to the CS1 site's table."""
    file = root / "hierarchy.toml"
    secret = root / "hierarchy.secret"
    if not secret.exists():
        create_secret(secret)
    loopback_file(
        example_hierarchy(),
        file,
        settings={
            "data_dir": root / "data",
            "secret_file": secret,
            "schedule": "36500d",
            "schedule_start": None,
            "alerts": None,
            "criteria": None,
        },
    )
    text = file.read_text()
    replacement = "" if address is None else f'address = "{address}"'
    text = text.replace('address = "127.0.0.1"', replacement)
    if extra:
        text = text.replace('code = "CS1"', f'code = "CS1"\n{extra}', 1)
    file.write_text(text)
    return file


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Supervisor]]:
    supervisors: list[Supervisor] = []
    yield supervisors
    for supervisor in supervisors:
        supervisor.stop()


def run(
    started: list[Supervisor], file: Path, names: list[str], **options: object
) -> dict[str, ChildProcess]:
    supervisor = Supervisor(
        file,
        names,
        file.parent / "out",
        start_timeout=START_TIMEOUT,
        **options,  # type: ignore[arg-type]
    )
    started.append(supervisor)
    supervisor.start()
    return supervisor.children


def test_roles_at_host_names_listen_on_the_address_the_name_has_on_this_host(
    tmp_path: Path, started: list[Supervisor]
) -> None:
    """Finding: a role whose address is a host name listened on 0.0.0.0 (every interface);
    it now listens on the address of this host that the name resolves to."""
    file = write_file(tmp_path, address="localhost")
    children = run(started, file, [SUP, "site:CS1"])
    for name, child in children.items():
        bound = listening(child.pid)
        assert bound, f"{name} listens nowhere"
        assert {host for host, _ in bound} <= {"127.0.0.1", "::1"}, (name, bound)


def test_the_console_listens_on_loopback_unless_told(
    tmp_path: Path, started: list[Supervisor]
) -> None:
    """Finding: the console always listened on 0.0.0.0, with no option; it now listens on
    127.0.0.1, or on `--host`."""
    file = write_file(tmp_path, address="127.0.0.1")
    console = run(started, file, ["console"], console_port=0)["console"]
    assert {host for host, _ in listening(console.pid)} == {"127.0.0.1"}
    assert console.url.startswith("http://127.0.0.1:")

    other = run(started, file, ["console"], console_port=0, console_host="127.0.0.2")["console"]
    assert {host for host, _ in listening(other.pid)} == {"127.0.0.2"}


def test_a_role_listens_where_listen_says(tmp_path: Path, started: list[Supervisor]) -> None:
    """`listen` in a site's table of the file wins over its address."""
    file = write_file(tmp_path, address="localhost", extra='listen = "127.0.0.3"')
    site = run(started, file, ["site:CS1"])["site:CS1"]
    assert {host for host, _ in listening(site.pid)} == {"127.0.0.3"}


def test_a_name_that_is_not_of_this_host_stops_the_role_with_what_to_write(
    tmp_path: Path,
) -> None:
    """A role whose name does not resolve here does not fall back to every interface: it
    does not start, and says what to write in the file."""
    file = write_file(tmp_path, address="cs1site.invalid")
    result = subprocess.run(
        [*updatesync_command(), "serve", str(file), "--role", "site:CS1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "400"},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.search(
        r"error: site:CS1: cannot tell where to listen: cs1site\.invalid does not resolve .*"
        r"write `address` \(or `listen`\) of site CS1 in .*hierarchy\.toml as an address of "
        r'this host, or listen = "0\.0\.0\.0" to listen on every interface',
        " ".join(result.stderr.split()),
    ), result.stderr


# -- where a role listens, from the file alone -------------------------------------------------


def test_listen_address_from_the_file(tmp_path: Path) -> None:
    file = write_file(tmp_path, address="localhost", extra='listen = "0.0.0.0"')
    hierarchy = load_hierarchy(file)
    assert listen_address(hierarchy, "site:CS1") == "0.0.0.0"  # written: every interface
    assert listen_address(hierarchy, "site:PS1") in ("127.0.0.1", "::1")  # localhost
    assert listen_address(hierarchy, SUP) in ("127.0.0.1", "::1")

    ip_file = write_file(tmp_path, address="127.0.0.4")
    assert listen_address(load_hierarchy(ip_file), "site:CS1") == "127.0.0.4"


def test_an_address_is_taken_as_it_is_and_a_name_only_when_it_is_of_this_host() -> None:
    assert local_address("10.9.8.7", "x", "y") == "10.9.8.7"  # an address: bind says
    assert local_address("localhost", "x", "y") in ("127.0.0.1", "::1")
    with pytest.raises(RoleError, match=r"^what: nowhere\.invalid does not resolve .*; hint$"):
        local_address("nowhere.invalid", "what", "hint")
