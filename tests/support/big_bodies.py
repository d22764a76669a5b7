"""Sending a body far bigger than any route takes, and watching what it costs the server.

`big_post(url, path, chunked=...)` POSTs `HUGE` (200 MB) to `url` + `path`, over HTTP or
HTTPS (`context` verifies the server), with its Content-Length or chunked, reading while it
sends as curl and browsers do, and stops sending once answered; (status, body) of the
answer, or (0, why) without one. `Peak(pid)` tells how much a process's peak resident size
grows from the moment it is made (from /proc).
"""

from __future__ import annotations

import select
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

MB = 1024 * 1024
HUGE = 200 * MB
GROWTH = 20 * MB
"""What a refused body may add to a process at most."""


def big_post(
    url: str,
    path: str,
    *,
    chunked: bool,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, str]:
    """POST `HUGE` bytes to `url` + `path` (chunked, or with its Content-Length), reading
    while sending as curl does; (status, body) of the answer, or (0, why) without one. An
    https `url` is verified with `context` (default: the system's trust store)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", int(parts.port or (443 if parts.scheme == "https" else 80))
    sock: socket.socket = socket.create_connection((host, port), timeout=30)
    if parts.scheme == "https":
        sock = (context or ssl.create_default_context()).wrap_socket(sock, server_hostname=host)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = f"POST {path} HTTP/1.1\r\nHost: {authority}\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {HUGE}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    chunk = b"a" * (64 * 1024)
    piece = b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk
    pending = (head + "\r\n").encode()
    if "multipart" in (headers or {}).get("content-type", ""):  # one file of 200 MB
        part = b'--x\r\nContent-Disposition: form-data; name="logs"; filename="a.log"\r\n\r\n'
        pending += b"%x\r\n%b\r\n" % (len(part), part) if chunked else part
    sent = 0
    answer = b""
    sock.setblocking(False)
    try:
        while True:
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], 30)
            if not (readable or writable):
                break  # neither an answer nor room to send for 30 s
            if readable:
                try:
                    data: bytes | None = sock.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    data = None  # TLS records only (a session ticket): no answer yet
                if data is not None:
                    answer += data  # the answer has begun, or the server closed (b"")
                    break
            if not writable:
                continue
            try:
                pending = pending[sock.send(pending) :]
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue  # TLS wants the same bytes again
            if not pending and sent < HUGE:
                pending, sent = piece, sent + len(chunk)
            elif not pending and chunked and sent == HUGE:
                pending, sent = b"0\r\n\r\n", sent + 1
    except OSError:
        pass  # the server closed: its answer, if any, is there to read
    sock.settimeout(30)
    try:
        while b"\r\n\r\n" not in answer or len(answer) < _length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except OSError as exc:
        if not answer:
            return 0, f"no answer: {exc}"
    finally:
        sock.close()
    status_line, _, rest = answer.partition(b"\r\n")
    if not status_line:
        return 0, "no answer: the connection closed"
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")


def _length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value.strip())
    return len(answer) + 1  # read to the end


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class Peak:
    """How much the peak resident size of a process grows, from now."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts again from now
        self.before = _status_kb(pid, "VmRSS")

    def growth(self) -> int:
        return _status_kb(self.pid, "VmHWM") - self.before
