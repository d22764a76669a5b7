"""Serving an application on a real socket: `roles/serving.py`."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from updatesync.roles.serving import BackgroundServer
from updatesync.security import limits
from updatesync.security.pki import client_context, create_ca, issue_certificate, server_files


def _app() -> Starlette:
    return Starlette(routes=[Route("/", lambda _request: PlainTextResponse("up"))])


def test_stopping_drops_an_idle_tls_connection_instead_of_waiting_for_its_close_notify(
    tmp_path: Path,
) -> None:
    """A client keeping a TLS connection idle in its pool (every role's httpx client does)
    never answers the server's close_notify: a graceful close waited asyncio's 30 s TLS
    shutdown timeout at every stop. The idle connection is dropped instead, so the client
    sees the connection end without a close_notify."""
    create_ca(tmp_path / "pki")
    issue_certificate(tmp_path / "pki", "localhost", ["127.0.0.1"])
    cert, key = server_files(tmp_path / "pki", "localhost")
    server = BackgroundServer(_app(), ssl_certfile=cert, ssl_keyfile=key).start()
    context = client_context(tmp_path / "pki" / "ca.pem")
    raw = socket.create_connection((server.host, server.port), timeout=60)
    client = context.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    answer = b""
    while not answer.endswith(b"up"):
        answer += client.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 ")
    stopping = threading.Thread(target=server.stop)
    stopping.start()
    with pytest.raises((ssl.SSLEOFError, ConnectionResetError)):
        # A graceful close would read as b"" (the server's close_notify).
        while client.recv(65536):
            pass
    stopping.join()
    client.close()


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET / HTTP/1.1\r\nHost: local", b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HT"],
    ids=["nothing", "half-a-header", "half-a-second-request"],
)
def test_a_client_whose_headers_do_not_come_is_disconnected(
    monkeypatch: pytest.MonkeyPatch, sent: bytes
) -> None:
    """Slow clients time out before their body too: a connection that sends nothing, or
    trickles the request line and headers (on a new connection or after an answer), is
    closed once `HEADER_TIMEOUT` has passed (here 0.5 s); uvicorn alone waits for ever."""
    monkeypatch.setattr(limits, "HEADER_TIMEOUT", 0.5)
    with BackgroundServer(_app()) as server:
        sock = socket.create_connection((server.host, server.port), timeout=60)
        sock.sendall(sent)
        answer = b""
        while data := sock.recv(65536):  # to the end: the server closes the connection
            answer += data
        sock.close()
    complete = sent.count(b"\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 ") == complete  # a whole request was answered


def test_a_client_that_sends_its_headers_in_time_is_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "HEADER_TIMEOUT", 5.0)
    with (
        BackgroundServer(_app()) as server,
        socket.create_connection((server.host, server.port), timeout=60) as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"up")


def _server_side(client: socket.socket) -> socket.socket:
    """The server's end of `client`'s connection (the socket asyncio accepted)."""
    import gc

    mine = client.getsockname()
    for thing in gc.get_objects():
        if isinstance(thing, socket.socket) and thing.fileno() != -1 and thing is not client:
            try:
                if thing.getpeername() == mine:
                    return thing
            except OSError:
                continue
    raise AssertionError("the server holds no socket for this connection")


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_every_answer_is_sent_at_once_not_after_the_clients_delayed_ack(
    tmp_path: Path, tls: bool
) -> None:
    """An answer is written as its headers, then its body. On a connection without
    TCP_NODELAY (asyncio sets it only on sockets it made itself, and every server here
    listens on a socket of its own), the body of every answer after a kept-alive
    connection's first waited for the client's delayed ACK: 40 ms a call, 7 calls for a
    delta sync. Every accepted connection is TCP_NODELAY."""
    files: dict[str, Path] = {}
    if tls:
        create_ca(tmp_path / "pki")
        issue_certificate(tmp_path / "pki", "localhost", ["127.0.0.1"])
        cert, key = server_files(tmp_path / "pki", "localhost")
        files = {"ssl_certfile": cert, "ssl_keyfile": key}
    with BackgroundServer(_app(), **files) as server:
        client = socket.create_connection((server.host, server.port), timeout=60)
        if tls:
            context = client_context(tmp_path / "pki" / "ca.pem")
            client = context.wrap_socket(client, server_hostname="localhost")
        for _ in range(2):  # kept alive: the second answer is the one that waited
            client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = b""
            while not answer.endswith(b"up"):
                answer += client.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 ")
        accepted = _server_side(client)
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        client.close()
