"""Tests for updatesync.metadata.export: WSUS export cabinets, written and read back."""

from __future__ import annotations

import random
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from updatesync.metadata import export as export_module
from updatesync.metadata.cabinet import extract_member, list_members, write_cabinet
from updatesync.metadata.errors import (
    CabinetError,
    ExportFormatError,
    MetadataError,
    UnsafeXmlError,
)
from updatesync.metadata.export import (
    DEFAULT_LANGUAGES,
    ExportLanguage,
    ExportRecord,
    read_export,
    write_export,
)

ID_A = "6964AAB4-C5B5-43BD-A17D-FFB4346A8E1D"
ID_B = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
ID_C = "e6cf1350-c01b-414d-a61f-263d14d133b4"


def update_xml(uid: str, revision: int, title: str, body: str = "") -> str:
    return (
        '<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update">'
        f'<upd:UpdateIdentity UpdateID="{uid}" RevisionNumber="{revision}" />'
        f"<upd:LocalizedPropertiesCollection><upd:LocalizedProperties><upd:Title>{title}"
        f"</upd:Title></upd:LocalizedProperties></upd:LocalizedPropertiesCollection>{body}"
        "</upd:Update>"
    )


@pytest.fixture
def records() -> list[ExportRecord]:
    long_body = "<upd:Files>" + '<upd:File Size="1" />\r\n' * 60_000 + "</upd:Files>"
    return [
        ExportRecord(ID_A, 200, update_xml(ID_A, 200, "Windows 11 の累積的な更新プログラム")),
        ExportRecord(ID_A, 201, update_xml(ID_A, 201, "تحديث تراكمي لـ Windows 11")),
        ExportRecord(ID_B, 0x1F6, update_xml(ID_B, 0x1F6, "CR LF\r\ninside,\nbare LF, bare CR\r")),
        ExportRecord(ID_C, 1, update_xml(ID_C, 1, "astral 🚀𝔘 and \u2028 separators")),
        ExportRecord(ID_C, 2, update_xml(ID_C, 2, "long", long_body)),
        ExportRecord(str(uuid.UUID(int=5)), 3, ""),
    ]


def read_all(path: Path, **kwargs: object) -> list[ExportRecord]:
    with read_export(path, **kwargs) as export:  # type: ignore[arg-type]
        return list(export.records())


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("compression", ["mszip", "none"])
def test_round_trip_is_byte_identical(
    tmp_path: Path, records: list[ExportRecord], compression: str
) -> None:
    cab = tmp_path / "export.cab"
    moment = datetime(2024, 6, 19, 17, 11, 14, tzinfo=UTC)
    server = "a86cecaa-02ab-44a1-a09d-cac309aa7a3e"
    count = write_export(
        cab,
        iter(records),
        server_id=server,
        creation_time=moment,
        compression=compression,  # type: ignore[arg-type]
    )
    assert count == len(records)
    with read_export(cab) as export:
        package = export.package
        assert export.count == len(records)
        assert package.server_id == server
        assert package.creation_time == moment
        assert (package.format_version, package.protocol_version) == ("1.0", "1.20")
        assert package.languages == DEFAULT_LANGUAGES
        assert [(k.update_id, k.revision) for k in export.declared()] == [
            (r.update_id, r.revision) for r in records
        ]
        back = list(export.records())
    assert back == records
    for mine, theirs in zip(back, records, strict=True):
        assert mine.xml.encode("utf-8") == theirs.xml.encode("utf-8")
    assert back[0].update_id == ID_A.lower()


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 4093])
def test_records_split_across_read_chunks(
    tmp_path: Path, records: list[ExportRecord], chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Multi-byte characters, CR LF and headers cut between two reads still come out whole."""
    mid = ExportRecord(ID_B, 9, update_xml(ID_B, 9, "مرحبا 😀\r\n" * 500))
    wanted = [*records[:4], mid, records[5]]
    cab = tmp_path / "export.cab"
    write_export(cab, wanted)
    monkeypatch.setattr(export_module, "_CHUNK_BYTES", chunk)
    assert read_all(cab) == wanted


def test_members_have_the_real_shape(tmp_path: Path, records: list[ExportRecord]) -> None:
    cab = tmp_path / "export.cab"
    write_export(
        cab,
        records[:3],
        server_id="a86cecaa-02ab-44a1-a09d-cac309aa7a3e",
        creation_time=datetime(2024, 6, 19, 17, 11, 14, tzinfo=UTC),
        languages=[ExportLanguage(0, "all", "all", True), ExportLanguage(1033, "en", "English")],
    )
    assert [m.name for m in list_members(cab)] == ["package.xml", "metadata.txt"]
    package = extract_member(cab, "package.xml", tmp_path, 10**6).read_bytes()
    metadata = extract_member(cab, "metadata.txt", tmp_path, 10**6).read_bytes()
    assert (
        package
        == (
            '\ufeff<?xml version="1.0" encoding="utf-8"?><ExportPackage '
            'ServerID="a86cecaa-02ab-44a1-a09d-cac309aa7a3e" CreationTime="2024-06-19T17:11:14Z" '
            'FormatVersion="1.0" ProtocolVersion="1.20"><Languages>'
            '<Language Id="0" ShortName="all" LongName="all" Enabled="1" />'
            '<Language Id="1033" ShortName="en" LongName="English" Enabled="0" />'
            "</Languages><Files /><Updates>"
            '<Update UpdateId="6964aab4-c5b5-43bd-a17d-ffb4346a8e1d" RevisionNumber="200">'
            "<Files /><Categories /><Classifications /></Update>"
            '<Update UpdateId="6964aab4-c5b5-43bd-a17d-ffb4346a8e1d" RevisionNumber="201">'
            "<Files /><Categories /><Classifications /></Update>"
            '<Update UpdateId="0fa1201d-4330-4fa8-8ae9-b877473b6441" RevisionNumber="502">'
            "<Files /><Categories /><Classifications /></Update>"
            "</Updates></ExportPackage>"
        ).encode()
    )
    assert not metadata.startswith(b"\xef\xbb\xbf")
    first = records[0].xml
    # The length field counts characters, not bytes (the title is Japanese).
    assert len(first) != len(first.encode())
    assert metadata.startswith(
        f"6964aab4-c5b5-43bd-a17d-ffb4346a8e1d,000000c8,{len(first):08x},{first}\r\n".encode()
    )
    assert b",000001f6," in metadata


def test_astral_characters_count_as_two_utf16_units(
    tmp_path: Path, records: list[ExportRecord]
) -> None:
    cab = tmp_path / "export.cab"
    astral = records[3]
    write_export(cab, [astral])
    metadata = extract_member(cab, "metadata.txt", tmp_path, 10**6).read_text("utf-8")
    assert metadata[46:54] == f"{len(astral.xml) + 2:08x}"  # 🚀 and 𝔘
    assert read_all(cab) == [astral]


def test_empty_export_round_trips(tmp_path: Path) -> None:
    cab = tmp_path / "empty.cab"
    assert write_export(cab, []) == 0
    with read_export(cab) as export:
        assert export.count == 0
        assert list(export.records()) == []


def test_record_validation() -> None:
    with pytest.raises(ValueError, match="not a GUID"):
        ExportRecord("not-a-guid", 1, "<x/>")
    with pytest.raises(ValueError, match="8 hex digits"):
        ExportRecord(ID_B, 2**32, "<x/>")
    assert ExportRecord(ID_A, 1, "").update_id == ID_A.lower()


def test_write_refuses_duplicates_and_leaves_nothing(
    tmp_path: Path, records: list[ExportRecord]
) -> None:
    cab = tmp_path / "dup.cab"
    with pytest.raises(ValueError, match=r"record 3: .* already written"):
        write_export(cab, [records[0], records[1], records[0]])
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_unencodable_text(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"record 1 .*UTF-8"):
        write_export(tmp_path / "x.cab", [ExportRecord(ID_A, 1, "<t>\udc80</t>")])
    assert list(tmp_path.iterdir()) == []


def test_temp_dir_is_removed_after_use_and_after_errors(
    tmp_path: Path, records: list[ExportRecord]
) -> None:
    cab = tmp_path / "export.cab"
    write_export(cab, records[:2])
    work = tmp_path / "work"
    work.mkdir()
    with read_export(cab, work_dir=work) as export:
        assert len(list(work.iterdir())) == 1
        next(export.records())
    assert list(work.iterdir()) == []
    with pytest.raises(RuntimeError), read_export(cab, work_dir=work) as export:
        next(export.records())
        raise RuntimeError("caller failed")
    assert list(work.iterdir()) == []
    broken = tmp_path / "broken.cab"
    broken.write_bytes(cab.read_bytes()[:-40])
    with pytest.raises(CabinetError), read_export(broken, work_dir=work):
        pass
    assert list(work.iterdir()) == []


def test_records_outside_the_with_block_is_an_error(tmp_path: Path) -> None:
    cab = tmp_path / "export.cab"
    write_export(cab, [])
    reader = read_export(cab)
    with pytest.raises(RuntimeError, match="read_export"):
        reader.records()


# --------------------------------------------------------------------------- hostile input


def package_xml(keys: Sequence[tuple[str, int]], *, prolog: str = "") -> bytes:
    updates = "".join(
        f'<Update UpdateId="{uid}" RevisionNumber="{rev}"><Files /><Categories />'
        "<Classifications /></Update>"
        for uid, rev in keys
    )
    return (
        '\ufeff<?xml version="1.0" encoding="utf-8"?>'
        f'{prolog}<ExportPackage ServerID="{ID_B}" CreationTime="2024-06-19T17:11:14Z" '
        'FormatVersion="1.0" ProtocolVersion="1.20"><Languages>'
        '<Language Id="0" ShortName="all" LongName="all" Enabled="1" /></Languages>'
        f"<Files /><Updates>{updates}</Updates></ExportPackage>"
    ).encode()


def record_text(uid: str, rev: int, xml: str, length: int | None = None) -> str:
    return f"{uid},{rev:08x},{len(xml) if length is None else length:08x},{xml}\r\n"


def hostile_cab(tmp_path: Path, metadata: bytes, package: bytes) -> Path:
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / "package.xml").write_bytes(package)
    (tmp_path / "in" / "metadata.txt").write_bytes(metadata)
    return write_cabinet(
        tmp_path / "hostile.cab",
        [
            ("package.xml", tmp_path / "in" / "package.xml"),
            ("metadata.txt", tmp_path / "in" / "metadata.txt"),
        ],
    )


THREE = [(ID_C, 1), (ID_B, 2), (ID_C, 3)]
XML = {
    key: update_xml(key[0], key[1], f"title {i} ünïcödé\r\nline two") for i, key in enumerate(THREE)
}


def three_records(**lengths: int) -> list[str]:
    """The three records' text; `lengths` overrides the length field of r1/r2/r3."""
    return [
        record_text(uid, rev, XML[(uid, rev)], lengths.get(f"r{i}"))
        for i, (uid, rev) in enumerate(THREE, 1)
    ]


def expect_failure(
    tmp_path: Path,
    metadata: bytes,
    pattern: str,
    *,
    package: bytes | None = None,
    error: type[MetadataError] = ExportFormatError,
) -> list[ExportRecord]:
    """Read the hostile export; return the records yielded before the expected error."""
    cab = hostile_cab(tmp_path, metadata, package if package is not None else package_xml(THREE))
    seen: list[ExportRecord] = []
    with pytest.raises(error, match=pattern) as info, read_export(cab) as export:
        seen.extend(export.records())
    assert "metadata.txt" in str(info.value) or "package.xml" in str(info.value)
    return seen


def test_well_formed_hostile_baseline(tmp_path: Path) -> None:
    cab = hostile_cab(tmp_path, "".join(three_records()).encode(), package_xml(THREE))
    assert [(r.update_id, r.revision) for r in read_all(cab)] == THREE


def test_length_field_too_short(tmp_path: Path) -> None:
    text = three_records(r2=len(XML[THREE[1]]) - 1)
    offset = len(text[0])
    seen = expect_failure(
        tmp_path,
        "".join(text).encode(),
        rf"record 2 \({ID_B} rev 2, character offset {offset}\).*not followed by CR LF",
    )
    assert len(seen) == 1


def test_length_field_too_long(tmp_path: Path) -> None:
    text = three_records(r1=len(XML[THREE[0]]) + 3)
    expect_failure(
        tmp_path, "".join(text).encode(), r"record 1 .*offset 0\).*not followed by CR LF"
    )


def test_length_runs_past_end_of_file(tmp_path: Path) -> None:
    # Three characters more than the XML: the bytes are there (ü, ï, ö, é take two each)
    # but the characters are not.
    text = three_records(r3=len(XML[THREE[2]]) + 3)
    expect_failure(
        tmp_path,
        "".join(text).encode(),
        r"record 3 .*length field says 0x[0-9a-f]{8} \(\d+\) characters but the file ends",
    )


def test_length_far_past_end_of_file_is_caught_without_reading_on(tmp_path: Path) -> None:
    text = three_records(r1=0x01000000)
    expect_failure(
        tmp_path,
        "".join(text).encode(),
        r"record 1 .*says 0x01000000 \(16777216\) characters but only \d+ bytes remain",
    )


def test_absurd_length_is_refused(tmp_path: Path) -> None:
    text = three_records(r2=0xFFFFFFFF)
    expect_failure(
        tmp_path, "".join(text).encode(), r"record 2 .*0xffffffff .*more than the \d+ accepted"
    )


def test_last_record_without_crlf(tmp_path: Path) -> None:
    text = "".join(three_records())[:-2]
    expect_failure(tmp_path, text.encode(), r"record 3 .*not followed by CR LF")


def test_invalid_utf8_reports_the_byte_offset(tmp_path: Path) -> None:
    text = three_records()
    good = "".join(text).encode()
    bad_at = len((text[0] + text[1]).encode()) + 100
    metadata = good[:bad_at] + b"\xff" + good[bad_at + 1 :]
    expect_failure(tmp_path, metadata, rf"record 3: .*byte offset {bad_at} .*not valid UTF-8")


def test_utf8_cut_short_at_end_of_file(tmp_path: Path) -> None:
    metadata = "".join(three_records()).encode()[:-3] + "é".encode()[:1]
    expect_failure(
        tmp_path, metadata, rf"record 3: .*byte offset {len(metadata) - 1} .*not valid UTF-8"
    )


def test_a_leading_bom_is_tolerated(tmp_path: Path) -> None:
    metadata = ("\ufeff" + "".join(three_records())).encode()
    cab = hostile_cab(tmp_path, metadata, package_xml(THREE))
    assert [(r.update_id, r.revision) for r in read_all(cab)] == THREE


def test_bad_guid(tmp_path: Path) -> None:
    text = three_records()
    text[1] = "0fa1201d-4330-4fa8-8ae9-b877473b644X" + text[1][36:]
    seen = expect_failure(
        tmp_path,
        "".join(text).encode(),
        rf"record 2 \(character offset {len(text[0])}\): update id .*644X' is not a GUID",
    )
    assert [(r.update_id, r.revision) for r in seen] == THREE[:1]


@pytest.mark.parametrize(("field", "column"), [("revision", 37), ("length", 46)])
def test_non_hex_fields(tmp_path: Path, field: str, column: int) -> None:
    text = three_records()
    text[0] = text[0][:column] + "0000zz01" + text[0][column + 8 :]
    expect_failure(
        tmp_path,
        "".join(text).encode(),
        rf"record 1 .*{field} field '0000zz01' at character offset {column} is not 8 hex",
    )


def test_truncated_header(tmp_path: Path) -> None:
    text = "".join(three_records()) + f"{ID_A},0000"
    expect_failure(tmp_path, text.encode(), r"record 4 .*ends inside the record header")


def test_empty_metadata(tmp_path: Path) -> None:
    expect_failure(tmp_path, b"", r"metadata.txt is empty but package.xml declares 3")


def test_record_missing_from_metadata_is_reported_at_the_end(tmp_path: Path) -> None:
    text = three_records()
    seen = expect_failure(
        tmp_path,
        (text[0] + text[2]).encode(),
        rf"package.xml declares {ID_B} rev 2 but metadata.txt has no record for it",
    )
    assert len(seen) == 2  # streaming: the records were handed out before the check


def test_record_not_declared(tmp_path: Path) -> None:
    text = three_records()
    expect_failure(
        tmp_path,
        "".join(text).encode(),
        rf"record 3 .*{ID_C} rev 3 is not declared in package.xml",
        package=package_xml(THREE[:2]),
    )


def test_record_repeated(tmp_path: Path) -> None:
    text = three_records()
    expect_failure(
        tmp_path,
        (text[0] + text[1] + text[0]).encode(),
        rf"record 3 .*{ID_C} rev 1 appears a second time",
    )


# Past the batches (of 1000) in which declarations are written and records checked.
MANY = [(str(uuid.UUID(int=i + 1)), 1 + i % 3) for i in range(2500)]


def many_records(keys: Sequence[tuple[str, int]]) -> bytes:
    return "".join(record_text(uid, rev, update_xml(uid, rev, "t")) for uid, rev in keys).encode()


@pytest.mark.parametrize("order", ["as declared", "reversed", "shuffled"])
def test_many_records_are_checked_in_any_order(tmp_path: Path, order: str) -> None:
    keys = list(MANY)
    if order == "reversed":
        keys.reverse()
    elif order == "shuffled":
        random.Random(12).shuffle(keys)
    cab = hostile_cab(tmp_path, many_records(keys), package_xml(MANY))
    assert [(r.update_id, r.revision) for r in read_all(cab)] == keys


def test_a_revision_declared_twice_batches_apart_is_the_first_error(tmp_path: Path) -> None:
    uid, rev = MANY[10]
    package = package_xml([*MANY[:1500], MANY[10], *MANY[1500:], ("not-a-guid", 1)])
    expect_failure(
        tmp_path,
        many_records(MANY),
        rf"<Update> #1501 declares {uid} rev {rev} a second time",
        package=package,
    )


@pytest.mark.parametrize("case", ["repeated", "missing", "not declared"])
def test_many_records_repeated_missing_or_not_declared(tmp_path: Path, case: str) -> None:
    last, gone, (uid, rev) = MANY[-1], MANY[1200], MANY[5]
    metadata, declared, pattern, before = {
        "repeated": (
            [*MANY[:2000], MANY[5]],
            MANY,
            rf"record 2001 .*{uid} rev {rev} appears a second time",
            2000,
        ),
        "missing": (
            [k for k in MANY if k != gone],
            MANY,
            rf"package.xml declares {gone[0]} rev {gone[1]} but metadata.txt has no record",
            2499,
        ),
        "not declared": (
            MANY,
            MANY[:-1],
            rf"record 2500 .*{last[0]} rev {last[1]} is not declared in package.xml",
            2499,
        ),
    }[case]
    seen = expect_failure(tmp_path, many_records(metadata), pattern, package=package_xml(declared))
    assert len(seen) == before


def test_doctype_in_package_is_refused(tmp_path: Path) -> None:
    package = package_xml(THREE, prolog="<!DOCTYPE ExportPackage>")
    expect_failure(tmp_path, b"", "DOCTYPE", package=package, error=UnsafeXmlError)


def test_entity_declaration_in_package_is_refused(tmp_path: Path) -> None:
    laugh = '<!DOCTYPE ExportPackage [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
    package = package_xml(THREE, prolog=laugh).replace(b'ServerID="', b'ServerID="&lol2;')
    expect_failure(tmp_path, b"", "DOCTYPE", package=package, error=UnsafeXmlError)


def test_undefined_entity_in_package(tmp_path: Path) -> None:
    package = package_xml(THREE).replace(b"<Files />", b"<Files>&xxe;</Files>", 1)
    expect_failure(tmp_path, b"", r"not well-formed XML: Entity 'xxe' not defined", package=package)


def test_package_not_xml(tmp_path: Path) -> None:
    expect_failure(tmp_path, b"", r"package.xml is not well-formed", package=b"PK\x03\x04")


def test_package_with_bad_update_entry(tmp_path: Path) -> None:
    package = package_xml(THREE).replace(b'RevisionNumber="2"', b'RevisionNumber="two"')
    expect_failure(tmp_path, b"", r"<Update> #2 .*RevisionNumber 'two'", package=package)


def test_export_without_metadata_member(tmp_path: Path) -> None:
    (tmp_path / "package.xml").write_bytes(package_xml(THREE))
    cab = write_cabinet(tmp_path / "half.cab", [("package.xml", tmp_path / "package.xml")])
    with pytest.raises(CabinetError, match=r"no member 'metadata.txt'"), read_export(cab):
        pass


def test_truncated_export_cabinet(tmp_path: Path, records: list[ExportRecord]) -> None:
    cab = tmp_path / "export.cab"
    write_export(cab, records)
    cab.write_bytes(cab.read_bytes()[: cab.stat().st_size // 2])
    # Both members share the folder's blocks, so either may be the one that fails.
    truncated = r"member '[a-z]+\.(xml|txt)'.*truncated"
    with pytest.raises(CabinetError, match=truncated), read_export(cab):
        pass


# --------------------------------------------------------------------------- memory


def generated_records(count: int, filler: int) -> Iterator[ExportRecord]:
    padding = "<upd:Pad>" + "x" * filler + "</upd:Pad>\r\n"
    for number in range(count):
        uid = str(uuid.UUID(int=number + 1))
        title = f"Mise à jour {number} — تحديث — 累積的な更新"
        yield ExportRecord(uid, 100 + number % 7, update_xml(uid, 100 + number % 7, title, padding))


def test_reading_a_large_export_stays_in_flat_memory(tmp_path: Path) -> None:
    count, filler = 20_000, 10_000  # about 200 MB of metadata.txt
    cab = tmp_path / "large.cab"
    assert write_export(cab, generated_records(count, filler)) == count
    metadata_size = next(m.size for m in list_members(cab) if m.name == "metadata.txt")
    assert metadata_size > 200_000_000
    seen = 0
    with read_export(cab) as export:
        tracemalloc.start()
        try:
            for record in export.records():
                seen += 1
                assert len(record.xml) > filler
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert seen == count
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while reading"


def test_writing_into_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        write_export(tmp_path / "missing" / "x.cab", [])
    assert caught.value.filename == str(tmp_path / "missing")
    assert caught.value.strerror == "no such folder; create it first"
