"""Files and folders only their owner may read: data folders, databases, keys.

Every role keeps its data in folders it creates with mode 0700 and its databases and keys
in files of mode 0600, whatever the umask; nothing here loosens a folder it did not create.

- `private_dir(path)`: the folder, created (with each missing parent) 0700;
- `private_database(path)`: a SQLite file created empty 0600 before SQLite opens it (SQLite
  gives its `-wal`, `-shm` and `-journal` files the database file's mode), or an existing
  one and its companions brought to 0600 when group or others could read them;
- `create_private_file(path, data)`: a new file, 0600, refused if it exists (O_EXCL);
- `read_private_file(path, what)`: the bytes of a key or secret file (a TLS private key,
  the CA's key, a token, a secret), refused with `InsecureFileError` (naming the file, its
  mode and `chmod 600 FILE`) when group or others may read or write it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

__all__ = [
    "DATABASE_COMPANIONS",
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "InsecureFileError",
    "create_private_file",
    "private_database",
    "private_dir",
    "read_private_file",
]

PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600
DATABASE_COMPANIONS: Final = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a database file."""
_OPEN_TO_OTHERS: Final = stat.S_IRWXG | stat.S_IRWXO


class InsecureFileError(PermissionError):
    """A key or secret file that group or others may read or change."""

    def __init__(self, path: Path, mode: int, what: str, where: str = "") -> None:
        self.path = path
        self.mode = mode
        self.what = what
        self.where = where
        named = f"{what} {path}" + (f" ({where})" if where else "")
        super().__init__(
            f"{named} has mode {mode:04o}: group or others may read or change it, so it is "
            f"not used; run `chmod 600 {path}` (and check who may have read it)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.mode, self.what, self.where))


def private_dir(path: str | os.PathLike[str]) -> Path:
    """`path` as a folder, creating it and any missing parent with mode 0700 (an existing
    folder is left as it is)."""
    folder = Path(path)
    missing: list[Path] = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for part in reversed(missing):
        try:
            part.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # made meanwhile by another thread or process
            continue
        os.chmod(part, PRIVATE_DIR_MODE)  # whatever the umask
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: is a file, where a folder is needed")
    return folder


def private_database(path: str | os.PathLike[str]) -> Path:
    """Make the SQLite database file `path` private before it is opened: a new one is
    created empty with mode 0600 (its folder 0700 if created); an existing one and its
    `-wal`, `-shm`, `-journal` files lose any group or others permission."""
    target = Path(path)
    private_dir(target.parent)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        os.close(fd)
    for file in (target, *(target.with_name(target.name + s) for s in DATABASE_COMPANIONS)):
        _tighten(file)
    return target


def _tighten(file: Path) -> None:
    try:
        mode = stat.S_IMODE(os.stat(file).st_mode)
    except FileNotFoundError:
        return
    if mode & _OPEN_TO_OTHERS:
        os.chmod(file, mode & ~_OPEN_TO_OTHERS)


def create_private_file(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to the new file `path` with mode 0600 (its folder 0700 if created).
    Raises FileExistsError if `path` exists: nothing is overwritten."""
    target = Path(path)
    private_dir(target.parent)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return target


def read_private_file(
    path: str | os.PathLike[str], what: str = "the key file", *, where: str = ""
) -> bytes:
    """The content of `path`, a key or secret file; `InsecureFileError` if its mode lets
    group or others read or change it (`what` names it in the message, `where` the setting
    that named it, if any)."""
    target = Path(path)
    fd = os.open(target, os.O_RDONLY)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & _OPEN_TO_OTHERS:
            raise InsecureFileError(target, mode, what, where)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
