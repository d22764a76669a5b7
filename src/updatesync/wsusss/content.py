"""The USS Content Download service's addresses ([MS-WSUSSS] 2.1, 3.2.4.4).

A content file is fetched with a plain HTTP GET of
`<server>/Content/<folder>/<file name>`. A real WSUS names the file by the hexadecimal
SHA-1 digest of its content (upper case) followed by the original file name's extension,
in a folder named by the digest's last two hexadecimal digits, e.g.
`/Content/86/05AC83F66123073A61E4CF897430FA73F37DD486.txt` for a license-terms text:
the path's folder and name say which file is meant, the digest lets the downloader check
what it got. The metadata and the protocol carry digests in base64; `content_path` and
`parse_content_path` go from one to the other.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from typing import Final

CONTENT_PREFIX: Final = "/content/"
"""What a Content Download path starts with, compared without regard to case."""
MAX_CONTENT_BYTES: Final = 16 * 1024 * 1024
"""The largest content file a downstream reads (license terms are a few KB)."""

_NAME_RE: Final = re.compile(r"([0-9A-Fa-f]{40})(\.[A-Za-z0-9]{1,16})?")


def digest_hex(digest: str) -> str:
    """A base64 SHA-1 digest in upper-case hexadecimal."""
    raw = base64.b64decode(digest, validate=True)
    if len(raw) != 20:
        raise ValueError(f"{digest!r} is not a SHA-1 digest")
    return raw.hex().upper()


def content_path(digest: str, file_name: str) -> str:
    """The Content Download path of the file with this base64 SHA-1 digest and name."""
    hexed = digest_hex(digest)
    extension = posixpath.splitext(file_name)[1]
    return f"/Content/{hexed[-2:]}/{hexed}{extension}"


def parse_content_path(path: str) -> tuple[str, str] | None:
    """(base64 digest, extension) of a Content Download path, None for any other path or
    one whose folder is not its digest's last two digits."""
    if not path.lower().startswith(CONTENT_PREFIX):
        return None
    parts = path[len(CONTENT_PREFIX) :].split("/")
    if len(parts) != 2:
        return None
    folder, name = parts
    found = _NAME_RE.fullmatch(name)
    if found is None or folder.upper() != found.group(1)[-2:].upper():
        return None
    try:
        raw = binascii.unhexlify(found.group(1))
    except binascii.Error:
        return None
    return base64.b64encode(raw).decode("ascii"), (found.group(2) or "")
