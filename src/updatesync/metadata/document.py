"""Read one update document (`upd:Update` XML) into an `UpdateRevision`.

The same document reaches us from a WSUS export (`metadata.txt`, UTF-8 text), from the
server-to-server protocol (`XmlUpdateBlob` as text, or `XmlUpdateBlobCompressed`: UTF-16LE
without a BOM) and from our own database. `parse_update` takes text or bytes, refuses what
could make the parser expand entities or fetch anything (any DTD, oversize input), and fills
the fields of `UpdateRevision` that the data model needs (MS-WSUSSS 3.1.1.1 and SPEC.md
section 7). The original text is kept unchanged in `UpdateRevision.xml`.

The parser walks the tree by direct child iteration against precompiled tag names: 100,000
documents are imported in one go, so no XPath is evaluated per document.
"""

from __future__ import annotations

import base64
import codecs
import re
import threading
from typing import Final, NoReturn

from lxml import etree

from updatesync.metadata.errors import MalformedXmlError, UnsafeXmlError
from updatesync.metadata.model import (
    CategoryType,
    LocalizedProperties,
    PublicationState,
    RevisionKey,
    UpdateFile,
    UpdateRevision,
    UpdateType,
)

__all__ = [
    "CATEGORY_NS",
    "DEFAULT_MAX",
    "UPDATE_NS",
    "decode_document",
    "parse_update",
    "parse_update_identity",
]

UPDATE_NS: Final = "http://schemas.microsoft.com/msus/2002/12/Update"
CATEGORY_NS: Final = "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category"

DEFAULT_MAX: Final = 16 * 1024 * 1024
"""Largest document accepted, in bytes (16 MiB; the largest real one seen is about 850 KB)."""

_U = "{" + UPDATE_NS + "}"
_UPDATE = _U + "Update"
_IDENTITY = _U + "UpdateIdentity"
_PROPERTIES = _U + "Properties"
_KB_ARTICLE = _U + "KBArticleID"
_SECURITY_BULLETIN = _U + "SecurityBulletinID"
_LOCALIZED_COLLECTION = _U + "LocalizedPropertiesCollection"
_LOCALIZED = _U + "LocalizedProperties"
_LANGUAGE = _U + "Language"
_TITLE = _U + "Title"
_DESCRIPTION = _U + "Description"
_RELATIONSHIPS = _U + "Relationships"
_PREREQUISITES = _U + "Prerequisites"
_AT_LEAST_ONE = _U + "AtLeastOne"
_BUNDLED = _U + "BundledUpdates"
_SUPERSEDED = _U + "SupersededUpdates"
_FILES = _U + "Files"
_FILE = _U + "File"
_ADDITIONAL_DIGEST = _U + "AdditionalDigest"
_EULA_FILES = _U + "EulaFiles"
_EULA_FILE = _U + "EulaFile"
_HANDLER_DATA = _U + "HandlerSpecificData"
_CATEGORY_INFO = "{" + CATEGORY_NS + "}CategoryInformation"

_UPDATE_TYPES: Final = {member.value: member for member in UpdateType}
_CATEGORY_TYPES: Final = {member.value: member for member in CategoryType}
_PUBLICATION_STATES: Final = {member.value: member for member in PublicationState}

_GUID = r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}"
_GUID_RE = re.compile(_GUID)
_GUID_LIST_RE = re.compile(f"{_GUID}(?:,{_GUID})*")
_NUMBER_LIST_RE = re.compile(r"[0-9]{1,10}(?:,[0-9]{1,10})*")
_ID_HINT_RE = re.compile(r"""UpdateID\s*=\s*["']([^"'<>]{1,64})["']""")
_IDENTITY_RE = re.compile(r"<(?:[\w.-]+:)?UpdateIdentity\b([^>]*)>")
_ATTR_RE = re.compile(r"""([\w.:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_DECLARATION_RE = re.compile(r"<\?xml\b[^>]*?\?>")
_DECLARED_ENCODING_RE = re.compile(rb"""^<\?xml[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_MAX_REVISION = 2**31 - 1  # WSUS stores revision numbers as a 32-bit int

_ID_HINT_SPAN = 4096  # how far into a broken document to look for its update id
_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
# A declaration saying UTF-16 on 8-bit bytes is a known .NET habit (an XmlWriter over a
# StringWriter); the bytes cannot be UTF-16, so they are read as UTF-8.
_UTF16_NAMES = frozenset({"utf-16", "utf16", "utf-16le", "unicode"})


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


# One parser per thread: an lxml parser keeps per-parse state and must not be used by two
# threads at once. Within a thread the instance is built once and reused.
_local = threading.local()


def _parser() -> etree.XMLParser:
    try:
        return _local.parser
    except AttributeError:
        _local.parser = parser = _new_parser()
        return parser


def parse_update(
    xml: str | bytes, *, where: str | None = None, max_bytes: int = DEFAULT_MAX
) -> UpdateRevision:
    """Parse one update document.

    `xml` is the document as text, or as bytes in UTF-8 or UTF-16 (see `decode_document`).
    `where` names its origin ("metadata.txt record 17", a file name) for error messages.

    Raises `UnsafeXmlError` for a DTD, an entity declaration or a document larger than
    `max_bytes`; `MalformedXmlError` for anything not well-formed or lacking what an update
    document must hold (identity, a known UpdateType, valid GUIDs and numbers).
    """
    if isinstance(xml, bytes | bytearray | memoryview):
        data = bytes(xml)
        if len(data) > max_bytes:
            _too_large(len(data), max_bytes, _head_text(data), where)
        text = decode_document(data, where=where)
    elif isinstance(xml, str):
        text = xml
        _check_text_size(text, max_bytes, where)
    else:
        raise TypeError(f"parse_update expects str or bytes, not {type(xml).__name__}")

    root = _parse_tree(text, where)
    return _read_update(root, text, where)


def parse_update_identity(xml: str | bytes, *, where: str | None = None) -> RevisionKey:
    """The (update id, revision) of a document, read cheaply from its first `UpdateIdentity`.

    This looks at the text only, without building a tree: use it to index or cross-check
    documents whose full parse comes later. If the identity cannot be read this way the
    document is parsed in full, so a broken document raises the same errors as
    `parse_update`.
    """
    text = decode_document(bytes(xml), where=where) if not isinstance(xml, str) else xml
    match = _IDENTITY_RE.search(text, 0, _ID_HINT_SPAN)
    if match is not None:
        attrs = {
            m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _ATTR_RE.finditer(match.group(1))
        }
        uid, rev = attrs.get("UpdateID"), attrs.get("RevisionNumber")
        if (
            uid is not None
            and rev is not None
            and _GUID_RE.fullmatch(uid)
            and rev.isascii()
            and rev.isdigit()
            and int(rev) <= _MAX_REVISION
        ):
            return RevisionKey(uid.lower(), int(rev))
    return parse_update(text, where=where).key


def decode_document(data: bytes, *, where: str | None = None) -> str:
    """Decode an update document given as bytes: UTF-8, or UTF-16 with or without a BOM.

    A BOM decides; without one, a NUL byte next to the first character means UTF-16 (XML
    text never holds U+0000), little-endian as the protocol's compressed blob carries it.
    Otherwise the bytes are UTF-8 (an XML declaration naming another 8-bit encoding is
    refused). The BOM is not part of the returned text.
    """
    if data.startswith(codecs.BOM_UTF8):
        encoding, body = "utf-8", data[len(codecs.BOM_UTF8) :]
    elif data.startswith(codecs.BOM_UTF16_LE):
        encoding, body = "utf-16-le", data[len(codecs.BOM_UTF16_LE) :]
    elif data.startswith(codecs.BOM_UTF16_BE):
        encoding, body = "utf-16-be", data[len(codecs.BOM_UTF16_BE) :]
    elif len(data) >= 2 and data[0] != 0 and data[1] == 0:
        encoding, body = "utf-16-le", data
    elif len(data) >= 2 and data[0] == 0 and data[1] != 0:
        encoding, body = "utf-16-be", data
    else:
        encoding, body = "utf-8", data
        declared = _DECLARED_ENCODING_RE.match(data)
        if declared is not None:
            name = declared.group(1).decode("ascii").lower()
            if name not in _UTF8_NAMES and name not in _UTF16_NAMES:
                _malformed(
                    f"document declares encoding {name!r}; only UTF-8 and UTF-16 are accepted",
                    _head_text(data),
                    where,
                )
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as err:
        _malformed(
            f"bytes are neither valid UTF-8 nor UTF-16: read as {encoding.upper()}, "
            f"{err.reason} at byte {err.start + len(data) - len(body)} "
            f"(of {len(data)})",
            _head_text(data),
            where,
        )


# --- checks before and around the parse ------------------------------------------------


def _head_text(data: bytes) -> str:
    """The start of undecodable or oversize bytes as text, good enough to find an id in."""
    head = data[: 2 * _ID_HINT_SPAN]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif len(head) >= 2 and (head[0] == 0) != (head[1] == 0):
        encoding = "utf-16-be" if head[0] == 0 else "utf-16-le"
    else:
        return head.decode("utf-8", errors="replace")
    return head[: len(head) & ~1].decode(encoding, errors="replace")


def _check_text_size(text: str, max_bytes: int, where: str | None) -> None:
    length = len(text)
    if length * 4 <= max_bytes:  # cannot exceed the limit whatever the characters
        return
    size = length if length > max_bytes else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        _too_large(size, max_bytes, text[:_ID_HINT_SPAN], where)


def _too_large(size: int, limit: int, head: str, where: str | None) -> NoReturn:
    raise UnsafeXmlError(
        f"{_label(head)}: document is {size:,} bytes, over the limit of {limit:,} bytes",
        where=where,
    )


def _parse_tree(text: str, where: str | None) -> etree._Element:
    # A DTD is the only way to declare entities or pull in external ones, and no update
    # document has one: refuse it before the parser sees it.
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        construct = "<!DOCTYPE" if "<!DOCTYPE" in text else "<!ENTITY"
        raise UnsafeXmlError(
            f"{_label(text)}: refused a document containing {construct} "
            "(DTDs and entity declarations are not allowed in update metadata)",
            where=where,
        )
    body = text
    if body.startswith("\ufeff"):
        body = body[1:]
    if body.startswith("<?xml"):
        # lxml refuses str input that carries an encoding declaration; the text is
        # already decoded, so the declaration has nothing left to say.
        declaration = _DECLARATION_RE.match(body)
        if declaration is not None:
            body = body[declaration.end() :]
    try:
        root = etree.fromstring(body, _parser())
    except (etree.LxmlError, ValueError) as err:
        _malformed(f"not well-formed XML: {_syntax_message(err)}", text, where)
    if root is None:
        _malformed("empty document", text, where)
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise UnsafeXmlError(
            f"{_label(text)}: refused a document with a document type declaration",
            where=where,
        )
    return root


def _syntax_message(err: Exception) -> str:
    message = getattr(err, "msg", None) or str(err)
    return message.strip().splitlines()[0] if message.strip() else type(err).__name__


def _label(text: str, revision: int | None = None) -> str:
    """'update <id> rev <n>' as far as it can be told from the (possibly broken) text."""
    match = _ID_HINT_RE.search(text, 0, _ID_HINT_SPAN)
    if match is None:
        return "update (id unknown)"
    uid = match.group(1).strip()
    uid = uid.lower() if _GUID_RE.fullmatch(uid) else repr(uid)
    return f"update {uid}" if revision is None else f"update {uid} rev {revision}"


def _malformed(problem: str, text: str, where: str | None) -> NoReturn:
    raise MalformedXmlError(f"{_label(text)}: {problem}", where=where)


# --- the document ------------------------------------------------------------------------


class _Reader:
    """Error reporting for one document: every message names the update and `where`."""

    __slots__ = ("label", "text", "where")

    def __init__(self, text: str, where: str | None) -> None:
        self.label: str | None = None  # set once the identity is read
        self.text = text
        self.where = where

    def fail(self, problem: str) -> NoReturn:
        label = self.label if self.label is not None else _label(self.text)
        raise MalformedXmlError(f"{label}: {problem}", where=self.where)

    def guid(self, value: str | None, what: str) -> str:
        if value is None:
            self.fail(f"{what} has no UpdateID")
        if _GUID_RE.fullmatch(value) is None:
            self.fail(f"{what} is not a GUID: {value!r}")
        return value.lower()

    def guids(self, values: list[str | None], what: str) -> list[str]:
        """`guid` for many values at once: one regular expression over them all, and the
        value-by-value check (with its message) only when that one fails."""
        if values and None not in values:
            joined = ",".join(values)  # type: ignore[arg-type]
            # The count of commas tells a value holding one from two values.
            if _GUID_LIST_RE.fullmatch(joined) is not None and joined.count(",") == len(values) - 1:
                return joined.lower().split(",")
        return [self.guid(value, what) for value in values]

    def numbers(self, values: list[str | None], what: str, limit: int) -> list[int]:
        """`number` for many values at once, as `guids` does."""
        joined = ",".join(values) if values and None not in values else ""  # type: ignore[arg-type]
        if _NUMBER_LIST_RE.fullmatch(joined) is not None and joined.count(",") == len(values) - 1:
            numbers = [int(value) for value in values]  # type: ignore[arg-type]
            if max(numbers) <= limit:
                return numbers
        return [self.number(value, what, limit) for value in values]

    def number(self, value: str | None, what: str, limit: int | None = None) -> int:
        if value is None:
            self.fail(f"{what} is missing")
        if not (value.isascii() and value.isdigit()):
            self.fail(f"{what} is not a non-negative integer: {value!r}")
        number = int(value)
        if limit is not None and number > limit:
            self.fail(f"{what} {number} is out of range (at most {limit})")
        return number


def _read_update(root: etree._Element, text: str, where: str | None) -> UpdateRevision:
    if root.tag != _UPDATE:
        found = root.tag if isinstance(root.tag, str) else "a non-element node"
        _malformed(f"root element is {found}, expected {_UPDATE} (upd:Update)", text, where)

    identity = properties = localized_collection = relationships = files = handler = None
    eula_files = None
    for child in root:
        tag = child.tag
        if tag == _IDENTITY:
            if identity is None:
                identity = child
        elif tag == _PROPERTIES:
            properties = child
        elif tag == _LOCALIZED_COLLECTION:
            localized_collection = child
        elif tag == _RELATIONSHIPS:
            relationships = child
        elif tag == _FILES:
            files = child
        elif tag == _HANDLER_DATA:
            handler = child
        elif tag == _EULA_FILES:
            eula_files = child

    reader = _Reader(text, where)
    if identity is None:
        reader.fail("no upd:UpdateIdentity element under upd:Update")
    update_id = reader.guid(identity.get("UpdateID"), "UpdateIdentity")
    reader.label = f"update {update_id}"
    revision = reader.number(
        identity.get("RevisionNumber"), "UpdateIdentity RevisionNumber", _MAX_REVISION
    )
    reader.label = f"update {update_id} rev {revision}"

    if properties is None:
        reader.fail("no upd:Properties element")
    attrib = properties.attrib
    type_text = attrib.get("UpdateType")
    if type_text is None:
        reader.fail("Properties has no UpdateType")
    update_type = _UPDATE_TYPES.get(type_text)
    if update_type is None:
        reader.fail(
            f"unknown UpdateType {type_text!r} (expected one of {', '.join(_UPDATE_TYPES)})"
        )
    state_text = attrib.get("PublicationState")
    publication_state = PublicationState.PUBLISHED
    if state_text is not None:
        state = _PUBLICATION_STATES.get(state_text)
        if state is None:
            reader.fail(
                f"unknown PublicationState {state_text!r} "
                f"(expected one of {', '.join(_PUBLICATION_STATES)})"
            )
        publication_state = state
    eula_id = attrib.get("EulaID")
    if eula_id is not None:
        eula_id = reader.guid(eula_id, "Properties EulaID")

    kb_article = security_bulletin = None
    update_languages: list[str] = []
    for child in properties:
        if child.tag == _KB_ARTICLE:
            kb_article = _text(child)
        elif child.tag == _SECURITY_BULLETIN:
            security_bulletin = _text(child)
        elif child.tag == _LANGUAGE:
            language = (_text(child) or "").lower()
            # "all" ([MS-WSUSSS] 2.2.5.2, NeutralLanguage) says the update is for every one.
            if language and language != "all" and language not in update_languages:
                update_languages.append(language)

    category_prerequisites: tuple[tuple[str, ...], ...] = ()
    prerequisites: tuple[tuple[str, ...], ...] = ()
    bundled: tuple[RevisionKey, ...] = ()
    superseded: tuple[str, ...] = ()
    if relationships is not None:
        for child in relationships:
            tag = child.tag
            if tag == _PREREQUISITES:
                category_prerequisites, prerequisites = _read_prerequisites(child, reader)
            elif tag == _BUNDLED:
                items = list(child.iter(_IDENTITY))
                ids = reader.guids(
                    [item.get("UpdateID") for item in items], "BundledUpdates UpdateIdentity"
                )
                numbers = reader.numbers(
                    [item.get("RevisionNumber") for item in items],
                    "BundledUpdates UpdateIdentity RevisionNumber",
                    _MAX_REVISION,
                )
                bundled = tuple(map(RevisionKey, ids, numbers))
            elif tag == _SUPERSEDED:
                superseded = tuple(
                    reader.guids(
                        [item.get("UpdateID") for item in child.iter(_IDENTITY)],
                        "SupersededUpdates UpdateIdentity",
                    )
                )

    category_type = None
    if handler is not None:
        for child in handler:
            if child.tag == _CATEGORY_INFO:
                kind = child.get("CategoryType")
                category_type = _CATEGORY_TYPES.get(kind) if kind is not None else None
                if category_type is None:
                    reader.fail(
                        f"unknown CategoryType {kind!r} "
                        f"(expected one of {', '.join(_CATEGORY_TYPES)})"
                    )
                break

    return UpdateRevision(
        update_id=update_id,
        revision=revision,
        update_type=update_type,
        xml=text,
        category_type=category_type,
        default_language=attrib.get("DefaultPropertiesLanguage"),
        localized=(
            _read_localized(localized_collection, reader)
            if localized_collection is not None
            else ()
        ),
        kb_article=kb_article,
        security_bulletin=security_bulletin,
        msrc_severity=attrib.get("MsrcSeverity"),
        creation_date=attrib.get("CreationDate"),
        publication_state=publication_state,
        category_prerequisites=category_prerequisites,
        prerequisites=prerequisites,
        bundled_updates=bundled,
        superseded_updates=superseded,
        files=_read_files(files, reader) if files is not None else (),
        eula_id=eula_id,
        eula_files=_read_eula_files(eula_files, eula_id, reader) if eula_files is not None else (),
        detectoid_type=attrib.get("DetectoidType"),
        update_languages=tuple(update_languages),
    )


def _text(element: etree._Element) -> str | None:
    value = element.text
    if value is None:
        return None
    value = value.strip()
    return value or None


def _read_prerequisites(
    prerequisites: etree._Element, reader: _Reader
) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    categories: list[tuple[str, ...]] = []
    others: list[tuple[str, ...]] = []
    for child in prerequisites:  # comments occur here in real exports: skipped by tag
        tag = child.tag
        if tag == _IDENTITY:
            others.append((reader.guid(child.get("UpdateID"), "Prerequisites UpdateIdentity"),))
        elif tag == _AT_LEAST_ONE:
            group = tuple(
                reader.guids(
                    [item.get("UpdateID") for item in child.iterchildren(_IDENTITY)],
                    "Prerequisites AtLeastOne UpdateIdentity",
                )
            )
            is_category = child.get("IsCategory")
            if is_category is not None and is_category.strip() in ("true", "1"):
                categories.append(group)
            else:
                others.append(group)
    return tuple(categories), tuple(others)


def _read_localized(collection: etree._Element, reader: _Reader) -> tuple[LocalizedProperties, ...]:
    result: list[LocalizedProperties] = []
    for index, item in enumerate(collection.iterchildren(_LOCALIZED), start=1):
        language = title = description = None
        for child in item:
            tag = child.tag
            if tag == _LANGUAGE:
                language = child.text
            elif tag == _TITLE:
                title = child.text
            elif tag == _DESCRIPTION:
                description = child.text
        if language is None or not language.strip():
            reader.fail(f"LocalizedProperties #{index} has no Language")
        result.append(LocalizedProperties(language.strip(), title or "", description))
    return tuple(result)


def _read_eula_files(
    files: etree._Element, eula_id: str | None, reader: _Reader
) -> tuple[UpdateFile, ...]:
    """`upd:EulaFiles`: the files of the license terms, each with its `Language`."""
    if eula_id is None:
        reader.fail("EulaFiles without a Properties EulaID naming the license terms")
    found = _read_files(files, reader, tag=_EULA_FILE, label="EulaFile")
    for index, item in enumerate(found, start=1):
        if not item.language:
            reader.fail(f"EulaFile #{index} ({item.name}) has no Language")
        if not is_sha1_digest(item.sha1):
            reader.fail(
                f"EulaFile #{index} ({item.name}) Digest {item.sha1[:60]!r} is not a SHA-1 "
                "digest in base64 (28 characters)"
            )
    return found


def is_sha1_digest(text: str) -> bool:
    """Whether `text` is a SHA-1 digest in base64, as `@Digest` carries it."""
    if len(text) != 28 or not text.endswith("="):
        return False
    try:
        return len(base64.b64decode(text, validate=True)) == 20
    except ValueError:
        return False


def _read_files(
    files: etree._Element, reader: _Reader, *, tag: str = _FILE, label: str = "File"
) -> tuple[UpdateFile, ...]:
    result: list[UpdateFile] = []
    for index, item in enumerate(files.iterchildren(tag), start=1):
        name = item.get("FileName")
        if not name:
            reader.fail(f"{label} #{index} has no FileName")
        what = f"{label} #{index} ({name})"
        digest = item.get("Digest")
        if not digest:
            reader.fail(f"{what} has no Digest")
        size = reader.number(item.get("Size"), f"{what} Size")
        sha256 = None
        for extra in item.iterchildren(_ADDITIONAL_DIGEST):
            if (extra.get("Algorithm") or "").upper() == "SHA256":
                sha256 = _text(extra)
        result.append(
            UpdateFile(
                name,
                size,
                digest,
                sha256,
                item.get("Modified"),
                patching_type=item.get("PatchingType"),
                is_encrypted=(item.get("IsEncrypted") or "").strip().lower() in ("true", "1"),
                language=(item.get("Language") or "").strip() or None,
            )
        )
    return tuple(result)
