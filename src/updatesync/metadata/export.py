"""WSUS export cabinets (`wsusutil export`, the disconnected-import format): read and write.

An export is a cabinet holding two members:

* `package.xml` - UTF-8 with a BOM, one line: `<ExportPackage ServerID CreationTime
  FormatVersion="1.0" ProtocolVersion="1.20">` with `<Languages>` (`<Language Id ShortName
  LongName Enabled />`), `<Files />` and `<Updates>` holding one `<Update UpdateId
  RevisionNumber><Files /><Categories /><Classifications /></Update>` per revision.
* `metadata.txt` - UTF-8 without a BOM, one record per revision:
  `<guid>,<revision: 8 hex digits>,<length: 8 hex digits>,<update XML>` CR LF, hex in
  lower case. The length counts characters, not bytes, and the XML may itself contain CR
  and LF (even a lone CR), so a record is read by its length, never by lines. Characters
  are taken as UTF-16 code units (.NET's `String.Length`): a character outside the BMP
  counts twice. The real exports hold no such character, so that detail is inferred.

`read_export` extracts both members to a private temporary directory, parses package.xml
with a hardened parser, and streams metadata.txt record by record in bounded memory,
checking every field and, at the end, that the records are exactly the revisions that
package.xml declares. `write_export` streams records into both files and packs them with
`cabinet.write_cabinet`.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from lxml import etree

from updatesync.metadata.cabinet import Compression, extract_member, write_cabinet
from updatesync.metadata.declared import DeclaredIndex
from updatesync.metadata.errors import ExportFormatError, UnsafeXmlError
from updatesync.metadata.model import RevisionKey

__all__ = [
    "DEFAULT_LANGUAGES",
    "DEFAULT_MAX_MEMBER_SIZE",
    "MAX_RECORD_CHARS",
    "ExportLanguage",
    "ExportPackage",
    "ExportReader",
    "ExportRecord",
    "read_export",
    "write_export",
]

PACKAGE_MEMBER = "package.xml"
METADATA_MEMBER = "metadata.txt"
FORMAT_VERSION = "1.0"
PROTOCOL_VERSION = "1.20"
DEFAULT_MAX_MEMBER_SIZE = 4 * 1024**3
"""Largest member `read_export` extracts by default (a cabinet member is at most 4 GiB)."""

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_HEADER_CHARS = 55  # 36 (guid) + 1 + 8 (revision) + 1 + 8 (length) + 1
_CHUNK_BYTES = 256 * 1024
MAX_RECORD_CHARS = 32 * 1024 * 1024
"""Longest update XML accepted in metadata.txt (the largest real one is about 850,000)."""
_MAX_FIELD = 0xFFFFFFFF


def _utf16_length(text: str) -> int:
    """Length in UTF-16 code units: characters outside the BMP count twice."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True, slots=True)
class ExportRecord:
    """One metadata.txt record: a revision and its update XML, exactly as stored."""

    update_id: str
    revision: int
    xml: str

    def __post_init__(self) -> None:
        if not isinstance(self.update_id, str) or _GUID.fullmatch(self.update_id) is None:
            raise ValueError(f"update id {self.update_id!r} is not a GUID")
        if not 0 <= self.revision <= _MAX_FIELD:
            raise ValueError(
                f"{self.update_id}: revision {self.revision} does not fit 8 hex digits"
            )
        if not isinstance(self.xml, str):
            raise ValueError(f"{self.update_id} rev {self.revision}: xml must be str")
        object.__setattr__(self, "update_id", self.update_id.lower())

    @property
    def key(self) -> RevisionKey:
        return RevisionKey(self.update_id, self.revision)


@dataclass(frozen=True, slots=True)
class ExportLanguage:
    """`<Language Id ShortName LongName Enabled />` of package.xml."""

    id: int
    short_name: str
    long_name: str
    enabled: bool = False


DEFAULT_LANGUAGES: tuple[ExportLanguage, ...] = (
    ExportLanguage(0, "all", "all", True),
    ExportLanguage(1025, "ar", "Arabic"),
    ExportLanguage(1031, "de", "German"),
    ExportLanguage(1033, "en", "English"),
    ExportLanguage(1034, "es", "Spanish"),
    ExportLanguage(1036, "fr", "French"),
    ExportLanguage(1041, "ja", "Japanese"),
    ExportLanguage(2052, "zh-cn", "Chinese (Simplified)"),
)
"""What `write_export` declares by default: every language, plus a few named ones."""


@dataclass(frozen=True, slots=True)
class ExportPackage:
    """What package.xml says about an export."""

    server_id: str
    creation_time: datetime
    format_version: str
    protocol_version: str
    languages: tuple[ExportLanguage, ...]
    count: int
    """How many revisions package.xml declares (= records metadata.txt must hold)."""


# --------------------------------------------------------------------------- package.xml


def _require(elem: etree._Element, name: str, where: str, what: str) -> str:
    value = elem.get(name)
    if value is None or not value.strip():
        raise ExportFormatError(
            f"{what} (line {elem.sourceline}) lacks the {name} attribute", where=where
        )
    return value.strip()


def _parse_creation_time(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ExportFormatError(
            f"CreationTime {text!r} is not an ISO 8601 date-time", where=where
        ) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _declared_once(twice: tuple[int, RevisionKey] | None, where: str) -> None:
    if twice is not None:
        number, key = twice
        raise ExportFormatError(f"<Update> #{number} declares {key} a second time", where=where)


def _parse_package(path: Path, where: str, declared: DeclaredIndex) -> ExportPackage:
    """Parse package.xml; a revision declared twice is the first error, as it comes first."""
    try:
        package = _read_package(path, where, declared)
    except ExportFormatError:
        _declared_once(declared.settle(), where)
        raise
    _declared_once(declared.settle(), where)
    return package


def _read_package(path: Path, where: str, declared: DeclaredIndex) -> ExportPackage:
    """Parse package.xml incrementally (it grows with the number of revisions)."""
    context = etree.iterparse(
        str(path),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
    )
    root: etree._Element | None = None
    attrs: dict[str, str] = {}
    languages: list[ExportLanguage] = []
    try:
        for event, elem in context:
            if root is None:
                root = elem
                docinfo = elem.getroottree().docinfo
                if docinfo.doctype or docinfo.internalDTD is not None:
                    raise UnsafeXmlError(
                        f"package.xml carries a DOCTYPE ({docinfo.doctype!r}); WSUS never writes "
                        "one and DTDs/entities are refused. The export is not genuine",
                        where=where,
                    )
                if elem.tag != "ExportPackage":
                    raise ExportFormatError(
                        f"root element is <{elem.tag}>, expected <ExportPackage>", where=where
                    )
                for name in ("ServerID", "CreationTime", "FormatVersion", "ProtocolVersion"):
                    attrs[name] = _require(elem, name, where, "<ExportPackage>")
                if attrs["FormatVersion"] != FORMAT_VERSION:
                    raise ExportFormatError(
                        f"FormatVersion {attrs['FormatVersion']!r} is not supported "
                        f"(only {FORMAT_VERSION!r} is known)",
                        where=where,
                    )
                continue
            if event != "end":
                continue
            parent = elem.getparent()
            parent_tag = parent.tag if parent is not None else None
            if elem.tag == "Language" and parent_tag == "Languages":
                lang_id = _require(elem, "Id", where, "<Language>")
                if not lang_id.isdigit():
                    raise ExportFormatError(
                        f"<Language> (line {elem.sourceline}) has Id {lang_id!r}, not a number",
                        where=where,
                    )
                languages.append(
                    ExportLanguage(
                        id=int(lang_id),
                        short_name=_require(elem, "ShortName", where, "<Language>"),
                        long_name=elem.get("LongName", ""),
                        enabled=elem.get("Enabled", "0").strip() in ("1", "true", "True"),
                    )
                )
            elif elem.tag == "Update" and parent_tag == "Updates":
                number = declared.count + 1
                what = f"<Update> #{number}"
                update_id = _require(elem, "UpdateId", where, what)
                revision = _require(elem, "RevisionNumber", where, what)
                if _GUID.fullmatch(update_id) is None:
                    raise ExportFormatError(
                        f"{what} (line {elem.sourceline}) has UpdateId {update_id!r}, not a GUID",
                        where=where,
                    )
                if not revision.isdigit() or int(revision) > _MAX_FIELD:
                    raise ExportFormatError(
                        f"{what} (line {elem.sourceline}) has RevisionNumber {revision!r}, "
                        "not a revision number",
                        where=where,
                    )
                key = RevisionKey(update_id.lower(), int(revision))
                _declared_once(declared.add(key), where)
                # Free what has been read: package.xml grows with the number of revisions.
                elem.clear()
                while elem.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        last = context.error_log.last_error
        detail = (
            f"{last.message} (line {last.line}, column {last.column})"
            if last is not None
            else str(exc)
        )
        raise ExportFormatError(
            f"package.xml is not well-formed XML: {detail}", where=where
        ) from exc
    if root is None:  # pragma: no cover - iterparse raises on an empty document
        raise ExportFormatError("package.xml is empty", where=where)
    return ExportPackage(
        server_id=attrs["ServerID"],
        creation_time=_parse_creation_time(attrs["CreationTime"], where),
        format_version=attrs["FormatVersion"],
        protocol_version=attrs["ProtocolVersion"],
        languages=tuple(languages),
        count=declared.count,
    )


# --------------------------------------------------------------------------- metadata.txt


class _TextWindow:
    """A sliding window of decoded text over a UTF-8 file, refilled in fixed-size chunks.

    `buf[pos:]` is the text not yet consumed; `base` is the character offset of `buf[0]`
    in the file. Refilling drops the consumed part, so memory holds at most one chunk plus
    the record being read.
    """

    def __init__(self, handle: BinaryIO, where: str, chunk_bytes: int) -> None:
        self._handle = handle
        self._where = where
        self._chunk = chunk_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._bytes_read = 0
        self.buf = ""
        self.pos = 0
        self.base = 0
        self.eof = False
        self.record = 0  # number of the record being read, for error messages
        self._bad_byte: tuple[int, str] | None = None  # (byte offset, reason) once decoded
        self._size = os.fstat(handle.fileno()).st_size

    @property
    def offset(self) -> int:
        """Character offset (in the file) of `buf[pos]`."""
        return self.base + self.pos

    def bytes_left(self, count: int) -> int:
        """Bytes of the file from `buf[pos+count]` on (what `count` more chars can reach)."""
        if self._bad_byte is not None:
            return self._size  # let `need` report the bad byte instead
        decoded = self._bytes_read - len(self._decoder.getstate()[0])
        return self._size - decoded + len(self.buf[self.pos + count :].encode("utf-8"))

    def need(self, count: int) -> bool:
        """Make `buf[pos:pos+count]` available; False when the file ends first."""
        while len(self.buf) - self.pos < count:
            if self._bad_byte is not None:
                # Only now is the undecodable byte actually needed: report it against the
                # record being read.
                raise ExportFormatError(
                    f"record {self.record}: the bytes at byte offset {self._bad_byte[0]} are "
                    f"not valid UTF-8 ({self._bad_byte[1]}); the file is corrupt",
                    where=self._where,
                )
            if self.eof:
                return False
            self._fill()
        return True

    def _fill(self) -> None:
        if self.pos:
            self.base += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0
        data = self._handle.read(self._chunk)
        pending = len(self._decoder.getstate()[0])
        start = self._bytes_read - pending
        self._bytes_read += len(data)
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            # Keep the valid text before the bad byte; the error is raised when it is reached.
            text = exc.object[: exc.start].decode("utf-8")
            self._bad_byte = (start + exc.start, exc.reason)
        if not data:
            self.eof = True
        if self.base == 0 and not self.buf and text.startswith("\ufeff"):
            # WSUS writes no BOM; tolerate one (and count it as character 0).
            self.pos = 1
        self.buf += text


def _chars_for_units(text: str, units: int) -> int | None:
    """How many leading chars of `text` make `units` UTF-16 units.

    None when `text` is too short; -1 when the count would end inside a surrogate pair.
    """
    counted = 0
    for taken, char in enumerate(text, 1):
        counted += 2 if ord(char) > 0xFFFF else 1
        if counted == units:
            return taken
        if counted > units:
            return -1
    return None


def _iter_metadata(path: Path, declared: DeclaredIndex, where: str) -> Iterator[ExportRecord]:
    with path.open("rb") as handle:
        win = _TextWindow(handle, where, _CHUNK_BYTES)
        while True:
            win.record += 1
            if not win.need(1):
                win.record -= 1
                break
            number = win.record
            start = win.offset
            here = f"record {number} (character offset {start})"
            if not win.need(_HEADER_CHARS):
                raise ExportFormatError(
                    f"{here}: the file ends inside the record header "
                    f"{win.buf[win.pos :]!r}; expected '<guid>,<8 hex>,<8 hex>,'",
                    where=where,
                )
            header = win.buf[win.pos : win.pos + _HEADER_CHARS]
            guid, rev_text, len_text = header[0:36], header[37:45], header[46:54]
            if _GUID.fullmatch(guid) is None:
                raise ExportFormatError(f"{here}: update id {guid!r} is not a GUID", where=where)
            for column, expected_sep in ((36, ","), (45, ","), (54, ",")):
                if header[column] != expected_sep:
                    raise ExportFormatError(
                        f"{here}: expected ',' at character offset {start + column}, "
                        f"found {header[column]!r}",
                        where=where,
                    )
            for field, text, column in (("revision", rev_text, 37), ("length", len_text, 46)):
                if _HEX8.fullmatch(text) is None:
                    raise ExportFormatError(
                        f"{here}: {field} field {text!r} at character offset {start + column} "
                        "is not 8 hex digits",
                        where=where,
                    )
            units = int(len_text, 16)
            key = RevisionKey(guid.lower(), int(rev_text, 16))
            here = f"record {number} ({key}, character offset {start})"

            if units > MAX_RECORD_CHARS:
                raise ExportFormatError(
                    f"{here}: the length field says 0x{len_text} ({units}) characters, more "
                    f"than the {MAX_RECORD_CHARS} accepted for one update; the length field "
                    "is wrong",
                    where=where,
                )
            if len(win.buf) - win.pos < _HEADER_CHARS + units:
                left = win.bytes_left(_HEADER_CHARS)
                if units > left:  # every character takes at least one byte
                    raise ExportFormatError(
                        f"{here}: the length field says 0x{len_text} ({units}) characters but "
                        f"only {left} bytes remain in the file; the file is truncated or the "
                        "length field is wrong",
                        where=where,
                    )
            complete = win.need(_HEADER_CHARS + units)
            xml = win.buf[win.pos + _HEADER_CHARS : win.pos + _HEADER_CHARS + units]
            if _utf16_length(xml) != len(xml):
                # Characters outside the BMP count as two UTF-16 units: take fewer chars.
                taken = _chars_for_units(xml, units)
                if taken is None:
                    complete = False
                elif taken < 0:
                    raise ExportFormatError(
                        f"{here}: the length field 0x{len_text} ends inside a surrogate pair; "
                        "the length field is wrong",
                        where=where,
                    )
                else:
                    xml = xml[:taken]
                    complete = True
            elif units == 0:
                complete = True
            if not complete:
                available = len(win.buf) - win.pos - _HEADER_CHARS
                raise ExportFormatError(
                    f"{here}: the length field says 0x{len_text} ({units}) characters but the "
                    f"file ends {available} characters later, at character offset "
                    f"{win.offset + len(win.buf) - win.pos}; the file is truncated or the "
                    "length field is wrong",
                    where=where,
                )
            tail = _HEADER_CHARS + len(xml)
            if not win.need(tail + 2) or win.buf[win.pos + tail : win.pos + tail + 2] != "\r\n":
                found = win.buf[win.pos + tail : win.pos + tail + 12]
                raise ExportFormatError(
                    f"{here}: the XML ({units} characters by the length field) is not followed "
                    f"by CR LF at character offset {start + tail} (found {found!r}); "
                    "the length field does not match the XML",
                    where=where,
                )
            win.pos += tail + 2

            problem = declared.mark(key)
            if problem is not None:
                raise ExportFormatError(f"{here}: {key} {problem}", where=where)
            yield ExportRecord(key.update_id, key.revision, xml)

    if win.record == 0 and declared.count:
        raise ExportFormatError(
            f"metadata.txt is empty but package.xml declares {declared.count} revisions",
            where=where,
        )
    missing = declared.missing()
    if missing is not None:
        first, how_many = missing
        raise ExportFormatError(
            f"package.xml declares {first} but metadata.txt has no record for it "
            f"({how_many} of {declared.count} declared revisions missing after "
            f"{win.record} records)",
            where=where,
        )


# --------------------------------------------------------------------------- reader


class ExportReader:
    """An open WSUS export; use as a context manager (see `read_export`).

    Inside the `with` block: `package` (what package.xml declares), `count` (how many
    records to expect, for progress), and `records()` (streams metadata.txt). The private
    temporary directory holding the extracted members is removed on exit, also on error.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_member_size: int = DEFAULT_MAX_MEMBER_SIZE,
        work_dir: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self._max_member_size = max_member_size
        self._work_dir = work_dir
        self._temp: Path | None = None
        self._package: ExportPackage | None = None
        self._declared: DeclaredIndex | None = None
        self._metadata: Path | None = None

    def __enter__(self) -> Self:
        self._temp = Path(tempfile.mkdtemp(prefix="updatesync-export-", dir=self._work_dir))
        try:
            package_path = extract_member(
                self.path, PACKAGE_MEMBER, self._temp, self._max_member_size
            )
            self._declared = DeclaredIndex(self._temp / "declared.sqlite")
            self._package = _parse_package(
                package_path, f"{self.path} member '{PACKAGE_MEMBER}'", self._declared
            )
            package_path.unlink()
            self._metadata = extract_member(
                self.path, METADATA_MEMBER, self._temp, self._max_member_size
            )
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self._declared is not None:
            self._declared.close()
            self._declared = None
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None
        self._metadata = None

    @property
    def package(self) -> ExportPackage:
        if self._package is None:
            raise RuntimeError("use read_export(...) as a context manager before reading it")
        return self._package

    @property
    def count(self) -> int:
        """Number of revisions package.xml declares."""
        return self.package.count

    def records(self) -> Iterator[ExportRecord]:
        """Stream the records of metadata.txt, in file order.

        Raises ExportFormatError (naming the record number and character or byte offset)
        on the first malformed record, and at the end if the records are not exactly the
        revisions package.xml declares; a caller importing in one transaction must roll
        back on it.
        """
        if self._metadata is None or self._declared is None:
            raise RuntimeError("records() is only available inside `with read_export(...)`")
        return _iter_metadata(
            self._metadata, self._declared, f"{self.path} member '{METADATA_MEMBER}'"
        )

    def declared(self) -> Iterator[RevisionKey]:
        """The revisions package.xml declares, in its order."""
        if self._declared is None:
            raise RuntimeError("declared() is only available inside `with read_export(...)`")
        return iter(self._declared)


def read_export(
    path: str | Path,
    *,
    max_member_size: int = DEFAULT_MAX_MEMBER_SIZE,
    work_dir: str | Path | None = None,
) -> ExportReader:
    """Open the WSUS export cabinet at `path`: `with read_export(p) as export: ...`.

    Members larger than `max_member_size` bytes are refused; they are extracted into a
    temporary directory under `work_dir` (default: the system temporary directory).
    """
    return ExportReader(path, max_member_size=max_member_size, work_dir=work_dir)


# --------------------------------------------------------------------------- writer


def _attr(value: object) -> str:
    text = str(value)
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#xD;")
        .replace("\n", "&#xA;")
        .replace("\t", "&#x9;")
    )


def _format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_export(
    path: str | Path,
    records: Iterable[ExportRecord],
    *,
    server_id: str | None = None,
    creation_time: datetime | None = None,
    languages: Sequence[ExportLanguage] = DEFAULT_LANGUAGES,
    compression: Compression = "mszip",
) -> int:
    """Write `records` as a WSUS export cabinet at `path`; return the number of records.

    Streams: records go one by one into temporary package.xml and metadata.txt files
    (beside `path`), which are then packed with `write_cabinet`. `server_id` defaults to a
    new GUID, `creation_time` to now (naive times are taken as UTC). Raises ValueError for
    a record that cannot be written (duplicate revision, text that is not encodable).
    """
    out = Path(path)
    server = server_id if server_id is not None else str(uuid.uuid4())
    if _GUID.fullmatch(server) is None:
        raise ValueError(f"server_id {server!r} is not a GUID")
    moment = creation_time if creation_time is not None else datetime.now(UTC)
    count = 0
    if not out.parent.is_dir():  # else the error would name the temporary folder below
        raise FileNotFoundError(errno.ENOENT, "no such folder; create it first", str(out.parent))
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".updatesync-export-") as tmp:
        package_path = Path(tmp) / PACKAGE_MEMBER
        metadata_path = Path(tmp) / METADATA_MEMBER
        written: set[RevisionKey] = set()
        with (
            package_path.open("w", encoding="utf-8-sig", newline="") as package,
            metadata_path.open("w", encoding="utf-8", newline="") as metadata,
        ):
            package.write(
                '<?xml version="1.0" encoding="utf-8"?>'
                f'<ExportPackage ServerID="{_attr(server.lower())}" '
                f'CreationTime="{_format_time(moment)}" FormatVersion="{FORMAT_VERSION}" '
                f'ProtocolVersion="{PROTOCOL_VERSION}"><Languages>'
            )
            for lang in languages:
                package.write(
                    f'<Language Id="{int(lang.id)}" ShortName="{_attr(lang.short_name)}" '
                    f'LongName="{_attr(lang.long_name)}" Enabled="{1 if lang.enabled else 0}" />'
                )
            package.write("</Languages><Files /><Updates>")
            for record in records:
                count += 1
                key = record.key
                if key in written:
                    raise ValueError(f"record {count}: {key} was already written")
                written.add(key)
                units = _utf16_length(record.xml)
                if units > _MAX_FIELD:
                    raise ValueError(f"record {count} ({key}): XML too long for 8 hex digits")
                metadata.write(f"{key.update_id},{key.revision:08x},{units:08x},")
                try:
                    metadata.write(record.xml)
                except UnicodeEncodeError as exc:
                    raise ValueError(
                        f"record {count} ({key}): XML character {exc.start} cannot be written "
                        f"as UTF-8 ({exc.reason})"
                    ) from None
                metadata.write("\r\n")
                package.write(
                    f'<Update UpdateId="{key.update_id}" RevisionNumber="{key.revision}">'
                    "<Files /><Categories /><Classifications /></Update>"
                )
            package.write("</Updates></ExportPackage>")
        write_cabinet(
            out, [(PACKAGE_MEMBER, package_path), (METADATA_MEMBER, metadata_path)], compression
        )
    return count
