"""The test hook `UPDATESYNC_FAULT`: off unless set, strict about its value, pauses for good."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from updatesync.config.fault_injection import (
    VARIABLE,
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
