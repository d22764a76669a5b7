"""Tests of Role's start/stop bookkeeping with tiny fake roles: what a failing start stops,
the order of closing, the role's servers and threads on stop; and what RoleContext tells the
signature check (the callers a hierarchy knows, the names a role is addressed by)."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from updatesync.config import load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.roles.context import Role, RoleContext, RoleError
from updatesync.roles.serving import bind
from updatesync.updateserver.database import DATABASE_FILE as STORE_FILE
from updatesync.updateserver.store import UpdateStore

WAIT = 30.0


async def _hello(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


APP = Starlette(routes=[Route("/", _hello)])


class FakeRole(Role):
    """A role whose start runs the given steps in order."""

    name = "fake role"

    def __init__(self, *steps: Callable[[FakeRole], object]) -> None:
        super().__init__()
        self.steps = steps
        self.closed: list[str] = []

    def _start(self) -> None:
        for step in self.steps:
            step(self)


def closer(what: str) -> Callable[[FakeRole], object]:
    def step(role: FakeRole) -> None:
        role._on_stop(lambda: role.closed.append(what))

    return step


def fail(role: FakeRole) -> None:
    raise RuntimeError("step failed")


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = bind("127.0.0.1", 0)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_start_returns_the_role_and_stop_closes_in_reverse_order() -> None:
    role = FakeRole(closer("a"), closer("b"), closer("c"))
    assert role.start() is role
    assert role.closed == []
    role.stop()
    assert role.closed == ["c", "b", "a"]


def test_stop_twice_closes_each_part_once() -> None:
    role = FakeRole(closer("a")).start()
    role.stop()
    role.stop()
    assert role.closed == ["a"]


def test_a_failing_start_step_stops_what_started() -> None:
    role = FakeRole(closer("a"), closer("b"), fail, closer("never"))
    with pytest.raises(RuntimeError, match="step failed"):
        role.start()
    assert role.closed == ["b", "a"]


def test_the_context_manager_starts_and_stops() -> None:
    with FakeRole(closer("a")) as role:
        assert role.closed == []
    assert role.closed == ["a"]


def test_stop_joins_the_roles_threads_before_closing() -> None:
    release = threading.Event()
    order: list[str] = []

    def work() -> None:
        release.wait(WAIT)
        order.append("thread done")

    def start_thread(role: FakeRole) -> None:
        role._on_stop(lambda: order.append("closed"))
        role._run_thread(work, "worker")

    role = FakeRole(start_thread).start()
    [thread] = [t for t in threading.enumerate() if t.name == "fake role worker"]
    assert thread.is_alive()
    release.set()
    role.stop()
    assert not thread.is_alive()
    assert order == ["thread done", "closed"]


def test_a_served_app_answers_until_the_role_stops() -> None:
    urls: list[str] = []
    role = FakeRole(lambda r: urls.append(r._serve(APP, 0, None, "127.0.0.1"))).start()
    try:
        [url] = urls
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/", timeout=WAIT).text == "hello"
    finally:
        role.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/", timeout=WAIT)


def test_a_port_in_use_is_a_role_error_and_stops_what_started(busy_port: int) -> None:
    urls: list[str] = []
    role = FakeRole(
        closer("a"),
        lambda r: urls.append(r._serve(APP, 0, None, "127.0.0.1")),
        lambda r: r._serve(APP, busy_port, None, "127.0.0.1"),
    )
    with pytest.raises(RoleError, match=f"fake role: cannot listen on 127.0.0.1:{busy_port}"):
        role.start()
    assert role.closed == ["a"]
    [url] = urls
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/", timeout=WAIT)


def test_a_database_that_cannot_be_used_is_a_role_error_naming_the_role(tmp_path: Path) -> None:
    """A damaged store (or site database) stops the role with one line: role, file, what
    to do; what had started is stopped."""
    (tmp_path / STORE_FILE).write_bytes(b"not a database at all" * 100)

    def open_store(role: FakeRole) -> None:
        UpdateStore.open(tmp_path)

    role = FakeRole(closer("a"), open_store)
    with pytest.raises(RoleError, match=r"^fake role: .*updateserver.sqlite: not a valid update"):
        role.start()
    assert role.closed == ["a"]


def test_the_callers_of_a_hierarchy_are_its_sites_sups_and_system_callers() -> None:
    hierarchy = load_hierarchy(example_hierarchy())
    callers = RoleContext(hierarchy, b"s" * 40).callers
    assert {"CS1", "PS1", "SS1", "cs1site.contoso.com", "console", "demo"} <= set(callers)
    assert len(callers) == len(set(callers))


def test_a_role_is_named_by_its_fqdn_address_and_listen_address() -> None:
    hierarchy = load_hierarchy(example_hierarchy())
    context = RoleContext(hierarchy, b"s" * 40, listen_host="10.0.0.5")
    assert context.names("cs1site.contoso.com", None) == ("cs1site.contoso.com", "10.0.0.5")
    everywhere = RoleContext(hierarchy, b"s" * 40, listen_host="0.0.0.0")
    assert everywhere.names("a.contoso.com", "127.0.0.1") == ("a.contoso.com", "127.0.0.1")


def test_without_tls_every_call_between_roles_shares_one_verifying_context() -> None:
    """httpx's default (`verify=True`) loads its CA bundle for every client made, 20 to 80
    ms each, and a sync makes several (the site's client of each SUP, each SUP's client of
    its upstream): without TLS every role's calls share one context, built once, which
    still verifies an https peer against the system's trust store."""
    context = RoleContext(load_hierarchy(example_hierarchy()), b"s" * 40)
    shared = context.verify
    assert isinstance(shared, ssl.SSLContext)
    assert shared.verify_mode is ssl.CERT_REQUIRED and shared.check_hostname
    assert context.verify is shared
    assert context.verify_for("https://sws.update.microsoft.com") is shared
    assert context.verify_for(context.hierarchy.top.url) is shared
