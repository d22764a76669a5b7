"""A content folder in WSUS's layout (`WsusContent`): each file under a folder named by the
last two hexadecimal digits of its SHA-1 digest, named by the whole digest in upper-case
hexadecimal and its extension (`86/05AC...D486.txt`), as the Content Download service
serves it (`wsusss.content.content_path`).

A disconnected WSUS gets its license terms this way: `wsusutil export` carries metadata
only, and the content folder is copied beside the export. Here only license-term files are
read or written (update content stays out of scope): `write_license_terms` puts a generated
catalog's texts in such a folder (`updatesync catalog generate --content DIR`), and
`load_license_terms` gives a store the texts of its pending files that the folder holds
(`updatesync updateserver import --content DIR`), each checked against its listed SHA-1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from updatesync.metadata.generator.license_terms import LicenseTermsFile
from updatesync.security.private_files import private_dir
from updatesync.updateserver.license_terms import (
    LicenseFile,
    add_license_files,
    pending_files,
    sha1_digest,
)
from updatesync.wsusss.content import content_path

if TYPE_CHECKING:
    from updatesync.updateserver.store import UpdateStore

MAX_FILE_BYTES = 4 * 1024 * 1024
"""A license-term text larger than this is not read (real ones are a few kilobytes)."""


@dataclass(frozen=True, slots=True)
class LoadedTerms:
    """What `load_license_terms` did: texts stored, files the folder lacks, files whose
    text is not the listed one (left out)."""

    stored: int
    missing: int
    refused: tuple[str, ...]


def _relative(digest: str, name: str) -> Path:
    return Path(content_path(digest, name).removeprefix("/Content/"))


def write_license_terms(folder: Path, files: Iterable[LicenseTermsFile]) -> int:
    """Write each file under `folder` in WSUS's layout; how many were written."""
    written = 0
    for item in files:
        target = folder / _relative(item.digest, item.name)
        private_dir(target.parent)
        target.write_bytes(item.content)
        written += 1
    return written


def load_license_terms(store: UpdateStore, folder: Path) -> LoadedTerms:
    """Store the texts of the store's pending license-term files that `folder` holds."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (the content folder to read)")
    found: list[tuple[str, bytes]] = []
    refused: list[str] = []
    missing = 0
    for item, path in _candidates(store, folder):
        if not path.is_file():
            missing += 1
            continue
        if path.stat().st_size > MAX_FILE_BYTES:
            refused.append(f"{path}: over {MAX_FILE_BYTES:,} bytes")
            continue
        content = path.read_bytes()
        if sha1_digest(content) != item.digest:
            refused.append(f"{path}: not the text the metadata lists (SHA-1 {item.digest})")
            continue
        found.append((item.digest, content))
    stored = add_license_files(store, found) if found else 0
    return LoadedTerms(stored, missing, tuple(refused))


def _candidates(store: UpdateStore, folder: Path) -> Iterator[tuple[LicenseFile, Path]]:
    for item in pending_files(store):
        yield item, folder / _relative(item.digest, item.name)
