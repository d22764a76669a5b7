"""The shared secret file: created private, refused when others may read it, rotated in two
steps (`updatesync.security.shared_secret`)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from updatesync.security.shared_secret import (
    SecretError,
    SharedSecret,
    create_secret,
    finish_rotation,
    load_secret,
    rotate_secret,
)


def test_the_secret_file_is_created_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "hierarchy.secret"
    written = create_secret(path)
    assert load_secret(path) == written
    assert path.stat().st_mode & 0o777 == 0o600
    assert written.previous is None


def test_a_missing_or_short_secret_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="updatesync secret new"):
        load_secret(tmp_path / "absent")
    short = tmp_path / "short"
    short.write_text("abc")
    short.chmod(0o600)
    with pytest.raises(SecretError, match="at least 32"):
        load_secret(short)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644, 0o666])
def test_a_secret_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    """Finding: `secret_file` was accepted whatever its mode."""
    path = tmp_path / "hierarchy.secret"
    create_secret(path)
    path.chmod(mode)
    with pytest.raises(SecretError) as caught:
        load_secret(path)
    message = str(caught.value)
    assert str(path) in message and f"{mode:04o}" in message
    assert f"chmod 600 {path}" in message


def test_etc_passwd_is_refused_as_a_secret() -> None:
    with pytest.raises(SecretError, match="chmod 600 /etc/passwd"):
        load_secret("/etc/passwd")


def test_rotation_keeps_the_old_secret_as_previous_until_finished(tmp_path: Path) -> None:
    path = tmp_path / "hierarchy.secret"
    old = create_secret(path)
    new = rotate_secret(path)
    held = load_secret(path)
    assert held == new != old
    assert held.previous == old
    assert held.accepted == (bytes(new), bytes(old))
    assert path.stat().st_mode & 0o777 == 0o600
    assert "rotate --finish" in path.read_text()
    with pytest.raises(SecretError, match="already under way"):
        rotate_secret(path)
    assert finish_rotation(path) is True
    finished = load_secret(path)
    assert finished == new and finished.previous is None
    assert finish_rotation(path) is False


def test_more_than_two_secrets_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_text("\n".join(["a" * 40, "b" * 40, "c" * 40]))
    path.chmod(0o600)
    with pytest.raises(SecretError, match="2 at most"):
        load_secret(path)


def test_the_secret_never_shows_in_its_repr_and_survives_pickling() -> None:
    secret = SharedSecret(b"s" * 40, b"p" * 40)
    assert "sss" not in repr(secret) and "ppp" not in repr(secret)
    copy = pickle.loads(pickle.dumps(secret))
    assert copy == secret and copy.previous == secret.previous
