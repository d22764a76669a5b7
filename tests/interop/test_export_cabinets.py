"""The real WSUS export cabinets (`wsusutil export`, LZX): read them, and write them again.

The data is published by others (see ../shared/fixtures/README.md); the tests skip when it
is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from updatesync.metadata.cabinet import extract_member, list_members
from updatesync.metadata.errors import CabinetError
from updatesync.metadata.export import ExportPackage, ExportRecord, read_export, write_export

IDENTITY = re.compile(r'<upd:UpdateIdentity UpdateID="([^"]+)" RevisionNumber="(\d+)"')


def load(path: Path) -> tuple[ExportPackage, list[ExportRecord]]:
    with read_export(path) as export:
        return export.package, list(export.records())


@pytest.fixture(scope="module")
def cab_2024(fixtures_dir: Path) -> Path:
    return fixtures_dir / "wsus-exports" / "wsus-export-2024-06.cab"


@pytest.fixture(scope="module")
def cab_2020(fixtures_dir: Path) -> Path:
    return fixtures_dir / "wsus-exports" / "wsus-export-2020-04.cab"


@pytest.fixture(scope="module")
def export_2024(cab_2024: Path) -> tuple[ExportPackage, list[ExportRecord]]:
    return load(cab_2024)


@pytest.fixture(scope="module")
def export_2020(cab_2020: Path) -> tuple[ExportPackage, list[ExportRecord]]:
    return load(cab_2020)


def test_2024_counts_and_package(export_2024: tuple[ExportPackage, list[ExportRecord]]) -> None:
    package, records = export_2024
    assert len(records) == package.count == 4125
    assert len({r.update_id for r in records}) == 4087
    assert package.server_id == "a86cecaa-02ab-44a1-a09d-cac309aa7a3e"
    assert package.creation_time.isoformat() == "2024-06-19T17:11:14+00:00"
    assert (package.format_version, package.protocol_version) == ("1.0", "1.20")
    assert len(package.languages) == 39
    assert [lang.short_name for lang in package.languages if lang.enabled] == ["all"]


def test_2020_counts_and_package(export_2020: tuple[ExportPackage, list[ExportRecord]]) -> None:
    package, records = export_2020
    assert len(records) == package.count == 3690
    assert package.creation_time.isoformat() == "2020-04-21T23:50:06+00:00"
    assert package.protocol_version == "1.20"
    assert [lang.short_name for lang in package.languages if lang.enabled] == ["en"]


@pytest.mark.parametrize("which", ["cab_2024", "cab_2020"])
def test_every_record_is_the_revision_package_xml_declares(
    which: str, request: pytest.FixtureRequest
) -> None:
    with read_export(request.getfixturevalue(which)) as export:
        records = list(export.records())
        declared = list(export.declared())
    # Same revisions, and in the same order, as package.xml lists them.
    assert [(r.update_id, r.revision) for r in records] == [
        (k.update_id, k.revision) for k in declared
    ]
    for record in records:
        # Each XML is a whole update document naming the revision its record names: proof
        # that the records were cut at the right places.
        assert record.xml.startswith("<upd:Update ") and record.xml.endswith("</upd:Update>")
        match = IDENTITY.search(record.xml)
        assert match is not None
        assert (match.group(1).lower(), int(match.group(2))) == (
            record.update_id,
            record.revision,
        )


@pytest.mark.parametrize("which", ["export_2024", "export_2020"])
def test_real_records_exercise_character_lengths_and_embedded_newlines(
    which: str, request: pytest.FixtureRequest
) -> None:
    _, records = request.getfixturevalue(which)
    non_ascii = [r for r in records if len(r.xml.encode("utf-8")) != len(r.xml)]
    with_newlines = [r for r in records if "\n" in r.xml]
    assert len(non_ascii) > 100  # length counted in bytes would mis-cut all of these
    assert len(with_newlines) > 30  # reading by lines would mis-cut all of these


def test_re_export_2024_is_byte_identical(
    tmp_path: Path, cab_2024: Path, export_2024: tuple[ExportPackage, list[ExportRecord]]
) -> None:
    package, records = export_2024
    out = tmp_path / "again.cab"
    written = write_export(
        out,
        records,
        server_id=package.server_id,
        creation_time=package.creation_time,
        languages=package.languages,
    )
    assert written == 4125
    package_again, records_again = load(out)
    assert package_again == package
    assert len(records_again) == len(records)
    for mine, real in zip(records_again, records, strict=True):
        assert mine.xml.encode("utf-8") == real.xml.encode("utf-8")
    # Beyond the records: both members come out byte for byte as Windows wrote them.
    for member in ("package.xml", "metadata.txt"):
        ours = extract_member(out, member, tmp_path / "ours", 10**8).read_bytes()
        theirs = extract_member(cab_2024, member, tmp_path / "theirs", 10**8).read_bytes()
        assert ours == theirs, member


def test_cabextract_accepts_the_re_export(
    tmp_path: Path, export_2024: tuple[ExportPackage, list[ExportRecord]]
) -> None:
    cabextract = shutil.which("cabextract")
    if cabextract is None:
        pytest.skip("cabextract is not on PATH (Debian: apt-get install cabextract)")
    out = tmp_path / "again.cab"
    write_export(out, export_2024[1])
    tested = subprocess.run([cabextract, "-t", str(out)], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "All done, no errors." in tested.stdout


def test_real_cabinet_layout(cab_2024: Path) -> None:
    members = list_members(cab_2024)
    assert [(m.name, m.compression, m.folder_index) for m in members] == [
        ("package.xml", "lzx", 0),
        ("metadata.txt", "lzx", 0),
    ]


def test_real_cabinet_cut_in_half(tmp_path: Path, cab_2024: Path) -> None:
    raw = cab_2024.read_bytes()
    cut = tmp_path / "cut.cab"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CabinetError, match=r"'metadata\.txt'.*truncated"), read_export(cut):
        pass


def test_real_cabinet_with_a_flipped_bit(tmp_path: Path, cab_2024: Path) -> None:
    raw = bytearray(cab_2024.read_bytes())
    raw[len(raw) * 3 // 4] ^= 0x04  # inside the LZX data of metadata.txt
    flipped = tmp_path / "flipped.cab"
    flipped.write_bytes(raw)
    with pytest.raises(CabinetError, match=r"'metadata\.txt'.*checksum"), read_export(flipped):
        pass
