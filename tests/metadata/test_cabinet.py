"""Tests for updatesync.metadata.cabinet: our writer, checked by libmspack and cabextract."""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
import tracemalloc
import zlib
from pathlib import Path

import pytest

from updatesync.metadata import cabinet
from updatesync.metadata.cabinet import (
    BLOCK_SIZE,
    cab_checksum,
    extract_member,
    list_members,
    write_cabinet,
)
from updatesync.metadata.errors import CabinetError

CABEXTRACT = shutil.which("cabextract")
needs_cabextract = pytest.mark.skipif(
    CABEXTRACT is None,
    reason="cabextract is not on PATH (Debian: apt-get install cabextract); CI installs it",
)


def reference_checksum(data: bytes, seed: int = 0) -> int:
    """The MS-CAB checksum written out word by word, as the format describes it."""
    csum = seed
    whole = len(data) // 4
    for i in range(whole):
        csum ^= struct.unpack_from("<I", data, 4 * i)[0]
    tail = data[4 * whole :]
    word = 0
    if len(tail) == 3:
        word = tail[0] << 16 | tail[1] << 8 | tail[2]
    elif len(tail) == 2:
        word = tail[0] << 8 | tail[1]
    elif len(tail) == 1:
        word = tail[0]
    return csum ^ word


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    """Files of the awkward sizes: text, incompressible, empty, exactly two blocks, odd."""
    rng = random.Random(7)
    files = {
        "package.xml": b"\xef\xbb\xbf<ExportPackage>" + b"<Update />" * 9000 + b"</ExportPackage>",
        "random.bin": rng.randbytes(100_003),
        "empty.txt": b"",
        "two-blocks.bin": b"\x00\x01" * BLOCK_SIZE,
        "metadata.txt": "日本語 العربية\r\n".encode() * 5000,
    }
    out = {}
    for name, data in files.items():
        path = tmp_path / "src" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        out[name] = path
    return out


def members_of(sources: dict[str, Path]) -> list[tuple[str, Path]]:
    return list(sources.items())


# --------------------------------------------------------------------------- checksum


def test_checksum_tail_bytes_are_taken_most_significant_first() -> None:
    assert cab_checksum(b"\x01\x02\x03\x04") == 0x04030201
    assert cab_checksum(b"\x01\x02\x03") == 0x010203
    assert cab_checksum(b"\x01\x02") == 0x0102
    assert cab_checksum(b"\x01\x02\x03\x04\x05") == 0x04030201 ^ 0x05
    assert cab_checksum(b"", 0xDEADBEEF) == 0xDEADBEEF


def test_checksum_equals_word_by_word_definition() -> None:
    rng = random.Random(1)
    for size in [*range(0, 41), 4095, BLOCK_SIZE, BLOCK_SIZE + 7]:
        data = rng.randbytes(size)
        seed = rng.getrandbits(32)
        assert cab_checksum(data, seed) == reference_checksum(data, seed), size


def test_checksum_matches_every_block_of_a_real_windows_cabinet(fixtures_dir: Path) -> None:
    raw = (fixtures_dir / "wsus-exports" / "wsus-export-2024-06.cab").read_bytes()
    flags = struct.unpack_from("<H", raw, 30)[0]
    offset = 36
    header_reserve, data_reserve = 0, 0
    if flags & 4:
        header_reserve, _, data_reserve = struct.unpack_from("<HBB", raw, 36)
        offset += 4 + header_reserve
    start, blocks, _ = struct.unpack_from("<IHH", raw, offset)
    position = start
    for _ in range(blocks):
        stored, size, _ = struct.unpack_from("<IHH", raw, position)
        data = raw[position + 8 + data_reserve : position + 8 + data_reserve + size]
        assert cab_checksum(raw[position + 4 : position + 8], cab_checksum(data)) == stored
        position += 8 + data_reserve + size
    assert position == len(raw)


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("compression", ["mszip", "none"])
def test_write_then_list_and_extract(
    tmp_path: Path, sources: dict[str, Path], compression: cabinet.Compression
) -> None:
    cab = write_cabinet(tmp_path / "out.cab", members_of(sources), compression)
    members = list_members(cab)
    assert [m.name for m in members] == list(sources)
    assert {m.compression for m in members} == {compression}
    for member in members:
        assert member.size == sources[member.name].stat().st_size
        extracted = extract_member(cab, member.name, tmp_path / "x", max_size=10**8)
        assert extracted.read_bytes() == sources[member.name].read_bytes()


def test_mszip_compresses_and_blocks_are_independent(
    tmp_path: Path, sources: dict[str, Path]
) -> None:
    cab = write_cabinet(tmp_path / "out.cab", members_of(sources), "mszip")
    total = sum(p.stat().st_size for p in sources.values())
    assert cab.stat().st_size < total * 0.75  # the random member alone is 100 KB
    raw = cab.read_bytes()
    start, blocks, kind = struct.unpack_from("<IHH", raw, 36)
    assert kind == 1 and blocks == -(-total // BLOCK_SIZE)
    position = start
    for _ in range(blocks):
        _, size, usize = struct.unpack_from("<IHH", raw, position)
        payload = raw[position + 8 : position + 8 + size]
        assert payload[:2] == b"CK"
        # Each block inflates alone: no back-reference reaches into the previous block.
        assert len(zlib.decompress(payload[2:], -15)) == usize
        position += 8 + size


def test_non_ascii_member_name(tmp_path: Path, sources: dict[str, Path]) -> None:
    cab = write_cabinet(tmp_path / "n.cab", [("paquet-é.xml", sources["package.xml"])])
    assert [m.name for m in list_members(cab)] == ["paquet-é.xml"]


def test_new_folder_when_the_block_limit_is_reached(
    tmp_path: Path, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Shrink the per-folder capacity to 3 blocks so that the rule is exercised cheaply.
    monkeypatch.setattr(cabinet, "MAX_MEMBER_SIZE", 3 * BLOCK_SIZE)
    two = sources["two-blocks.bin"]
    cab = write_cabinet(
        tmp_path / "f.cab", [("a", two), ("b", two), ("empty", sources["empty.txt"]), ("c", two)]
    )
    members = list_members(cab)
    assert [m.folder_index for m in members] == [0, 1, 1, 2]
    for member in members:
        data = extract_member(cab, member.name, tmp_path / "x", 10**6).read_bytes()
        assert data == (b"" if member.name == "empty" else two.read_bytes())


def test_member_over_the_folder_limit_is_refused_and_nothing_is_left(
    tmp_path: Path, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cabinet, "MAX_MEMBER_SIZE", BLOCK_SIZE)
    out = tmp_path / "big.cab"
    with pytest.raises(CabinetError, match=r"'two-blocks.bin'.*at most") as info:
        write_cabinet(out, [("two-blocks.bin", sources["two-blocks.bin"])])
    assert str(out) in str(info.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "src"]


def test_failure_midway_leaves_no_file(tmp_path: Path, sources: dict[str, Path]) -> None:
    out = tmp_path / "half.cab"
    with pytest.raises(CabinetError, match=r"missing\.bin"):
        write_cabinet(out, [("a", sources["random.bin"]), ("b", tmp_path / "missing.bin")])
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"]


def test_existing_cabinet_is_replaced_only_on_success(
    tmp_path: Path, sources: dict[str, Path]
) -> None:
    out = write_cabinet(tmp_path / "keep.cab", [("a", sources["random.bin"])])
    before = out.read_bytes()
    with pytest.raises(CabinetError):
        write_cabinet(out, [("a", tmp_path / "missing.bin")])
    assert out.read_bytes() == before


def test_writing_streams_in_flat_memory(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        for i in range(640):  # 20 MiB of semi-compressible data
            handle.write(random.Random(i).randbytes(1024) * 32)
    tracemalloc.start()
    try:
        write_cabinet(tmp_path / "big.cab", [("big.bin", big)], "mszip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024
    assert list_members(tmp_path / "big.cab")[0].size == big.stat().st_size


# --------------------------------------------------------------------------- cabextract


@needs_cabextract
@pytest.mark.parametrize("compression", ["mszip", "none"])
def test_cabextract_lists_tests_and_extracts(
    tmp_path: Path, sources: dict[str, Path], compression: cabinet.Compression
) -> None:
    cab = write_cabinet(tmp_path / "out.cab", members_of(sources), compression)
    assert CABEXTRACT is not None
    listing = subprocess.run([CABEXTRACT, "-l", str(cab)], capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    for name in sources:
        assert name in listing.stdout
    # -t decompresses everything and verifies every CFDATA checksum.
    tested = subprocess.run([CABEXTRACT, "-t", str(cab)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "All done, no errors." in tested.stdout
    assert "checksum" not in (tested.stdout + tested.stderr).lower()
    out = tmp_path / "cabextract"
    done = subprocess.run(
        [CABEXTRACT, "-q", "-d", str(out), str(cab)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for name, path in sources.items():
        assert (out / name).read_bytes() == path.read_bytes()


@needs_cabextract
def test_cabextract_accepts_several_folders(
    tmp_path: Path, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cabinet, "MAX_MEMBER_SIZE", 4 * BLOCK_SIZE)
    rnd = sources["random.bin"]  # 100,003 bytes: 4 blocks
    cab = write_cabinet(tmp_path / "f.cab", [("a", rnd), ("b", rnd), ("c", rnd)])
    assert CABEXTRACT is not None
    tested = subprocess.run([CABEXTRACT, "-t", str(cab)], capture_output=True, text=True)
    assert tested.returncode == 0 and "All done, no errors." in tested.stdout, tested.stdout


@needs_cabextract
def test_cabextract_sees_a_corrupted_checksum(tmp_path: Path, sources: dict[str, Path]) -> None:
    """Proof that cabextract really checks what we write (so the tests above mean something)."""
    cab = write_cabinet(tmp_path / "out.cab", [("r", sources["random.bin"])], "none")
    raw = bytearray(cab.read_bytes())
    start = struct.unpack_from("<I", raw, 36)[0]
    raw[start] ^= 0x01  # first CFDATA's csum
    cab.write_bytes(raw)
    assert CABEXTRACT is not None
    tested = subprocess.run([CABEXTRACT, "-t", str(cab)], capture_output=True, text=True)
    assert tested.returncode != 0
    assert "checksum" in (tested.stdout + tested.stderr).lower()


# --------------------------------------------------------------------------- hostile input


@pytest.fixture
def written(tmp_path: Path, sources: dict[str, Path]) -> Path:
    return write_cabinet(
        tmp_path / "w.cab",
        [("package.xml", sources["package.xml"]), ("random.bin", sources["random.bin"])],
    )


@pytest.mark.parametrize("compression", ["mszip", "none"])
@pytest.mark.parametrize("keep", [0.5, 0.9, -1])
def test_truncated_cabinet(
    tmp_path: Path, sources: dict[str, Path], compression: cabinet.Compression, keep: float
) -> None:
    cab = write_cabinet(
        tmp_path / "t.cab",
        [("package.xml", sources["package.xml"]), ("random.bin", sources["random.bin"])],
        compression,
    )
    raw = cab.read_bytes()
    cut = len(raw) - 1 if keep == -1 else int(len(raw) * keep)
    cab.write_bytes(raw[:cut])
    with pytest.raises(CabinetError, match=r"'random.bin'.*truncated") as info:
        extract_member(cab, "random.bin", tmp_path / "x", 10**6)
    assert str(cab) in str(info.value)
    assert not (tmp_path / "x" / "random.bin").exists()


def test_real_cabinet_cut_in_half(tmp_path: Path, fixtures_dir: Path) -> None:
    raw = (fixtures_dir / "wsus-exports" / "wsus-export-2024-06.cab").read_bytes()
    cab = tmp_path / "half.cab"
    cab.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CabinetError, match=r"'metadata.txt'.*truncated"):
        extract_member(cab, "metadata.txt", tmp_path / "x", 10**8)


def test_flipped_byte_in_compressed_data(tmp_path: Path, written: Path) -> None:
    raw = bytearray(written.read_bytes())
    raw[len(raw) - 5000] ^= 0x10  # inside random.bin's deflate data
    written.write_bytes(raw)
    with pytest.raises(CabinetError, match=r"'random.bin'.*checksum"):
        extract_member(written, "random.bin", tmp_path / "x", 10**6)


def test_not_a_cabinet(tmp_path: Path) -> None:
    fake = tmp_path / "fake.cab"
    fake.write_bytes(b"PK\x03\x04" + os.urandom(2000))
    with pytest.raises(CabinetError, match="not a cabinet") as info:
        list_members(fake)
    assert str(fake) in str(info.value)
    with pytest.raises(CabinetError, match="not a cabinet"):
        extract_member(fake, "metadata.txt", tmp_path, 10**6)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.cab"
    empty.write_bytes(b"")
    with pytest.raises(CabinetError, match=r"empty\.cab"):
        list_members(empty)
    with pytest.raises(CabinetError, match="no such file"):
        list_members(tmp_path / "nothing.cab")


def test_missing_member_names_it_and_what_is_there(tmp_path: Path, written: Path) -> None:
    with pytest.raises(CabinetError, match=r"no member 'metadata.txt'.*'package.xml'"):
        extract_member(written, "metadata.txt", tmp_path, 10**6)


def test_member_larger_than_allowed(tmp_path: Path, written: Path) -> None:
    with pytest.raises(CabinetError, match=r"'random.bin'.*100003 bytes.*1000"):
        extract_member(written, "random.bin", tmp_path, max_size=1000)
