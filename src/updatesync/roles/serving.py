"""Running an ASGI application on a real socket in a background thread.

`serve --role all` and the demo run every role of a hierarchy in one process, each on its
own loopback port, and the tests do the same; `updatesync updateserver serve` runs one in the
foreground. The socket is bound and listening before the server thread starts, so a client
may connect at once: its connection waits in the listen queue until the server accepts it.
With a certificate and key (`ssl_certfile`, `ssl_keyfile`) the server speaks HTTPS only.
Every application served here is inside `security.limits.LimitedBodies` (`server_config`):
no port reads a request body before its size and time limits are checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from pathlib import Path
from types import TracebackType

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from updatesync.security import limits
from updatesync.security.limits import KEEP_ALIVE_TIMEOUT, limit_bodies


class _Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with three changes for a server on a network:

    - every connection is TCP_NODELAY: an answer is written as its headers then its body,
      and with Nagle's algorithm on, the body waited for the client's delayed ACK of the
      headers (40 ms on Linux) on every request of a kept-alive connection after the first
      (asyncio sets the option itself only on sockets it made; `bind` makes the one here);

    - a request's line and headers must arrive within `limits.HEADER_TIMEOUT` seconds of the
      connection, or of its first byte after an answer; a client that connects and sends
      nothing, or trickles its headers, is disconnected (uvicorn times out neither);
    - an idle TLS connection is dropped at once when the server stops: a graceful TLS close
      waits for the client's close_notify, which a client holding the connection idle in
      its pool never sends, so each stop took asyncio's 30 s TLS shutdown timeout."""

    _headers_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        no_delay(transport.get_extra_info("socket"))
        super().connection_made(transport)
        self._expect_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._expect_headers()  # a request begun, its headers not all here yet
        else:
            self._headers_done()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def _expect_headers(self) -> None:
        if self._headers_timer is None:
            self._headers_timer = self.loop.call_later(limits.HEADER_TIMEOUT, self._headers_late)

    def _headers_done(self) -> None:
        if self._headers_timer is not None:
            self._headers_timer.cancel()
            self._headers_timer = None

    def _headers_late(self) -> None:
        self._headers_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def shutdown(self) -> None:
        idle = self.cycle is None or self.cycle.response_complete
        if idle and self.transport.get_extra_info("sslcontext") is not None:
            self.transport.abort()
            return
        super().shutdown()


def no_delay(sock: object) -> None:
    """Send small writes at once on a TCP connection (TCP_NODELAY), if `sock` is one."""
    if sock is None or getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):  # a connection already gone: nothing to send on
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port), or a clear OSError. It is
    made as a TCP socket (IPPROTO_TCP), so the connections asyncio accepts on it are
    TCP_NODELAY like those on a socket asyncio makes itself."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port or stop "
            "what uses it"
        ) from exc
    sock.listen(128)
    return sock


def url_of(sock: socket.socket, *, https: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    scheme = "https" if https else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def server_config(
    app: object, ssl_certfile: Path | None = None, ssl_keyfile: Path | None = None
) -> uvicorn.Config:
    """How every server of updatesync runs `app`: its request bodies limited (the limits
    the application declares, else the defaults), idle connections closed; over HTTPS with
    `ssl_certfile` and `ssl_keyfile`."""
    tls = {}
    if ssl_certfile is not None:
        tls = {"ssl_certfile": str(ssl_certfile), "ssl_keyfile": str(ssl_keyfile)}
    return uvicorn.Config(
        limit_bodies(app),
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        http=_Protocol,
        **tls,
    )


def serve_forever(
    app: object,
    sock: socket.socket,
    *,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> None:
    """Serve `app` on `sock` in this thread until interrupted (Ctrl-C, SIGTERM); over HTTPS
    with `ssl_certfile` and `ssl_keyfile`."""
    config = server_config(app, ssl_certfile, ssl_keyfile)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def _join_ended_loop_workers(timeout: float) -> None:
    """Join the worker threads that ran an application's synchronous code for an event loop
    that has ended (AnyIO tells them to end with their loop's main task), so that none is
    left running once its server has stopped."""
    for thread in threading.enumerate():
        root = getattr(thread, "root_task", None)
        if (
            isinstance(root, asyncio.Task)
            and root.done()
            and thread is not threading.current_thread()
        ):
            thread.join(timeout)


class BackgroundServer:
    """`with BackgroundServer(app) as server: httpx.get(server.url + "/...")`."""

    def __init__(
        self,
        app: object,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
        ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None,
    ) -> None:
        """`sock`: a socket already bound and listening (see `bind`), used instead of
        binding host:port, so that a port can be reserved before its server is built.
        `ssl_certfile`, `ssl_keyfile`: serve HTTPS only, with this certificate and key."""
        self.app = app
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self.host = host
        self.port = port
        self._given = sock
        if sock is not None:
            self.host, self.port = sock.getsockname()[:2]
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.ssl_certfile else 'http'}://{host}:{self.port}"

    def start(self) -> BackgroundServer:
        sock = self._given if self._given is not None else bind(self.host, self.port)
        self._given = None
        self.port = sock.getsockname()[1]
        config = server_config(self.app, self.ssl_certfile, self.ssl_keyfile)
        if self.ssl_certfile is not None:
            try:
                config.load()  # a certificate that cannot be loaded fails here, not in the thread
            except BaseException:
                sock.close()
                raise
        self._socket = sock
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"http {self.url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            _join_ended_loop_workers(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
