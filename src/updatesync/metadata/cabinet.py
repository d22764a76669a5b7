"""Microsoft cabinet (.cab) files: list and extract members, and write cabinets.

Reading goes through libmspack (`pylibmspack`); every library failure becomes a
`CabinetError` that names the cabinet, the member and what to do about it, and an
extracted member is checked against the size the cabinet declares for it.

Writing is done here, by hand, as a stream: each member is read from disk in 32 KiB
blocks and written as CFDATA blocks, either stored ("none") or MSZIP (each block is
'CK' followed by an independent raw deflate stream), so memory stays flat whatever the
member size. The cabinet is written to a temporary file beside the target and renamed
into place only when complete.

Layout written (MS-CAB): CFHEADER, one CFFOLDER per folder, one CFFILE per member, then
the CFDATA blocks of each folder in order. Members are packed into a folder until the
next one would push it past 65535 blocks (the 16-bit `cCFData` limit); a member cannot
span folders, so a member above 65535 * 32 KiB (about 2 GiB) is refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal

import pylibmspack
from pylibmspack import CabArchive

from updatesync.metadata.errors import CabinetError

__all__ = [
    "BLOCK_SIZE",
    "MAX_BLOCKS_PER_FOLDER",
    "MAX_MEMBER_SIZE",
    "CabMember",
    "Compression",
    "cab_checksum",
    "extract_member",
    "list_members",
    "write_cabinet",
]

Compression = Literal["mszip", "none"]

BLOCK_SIZE = 32768
"""Uncompressed bytes per CFDATA block (the format's maximum)."""
MAX_BLOCKS_PER_FOLDER = 0xFFFF
"""`CFFOLDER.cCFData` is 16-bit."""
MAX_MEMBER_SIZE = BLOCK_SIZE * MAX_BLOCKS_PER_FOLDER
"""Largest member a single folder (and so a single cabinet file) can hold."""

_CFHEADER = struct.Struct("<4sIIIIIBBHHHHH")  # 36 bytes, no reserve
_CFFOLDER = struct.Struct("<IHH")  # coffCabStart, cCFData, typeCompress
_CFFILE = struct.Struct("<IIHHHH")  # cbFile, uoffFolderStart, iFolder, date, time, attribs
_CFDATA = struct.Struct("<IHH")  # csum, cbData, cbUncomp
_TYPE_NONE = 0x0000
_TYPE_MSZIP = 0x0001
_ATTR_ARCHIVE = 0x20
_ATTR_NAME_IS_UTF = 0x80
_MSZIP_SIGNATURE = b"CK"
# A deflate stream of 32 KiB of incompressible data is 32 KiB + 5 bytes (one stored block);
# anything larger than this is recompressed at level 0 so cbData stays small.
_MSZIP_MAX_BLOCK = BLOCK_SIZE + 12

# libmspack error codes (mspack.h) -> what they mean for the user.
_MSPACK_HINTS: dict[int, str] = {
    1: "bad arguments passed to libmspack",
    2: "the file could not be opened",
    3: "the cabinet is truncated or unreadable (a read ran past the end of the file)",
    4: "the extracted member could not be written to disk",
    5: "a seek failed: the cabinet is truncated or corrupt",
    6: "out of memory",
    7: "the file is not a cabinet (no 'MSCF' signature)",
    8: "the cabinet's structure is corrupt or uses an unsupported feature",
    9: "a data block's checksum does not match: the cabinet is corrupt",
    10: "compression failed",
    11: "the compressed data is corrupt and could not be decompressed",
}
_MSPACK_CODE = re.compile(r"libmspack error (-?\d+)")


@dataclass(frozen=True, slots=True)
class CabMember:
    """One member of a cabinet, as its CFFILE entry declares it."""

    name: str
    size: int
    compression: str
    folder_index: int
    folder_offset: int


# --------------------------------------------------------------------------- reading


def _describe(exc: pylibmspack.CabError) -> str:
    text = str(exc)
    match = _MSPACK_CODE.search(text)
    if match is not None:
        hint = _MSPACK_HINTS.get(int(match.group(1)))
        if hint is not None:
            return f"{hint} ({text})"
    if "max_size" in text:
        return f"the member is larger than the allowed maximum ({text})"
    return text


def list_members(path: str | os.PathLike[str]) -> list[CabMember]:
    """The members of the cabinet at `path`, in CFFILE order.

    Raises CabinetError when the file is missing, not a cabinet, or its headers are corrupt.
    """
    cab = Path(path)
    if not cab.is_file():
        raise CabinetError("no such file; check the path", where=str(cab))
    try:
        entries = CabArchive(str(cab)).files()
    except pylibmspack.CabError as exc:
        raise CabinetError(
            f"cannot read the cabinet's member list: {_describe(exc)}; "
            "obtain a fresh copy of the cabinet",
            where=str(cab),
        ) from exc
    if not entries:
        raise CabinetError(
            "not a cabinet, or a cabinet with no members; obtain a fresh copy", where=str(cab)
        )
    return [
        CabMember(
            name=str(entry["name"]),
            size=int(entry["size"]),
            compression=str(entry["compression"]),
            folder_index=int(entry["folder_index"]),
            folder_offset=int(entry["offset"]),
        )
        for entry in entries
    ]


def extract_member(
    path: str | os.PathLike[str],
    name: str,
    dest_dir: str | os.PathLike[str],
    max_size: int,
) -> Path:
    """Extract member `name` of the cabinet at `path` into `dest_dir` and return its path.

    The member is matched by exact name, else case-insensitively (cabinets come from
    Windows). Refuses a member that declares more than `max_size` bytes, and checks that
    the bytes written equal the declared size (so a truncated cabinet never yields a
    silently short file). On any failure the partial output is removed.
    """
    cab = Path(path)
    members = list_members(cab)
    member = next((m for m in members if m.name == name), None)
    if member is None:
        member = next((m for m in members if m.name.lower() == name.lower()), None)
    where = f"{cab} member {name!r}"
    if member is None:
        present = ", ".join(repr(m.name) for m in members)
        raise CabinetError(
            f"no member {name!r}; the cabinet holds {present}. Is this the right kind of cabinet?",
            where=str(cab),
        )
    if member.size > max_size:
        raise CabinetError(
            f"declares {member.size} bytes, more than the allowed {max_size}; "
            "raise the limit if the cabinet is trusted",
            where=where,
        )
    try:
        out = Path(
            CabArchive(str(cab)).extract(
                member.name, os.fspath(dest_dir), max_size=max(max_size, 1)
            )
        )
    except pylibmspack.CabError as exc:
        raise CabinetError(
            f"extraction failed: {_describe(exc)}; obtain a fresh copy of the cabinet",
            where=where,
        ) from exc
    except OSError as exc:
        raise CabinetError(f"cannot write the extracted member: {exc}", where=where) from exc
    actual = out.stat().st_size if out.exists() else 0
    if actual != member.size:
        with contextlib.suppress(OSError):
            out.unlink()
        raise CabinetError(
            f"extracted {actual} bytes but the cabinet declares {member.size}: the cabinet is "
            "truncated or corrupt; obtain a fresh copy",
            where=where,
        )
    return out


# --------------------------------------------------------------------------- checksum


def cab_checksum(data: bytes | bytearray | memoryview, seed: int = 0) -> int:
    """The MS-CAB checksum of `data`, chained from `seed`.

    XOR of the little-endian 32-bit words of `data` into `seed`; the 1-3 trailing bytes
    form one more word with the first of them most significant (b0<<16 | b1<<8 | b2).
    A CFDATA checksum is `cab_checksum(cbData and cbUncomp fields, cab_checksum(data))`.
    """
    view = memoryview(data).cast("B")
    whole = len(view) & ~3
    acc = seed & 0xFFFFFFFF
    if whole:
        # Fold the words pairwise as one big integer: XOR is associative and the halves
        # stay word-aligned, so this equals XOR-ing every word, without a Python loop.
        value = int.from_bytes(view[:whole], "little")
        words = whole // 4
        while words > 1:
            low_words = (words + 1) // 2
            bits = low_words * 32
            value = (value & ((1 << bits) - 1)) ^ (value >> bits)
            words = low_words
        acc ^= value
    tail = 0
    for byte in view[whole:]:
        tail = (tail << 8) | byte
    return (acc ^ tail) & 0xFFFFFFFF


# --------------------------------------------------------------------------- writing


@dataclass(slots=True)
class _Entry:
    name: str
    encoded_name: bytes
    attribs: int
    source: Path
    size: int
    folder: int
    offset: int
    date: int
    time: int


def _dos_datetime(moment: datetime) -> tuple[int, int]:
    year = min(max(moment.year, 1980), 2107)
    date = ((year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return date, time


def _plan(members: Sequence[tuple[str, Path]], out: Path) -> tuple[list[_Entry], list[int]]:
    """Assign members to folders; return the entries and the uncompressed size per folder."""
    if not members:
        raise CabinetError("no members to write; a cabinet needs at least one", where=str(out))
    entries: list[_Entry] = []
    folder_sizes: list[int] = [0]
    seen: set[str] = set()
    for name, source in members:
        where = f"{out} member {name!r}"
        if (
            not name
            or "\0" in name
            or name.startswith(("/", "\\"))
            or ".." in re.split(r"[\\/]", name)
        ):
            raise CabinetError("member name must be a non-empty relative path", where=where)
        if name.lower() in seen:
            raise CabinetError("duplicate member name", where=where)
        seen.add(name.lower())
        try:
            encoded = name.encode("ascii")
            attribs = _ATTR_ARCHIVE
        except UnicodeEncodeError:
            encoded = name.encode("utf-8")
            attribs = _ATTR_ARCHIVE | _ATTR_NAME_IS_UTF
        if len(encoded) > 255:
            raise CabinetError("member name is longer than 255 bytes", where=where)
        src = Path(source)
        try:
            stat = src.stat()
        except OSError as exc:
            raise CabinetError(f"cannot read the source file {src}: {exc}", where=where) from exc
        if stat.st_size > MAX_MEMBER_SIZE:
            raise CabinetError(
                f"{src} is {stat.st_size} bytes; a cabinet member can hold at most "
                f"{MAX_MEMBER_SIZE} bytes (65535 blocks of 32 KiB); split the data",
                where=where,
            )
        if folder_sizes[-1] + stat.st_size > MAX_MEMBER_SIZE:
            folder_sizes.append(0)
        date, time = _dos_datetime(datetime.fromtimestamp(stat.st_mtime, UTC))
        entries.append(
            _Entry(
                name=name,
                encoded_name=encoded,
                attribs=attribs,
                source=src,
                size=stat.st_size,
                folder=len(folder_sizes) - 1,
                offset=folder_sizes[-1],
                date=date,
                time=time,
            )
        )
        folder_sizes[-1] += stat.st_size
    return entries, folder_sizes


def _folder_blocks(entries: Sequence[_Entry], out: Path) -> Iterator[bytes]:
    """The uncompressed stream of one folder (its members back to back) in 32 KiB blocks."""
    buffer = bytearray()
    for entry in entries:
        remaining = entry.size
        try:
            with entry.source.open("rb") as handle:
                while True:
                    chunk = handle.read(BLOCK_SIZE - len(buffer))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                    if remaining < 0:
                        break
                    buffer += chunk
                    if len(buffer) == BLOCK_SIZE:
                        yield bytes(buffer)
                        buffer.clear()
        except OSError as exc:
            raise CabinetError(
                f"cannot read the source file {entry.source}: {exc}",
                where=f"{out} member {entry.name!r}",
            ) from exc
        if remaining != 0:
            raise CabinetError(
                f"the source file {entry.source} changed size while it was being written "
                f"(expected {entry.size} bytes); write the cabinet again",
                where=f"{out} member {entry.name!r}",
            )
    if buffer:
        yield bytes(buffer)


def _mszip(block: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = packer.compress(block) + packer.flush(zlib.Z_FINISH)
    if len(payload) > _MSZIP_MAX_BLOCK:
        packer = zlib.compressobj(0, zlib.DEFLATED, -15)
        payload = packer.compress(block) + packer.flush(zlib.Z_FINISH)
    return _MSZIP_SIGNATURE + payload


def _write_block(handle: BinaryIO, block: bytes, compression: Compression) -> None:
    data = _mszip(block) if compression == "mszip" else block
    sizes = struct.pack("<HH", len(data), len(block))
    checksum = cab_checksum(sizes, cab_checksum(data))
    handle.write(struct.pack("<I", checksum))
    handle.write(sizes)
    handle.write(data)


def write_cabinet(
    out_path: str | os.PathLike[str],
    members: Sequence[tuple[str, Path]],
    compression: Compression = "mszip",
) -> Path:
    """Write a cabinet at `out_path` holding `members` ((name in cabinet, source file)).

    Streams each source in 32 KiB blocks; memory does not grow with member size. The
    cabinet appears at `out_path` only when complete (temp file + rename); on any error
    nothing is left behind. Returns `out_path`.
    """
    out = Path(out_path)
    if compression not in ("mszip", "none"):
        raise ValueError(f"compression must be 'mszip' or 'none', not {compression!r}")
    type_compress = _TYPE_MSZIP if compression == "mszip" else _TYPE_NONE
    entries, folder_sizes = _plan(members, out)

    files_offset = _CFHEADER.size + _CFFOLDER.size * len(folder_sizes)
    data_offset = files_offset + sum(_CFFILE.size + len(e.encoded_name) + 1 for e in entries)

    fd, temp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; a cabinet is an ordinary file
        with os.fdopen(fd, "w+b") as handle:
            handle.seek(data_offset)
            folders: list[tuple[int, int]] = []  # (coffCabStart, cCFData)
            for index, size in enumerate(folder_sizes):
                start = handle.tell()
                count = 0
                for block in _folder_blocks([e for e in entries if e.folder == index], out):
                    _write_block(handle, block, compression)
                    count += 1
                expected = -(-size // BLOCK_SIZE)
                if count != expected:  # pragma: no cover - guarded by _folder_blocks
                    raise CabinetError(
                        f"folder {index} has {count} blocks, expected {expected}", where=str(out)
                    )
                folders.append((start, count))
            total = handle.tell()
            if total > 0xFFFFFFFF:
                raise CabinetError(
                    f"the cabinet would be {total} bytes; the format allows at most 4 GiB - 1; "
                    "write fewer or smaller members",
                    where=str(out),
                )
            handle.seek(0)
            handle.write(
                _CFHEADER.pack(
                    b"MSCF",
                    0,  # reserved1
                    total,  # cbCabinet
                    0,  # reserved2
                    files_offset,  # coffFiles
                    0,  # reserved3
                    3,  # versionMinor
                    1,  # versionMajor
                    len(folders),
                    len(entries),
                    0,  # flags: no prev/next cabinet, no reserve
                    0,  # setID
                    0,  # iCabinet
                )
            )
            for start, count in folders:
                handle.write(_CFFOLDER.pack(start, count, type_compress))
            for entry in entries:
                handle.write(
                    _CFFILE.pack(
                        entry.size,
                        entry.offset,
                        entry.folder,
                        entry.date,
                        entry.time,
                        entry.attribs,
                    )
                )
                handle.write(entry.encoded_name + b"\0")
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(out)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return out
