"""Site data replicated upward over signed HTTP: a parent pulls its child's status messages
(more than a page, each once) and the pictures of the child and of the sites below it; a child
that is down leaves the data held, logged in replmgr.log; a child sending data of a site not
below it, or a call with bad parameters, is refused. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import Databases
from starlette.applications import Starlette

from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.logs.status_messages import new_status_message
from updatesync.roles.serving import BackgroundServer
from updatesync.security.signing import HmacAuth, require_signature
from updatesync.site.api.hierarchy import DEFAULT_STALE_AFTER, pictures
from updatesync.site.database.site_data import SitePicture
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.status_messages import StoredMessage
from updatesync.site.replication.site_data import (
    PAGE,
    SITE_DATA_PATH,
    SiteDataError,
    SiteDataPuller,
    message_from_json,
    message_to_json,
    site_data_routes,
)
from updatesync.vocabulary import REPLICATION_MANAGER, SYNC_DONE, SYNC_STARTED

SECRET = b"0123456789abcdef0123456789abcdef-site-data"
T0 = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


@pytest.fixture
def two(databases: Databases) -> Iterator[tuple[SiteDatabase, SiteDatabase]]:
    with (
        SiteDatabase.open(url=databases.new("cs1").url, site_code="CS1") as cs1,
        SiteDatabase.open(url=databases.new("ps1").url, site_code="PS1") as ps1,
    ):
        yield cs1, ps1


def _child_app(db: SiteDatabase, extra: list[SitePicture] | None = None) -> Any:
    def sent(now: datetime) -> list[SitePicture]:
        return [*pictures(db, now, DEFAULT_STALE_AFTER), *(extra or [])]

    return require_signature(Starlette(routes=site_data_routes(db, sent)), SECRET)


def _puller(
    cs1: SiteDatabase, url: str, log: CMTraceLog | None = None, **kw: Any
) -> SiteDataPuller:
    return SiteDataPuller(
        cs1, {"PS1": url}, below={"PS1": ["SS1"]}, auth=HmacAuth(SECRET, "CS1"), log=log, **kw
    )


def _messages(db: SiteDatabase, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        db.messages.add(
            new_status_message(
                SYNC_DONE if n % 2 else SYNC_STARTED,
                site_code="PS1",
                system="PS1SITE.CONTOSO.COM",
                time=T0 + timedelta(seconds=n),
            )
        )


def test_the_parent_pulls_more_than_a_page_of_messages_each_once(
    tmp_path: Path, two: tuple[SiteDatabase, SiteDatabase]
) -> None:
    cs1, ps1 = two
    _messages(ps1, PAGE + 20)
    ps1.sync.record_state(SYNC_DONE, at=T0)
    log = CMTraceLog(tmp_path / "replmgr.log", component=REPLICATION_MANAGER)
    changed: list[bool] = []
    with (
        BackgroundServer(_child_app(ps1)) as child,
        _puller(cs1, child.url, log, on_changed=lambda: changed.append(True)) as puller,
    ):
        assert puller.pull("PS1") == PAGE + 20
        _messages(ps1, 3, start=1000)
        assert puller.pull("ps1") == 3
        assert puller.pull("PS1") == 0

    held = cs1.messages.find(site_code="PS1")
    assert held == ps1.messages.find()  # newest first, every one once
    assert len(changed) == 2  # the last pull brought nothing new
    status = cs1.site_data.site("PS1")
    assert status is not None and status.picture.sync_status is not None
    assert status.picture.sync_status["LastSyncState"] == SYNC_DONE
    lines = [e.message for e in read_cmtrace(tmp_path / "replmgr.log")]
    assert lines[0] == (
        f"Replicated site data from child site PS1: {PAGE + 20} status message(s) up to "
        f"RecordID {PAGE + 20}, site status of PS1"
    )


def test_a_child_that_is_down_leaves_the_data_and_the_failure_is_logged(
    tmp_path: Path, two: tuple[SiteDatabase, SiteDatabase]
) -> None:
    cs1, ps1 = two
    _messages(ps1, 2)
    log = CMTraceLog(tmp_path / "replmgr.log", component=REPLICATION_MANAGER)
    server = BackgroundServer(_child_app(ps1)).start()
    with _puller(cs1, server.url, log, request_timeout=5) as puller:
        puller.pull("PS1")
        server.stop()
        with pytest.raises(SiteDataError, match=r"child site PS1 at .* failed: cannot reach it"):
            puller.pull("PS1")

    assert len(cs1.messages.find(site_code="PS1")) == 2
    link = cs1.site_data.link("PS1")
    assert link is not None and link.consecutive_failures == 1
    warning = list(read_cmtrace(tmp_path / "replmgr.log"))[-1]
    assert warning.message.startswith("Site data replication from child site PS1 at http")
    assert "Keeping the site data last received from PS1 at " in warning.message
    assert "Traceback" not in warning.message


def test_data_of_a_site_not_below_the_child_is_refused(
    two: tuple[SiteDatabase, SiteDatabase],
) -> None:
    cs1, ps1 = two
    other = SitePicture("PS2", T0, None, [], [])
    with (
        BackgroundServer(_child_app(ps1, [other])) as child,
        _puller(cs1, child.url) as puller,
        pytest.raises(SiteDataError, match="sent data of PS2, not below it"),
    ):
        puller.pull("PS1")
    assert cs1.site_data.sites() == []


def test_bad_parameters_and_unsigned_calls_are_refused(
    two: tuple[SiteDatabase, SiteDatabase],
) -> None:
    _, ps1 = two
    with BackgroundServer(_child_app(ps1)) as child:
        bad = httpx.get(
            child.url + SITE_DATA_PATH, params={"after": "-1"}, auth=HmacAuth(SECRET, "CS1")
        )
        unsigned = httpx.get(child.url + SITE_DATA_PATH)
    assert bad.status_code == 400 and "after='-1'" in bad.json()["error"]
    assert unsigned.status_code == 401


def test_a_poke_pulls_at_once_in_the_background(two: tuple[SiteDatabase, SiteDatabase]) -> None:
    cs1, ps1 = two
    with (
        BackgroundServer(_child_app(ps1)) as child,
        _puller(cs1, child.url, interval=3600).start() as puller,
    ):
        assert puller.wait(lambda: cs1.site_data.site("PS1") is not None, 30)
        _messages(ps1, 1)
        puller.poke("PS1")
        assert puller.wait(lambda: len(cs1.messages.find(site_code="PS1")) == 1, 30)


def test_a_message_crosses_the_wire_unchanged() -> None:
    msg = new_status_message(SYNC_DONE, site_code="PS1", system="PS1SITE.CONTOSO.COM", time=T0)
    assert message_from_json(message_to_json(StoredMessage(42, msg))) == (42, msg)


def test_failed_pulls_back_off_with_jitter_and_say_the_wait_used(
    tmp_path: Path, two: tuple[SiteDatabase, SiteDatabase]
) -> None:
    """Each failed pull of a child that is down draws its wait from the SITE_DATA policy: the
    doubling step times a factor in [0, 1), so two parents retry apart; the log line states
    the wait drawn, the same for the same seed; a success starts the back-off over."""
    import random

    from updatesync.retry_policy import SITE_DATA

    cs1, ps1 = two
    server = BackgroundServer(_child_app(ps1)).start()
    url = server.url
    server.stop()  # PS1 does not answer
    waits: list[list[str]] = []
    for n, seed in enumerate((7, 7, 8)):
        log_path = tmp_path / f"replmgr-{n}.log"
        log = CMTraceLog(log_path, component=REPLICATION_MANAGER)
        puller = _puller(cs1, url, log, request_timeout=5, interval=60, rng=random.Random(seed))
        with puller:
            for _ in range(4):
                with pytest.raises(SiteDataError):
                    puller.pull("PS1")
        said = [e.message.rsplit("will retry in ", 1)[1] for e in read_cmtrace(log_path)]
        expected = random.Random(seed)
        policy = SITE_DATA.scaled(1.0, 60.0)
        assert said == [f"{policy.next_delay(n, expected):.2f} s" for n in range(1, 5)]
        for attempt, text in enumerate(said, start=1):
            assert 0 <= float(text.removesuffix(" s")) <= policy.step(attempt)
        waits.append(said)
    assert waits[0] == waits[1]  # the same seed, the same waits
    assert waits[0] != waits[2]  # two parents draw apart
