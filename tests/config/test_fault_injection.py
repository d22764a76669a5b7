"""The test hook `UPDATESYNC_FAULT`: off unless set, strict about its value, pauses for good
or holds until released."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from updatesync.config.fault_injection import (
    VARIABLE,
    HoldAt,
    PauseBefore,
    fault_point,
    from_environment,
)


def test_without_the_variable_there_is_no_hook_and_a_point_returns_at_once() -> None:
    assert from_environment({}) is None
    assert from_environment({VARIABLE: ""}) is None
    fault_point("site-database-commit")  # this test process runs without the hook


def test_the_variable_names_a_known_point_and_a_file(tmp_path: Path) -> None:
    value = f"pause-before:site-database-commit:{tmp_path / 'paused'}"
    assert from_environment({VARIABLE: value}) == PauseBefore(
        "site-database-commit", tmp_path / "paused"
    )


@pytest.mark.parametrize(
    "value",
    [
        "pause-before:site-database-commit",  # no file
        "pause-after:site-database-commit:/tmp/x",  # no such action
        "pause-before:somewhere-else:/tmp/x",  # no such point
    ],
)
def test_a_malformed_value_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=VARIABLE):
        from_environment({VARIABLE: value})


def test_an_unknown_point_in_the_product_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="unknown fault point"):
        fault_point("nowhere")


def test_the_pause_creates_its_file_and_holds_the_thread(tmp_path: Path) -> None:
    hook = PauseBefore("update-server-updates-batch", tmp_path / "paused")
    hook.reached("site-database-commit")  # another point: no pause
    assert not (tmp_path / "paused").exists()
    thread = threading.Thread(target=hook.reached, args=("update-server-updates-batch",))
    thread.daemon = True  # it never ends on its own: a test kills the process instead
    thread.start()
    thread.join(timeout=2)
    assert (tmp_path / "paused").exists()
    assert thread.is_alive()


def test_a_hold_value_names_a_point_and_a_file(tmp_path: Path) -> None:
    value = f"hold-at:replication-between-pages:{tmp_path / 'held'}"
    assert from_environment({VARIABLE: value}) == HoldAt(
        "replication-between-pages", tmp_path / "held"
    )


def test_a_hold_waits_until_its_file_is_removed_and_holds_only_once(tmp_path: Path) -> None:
    held = tmp_path / "held"
    hook = HoldAt("replication-between-pages", held)
    hook.reached("site-database-commit")  # another point: no hold
    assert not held.exists()
    thread = threading.Thread(target=hook.reached, args=("replication-between-pages",))
    thread.start()
    deadline = time.monotonic() + 10
    while not held.exists() and time.monotonic() < deadline:
        thread.join(0.01)
    assert held.exists(), "the hold did not create its file"
    thread.join(0.3)
    assert thread.is_alive(), "the thread went on while the file was there"
    held.unlink()
    thread.join(10)
    assert not thread.is_alive(), "the thread still waits after its file was removed"
    hook.reached("replication-between-pages")  # the second time: straight on
    assert not held.exists()
