"""The WSyncMgr.box inbox: request files in, the strongest request out, a watcher that wakes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from updatesync.site.sync.inbox import FULL, SELF, Inbox, InboxError


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    return Inbox(tmp_path / "inboxes" / "WSyncMgr.box", report=lambda message: None)


def test_drop_puts_an_empty_request_file_in_the_folder(inbox: Inbox) -> None:
    path = inbox.drop("self")
    assert path == inbox.path / "SELF.SYN"
    assert path.read_bytes() == b""
    assert sorted(p.name for p in inbox.path.iterdir()) == ["SELF.SYN"]
    assert inbox.pending() == {SELF}


def test_dropping_a_request_already_there_keeps_one_file(inbox: Inbox) -> None:
    (inbox.path / "self.syn").touch()
    assert inbox.drop(SELF) == inbox.path / "self.syn"
    assert [p.name for p in inbox.path.iterdir()] == ["self.syn"]


def test_names_are_matched_without_regard_to_case(inbox: Inbox) -> None:
    for name in ("Full.Syn", "self.SYN", "cs1.syn"):
        (inbox.path / name).touch()
    assert inbox.pending() == {FULL, SELF, "CS1"}


def test_other_files_and_folders_are_ignored_and_reported_once(tmp_path: Path) -> None:
    reports: list[str] = []
    inbox = Inbox(tmp_path / "WSyncMgr.box", report=reports.append)
    (inbox.path / "outbox").mkdir()
    (inbox.path / "outbox" / "CS1.SYN").touch()
    (inbox.path / "notes.txt").touch()
    (inbox.path / "SELF.SYN").touch()
    assert inbox.pending() == {SELF}
    assert inbox.pending() == {SELF}
    assert inbox.take() == SELF
    assert len(reports) == 1
    assert "notes.txt" in reports[0] and str(inbox.path) in reports[0]
    assert (inbox.path / "notes.txt").exists()
    assert (inbox.path / "outbox" / "CS1.SYN").exists()


def test_take_consumes_every_request_and_full_wins(inbox: Inbox) -> None:
    inbox.drop(SELF)
    inbox.drop(FULL)
    assert inbox.take() == FULL
    assert inbox.pending() == set()
    assert inbox.take() is None


def test_a_parent_notification_is_its_own_kind(inbox: Inbox) -> None:
    inbox.drop("CS1")
    assert (inbox.path / "CS1.SYN").exists()
    assert inbox.take() == "CS1"


def test_an_unknown_request_kind_is_refused_with_the_inbox_named(inbox: Inbox) -> None:
    with pytest.raises(InboxError, match=r"'PLEASE'.*SELF, FULL") as caught:
        inbox.drop("PLEASE")
    assert str(inbox.path) in str(caught.value)


def test_the_watcher_wakes_on_a_file_dropped_by_hand(inbox: Inbox) -> None:
    wake = threading.Event()
    watcher = inbox.watch(wake, interval=0.01)
    watcher.start()
    try:
        assert not wake.wait(0.05)
        (inbox.path / "SELF.SYN").touch()
        assert wake.wait(5)
    finally:
        watcher.stop()


def test_a_drop_in_this_process_wakes_the_watcher_at_once(inbox: Inbox) -> None:
    """The database monitor's and file replication's drops do not wait for the watcher's
    next look (here an hour away): the drop itself wakes every watcher of that inbox."""
    wake = threading.Event()
    watcher = Inbox(inbox.path).watch(wake, interval=3600)
    watcher.start()
    try:
        inbox.drop(SELF)
        assert wake.wait(5)  # the drop, or the first look if it came after the drop
        assert inbox.take() == SELF
        wake.clear()  # the watcher now looks again in an hour
        inbox.drop("CS1")
        assert wake.is_set()
    finally:
        watcher.stop()
    wake.clear()
    inbox.drop(FULL)  # a stopped watcher is not woken
    assert not wake.is_set()
