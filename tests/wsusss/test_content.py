"""The Content Download service's paths: from a base64 SHA-1 digest and a file name, and
back; anything else is not a content path."""

from __future__ import annotations

import pytest

from updatesync.wsusss.content import content_path, digest_hex, parse_content_path

DIGEST = "BaxL9mEjBzph5M+JdDD6c/N91IY="
HEX = "05AC4BF66123073A61E4CF897430FA73F37DD486"


def test_a_file_is_named_by_its_digest_in_the_folder_of_its_last_two_digits() -> None:
    assert digest_hex(DIGEST) == HEX
    path = content_path(DIGEST, "silverlighteula-en-717c6af4.txt")
    assert path == f"/Content/86/{HEX}.txt"
    assert parse_content_path(path) == (DIGEST, ".txt")
    assert parse_content_path(path.lower()) == (DIGEST, ".txt")


@pytest.mark.parametrize(
    "path",
    [
        f"/Content/00/{HEX}.txt",  # not its folder
        f"/Content/86/{HEX[:-1]}.txt",  # not a SHA-1
        f"/Content/86/x/{HEX}.txt",
        f"/Content/86/{HEX}.t/xt",
        "/Content/../ServerSyncWebService/ServerSyncWebService.asmx",
        f"/Other/86/{HEX}.txt",
    ],
)
def test_other_paths_are_not_content(path: str) -> None:
    assert parse_content_path(path) is None


def test_a_digest_that_is_not_sha1_is_refused() -> None:
    with pytest.raises(ValueError, match="not a SHA-1 digest"):
        digest_hex("AAAA")
