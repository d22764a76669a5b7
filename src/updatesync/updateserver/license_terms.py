"""License terms in the update server's store: which files each EULA has, which texts it
holds, and which updates' terms are not completely downloaded.

The metadata lists each EULA's files (`importer` writes them to `eula_file` with the
revisions naming the EULA); the texts come apart from it, from the upstream's Content
Download service (`sync/license_files.py`) or, for the stand-in Microsoft Update, from the
catalog they were generated with (`add_license_files`). A text is written only when its
SHA-1 digest is the one the metadata lists. A listed file without a text is pending, and so
are the license terms of every update whose latest revision names its EULA: WSUS cannot
accept such terms, and a site does not turn the update into a configuration item.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, insert, select

from updatesync.metadata.generator.license_terms import license_text
from updatesync.metadata.model import MU_EULA_FOLDER
from updatesync.updateserver import schema as t
from updatesync.updateserver.errors import UpdateServerError

if TYPE_CHECKING:
    from updatesync.updateserver.store import UpdateStore

_IN_CHUNK = 500


class LicenseFileRefused(UpdateServerError):
    """A license-term text that is not the one the metadata lists (digest), or one no
    stored revision lists."""


@dataclass(frozen=True, slots=True)
class LicenseFile:
    """One file of license terms as the metadata lists it."""

    eula_id: str
    digest: str
    name: str
    language: str
    size: int


def sha1_digest(content: bytes) -> str:
    """The SHA-1 digest of `content` in base64, as the metadata writes a file's digest."""
    return base64.b64encode(hashlib.sha1(content).digest()).decode("ascii")


def pending_files(store: UpdateStore) -> list[LicenseFile]:
    """Every listed license-term file whose text this store does not hold, each digest once."""
    f, c = t.eula_file, t.eula_content
    query = (
        select(f.c.eula_id, f.c.digest, f.c.file_name, f.c.language, f.c.size)
        .outerjoin(c, c.c.digest == f.c.digest)
        .where(c.c.digest.is_(None))
        .order_by(f.c.eula_id, f.c.file_name)
    )
    found: dict[str, LicenseFile] = {}
    with store.engine.connect() as conn:
        for eula, digest, name, language, size in conn.execute(query):
            found.setdefault(digest, LicenseFile(eula, digest, name, language, size))
    return list(found.values())


def counts(store: UpdateStore) -> tuple[int, int]:
    """(license-term files listed, of which pending), each digest counted once."""
    f, c = t.eula_file, t.eula_content
    with store.engine.connect() as conn:
        listed = conn.execute(select(func.count(func.distinct(f.c.digest)))).scalar_one()
        pending = conn.execute(
            select(func.count(func.distinct(f.c.digest)))
            .outerjoin(c, c.c.digest == f.c.digest)
            .where(c.c.digest.is_(None))
        ).scalar_one()
    return int(listed), int(pending)


def save_file(store: UpdateStore, file: LicenseFile, content: bytes) -> None:
    """Hold `content` as the text of `file`; refused unless its SHA-1 digest is the listed one."""
    got = sha1_digest(content)
    if got != file.digest:
        raise LicenseFileRefused(
            f"license terms file {file.name}: its SHA-1 digest is {got}, the metadata lists "
            f"{file.digest}; it was not stored"
        )
    with store.engine.begin() as conn:
        _write(conn, {file.digest: content})


def add_license_files(
    store: UpdateStore, files: Iterable[tuple[str, bytes]], *, strict: bool = True
) -> int:
    """Hold the texts of `files` ((digest, text) pairs) that a stored revision lists and that
    this store lacks; how many were written. A text whose digest is not its listed one is
    refused (`LicenseFileRefused`), and nothing of the call is written; without `strict`
    such a text is left out."""
    wanted = {item.digest: item for item in pending_files(store)}
    chosen: dict[str, bytes] = {}
    for digest, content in files:
        item = wanted.get(digest)
        if item is None:
            continue
        if sha1_digest(content) != digest:
            if not strict:
                continue
            raise LicenseFileRefused(
                f"license terms file {item.name}: the text given is not the one the metadata "
                f"lists (SHA-1 {digest}); nothing was stored"
            )
        chosen[digest] = content
    if chosen:
        with store.engine.begin() as conn:
            _write(conn, chosen)
    return len(chosen)


def add_generated_license_files(store: UpdateStore) -> int:
    """For a stand-in Microsoft Update serving a generated catalog: hold the texts of the
    pending license-term files that the catalog generator wrote (`metadata.generator.
    license_terms`), those whose listed digest is that of its text; how many were written."""
    return add_license_files(
        store,
        ((item.digest, license_text(item.eula_id, item.language)) for item in pending_files(store)),
        strict=False,
    )


def _write(conn: Connection, texts: dict[str, bytes]) -> None:
    held = set(
        conn.execute(
            select(t.eula_content.c.digest).where(t.eula_content.c.digest.in_(list(texts)))
        ).scalars()
    )
    now = datetime.now(UTC)
    rows = [
        {"digest": d, "content": content, "stored_at": now}
        for d, content in texts.items()
        if d not in held
    ]
    if rows:
        conn.execute(insert(t.eula_content), rows)


def held_file(store: UpdateStore, digest: str) -> tuple[str, bytes] | None:
    """(file name, text) of the license-term file with this digest, if this store holds it."""
    f, c = t.eula_file, t.eula_content
    query = (
        select(f.c.file_name, c.c.content)
        .join(c, c.c.digest == f.c.digest)
        .where(f.c.digest == digest)
        .limit(1)
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else (row[0], bytes(row[1]))


def digests_by_eula(conn: Connection, eula_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """EULA id -> the digests of its listed files (in file name order)."""
    ids = sorted(set(eula_ids))
    found: dict[str, list[str]] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        query = (
            select(t.eula_file.c.eula_id, t.eula_file.c.digest)
            .where(t.eula_file.c.eula_id.in_(ids[start : start + _IN_CHUNK]))
            .order_by(t.eula_file.c.eula_id, t.eula_file.c.file_name)
        )
        for eula, digest in conn.execute(query):
            found.setdefault(eula, []).append(digest)
    return {eula: tuple(digests) for eula, digests in found.items()}


def origin_urls(conn: Connection, digests: Sequence[str]) -> dict[str, str]:
    """Where Microsoft Update serves the license-term files with these digests (by name)."""
    found: dict[str, str] = {}
    for start in range(0, len(digests), _IN_CHUNK):
        query = select(t.eula_file.c.digest, t.eula_file.c.file_name).where(
            t.eula_file.c.digest.in_(list(digests[start : start + _IN_CHUNK]))
        )
        for digest, name in conn.execute(query):
            found.setdefault(digest, MU_EULA_FOLDER + name)
    return found


def pending_eulas(conn: Connection, eula_ids: Iterable[str]) -> set[str]:
    """Which of `eula_ids` have a listed file whose text is not held."""
    ids = sorted(set(eula_ids))
    f, c = t.eula_file, t.eula_content
    pending: set[str] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        query = (
            select(f.c.eula_id)
            .outerjoin(c, c.c.digest == f.c.digest)
            .where(f.c.eula_id.in_(ids[start : start + _IN_CHUNK]), c.c.digest.is_(None))
            .distinct()
        )
        pending.update(conn.execute(query).scalars())
    return pending


def pending_updates(store: UpdateStore) -> list[str]:
    """The updates whose latest revision names license terms not completely downloaded."""
    f, c, rev = t.eula_file, t.eula_content, t.revision
    pending = (
        select(f.c.eula_id)
        .outerjoin(c, c.c.digest == f.c.digest)
        .where(c.c.digest.is_(None))
        .distinct()
    )
    query = (
        select(rev.c.update_id)
        .join(t.update_item, t.is_latest(rev))
        .where(rev.c.eula_id.in_(pending))
        .order_by(rev.c.update_id)
    )
    with store.engine.connect() as conn:
        return list(conn.execute(query).scalars())
