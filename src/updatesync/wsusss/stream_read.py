"""Reading a GetRevisionIdList answer as it arrives, in flat memory.

A full listing of a large catalog is one SOAP answer of tens or hundreds of MB (about 110
bytes an id). `RevisionIdListStream` is fed the HTTP body chunk by chunk (an
`lxml.etree.XMLPullParser`) and hands back the revision keys each chunk completed; every
`UpdateIdentity` is dropped from the tree once read, so what is held is one chunk and the
elements still open, whatever the length of the list. The anchor may come before or after
the list; `anchor` holds it once seen, `count` the keys read so far.

What it refuses is what `soap.parse_envelope` and the message codec refuse, with the same
words: an empty, UTF-16 or HTML body, a DTD or entity declaration (refused in the bytes,
across chunk boundaries, and never resolved by the parser: no entities, no DTD, no network,
huge_tree off), a SOAP 1.2 envelope, a body without the answer, a malformed identity, a
truncated body (at `close`). A `soap:Fault` body raises `faults.WsusssFault`. Instead of
one cap on the whole body, a streamed listing has two: `max_bytes` on the whole (large:
`DEFAULT_MAX_LISTING_BYTES`, tens of millions of ids) and `max_element_bytes` on the bytes
read without any element ending (one element, or text, of unbounded size).

`read_revision_id_list` drives a stream over an iterable of chunks and calls a sink with
the keys in batches; `wsusss.client.UpstreamClient.list_revisions_into` uses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, NoReturn

from lxml import etree

from updatesync.metadata.model import RevisionKey
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import fault_from_element
from updatesync.wsusss.messages.scalars import GUID_RE, parse_int
from updatesync.wsusss.soap import SOAP12_ENV_NS, SOAP_ENV_NS, SOFTWARE_DISTRIBUTION_NS, XSI_NS

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_MAX_ELEMENT_BYTES",
    "DEFAULT_MAX_LISTING_BYTES",
    "RevisionIdListStream",
    "StreamedListing",
    "read_revision_id_list",
]

DEFAULT_MAX_LISTING_BYTES: Final = 4 * 1024 * 1024 * 1024
"""Largest streamed GetRevisionIdList answer accepted: about 39 million ids."""
DEFAULT_MAX_ELEMENT_BYTES: Final = 1024 * 1024
"""Most bytes read without an element ending (an identity is about 110 bytes)."""
DEFAULT_BATCH: Final = 1000
"""Keys handed to the sink at a time by `read_revision_id_list`."""

_OPERATION: Final = "GetRevisionIdList"
_SD = "{" + SOFTWARE_DISTRIBUTION_NS + "}"
_ENVELOPE: Final = "{" + SOAP_ENV_NS + "}Envelope"
_BODY: Final = "{" + SOAP_ENV_NS + "}Body"
_HEADER: Final = "{" + SOAP_ENV_NS + "}Header"
_FAULT: Final = "{" + SOAP_ENV_NS + "}Fault"
_RESPONSE: Final = _SD + "GetRevisionIdListResponse"
_RESULT: Final = _SD + "GetRevisionIdListResult"
_ANCHOR: Final = _SD + "Anchor"
_NEW_REVISIONS: Final = _SD + "NewRevisions"
_IDENTITY: Final = _SD + "UpdateIdentity"
_UPDATE_ID: Final = _SD + "UpdateID"
_REVISION: Final = _SD + "RevisionNumber"
_NIL: Final = "{" + XSI_NS + "}nil"
_IDENTITY_PATH: Final = (
    "GetRevisionIdListResponse/GetRevisionIdListResult/NewRevisions/UpdateIdentity"
)
_HEAD_BYTES: Final = 4096
_MAX_FAULT_BYTES: Final = 1024 * 1024  # a fault is kept whole to be read: it must be small
_REFUSED: Final = (b"<!DOCTYPE", b"<!ENTITY")
_HTML_START = re.compile(rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.I | re.S)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)


@dataclass(frozen=True, slots=True)
class StreamedListing:
    """What a streamed GetRevisionIdList answer ended with: its anchor and how many ids it
    listed (repeats included)."""

    anchor: str | None
    count: int


class RevisionIdListStream:
    """One GetRevisionIdList answer, fed as it arrives (see the module docstring)."""

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_LISTING_BYTES,
        max_element_bytes: int = DEFAULT_MAX_ELEMENT_BYTES,
        where: str = "HTTP body",
    ) -> None:
        self.max_bytes = max_bytes
        self.max_element_bytes = max_element_bytes
        self.where = where
        self.anchor: str | None = None
        self.count = 0
        self._parser = etree.XMLPullParser(
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        self._head = b""
        self._started = False
        self._tail = b""
        self._size = 0
        self._since_end = 0
        self._stack: list[str] = []
        self._body_seen = False
        self._answer: str | None = None  # the body's first element
        self._result_seen = False
        self._anchor_seen = False
        self._list_seen = False
        self._in_list = False
        self._in_identity = False
        self._uid: str | None = None
        self._rev: str | None = None
        self._first = b""
        self._root: etree._Element | None = None

    def held_elements(self) -> int:
        """How many elements the parsed tree holds now (a handful, however long the list:
        each one is dropped once read)."""
        return 0 if self._root is None else sum(1 for _ in self._root.iter())

    # -- feeding -------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[RevisionKey]:
        """Parse `data`, the next bytes of the body; the keys it completed, in order."""
        if not data:
            return []
        self._size += len(data)
        if self._size > self.max_bytes:
            self._fail(
                f"body is over the limit of {self.max_bytes:,} bytes for a streamed listing; "
                "refusing to read more (raise the limit if such an answer is expected)"
            )
        window = self._tail + data
        for construct in _REFUSED:
            if construct in window:
                self._refuse(construct)
        self._tail = window[-(len(b"<!DOCTYPE") - 1) :]
        if not self._started:
            self._head += data
            if len(self._head) < _HEAD_BYTES:
                return []
            data, self._head = self._head, b""
            self._check_head(data)
            self._started = True
        keys: list[RevisionKey] = []
        ended = self._parse(data, keys)
        if self._answer == _FAULT and self._size > _MAX_FAULT_BYTES:
            self._fail(
                f"a soap:Fault body over {_MAX_FAULT_BYTES:,} bytes; refusing to read more (a "
                "fault holds a code and a message)"
            )
        self._since_end = 0 if ended else self._since_end + len(data)
        if self._since_end > self.max_element_bytes:
            self._fail(
                f"read {self._since_end:,} bytes without an element ending (over the limit of "
                f"{self.max_element_bytes:,}); refusing to read more: no element of a "
                "GetRevisionIdList answer is that large"
            )
        return keys

    def close(self) -> list[RevisionKey]:
        """The body is complete: the last keys. Raises ProtocolError if it was cut short or
        lacks the answer."""
        keys: list[RevisionKey] = []
        if not self._started:
            data, self._head = self._head, b""
            if not data.strip():
                self._fail("body is empty where a SOAP envelope was expected")
            self._check_head(data)
            self._started = True
            self._parse(data, keys)
        try:
            self._parser.close()
        except etree.XMLSyntaxError as err:
            self._syntax(err)
        self._events(keys)
        if not self._body_seen:
            self._fail("the SOAP envelope has no soap:Body")
        if self._answer is None:
            self._fail("soap:Body is empty; it must hold the operation element")
        if not self._result_seen:
            raise ProtocolError(
                "required element <GetRevisionIdListResult> (namespace "
                f"{SOFTWARE_DISTRIBUTION_NS}) is missing",
                where="GetRevisionIdListResponse",
                operation=_OPERATION,
            )
        return keys

    # -- parsing -------------------------------------------------------------------------

    def _parse(self, data: bytes, keys: list[RevisionKey]) -> bool:
        try:
            self._parser.feed(data)
        except etree.XMLSyntaxError as err:
            self._syntax(err)
        return self._events(keys)

    def _events(self, keys: list[RevisionKey]) -> bool:
        ended = False
        try:
            events = list(self._parser.read_events())
        except etree.XMLSyntaxError as err:
            self._syntax(err)
        for event, element in events:
            if event == "start":
                self._start(element)
            else:
                ended = True
                self._end(element, keys)
        return ended

    def _start(self, element: etree._Element) -> None:
        tag = element.tag
        depth = len(self._stack)
        self._stack.append(tag)
        if depth == 0:
            self._root = element
            if tag == "{" + SOAP12_ENV_NS + "}Envelope":
                self._fail(
                    "got a SOAP 1.2 envelope; updatesync speaks SOAP 1.1 (Content-Type "
                    "text/xml and a SOAPAction header)"
                )
            if tag != _ENVELOPE:
                self._fail(f"root element is {tag!r}, not a SOAP 1.1 Envelope ({_ENVELOPE})")
        elif depth == 1 and not self._body_seen:
            if tag == _BODY:
                self._body_seen = True
            elif tag != _HEADER:
                self._fail(f"unexpected {tag!r} before soap:Body in the envelope")
        elif depth == 2 and self._stack[1] == _BODY and self._answer is None:
            self._answer = tag
            if tag not in (_RESPONSE, _FAULT):
                raise ProtocolError(
                    f"expected {_RESPONSE} in soap:Body, found {tag}",
                    where="soap:Body",
                    operation=_OPERATION,
                )
        elif depth == 3 and self._in_answer() and tag == _RESULT and not self._result_seen:
            self._result_seen = True
            if element.get(_NIL) in ("true", "1"):
                raise ProtocolError(
                    "<GetRevisionIdListResult> is nil but required",
                    where="GetRevisionIdListResponse/GetRevisionIdListResult",
                    operation=_OPERATION,
                    element="GetRevisionIdListResult",
                )
        elif depth == 4 and self._in_result() and tag == _NEW_REVISIONS and not self._list_seen:
            self._list_seen = self._in_list = True
        elif depth == 5 and self._in_list and tag == _IDENTITY:
            self._in_identity = True
            self._uid = self._rev = None

    def _end(self, element: etree._Element, keys: list[RevisionKey]) -> None:
        depth = len(self._stack) - 1
        self._stack.pop()
        tag = element.tag
        if self._answer == _FAULT and len(self._stack) >= 2 and self._stack[1] == _BODY:
            if depth == 2:
                raise fault_from_element(element, operation=_OPERATION)
            if depth > 2:
                return  # inside the fault the body holds: kept whole for reading
        if self._in_identity:
            if depth == 6:
                # The first of each counts, as for every other element.
                if tag == _UPDATE_ID and self._uid is None:
                    self._uid = element.text or ""
                elif tag == _REVISION and self._rev is None:
                    self._rev = element.text or ""
            elif depth == 5:
                self._in_identity = False
                keys.append(_identity(self._uid, self._rev))
                self.count += 1
        elif depth == 4 and self._in_result():
            if tag == _ANCHOR and not self._anchor_seen:
                self._anchor_seen = True
                self.anchor = None if element.get(_NIL) in ("true", "1") else element.text or ""
            elif tag == _NEW_REVISIONS and self._in_list:
                self._in_list = False
        if depth >= 2 or tag == _HEADER:
            # Done with it: drop it and what came before it, so the tree stays small.
            element.clear(keep_tail=False)
            parent = element.getparent()
            if parent is not None:
                while element.getprevious() is not None:
                    del parent[0]

    def _in_answer(self) -> bool:
        return self._stack[1] == _BODY and self._stack[2] == _RESPONSE

    def _in_result(self) -> bool:
        return self._in_answer() and self._stack[3] == _RESULT

    # -- refusing ------------------------------------------------------------------------

    def _check_head(self, data: bytes) -> None:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff") or (
            len(data) > 1 and (data[0] == 0) != (data[1] == 0)
        ):
            self._fail(
                "body is UTF-16; MS-WSUSSS bodies are UTF-8 (Content-Type: text/xml; charset=utf-8)"
            )
        start = data[:_HEAD_BYTES].removeprefix(b"\xef\xbb\xbf")
        if _HTML_START.match(start):
            title = _HTML_TITLE.search(start)
            label = (
                f" titled {title.group(1).decode('utf-8', 'replace').strip()[:200]!r}"
                if title
                else ""
            )
            self._fail(
                f"got an HTML page{label} instead of a SOAP envelope: the server's web "
                "application failed or the URL does not point at the web service; check the "
                "server's logs and the service path"
            )
        self._first = data[:80]

    def _refuse(self, construct: bytes) -> NoReturn:
        self._fail(
            f"refused a body containing {construct.decode()} (document type and entity "
            "declarations have no place in a SOAP message and can expand without bound)"
        )

    def _syntax(self, err: etree.XMLSyntaxError) -> NoReturn:
        message = (err.msg or str(err)).strip().splitlines()[0]
        self._fail(
            f"not well-formed XML (truncated or corrupt body?): {message}; body starts with "
            f"{self._first.decode('utf-8', errors='replace')!r}"
        )

    def _fail(self, message: str) -> NoReturn:
        raise ProtocolError(message, where=self.where, operation=_OPERATION)


def _identity(uid: str | None, rev: str | None) -> RevisionKey:
    if uid is None or GUID_RE.fullmatch(uid.strip()) is None:
        _bad(f"UpdateID is missing or not a GUID: {uid!r}")
    if rev is None:
        _bad("RevisionNumber is missing")
    try:
        revision = parse_int(rev)
    except ValueError as err:
        _bad(f"RevisionNumber: {err}")
    return RevisionKey(uid.strip().lower(), revision)


def _bad(message: str) -> NoReturn:
    raise ProtocolError(
        message, where=_IDENTITY_PATH, operation=_OPERATION, element="GetRevisionIdListResult"
    )


def read_revision_id_list(
    chunks: Iterable[bytes],
    sink: Callable[[list[RevisionKey]], None],
    *,
    batch: int = DEFAULT_BATCH,
    max_bytes: int = DEFAULT_MAX_LISTING_BYTES,
    max_element_bytes: int = DEFAULT_MAX_ELEMENT_BYTES,
) -> StreamedListing:
    """Read a GetRevisionIdList answer from `chunks`, calling `sink` with its keys, at most
    `batch` at a time, in the order listed. Raises as `RevisionIdListStream` does."""
    stream = RevisionIdListStream(max_bytes=max_bytes, max_element_bytes=max_element_bytes)
    pending: list[RevisionKey] = []
    for chunk in chunks:
        pending.extend(stream.feed(chunk))
        while len(pending) >= batch:
            sink(pending[:batch])
            del pending[:batch]
    pending.extend(stream.close())
    for start in range(0, len(pending), batch):
        sink(pending[start : start + batch])
    return StreamedListing(stream.anchor, stream.count)
