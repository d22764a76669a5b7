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
