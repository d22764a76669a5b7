"""Log files uploaded to the console's `/logs` page: received, refused when too big, and laid
out in a scratch folder the way the tracker reads them.

- **limits** (`UploadLimits`): the whole request (every file, and the form around them) at
  most `max_bytes`, counted as it arrives, whatever its Content-Length says; at most
  `max_files` files; the files taken out of .zip archives at most `max_extracted` bytes in all,
  counted as they are written (the sizes a zip declares are not trusted).
- **names** are kept, since the tracker tells sites apart by them (`CS1-WSyncMgr.rendered.txt`):
  only the last part of a name a browser sends is used; a second file of the same name goes to
  a folder `2/` (so that a `.log` and its `.lo_` of a second server stay together).
- **a .zip** (by name or content) is unpacked into a folder named after it (`CS1.zip` →
  `CS1/`, which tells the tracker the site): only the files the tracker reads in a folder (a
  name holding WSyncMgr, WCM, SMSDBMON, SMSProv or SoftwareDistribution, ending in .log, .lo_
  or .txt); a member whose path leaves the folder (`../`, `/etc/...`, `C:\\...`) is skipped, and
  so is an encrypted one; nested archives are not opened.
- **binary files** (NUL bytes, or mostly control characters, in their first 8 KB) are not
  logs: they are dropped with a warning.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from updatesync.logs.tracker import SUFFIXES, kind_of_name
from updatesync.security.private_files import private_dir

MB = 1024 * 1024
CHUNK = 64 * 1024
SNIFF = 8 * 1024


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_bytes: int = 50 * MB
    """The whole upload (the request's body)."""
    max_files: int = 200
    max_extracted: int = 200 * MB
    """Everything taken out of .zip archives, uncompressed."""
    max_members: int = 5000
    """Entries of one .zip archive."""

    @property
    def drain(self) -> int:
        """How much of a too big upload is read (and dropped) so that the browser gets the
        answer; beyond that the connection is closed."""
        return 4 * self.max_bytes


class UploadRefused(ValueError):
    """An upload the console does not take; the message says why, `status` the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def multipart_available() -> bool:
    try:
        import python_multipart  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def size_text(count: int) -> str:
    if count >= MB:
        return f"{count / MB:.1f} MB".replace(".0 MB", " MB")
    if count >= 1024:
        return f"{count / 1024:.0f} KB"
    return f"{count} bytes"


def _too_big(limits: UploadLimits) -> UploadRefused:
    return UploadRefused(
        f"The upload is larger than {size_text(limits.max_bytes)} in all, the most this page "
        "takes: nothing was read. Upload fewer files at once, or only the logs of the sync "
        "you are after (WSyncMgr.log and its .lo_ hold every run).",
        413,
    )


async def _drain(stream: AsyncIterator[bytes], seen: int, limits: UploadLimits) -> None:
    async for chunk in stream:
        seen += len(chunk)
        if seen > limits.drain:
            return


async def _capped(request: Request, limits: UploadLimits) -> AsyncIterator[bytes]:
    stream = request.stream()
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limits.max_bytes:
            await _drain(stream, seen, limits)
            raise _too_big(limits)
        yield chunk


@dataclass
class Upload:
    """What a form brought: its files (spooled by Starlette) and its other fields."""

    files: list[UploadFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    async def close(self) -> None:
        for upload in self.files:
            await upload.close()


async def receive(request: Request, limits: UploadLimits, name: str = "logs") -> Upload:
    """The files of the form's field `name` and its text fields, or UploadRefused."""
    if not multipart_available():
        raise UploadRefused(
            "This console cannot take uploads: the Python package python-multipart is not "
            "installed where it runs (pip install python-multipart).",
            501,
        )
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UploadRefused("Send the logs with the page's form (multipart/form-data).", 415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        await _drain(request.stream(), 0, limits)
        raise _too_big(limits)
    parser = MultiPartParser(
        request.headers,
        _capped(request, limits),
        max_files=limits.max_files,
        max_fields=20,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        text = str(exc)
        if "files" in text.lower():
            text = f"Too many files: at most {limits.max_files} at once (a .zip counts as one)."
        raise UploadRefused(f"The upload could not be read: {text}") from None
    upload = Upload()
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key == name and (value.filename or value.size):
                upload.files.append(value)
            else:
                await value.close()
        else:
            upload.fields[key] = value
    if not upload.files:
        raise UploadRefused("Choose at least one log file (or a .zip of a logs folder).")
    return upload


# --- laying the files out --------------------------------------------------------------------


@dataclass
class Stored:
    """The upload in the scratch folder: the paths to give the tracker (files, and folders of
    unpacked archives), the name to show for each file, and warnings."""

    root: Path
    paths: list[Path] = field(default_factory=list)
    names: dict[Path, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extracted: int = 0
    skipped: list[str] = field(default_factory=list)
    """Members of archives that are not logs the tracker reads (by name)."""

    def shown(self, path: str | Path | None) -> str:
        """The name a file was uploaded as (`logs.zip: CS1/WSyncMgr.log`)."""
        if path is None:
            return "—"
        path = Path(path)
        if path in self.names:
            return self.names[path]
        rolled = path.with_suffix(".lo_")
        if rolled in self.names:
            return self.names[rolled]
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.name


_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def safe_name(raw: str | None, number: int) -> str:
    """The last part of a name a browser sent, without control characters; never `..`."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = _UNSAFE.sub("", name).strip()[-200:]
    return name if name not in ("", ".", "..") else f"upload-{number}.log"


def member_parts(name: str) -> list[str] | None:
    """The parts of an archive member's path, or None when it would leave the folder."""
    text = name.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or _UNSAFE.search(text):
        return None
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if not parts or any(p == ".." or ":" in p for p in parts) or len(parts) > 16:
        return None
    return parts


def looks_binary(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark
        return False
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    return bool(head) and control * 10 > len(head)


def _is_zip(name: str, source: IO[bytes]) -> bool:
    if name.lower().endswith(".zip"):
        return True
    source.seek(0)
    magic = source.read(4)
    source.seek(0)
    return magic == b"PK\x03\x04"


def _free(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/2/name`, `folder/3/name`... for the second, third..."""
    target = folder / name
    number = 1
    while target.exists():
        number += 1
        target = folder / str(number) / name
    private_dir(target.parent)
    return target


def store(upload: Upload, root: Path, limits: UploadLimits) -> Stored:
    """Write the upload's files under `root` (an empty folder). Blocking: run it in a thread."""
    stored = Stored(root)
    for number, item in enumerate(upload.files, start=1):
        name = safe_name(item.filename, number)
        try:
            _store_one(item.file, name, number, stored, limits)
        except OSError as exc:
            stored.warnings.append(f"{name} could not be stored to be read ({exc}).")
    return stored


def _store_one(
    source: IO[bytes], name: str, number: int, stored: Stored, limits: UploadLimits
) -> None:
    source.seek(0)
    if _is_zip(name, source):
        _unpack(source, name, number, stored, limits)
        return
    head = source.read(SNIFF)
    source.seek(0)
    if looks_binary(head):
        stored.warnings.append(f"{name} is not a text log (it holds binary data): it was not read.")
        return
    target = _free(stored.root, name)
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, CHUNK)
    stored.paths.append(target)
    suffix = "" if target.parent == stored.root else f" (#{target.parent.name})"
    stored.names[target] = name + suffix


def _unpack(
    source: IO[bytes], name: str, number: int, stored: Stored, limits: UploadLimits
) -> None:
    stem = name[:-4] if name.lower().endswith(".zip") else name
    folder = _free(stored.root, stem.strip() or f"archive-{number}")
    private_dir(folder)
    try:
        with zipfile.ZipFile(source) as archive:
            members = archive.infolist()
            if len(members) > limits.max_members:
                stored.warnings.append(
                    f"{name} has {len(members)} entries, more than the {limits.max_members} "
                    "this page opens: it was not read."
                )
                return
            for member in members:
                if member.is_dir():
                    continue
                if not _unpack_member(archive, member, name, folder, stored, limits):
                    break
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        stored.warnings.append(f"{name} is not a zip archive that can be read ({exc}).")
        return
    stored.paths.append(folder)


def _unpack_member(
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    name: str,
    folder: Path,
    stored: Stored,
    limits: UploadLimits,
) -> bool:
    """Take out one member; False when the archives' budget is spent (stop there)."""
    parts = member_parts(member.filename)
    shown = f"{name}: {member.filename}"
    if parts is None:
        stored.warnings.append(f"{shown}: its path leaves the archive's folder; skipped.")
        return True
    leaf = parts[-1]
    if kind_of_name(leaf) is None or Path(leaf).suffix.lower() not in SUFFIXES:
        stored.skipped.append(shown)
        return True
    if member.flag_bits & 0x1:
        stored.warnings.append(f"{shown} is encrypted; skipped.")
        return True
    target = folder.joinpath(*parts)
    if not target.resolve().is_relative_to(folder.resolve()):
        stored.warnings.append(f"{shown}: its path leaves the archive's folder; skipped.")
        return True
    room = limits.max_extracted - stored.extracted
    try:
        private_dir(target.parent)
        written = 0
        with archive.open(member) as src, target.open("xb") as out:
            head = b""
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > room:
                    break
                head = head or chunk[:SNIFF]
                out.write(chunk)
    except FileExistsError:
        stored.warnings.append(f"{shown}: a file of that name was already taken out; skipped.")
        return True
    except (OSError, zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
        target.unlink(missing_ok=True)
        stored.warnings.append(f"{shown} could not be taken out of the archive ({exc}).")
        return True
    if written > room:
        target.unlink(missing_ok=True)
        stored.warnings.append(
            f"{shown}: the archives unpack to more than {size_text(limits.max_extracted)}, the "
            "most this page takes out; it and the files after it were not read."
        )
        return False
    stored.extracted += written
    if looks_binary(head):
        target.unlink()
        stored.warnings.append(f"{shown} is not a text log (it holds binary data): not read.")
        return True
    stored.names[target] = shown
    return True
