"""Request bodies are limited before they are read (issue 11, "Limits before reading").

The finding: every port read a body whole before any limit or signature check; one 200 MB
POST to a signed site path, the SMS Provider, the console or the MS-WSUSSS endpoint added
400-600 MB to the process, three at once passed 1 GB. Here each role runs as its own process
(`updatesync serve FILE --role ...`, `updatesync updateserver serve`), and a 200 MB POST to
each route, sent with its Content-Length, sent chunked (no Content-Length) and three at once,
is refused with 413 while the process grows by less than 20 MB (its peak resident size, from
/proc). The client sends its body while it watches for the answer, as curl and browsers do,
and stops sending once answered.

Then `updatesync.security.limits` alone: the limit of a path, the answer a refused body gets
whatever the application does, a slow body cut off, and what an application declares.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from big_bodies import GROWTH, MB, Peak, big_post
from console_login import SignedIn, console_user
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from updatesync.demo import example_hierarchy
from updatesync.roles import loopback_file
from updatesync.roles.serving import BackgroundServer
from updatesync.roles.supervisor import ChildProcess, Supervisor, updatesync_command
from updatesync.security import limits
from updatesync.security.limits import (
    UNREAD_KEPT,
    BodyLimits,
    BodyRefused,
    LimitedBodies,
    limit_bodies,
    size_text,
)
from updatesync.security.signing import create_secret
from updatesync.updateserver.admin_api import admin_routes
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.service import SOAP_BODY_LIMIT, create_app

SUP = "sup:cs1site.contoso.com"
SOAP = "/ServerSyncWebService/ServerSyncWebService.asmx"
START_TIMEOUT = 120.0

# -- every role in its own process -------------------------------------------------------------


class Processes(dict[str, ChildProcess]):
    """The running processes by role, and the folder they run in (`root`)."""

    root: Path


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    root = tmp_path_factory.mktemp("limits")
    file = root / "hierarchy.toml"
    secret = root / "hierarchy.secret"
    create_secret(secret)
    loopback_file(
        example_hierarchy(),
        file,
        settings={
            "data_dir": root / "data",
            "secret_file": secret,
            "schedule": "36500d",  # no sync during the test
            "schedule_start": None,
            "alerts": None,  # the default overdue limit, past the schedule
            "criteria": None,
        },
    )
    supervisor = Supervisor(file, [SUP, "site:CS1", "console"], root / "out", console_port=0)
    standalone = ChildProcess(
        "updateserver",
        [
            *updatesync_command(),
            "updateserver",
            "serve",
            "--data",
            str(root / "standalone"),
            "--port",
            "0",
            "--upstream",
            "http://127.0.0.1:9",
        ],
        root / "out" / "updateserver.out",
        announce=re.compile(r"^listening on (http://\S+?):\s", re.MULTILINE),
    )
    try:
        supervisor.start()
        standalone.start().wait_ready(time.monotonic() + START_TIMEOUT)
        running = Processes({**supervisor.children, "updateserver": standalone})
        running.root = root
        yield running
    finally:
        standalone.stop()
        supervisor.stop()


TARGETS = [
    pytest.param("site:CS1", "/site/v1/hello", {}, id="signed-site-path"),
    pytest.param("site:CS1", "/api/sites/CS1/sync", {}, id="provider-sync"),
    pytest.param("console", "/sync", {"origin": "{url}", "cookie": "{session}"}, id="console-sync"),
    pytest.param(
        "console",
        "/logs",
        {
            "content-type": "multipart/form-data; boundary=x",
            "origin": "{url}",
            "cookie": "{session}",
        },
        id="console-logs",
    ),
    pytest.param(SUP, SOAP, {"content-type": "text/xml"}, id="sup-ms-wsusss"),
    pytest.param(SUP, "/api/sync", {}, id="sup-admin-api"),
    pytest.param("updateserver", SOAP, {"content-type": "text/xml"}, id="updateserver-ms-wsusss"),
    pytest.param("updateserver", "/api/sync", {}, id="updateserver-admin-api"),
]


@pytest.fixture(scope="module")
def console_session(processes: Processes) -> Iterator[SignedIn]:
    """A Full Administrator signed in to the console (its posts are then read, and limited,
    rather than refused for want of a session)."""
    token = (processes.root / "data" / "CS1" / "admin.token").read_text(encoding="utf-8")
    admin = {"authorization": f"Bearer {token.strip()}"}
    user = console_user(
        processes["console"].url.rstrip("/"), processes["site:CS1"].url.rstrip("/"), admin
    )
    yield user
    user.close()


@pytest.mark.parametrize(("role", "path", "headers"), TARGETS)
def test_a_200_mb_post_is_refused_and_the_process_grows_by_less_than_20_mb(
    processes: Processes,
    role: str,
    path: str,
    headers: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    """Finding: bodies read whole before any limit or signature check (400-600 MB a POST,
    three at once over 1 GB)."""
    child = processes[role]
    url = child.url.rstrip("/")
    session = ""
    if role == "console":
        user: SignedIn = request.getfixturevalue("console_session")
        session = f"updatesync_console={user.client.cookies['updatesync_console']}"
    sent = {k: v.format(url=url, session=session) for k, v in headers.items()}
    peak = Peak(child.pid)

    status, text = big_post(url, path, chunked=False, headers=sent)
    assert status == 413, text
    assert "most" in text  # the limit, said
    # Without a length, a route that authenticates refuses on the headers (401) before any
    # of the body is read; the others count the body as it comes (413).
    refused = {413, 401} if role != "console" and not path.endswith(".asmx") else {413}
    status, text = big_post(url, path, chunked=True, headers=sent)
    assert status in refused, text

    answers: list[tuple[int, str]] = []

    def one() -> None:
        answers.append(big_post(url, path, chunked=True, headers=sent))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == 3 and {status for status, _ in answers} <= refused, answers
    assert peak.growth() < GROWTH, f"{role} grew by {peak.growth() / MB:.1f} MB"
    assert child.poll() is None
    assert httpx.get(url + "/", timeout=30).status_code < 500  # and still answering


def test_a_request_within_the_limits_is_still_served(
    processes: Processes, fixtures_dir: Path
) -> None:
    """The limits leave room for the real requests: a captured MS-WSUSSS request (the
    biggest of the captures) gets its SOAP answer."""
    exchanges = fixtures_dir / "wsusss" / "exchanges"
    biggest = max(exchanges.glob("*/request.body"), key=lambda p: p.stat().st_size)
    lines = (biggest.parent / "request.headers").read_text().splitlines()
    action = next(
        line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("soapaction:")
    )
    url = processes["updateserver"].url.rstrip("/")
    answer = httpx.post(
        url + SOAP,
        content=biggest.read_bytes(),
        headers={"content-type": "text/xml; charset=utf-8", "soapaction": action},
        timeout=30,
    )
    assert answer.status_code != 413
    assert answer.text.startswith("<?xml") or "Envelope" in answer.text
    assert biggest.stat().st_size * 100 < SOAP_BODY_LIMIT


# -- slow clients ------------------------------------------------------------------------------


def test_a_client_sending_a_byte_a_second_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slow clients time out: a body that stops coming after its first byte is answered 408
    once its time is up (here 1 s, instead of `BODY_TIMEOUT`), and the connection closed.
    (The client sends nothing more after the first byte: a byte the server never reads would
    turn its close into a reset that can lose the answer.)"""
    monkeypatch.setattr(limits, "BODY_TIMEOUT", 1.0)
    monkeypatch.setattr(limits, "MIN_RATE", 1024 * 1024)
    with UpdateStore.open(tmp_path / "store") as store:
        app = create_app(StoreBackend(store), extra_routes=admin_routes(store, None))
        with BackgroundServer(app) as server:
            sock = socket.create_connection((server.host, server.port), timeout=60)
            head = f"POST {SOAP} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<"
            sock.sendall(head.encode())
            answer = b""
            while data := sock.recv(65536):  # to the end: the server closes the connection
                answer += data
            sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"request body too slow" in answer


# -- the middleware alone ------------------------------------------------------------------------


def test_the_longest_prefix_gives_the_limit() -> None:
    given = BodyLimits(default=10, prefixes={"/api/": 20, "/api/upload": 30})
    assert given.limit_for("/") == 10
    assert given.limit_for("/api/status") == 20
    assert given.limit_for("/api/upload/x") == 30
    assert BodyLimits().limit_for("/anything") == limits.JSON_BODY_LIMIT == MB


def test_the_time_a_body_may_take_grows_with_its_size() -> None:
    given = BodyLimits(body_timeout=2, min_rate=1000)
    assert given.seconds_for(0) == 2
    assert given.seconds_for(5000) == 7
    assert BodyLimits().seconds_for(MB) == limits.BODY_TIMEOUT + MB / limits.MIN_RATE


def test_sizes_are_said_in_words() -> None:
    assert [size_text(n) for n in (100, 64 * 1024, MB, 3 * MB // 2, 50 * MB)] == [
        "100 bytes",
        "64 KB",
        "1 MB",
        "1.5 MB",
        "50 MB",
    ]


async def _echo(request: Request) -> Response:
    return JSONResponse({"bytes": len(await request.body())})


async def _swallows(request: Request) -> Response:
    """An application that catches every failure and answers 200 all the same."""
    try:
        await request.body()
    except Exception as exc:
        return JSONResponse({"caught": type(exc).__name__})
    return JSONResponse({"caught": None})


async def _refuses_unread(request: Request) -> Response:
    """An application that refuses on the headers alone (a token or signature check)."""
    return JSONResponse({"error": "no token"}, 401)


async def _raises_other(request: Request) -> Response:
    try:
        await request.body()
    except BodyRefused as exc:
        raise RuntimeError("wrapped") from exc
    return Response("read")


@pytest.fixture(scope="module")
def small() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/echo", _echo, methods=["POST"]),
            Route("/swallow", _swallows, methods=["POST"]),
            Route("/other", _raises_other, methods=["POST"]),
            Route("/refuse", _refuses_unread, methods=["POST", "GET"]),
            Route("/big/echo", _echo, methods=["POST"]),
        ]
    )
    app.state.body_limits = BodyLimits(
        default=1000, prefixes={"/big/": 5000, "/refuse": 2 * UNREAD_KEPT}
    )
    with BackgroundServer(app) as server:
        yield server.url


def _chunks(size: int) -> Iterator[bytes]:
    for _ in range(size // 100):
        yield b"x" * 100


def test_a_body_within_the_limit_the_application_declares_is_read(small: str) -> None:
    assert httpx.post(small + "/echo", content=b"x" * 1000).json() == {"bytes": 1000}
    assert httpx.post(small + "/big/echo", content=_chunks(5000)).json() == {"bytes": 5000}


@pytest.mark.parametrize("path", ["/echo", "/swallow", "/other"])
def test_a_body_over_the_limit_gets_413_whatever_the_application_does(
    small: str, path: str
) -> None:
    for content in (b"x" * 1001, _chunks(2000)):
        answer = httpx.post(small + path, content=content)
        assert answer.status_code == 413
        assert answer.text == (
            f"request body too large: {path} takes at most 1000 bytes; nothing more of it "
            "was read\n"
        )
        assert answer.headers["connection"] == "close"


def test_an_answer_given_before_the_body_is_read_closes_the_connection(small: str) -> None:
    """A client sending a body the application refused on its headers is not left sending
    into a connection nobody reads: the answer says `Connection: close`."""
    for content in (b"x" * (UNREAD_KEPT + 1), _chunks(900)):
        answer = httpx.post(small + "/refuse", content=content)
        assert answer.status_code == 401
        assert answer.headers["connection"] == "close"
    # No body, or one small enough for the server to read anyway: the connection is kept.
    assert "connection" not in httpx.get(small + "/refuse").headers
    assert "connection" not in httpx.post(small + "/refuse", content=b"x" * 900).headers


def test_a_content_length_that_is_not_a_number_is_refused(small: str) -> None:
    host, port = small.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1e9\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_an_application_is_limited_once() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    limited = limit_bodies(app, BodyLimits(default=5))
    assert limit_bodies(limited) is limited
    assert limited.limits.default == 5
    assert isinstance(limit_bodies(app), LimitedBodies)
    assert limit_bodies(app).limits == BodyLimits()


def test_once_the_body_has_arrived_waiting_for_the_client_to_go_is_not_timed() -> None:
    """A long answer that listens for the client leaving (a long poll, a stream) is not cut
    off by the time a body may take."""
    seen: list[str] = []
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await anyio.sleep(0.3)  # longer than the body may take
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((await receive())["type"])
        seen.append((await receive())["type"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limited = LimitedBodies(app, BodyLimits(body_timeout=0.05, min_rate=10**9))
    scope = {"type": "http", "path": "/poll", "headers": [(b"content-length", b"2")]}
    anyio.run(limited, scope, receive, send)
    assert seen == ["http.request", "http.disconnect"]
    assert sent[0]["status"] == 200
