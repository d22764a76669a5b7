"""Private folders and files: created 0700 / 0600 whatever the umask; loose key files refused."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from updatesync.security.private_files import (
    InsecureFileError,
    create_private_file,
    private_database,
    private_dir,
    read_private_file,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_private_dir_creates_each_missing_folder_0700(tmp_path: Path, open_umask: None) -> None:
    made = private_dir(tmp_path / "a" / "b" / "c")
    assert made.is_dir()
    assert [_mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700] * 3


def test_private_dir_leaves_an_existing_folder_alone(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    private_dir(folder)
    assert _mode(folder) == 0o755


def test_private_dir_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        private_dir(tmp_path / "file")


def test_a_new_database_and_its_wal_files_are_0600(tmp_path: Path, open_umask: None) -> None:
    path = private_database(tmp_path / "db" / "x.sqlite")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (v)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    files = [path, path.with_name("x.sqlite-wal"), path.with_name("x.sqlite-shm")]
    assert [_mode(f) for f in files] == [0o600] * 3
    conn.close()
    assert _mode(tmp_path / "db") == 0o700


def test_an_existing_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    sqlite3.connect(path).close()
    for name in ("x.sqlite", "x.sqlite-wal", "x.sqlite-journal"):
        (tmp_path / name).touch()
        (tmp_path / name).chmod(0o664)
    private_database(path)
    assert [_mode(tmp_path / n) for n in ("x.sqlite", "x.sqlite-wal", "x.sqlite-journal")] == [
        0o600
    ] * 3


def test_a_private_file_is_new_and_0600(tmp_path: Path, open_umask: None) -> None:
    path = create_private_file(tmp_path / "k" / "key", b"secret\n")
    assert _mode(path) == 0o600 and path.read_bytes() == b"secret\n"
    with pytest.raises(FileExistsError):
        create_private_file(path, b"other")
    assert read_private_file(path) == b"secret\n"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_a_key_file_group_or_others_may_use_is_refused(tmp_path: Path, mode: int) -> None:
    path = create_private_file(tmp_path / "key", b"secret")
    path.chmod(mode)
    with pytest.raises(InsecureFileError) as refused:
        read_private_file(path, "the test key file")
    assert str(refused.value) == (
        f"the test key file {path} has mode {mode:04o}: group or others may read or change "
        f"it, so it is not used; run `chmod 600 {path}` (and check who may have read it)"
    )
