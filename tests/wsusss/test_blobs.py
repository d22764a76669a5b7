"""Update blobs: cabinet member `blob` in UTF-16LE, decoded; broken ones refused clearly."""

from __future__ import annotations

import base64
import codecs
import tempfile
from pathlib import Path

import pytest

from updatesync.metadata.cabinet import write_cabinet
from updatesync.wsusss.blobs import (
    BlobError,
    decode_compressed_blob,
    decode_utf16_document,
    encode_compressed_blob,
)
from updatesync.wsusss.errors import ProtocolError

DOC = (
    '<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update">'
    + ("<upd:Title>Définition 𝄞</upd:Title>" * 400)
    + "</upd:Update>"
)


def _cabinet(member: str, data: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / member
        source.write_bytes(data)
        return write_cabinet(Path(tmp) / "x.cab", [(member, source)], "mszip").read_bytes()


@pytest.mark.parametrize("compression", ["mszip", "none"])
def test_round_trip(compression: str) -> None:
    cab = encode_compressed_blob(DOC, compression=compression)  # type: ignore[arg-type]
    assert cab.startswith(b"MSCF")
    assert decode_compressed_blob(cab) == DOC
    assert decode_compressed_blob(base64.b64encode(cab).decode()) == DOC


def test_mszip_compresses() -> None:
    assert len(encode_compressed_blob(DOC)) < len(DOC.encode("utf-16-le")) // 4


def test_a_bom_is_tolerated() -> None:
    assert (
        decode_compressed_blob(_cabinet("blob", codecs.BOM_UTF16_LE + DOC.encode("utf-16-le")))
        == DOC
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello", "not a cabinet"),
        ("@@not base64@@", "not valid base64"),
        (b"MSCF" + bytes(10), "cannot read the cabinet"),
        (_cabinet("document.xml", DOC.encode("utf-16-le")), "not a member named 'blob'"),
        (_cabinet("blob", DOC.encode("utf-8")), "does not read as XML in UTF-16LE"),
        (_cabinet("blob", b"<\x00a\x00/"), "odd number of bytes"),
        (
            _cabinet(
                "blob", "<a>\ud800</a>".encode("utf-16-le", "surrogatepass")[:-4] + b"\x00\xd8"
            ),
            "not valid UTF-16LE",
        ),
    ],
    # Named by what is wrong: a cabinet's bytes carry the time it was written, and a test id
    # that changes between two collections (xdist's workers) stops the run.
    ids=[
        "not-a-cabinet",
        "not-base64",
        "unreadable-cabinet",
        "no-blob-member",
        "utf8-not-utf16",
        "odd-bytes",
        "lone-surrogate",
    ],
)
def test_broken_blobs(data: bytes | str, message: str) -> None:
    with pytest.raises(BlobError, match=message) as caught:
        decode_compressed_blob(data, where="XmlUpdateBlobCompressed of update x")
    assert isinstance(caught.value, ProtocolError)
    assert caught.value.where == "XmlUpdateBlobCompressed of update x"


def test_corrupt_and_truncated_cabinets() -> None:
    cab = encode_compressed_blob(DOC)
    truncated = cab[: len(cab) - 40]
    with pytest.raises(BlobError, match=r"corrupt or truncated|cannot read"):
        decode_compressed_blob(truncated)
    flipped = bytearray(cab)
    flipped[len(cab) // 2] ^= 0xFF
    with pytest.raises(BlobError, match="corrupt"):
        decode_compressed_blob(bytes(flipped))


def test_size_cap() -> None:
    cab = encode_compressed_blob(DOC)
    with pytest.raises(BlobError, match="over the limit of 1,000"):
        decode_compressed_blob(cab, max_size=1000)


def test_real_lzx_blob_corruption(fixtures_dir: Path) -> None:
    body = (fixtures_dir / "wsusss" / "exchanges" / "000016" / "response.body").read_bytes()
    start = body.index(b"<XmlUpdateBlobCompressed>") + len(b"<XmlUpdateBlobCompressed>")
    cab = base64.b64decode(body[start : body.index(b"<", start)])
    assert decode_compressed_blob(cab).startswith("<upd:Update")
    for broken in (cab[: len(cab) // 2], cab[:200] + bytes([cab[200] ^ 0xFF]) + cab[201:]):
        with pytest.raises(BlobError, match="corrupt or truncated"):
            decode_compressed_blob(broken)


def test_decode_utf16_document() -> None:
    assert decode_utf16_document("  <a/>".encode("utf-16-le")) == "  <a/>"
    with pytest.raises(BlobError):
        decode_utf16_document("hello".encode("utf-16-le"))
