"""The hierarchy's shared secret file: created private, read only when private, rotated.

The sites and software update points of one hierarchy sign their calls to each other with a
secret that every host holds a copy of (`signing.py`). The file:

    <current secret>
    # previous secret: accepted until `updatesync secret rotate --finish FILE`
    <previous secret>

The first secret line is the current one (callers sign with it). A second secret line is the
previous one, present only while a rotation goes on: callees accept a call signed with either,
so the hosts can get the new file one after another without a call between them failing.
Blank lines and lines starting with `#` are ignored. A file readable or writable by group or
others is refused: whoever can read it can sign as any role of the hierarchy.

- `create_secret(path)`: a new file (mode 0600) with one random secret;
- `load_secret(path)`: the `SharedSecret` in the file (the current secret as bytes, with
  `.previous`);
- `rotate_secret(path)` / `finish_rotation(path)`: the two steps of a rotation.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from updatesync.security.private_files import create_private_file, private_dir

MIN_SECRET_CHARS = 32
"""A secret shorter than this is refused (`create_secret` writes 64 hex characters)."""

_PREVIOUS_NOTE = "# previous secret: accepted until `updatesync secret rotate --finish FILE`"


class SecretError(Exception):
    """The shared secret file is missing or unusable; the message says which and what to do."""


class SharedSecret(bytes):
    """The current secret (these bytes: what a caller signs with) and `previous`, the one a
    rotation replaces, which callees accept until the rotation is finished (None when no
    rotation goes on). Its repr never shows the secret."""

    previous: bytes | None

    def __new__(cls, current: bytes, previous: bytes | None = None) -> SharedSecret:
        made = super().__new__(cls, current)
        made.previous = previous
        return made

    @property
    def accepted(self) -> tuple[bytes, ...]:
        """The secrets a callee accepts: the current one, then the previous one."""
        return (bytes(self),) if self.previous is None else (bytes(self), self.previous)

    def __reduce__(self) -> tuple[type[SharedSecret], tuple[bytes, bytes | None]]:
        return (SharedSecret, (bytes(self), self.previous))

    def __repr__(self) -> str:
        rotating = ", rotating" if self.previous is not None else ""
        return f"SharedSecret(<{len(self)} bytes hidden>{rotating})"


def accepted_secrets(secret: bytes) -> tuple[bytes, ...]:
    """The secrets a callee given `secret` accepts: with a `SharedSecret`, the previous one
    too during a rotation."""
    if isinstance(secret, SharedSecret):
        return secret.accepted
    return (bytes(secret),)


def check_private(path: Path, mode: int, what: str) -> None:
    """`SecretError` when `mode` (of the file `path`) lets group or others read or write it."""
    if os.name == "nt":  # Windows keeps access in ACLs, not in these bits
        return
    if mode & 0o077:
        raise SecretError(
            f"{what} {path} has mode {stat.S_IMODE(mode):04o}: group or others may read or "
            f"change it, so anyone on the host could sign as any role. Make it private with "
            f"`chmod 600 {path}` (and check who else has read it)"
        )


def read_private_text(path: str | os.PathLike[str], what: str, missing_hint: str) -> str:
    """The text of the file `path`, refused (`SecretError`) when group or others may read or
    write it; `what` names it in errors, `missing_hint` says how to create it."""
    target = Path(path)
    try:
        fd = os.open(target, os.O_RDONLY)
    except FileNotFoundError:
        raise SecretError(f"{what} {target} does not exist; {missing_hint}") from None
    except OSError as exc:
        raise SecretError(f"cannot read {what} {target}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"{what} {target} is not a regular file")
        check_private(target, info.st_mode, what)
        data = handle.read(64 * 1024)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{what} {target} is not text (UTF-8)") from None


def _parse(text: str, target: Path) -> SharedSecret:
    lines = [line.strip() for line in text.splitlines()]
    values = [line for line in lines if line and not line.startswith("#")]
    if not values:
        raise SecretError(
            f"the shared secret file {target} holds no secret; write one with "
            f"`updatesync secret new {target}` (after removing the empty file)"
        )
    if len(values) > 2:
        raise SecretError(
            f"the shared secret file {target} holds {len(values)} secrets; it holds the "
            "current one and, during a rotation, the previous one (2 at most)"
        )
    for number, value in enumerate(values):
        if len(value) < MIN_SECRET_CHARS:
            which = "current" if number == 0 else "previous"
            raise SecretError(
                f"the {which} shared secret in {target} has {len(value)} characters; it needs "
                f"at least {MIN_SECRET_CHARS} (`updatesync secret new FILE` writes a good one)"
            )
    previous = values[1].encode("utf-8") if len(values) == 2 else None
    return SharedSecret(values[0].encode("utf-8"), previous)


def load_secret(path: str | os.PathLike[str]) -> SharedSecret:
    """The shared secret in `path` (surrounding white space ignored): the current secret,
    with the previous one as `.previous` during a rotation. `SecretError` when the file is
    missing, unreadable, too short, or readable or writable by group or others."""
    target = Path(path)
    text = read_private_text(
        target,
        "the hierarchy's shared secret file",
        f"create it once with `updatesync secret new {target}` and copy it to every host of "
        "the hierarchy",
    )
    return _parse(text, target)


def _new_value() -> str:
    return secrets.token_hex(32)


def _write_private(target: Path, text: str, *, replace: bool) -> None:
    """Write `text` to `target` with mode 0600: a new file, or (`replace`) atomically over
    the existing one."""
    if not replace:
        create_private_file(target, text.encode("ascii"))
        return
    private_dir(target.parent)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def create_secret(path: str | os.PathLike[str]) -> SharedSecret:
    """Write a new random secret to `path` (a new file, readable by its owner only) and
    return it."""
    value = _new_value()
    _write_private(Path(path), value + "\n", replace=False)
    return SharedSecret(value.encode("ascii"))


def rotate_secret(path: str | os.PathLike[str]) -> SharedSecret:
    """Start a rotation: a new current secret, the old one kept as previous. `SecretError`
    when a rotation is already under way (finish it first)."""
    target = Path(path)
    held = load_secret(target)
    if held.previous is not None:
        raise SecretError(
            f"a rotation of {target} is already under way (it holds a previous secret). Copy "
            f"the file to every host of the hierarchy and restart their roles, then run "
            f"`updatesync secret rotate --finish {target}`; rotate again after that"
        )
    value = _new_value()
    old = bytes(held).decode("utf-8")
    _write_private(target, f"{value}\n{_PREVIOUS_NOTE}\n{old}\n", replace=True)
    return SharedSecret(value.encode("ascii"), bytes(held))


def finish_rotation(path: str | os.PathLike[str]) -> bool:
    """End a rotation: drop the previous secret from `path`. False when there was none."""
    target = Path(path)
    held = load_secret(target)
    if held.previous is None:
        return False
    _write_private(target, bytes(held).decode("utf-8") + "\n", replace=True)
    return True
