"""File replication: CS1's outbox/CS1.SYN reaches the WSyncMgr.box of each child site over
signed HTTP, durably (a destination down, a manager restarted) and once (duplicates)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from updatesync.logs.cmtrace import CMTraceLog, Severity, read_cmtrace
from updatesync.retry_policy import FILE_REPLICATION, jitter_source
from updatesync.roles.serving import BackgroundServer
from updatesync.security.signing import HmacAuth, require_signature
from updatesync.site.replication.file_replication import (
    ROUTE,
    FileReplicationError,
    ReceivedLedger,
    ReplicationManager,
    file_receiver_routes,
)
from updatesync.site.sync.inbox import Inbox
from updatesync.vocabulary import REPLICATION_MANAGER

SECRET = b"0123456789abcdef0123456789abcdef-shared"
WAIT = 20.0
"""Upper bound for waits on events; a passing test never waits this long."""


class ChildSite:
    """A child site's receiving endpoint on loopback, behind the signature check."""

    def __init__(self, root: Path, code: str, *, port: int = 0, secret: bytes = SECRET) -> None:
        self.code = code
        self.inboxes = root / code / "inboxes"
        self.received: list[tuple[str, str]] = []
        self.arrived = threading.Event()
        routes = file_receiver_routes(self.inboxes, code, on_received=self._on_received)
        self.server = BackgroundServer(
            require_signature(Starlette(routes=routes), secret), port=port
        )

    def _on_received(self, sender: str, name: str) -> None:
        self.received.append((sender, name))
        self.arrived.set()

    @property
    def box(self) -> Path:
        return self.inboxes / "WSyncMgr.box"

    def files(self) -> list[str]:
        return (
            sorted(p.name for p in self.box.iterdir() if p.is_file()) if self.box.exists() else []
        )


class Directory:
    """`resolve` for the manager: site code -> base URL; `retrying[site]` is set once the
    manager asks for a site a second time (its first attempt failed)."""

    def __init__(self) -> None:
        self.urls: dict[str, str] = {}
        self.calls: Counter[str] = Counter()
        self.retrying: defaultdict[str, threading.Event] = defaultdict(threading.Event)

    def __call__(self, site: str) -> str:
        self.calls[site] += 1
        if self.calls[site] >= 2:
            self.retrying[site].set()
        return self.urls[site]


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as running:
        yield running


@pytest.fixture
def outbox_file(tmp_path: Path) -> Path:
    outbox = tmp_path / "CS1" / "inboxes" / "WSyncMgr.box" / "outbox"
    outbox.mkdir(parents=True)
    (outbox / "CS1.SYN").write_bytes(b"")
    return outbox / "CS1.SYN"


def serve(stack: contextlib.ExitStack, site: ChildSite, directory: Directory) -> ChildSite:
    site.server.start()
    stack.callback(site.server.stop)
    directory.urls[site.code] = site.server.url
    return site


def held_port() -> socket.socket:
    """A loopback port that is bound but not listening: connections to it are refused, as to
    a site whose server is down, and no other program can take it meanwhile."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    return holder


def new_manager(
    tmp_path: Path, directory: Directory, *, secret: bytes = SECRET
) -> ReplicationManager:
    return ReplicationManager(
        tmp_path / "CS1" / "inboxes" / "replmgr.box",
        "CS1",
        resolve=directory,
        auth=HmacAuth(secret, "CS1"),
        log=CMTraceLog(tmp_path / "CS1" / "logs" / "replmgr.log", component=REPLICATION_MANAGER),
        retry_initial=0.01,
        retry_max=0.05,
        timeout=5.0,
    )


def log_lines(tmp_path: Path) -> list[tuple[Severity | None, str]]:
    entries = list(read_cmtrace(tmp_path / "CS1" / "logs" / "replmgr.log"))
    assert {e.component for e in entries} == {REPLICATION_MANAGER}
    return [(e.severity, e.message) for e in entries]


def post(site: ChildSite, rest: str, nid: str, **kwargs: object) -> httpx.Response:
    kwargs.setdefault("auth", HmacAuth(SECRET, "CS1"))
    url = f"{site.server.url}{ROUTE}/{rest}?id={nid}&from=CS1"
    return httpx.post(url, content=b"", **kwargs)  # type: ignore[arg-type]


def test_cs1_replicates_to_ps1_and_ps2(tmp_path: Path, stack, outbox_file: Path) -> None:
    directory = Directory()
    ps1 = serve(stack, ChildSite(tmp_path, "PS1"), directory)
    ps2 = serve(stack, ChildSite(tmp_path, "PS2"), directory)
    with new_manager(tmp_path, directory) as manager:
        nid = manager.replicate(outbox_file, ["PS1", "PS2"])
        assert manager.wait_delivered(WAIT)
        assert manager.pending() == {}
    assert ps1.files() == ps2.files() == ["CS1.SYN"]
    assert ps1.received == ps2.received == [("CS1", "CS1.SYN")]
    assert outbox_file.exists(), "the caller decides when the outbox file goes"
    assert (ps1.inboxes / "replmgr.box" / "received" / nid).exists()
    messages = [m for _, m in log_lines(tmp_path)]
    assert f"Replicating {outbox_file} to (PS1, PS2): queued as notification {nid}" in messages[0]
    for site in (ps1, ps2):
        assert any(
            m.startswith(f"Delivered CS1.SYN to site {site.code} at {site.server.url}")
            for m in messages
        )


def test_a_destination_down_at_first_gets_the_file_once_it_comes_up(
    tmp_path: Path, stack, outbox_file: Path
) -> None:
    directory = Directory()
    ps2 = serve(stack, ChildSite(tmp_path, "PS2"), directory)
    holder = held_port()
    port = holder.getsockname()[1]
    directory.urls["PS1"] = f"http://127.0.0.1:{port}"
    ps1 = ChildSite(tmp_path, "PS1", port=port)
    manager = stack.enter_context(new_manager(tmp_path, directory))
    manager.replicate(outbox_file, ["PS1", "PS2"])

    assert ps2.arrived.wait(WAIT), "PS2 is served at once, PS1 being down does not hold it up"
    assert manager.wait_delivered(WAIT, site="PS2")
    assert directory.retrying["PS1"].wait(WAIT)
    assert manager.pending() == {"PS1": 1}
    assert ps1.files() == []
    unreachable = f"site PS1 unreachable at http://127.0.0.1:{port}{ROUTE}/WSyncMgr.box/CS1.SYN: "
    assert any(
        sev == Severity.WARNING and m.startswith(unreachable) and "; retrying in " in m
        for sev, m in log_lines(tmp_path)
    )

    holder.close()
    ps1.server.start()
    stack.callback(ps1.server.stop)
    manager.poke()
    assert manager.wait_delivered(WAIT)
    assert ps1.files() == ps2.files() == ["CS1.SYN"]


def test_a_restarted_manager_delivers_what_was_queued_oldest_first(
    tmp_path: Path, stack, outbox_file: Path
) -> None:
    directory = Directory()
    holder = held_port()
    port = holder.getsockname()[1]
    directory.urls["PS1"] = f"http://127.0.0.1:{port}"
    second = outbox_file.with_name("XY1.SYN")
    second.write_bytes(b"")
    with new_manager(tmp_path, directory) as first_run:
        first_run.replicate(outbox_file, ["PS1"])
        first_run.replicate(second, ["PS1"])
        assert directory.retrying["PS1"].wait(WAIT)
    assert first_run.pending() == {"PS1": 2}

    holder.close()
    ps1 = serve(stack, ChildSite(tmp_path, "PS1", port=port), directory)
    second_run = new_manager(tmp_path, directory)
    assert second_run.pending("ps1") == {"PS1": 2}
    with second_run:
        assert second_run.wait_delivered(WAIT)
    assert ps1.received == [("CS1", "CS1.SYN"), ("CS1", "XY1.SYN")]
    assert ps1.files() == ["CS1.SYN", "XY1.SYN"]
    assert any("jobs waiting from before for PS1 (2)" in m for _, m in log_lines(tmp_path))


def test_a_duplicate_delivery_is_acknowledged_and_dropped_once(tmp_path: Path, stack) -> None:
    ps1 = serve(stack, ChildSite(tmp_path, "PS1"), Directory())
    first = post(ps1, "WSyncMgr.box/CS1.SYN", "a1b2c3d4e5f60718")
    again = post(ps1, "WSyncMgr.box/CS1.SYN", "a1b2c3d4e5f60718")
    assert first.status_code == again.status_code == 200
    assert first.json()["duplicate"] is False
    assert again.json()["duplicate"] is True
    assert ps1.files() == ["CS1.SYN"]
    assert ps1.received == [("CS1", "CS1.SYN")]


def test_a_duplicate_after_the_child_took_the_file_does_not_drop_it_again(
    tmp_path: Path, stack
) -> None:
    ps1 = serve(stack, ChildSite(tmp_path, "PS1"), Directory())
    assert post(ps1, "WSyncMgr.box/cs1.syn", "0f0f0f0f0f0f0f0f").json()["duplicate"] is False
    assert Inbox(ps1.box).take() == "CS1"  # the child's sync manager consumed it
    assert post(ps1, "WSyncMgr.box/CS1.SYN", "0f0f0f0f0f0f0f0f").json()["duplicate"] is True
    assert ps1.files() == []
    assert Inbox(ps1.box).take() is None, "no second sync"
    assert post(ps1, "WSyncMgr.box/CS1.SYN", "1e1e1e1e1e1e1e1e").json()["duplicate"] is False
    assert ps1.files() == ["CS1.SYN"], "a new notification is dropped"


def test_unsigned_or_wrongly_signed_posts_are_refused(tmp_path: Path, stack) -> None:
    ps1 = serve(stack, ChildSite(tmp_path, "PS1"), Directory())
    unsigned = post(ps1, "WSyncMgr.box/CS1.SYN", "a1b2c3d4e5f60718", auth=None)
    forged = post(ps1, "WSyncMgr.box/CS1.SYN", "a1b2c3d4e5f60718", auth=HmacAuth(b"x" * 40, "CS1"))
    assert unsigned.status_code == forged.status_code == 401
    assert "no signature" in unsigned.json()["error"]
    assert "does not hold" in forged.json()["error"]
    assert ps1.files() == [] and ps1.received == []
    assert list((ps1.inboxes / "replmgr.box" / "received").iterdir()) == []


@pytest.mark.parametrize(
    "rest",
    [
        "WSyncMgr.box/..%2Fx.SYN",
        "WSyncMgr.box/..%2F..%2FWSyncMgr.box%2FCS1.SYN",
        "WSyncMgr.box/FOO.TXT",
        "WSyncMgr.box/SELF.SYN",
        "WSyncMgr.box/outbox/CS1.SYN",
        "Other.box/CS1.SYN",
        "..%2FWSyncMgr.box/CS1.SYN",
        "WSyncMgr.box/PS1.SYN",
    ],
)
def test_bad_boxes_and_names_are_refused_with_400(tmp_path: Path, stack, rest: str) -> None:
    ps1 = serve(stack, ChildSite(tmp_path, "PS1"), Directory())
    answer = post(ps1, rest, "a1b2c3d4e5f60718")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "<SITE>.SYN" in error or "its own notification" in error
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_post_without_a_notification_id_is_refused(tmp_path: Path, stack) -> None:
    ps1 = serve(stack, ChildSite(tmp_path, "PS1"), Directory())
    answer = post(ps1, "WSyncMgr.box/CS1.SYN", "../../x")
    assert answer.status_code == 400
    assert "?id=" in answer.json()["error"]
    assert ps1.files() == []


def test_a_400_moves_the_job_to_failed_and_the_others_keep_going(
    tmp_path: Path, stack, outbox_file: Path
) -> None:
    async def closed(request: Request) -> JSONResponse:
        return JSONResponse({"error": "box WSyncMgr.box is not served here"}, status_code=400)

    directory = Directory()
    ps2 = serve(stack, ChildSite(tmp_path, "PS2"), directory)
    ps3 = stack.enter_context(
        BackgroundServer(
            Starlette(routes=[Route(ROUTE + "/{rest:path}", closed, methods=["POST"])])
        )
    )
    directory.urls["PS3"] = ps3.url
    with new_manager(tmp_path, directory) as manager:
        first = manager.replicate(outbox_file, ["PS3", "PS2"])
        second = manager.replicate(outbox_file, ["PS3", "PS2"])
        assert manager.wait_delivered(WAIT)
    failed = tmp_path / "CS1" / "inboxes" / "replmgr.box" / "failed" / "PS3"
    jobs = sorted(p.name for p in failed.glob("*.job"))
    assert [name.split("-")[1] for name in jobs] == [f"{first}.job", f"{second}.job"]
    assert (
        "answered 400: box WSyncMgr.box is not served here"
        in (failed / f"{jobs[0]}.reason").read_text()
    )
    assert ps2.received == [("CS1", "CS1.SYN"), ("CS1", "CS1.SYN")]
    rejected = [m for sev, m in log_lines(tmp_path) if sev == Severity.ERROR]
    assert len(rejected) == 2
    assert rejected[0].startswith(f"Rejected CS1.SYN (notification {first}) for site PS3: ")
    assert "not served here" in rejected[0] and "move it back to" in rejected[0]


def test_a_5xx_is_retried(tmp_path: Path, stack, outbox_file: Path) -> None:
    directory = Directory()
    ps1 = ChildSite(tmp_path, "PS1")
    inner = ps1.server.app
    answers = iter([503])

    async def flaky(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        status = next(answers, None)
        if scope["type"] == "http" and status is not None:
            await JSONResponse({"error": "site database is busy"}, status_code=status)(
                scope, receive, send
            )
            return
        await inner(scope, receive, send)  # type: ignore[operator]

    ps1.server.app = flaky
    serve(stack, ps1, directory)
    with new_manager(tmp_path, directory) as manager:
        manager.replicate(outbox_file, ["PS1"])
        assert manager.wait_delivered(WAIT)
    assert ps1.files() == ["CS1.SYN"]
    assert any(
        sev == Severity.WARNING and "answered 503: site database is busy; retrying in" in m
        for sev, m in log_lines(tmp_path)
    )


def test_a_destination_with_another_secret_keeps_the_job_for_later(
    tmp_path: Path, stack, outbox_file: Path
) -> None:
    directory = Directory()
    ps1 = serve(stack, ChildSite(tmp_path, "PS1", secret=b"y" * 40), directory)
    with new_manager(tmp_path, directory) as manager:
        manager.replicate(outbox_file, ["PS1"])
        assert directory.retrying["PS1"].wait(WAIT)
    assert manager.pending() == {"PS1": 1}
    assert ps1.files() == []
    assert not (tmp_path / "CS1" / "inboxes" / "replmgr.box" / "failed").exists()
    assert any(
        "refused our signature" in m and "same shared secret" in m for _, m in log_lines(tmp_path)
    )


def test_replicate_refuses_bad_input_and_queues_nothing(tmp_path: Path, outbox_file: Path) -> None:
    manager = new_manager(tmp_path, Directory())
    notes = outbox_file.with_name("notes.txt")
    notes.write_text("x")
    cases = [
        (outbox_file, ["P$1"], "not a site code"),
        (outbox_file, ["PS1", "CS1"], "cannot replicate to itself"),
        (outbox_file, [], "no destination"),
        (outbox_file, "PS1", "as a list"),
        (notes, ["PS1"], "<SITE>.SYN"),
        (outbox_file.with_name("PS9.SYN"), ["PS1"], "cannot read"),
    ]
    for file, to, message in cases:
        with pytest.raises(FileReplicationError, match=message):
            manager.replicate(file, to)
    assert manager.pending() == {}


def test_the_ledger_keeps_the_newest_ids_and_forgets_old_ones(tmp_path: Path) -> None:
    ledger = ReceivedLedger(tmp_path / "received", keep=3, keep_days=30, prune_every=1000)
    ids = [f"id-{n:08d}" for n in range(5)]
    for n, nid in enumerate(ids):
        ledger.record(nid, "CS1", "CS1.SYN")
        mark = ledger.path / nid
        stamp = 1_000_000_000 + n
        os.utime(mark, (stamp, stamp))
    assert ledger.prune(now=1_000_000_004) == 2
    assert [ledger.has(nid) for nid in ids] == [False, False, True, True, True]
    assert ledger.prune(now=1_000_000_000 + 30 * 86400 + 3.5) == 2
    assert [ledger.has(nid) for nid in ids] == [False, False, False, False, True]


class CountingDirectory(Directory):
    """A `Directory` that also tells when a site has been asked for `count` times."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.reached = threading.Event()

    def __call__(self, site: str) -> str:
        url = super().__call__(site)
        if self.calls[site] >= self.count:
            self.reached.set()
        return url


def test_a_down_destination_is_retried_with_jittered_waits_each_stated_in_its_line(
    tmp_path: Path, outbox_file: Path
) -> None:
    # Every site replicating to a child that went down used to retry at 1, 2, 4 ... s together.
    directory = CountingDirectory(5)
    holder = held_port()
    directory.urls["PS1"] = f"http://127.0.0.1:{holder.getsockname()[1]}"
    manager = ReplicationManager(
        tmp_path / "CS1" / "inboxes" / "replmgr.box",
        "CS1",
        resolve=directory,
        auth=HmacAuth(SECRET, "CS1"),
        log=CMTraceLog(tmp_path / "CS1" / "logs" / "replmgr.log", component=REPLICATION_MANAGER),
        retry_initial=0.02,
        retry_max=0.08,
        timeout=5.0,
        rng=jitter_source(9),
    )
    try:
        with manager:
            manager.replicate(outbox_file, ["PS1"])
            assert directory.reached.wait(WAIT)  # four attempts failed and were logged
    finally:
        holder.close()
    said = [
        m.rsplit("; retrying in ", 1)[1].removesuffix(" s")
        for _, m in log_lines(tmp_path)
        if m.startswith("site PS1 unreachable")
    ][:4]
    expected_rng = jitter_source(9)
    expected = [
        FILE_REPLICATION.scaled(0.02, 0.08).next_delay(n, expected_rng) for n in range(1, 5)
    ]
    assert said == [f"{w:g}" for w in expected]
    assert all(0 <= w <= s for w, s in zip(expected, [0.02, 0.04, 0.08, 0.08], strict=True))
