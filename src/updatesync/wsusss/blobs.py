"""The update document inside `GetUpdateData`: `XmlUpdateBlob` and `XmlUpdateBlobCompressed`.

`XmlUpdateBlob` is the document itself as element text (escaped XML; the parser has already
unescaped it). `XmlUpdateBlobCompressed` is base64 of a cabinet holding one member named
`blob`, whose bytes are the document in UTF-16LE without a byte order mark (observed,
exchanges 000013, 000014, 000016; SPEC.md section 7). MS-WSUSSS 3.1.4.6.3.3 says the field
is "compressed using a LZX variant" of Lempel-Ziv with a 2 MB window, referring to the
cabinet format; it names LZX and no other compression, so a cabinet with another method
(MSZIP, stored) is our extension, read by libmspack but not known to be accepted by a
Windows downstream server. Windows compresses documents above 5,120 bytes (note 36).

No LZX compressor exists for Python, so an updatesync upstream serves `XmlUpdateBlob` (which
the spec allows at any size). `encode_compressed_blob` writes an MSZIP (or stored) cabinet
so the compressed path can be exercised end to end between our own peers and in tests.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import tempfile
from pathlib import Path
from typing import Final

import pylibmspack
from pylibmspack import CabArchive

from updatesync.metadata.cabinet import Compression, write_cabinet
from updatesync.wsusss.errors import ProtocolError

__all__ = [
    "BLOB_MEMBER",
    "DEFAULT_MAX_BLOB_BYTES",
    "WINDOWS_COMPRESSION_THRESHOLD",
    "BlobError",
    "decode_b64",
    "decode_compressed_blob",
    "decode_utf16_document",
    "encode_compressed_blob",
]

BLOB_MEMBER: Final = "blob"
"""Name of the one cabinet member holding the document."""
DEFAULT_MAX_BLOB_BYTES: Final = 32 * 1024 * 1024
"""Largest decompressed member accepted (UTF-16LE; the largest real document is about
850 KB as UTF-8, so under 2 MB here)."""
WINDOWS_COMPRESSION_THRESHOLD: Final = 5120
"""Windows sends documents larger than this many bytes compressed (MS-WSUSSS note 36)."""


class BlobError(ProtocolError):
    """An `XmlUpdateBlobCompressed` that does not hold a readable update document."""


def decode_b64(text: str, *, where: str | None = None) -> bytes:
    """Strict base64 (RFC 4648 alphabet, padding checked); whitespace is ignored."""
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ProtocolError(f"not valid base64: {err}", where=where) from err


def decode_utf16_document(raw: bytes, *, where: str | None = None) -> str:
    """The text of a `blob` member: UTF-16LE (a BOM, which Windows does not write, is
    dropped). Raises BlobError when the bytes are not UTF-16LE XML text."""
    if raw.startswith(codecs.BOM_UTF16_LE):
        raw = raw[len(codecs.BOM_UTF16_LE) :]
    if len(raw) % 2:
        raise BlobError(
            f"the member has an odd number of bytes ({len(raw)}), so it is not UTF-16LE; "
            f"it starts with {raw[:16]!r}",
            where=where,
        )
    try:
        text = raw.decode("utf-16-le")
    except UnicodeDecodeError as err:
        raise BlobError(
            f"the member is not valid UTF-16LE: {err.reason} at byte {err.start}", where=where
        ) from err
    if not text.lstrip().startswith("<"):
        raise BlobError(
            f"the member does not read as XML in UTF-16LE (it starts with {raw[:16]!r}); "
            "it must be the update document in UTF-16LE without a BOM",
            where=where,
        )
    return text


def decode_compressed_blob(
    data: bytes | str, *, max_size: int = DEFAULT_MAX_BLOB_BYTES, where: str | None = None
) -> str:
    """The update document in an `XmlUpdateBlobCompressed` value.

    `data` is the cabinet (bytes) or its base64 text. Raises BlobError for bad base64, a
    body that is not a cabinet, a corrupt or truncated cabinet, a missing `blob` member, a
    member over `max_size` bytes, or content that is not UTF-16LE XML text.
    """
    if isinstance(data, str):
        try:
            data = decode_b64(data, where=where)
        except ProtocolError as err:
            raise BlobError(err.message, where=where) from err
    data = bytes(data)
    if not data.startswith(b"MSCF"):
        raise BlobError(
            f"not a cabinet (no 'MSCF' signature; the {len(data)} bytes start with {data[:8]!r})",
            where=where,
        )
    try:
        cab = CabArchive.from_bytes(data)
        members = cab.files()
    except pylibmspack.CabError as err:
        raise BlobError(f"cannot read the cabinet: {err}", where=where) from err
    names = [str(member["name"]) for member in members]
    name = next((n for n in names if n == BLOB_MEMBER), None)
    if name is None:
        name = next((n for n in names if n.lower() == BLOB_MEMBER), None)
    if name is None:
        raise BlobError(
            f"the cabinet holds {names or 'no members'}, not a member named {BLOB_MEMBER!r}",
            where=where,
        )
    size = int(next(m["size"] for m in members if m["name"] == name))
    if size > max_size:
        raise BlobError(
            f"member {name!r} declares {size:,} bytes, over the limit of {max_size:,}",
            where=where,
        )
    try:
        raw = cab.read(name, max_size=max(size, 1))
    except pylibmspack.CabError as err:
        raise BlobError(
            f"the cabinet's compressed data is corrupt or truncated: {err}", where=where
        ) from err
    if len(raw) != size:
        raise BlobError(
            f"member {name!r} yielded {len(raw)} bytes but declares {size}: the cabinet is "
            "truncated or corrupt",
            where=where,
        )
    return decode_utf16_document(raw, where=where)


def encode_compressed_blob(text: str, *, compression: Compression = "mszip") -> bytes:
    """A cabinet holding `text` as member `blob` in UTF-16LE without a BOM.

    MSZIP or stored, not LZX (see the module docstring): for our own peers and tests.
    """
    with tempfile.TemporaryDirectory(prefix="updatesync-blob-") as tmp:
        source = Path(tmp) / BLOB_MEMBER
        source.write_bytes(text.encode("utf-16-le"))
        target = write_cabinet(Path(tmp) / "blob.cab", [(BLOB_MEMBER, source)], compression)
        return target.read_bytes()
