"""Writing large MS-WSUSSS answers in chunks, never whole in memory.

A GetRevisionIdList answer lists every revision a downstream's filter selects: 100,000 ids
are about 12 MB of XML, a million about 120 MB. `revision_id_list` writes it as a stream of
chunks of about `CHUNK_CHARS` characters from an iterable of keys (which the backend reads
from its database page by page), so the upstream holds one page of keys and one chunk at a
time. GetUpdateData answers are bounded (about 2 MB) but are written the same way
(`update_data`), from documents read a few at a time as the answer is written: fifty
downstreams reading slowly hold fifty answers in flight, and each holds only its next chunk's
documents, not its whole batch.

The bytes are exactly those `Message.to_xml()` writes for the same message: the message is
serialized once with a single placeholder item in its array, and cut around that item; each
item is written by the codec's own writer. Escaped text never holds `<`, so the placeholder's
markup is found only where the array is.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from updatesync.metadata.model import RevisionKey
from updatesync.wsusss.messages import (
    GetRevisionIdListResponse,
    GetUpdateDataResponse,
    Message,
    RevisionIdList,
    ServerSyncUpdateData,
    ServerSyncUrlData,
    ServerUpdateData,
)
from updatesync.wsusss.messages.codec import _write_value
from updatesync.wsusss.messages.scalars import IDENTITY, format_guid, format_int

CHUNK_CHARS = 64 * 1024
"""About how many characters each chunk of a streamed answer holds (the last may be less)."""

_BLOB: Final = frozenset({"xml_update_blob"})

_PLACEHOLDER_KEY = RevisionKey("00000000-0000-0000-0000-000000000000", 0)


class StreamedMessage:
    """A response written as chunks of UTF-8 bytes: `chunks()` streams them, `to_xml()`
    joins them (for small answers and tests: the same bytes as the message's own
    `to_xml()`). Each call starts over where its items can be read again (a tuple); the
    service's answers read theirs from the store as they go, and are written once."""

    __slots__ = ("_chunks", "operation")

    def __init__(self, operation: str, chunks: Callable[[], Iterator[bytes]]) -> None:
        self.operation = operation
        self._chunks = chunks

    def chunks(self) -> Iterator[bytes]:
        return self._chunks()

    def to_xml(self) -> bytes:
        return b"".join(self._chunks())


def array_chunks(
    message: Message,
    array: str,
    item: str,
    kind: str | type,
    placeholder: Any,
    items: Iterable[Any],
    *,
    chunk_chars: int = CHUNK_CHARS,
    finished: Callable[[], Message] | None = None,
    escaped: frozenset[str] = frozenset(),
) -> Iterator[bytes]:
    """The envelope of `message`, whose array element `<array>` holds `placeholder` as its
    only `<item>` (of codec kind `kind`), with `items` written in the placeholder's stead:
    the bytes `to_xml()` writes for the message holding `items`. `escaped` names fields of
    the items whose text is escaped already (`soap.escape_text`), written as they are.

    What follows the array may depend on the items written: `finished()`, called once the
    items are exhausted, gives the message (same placeholder, same everything before the
    array) whose remainder ends the answer; without it, `message`'s does."""
    one: list[str] = []
    _write_value(one, item, kind, placeholder)
    marker = f"<{array}>{''.join(one)}</{array}>"

    def around(shell: Message) -> tuple[str, str]:
        whole = shell.to_xml().decode("utf-8")
        at = whole.index(marker)
        return whole[:at], whole[at + len(marker) :]

    before, after = around(message)

    def ending() -> str:
        if finished is None:
            return after
        last_before, last_after = around(finished())
        if last_before != before:
            raise ValueError("the finished message differs from the streamed one before its array")
        return last_after

    iterator = iter(items)
    end = object()
    first = next(iterator, end)
    if first is end:
        yield (before + f"<{array} />" + ending()).encode("utf-8")
        return
    head = before + f"<{array}>"
    out: list[str] = [head]
    size = len(head)
    for value in itertools.chain((first,), iterator):
        if kind == IDENTITY:  # the codec's writing of an UpdateIdentity, without its calls
            if not isinstance(value, RevisionKey):
                raise TypeError(f"<{item}> expects an UpdateIdentity (RevisionKey), not {value!r}")
            text = (
                f"<{item}><UpdateID>{format_guid(value.update_id)}</UpdateID>"
                f"<RevisionNumber>{format_int(value.revision)}</RevisionNumber></{item}>"
            )
            out.append(text)
            size += len(text)
        else:
            mark = len(out)
            _write_value(out, item, kind, value, escaped)
            for part in out[mark:]:
                size += len(part)
        if size >= chunk_chars:
            yield "".join(out).encode("utf-8")
            out.clear()
            size = 0
    out.append(f"</{array}>" + ending())
    yield "".join(out).encode("utf-8")


def revision_id_list(
    anchor: str | None, keys: Callable[[], Iterable[RevisionKey]], *, chunk_chars: int = CHUNK_CHARS
) -> StreamedMessage:
    """GetRevisionIdList's answer (3.1.4.5.3.3): `anchor` and the revisions `keys()`
    yields, written as they come."""
    shell = GetRevisionIdListResponse(RevisionIdList(anchor, (_PLACEHOLDER_KEY,)))

    def chunks() -> Iterator[bytes]:
        return array_chunks(
            shell,
            "NewRevisions",
            "UpdateIdentity",
            IDENTITY,
            _PLACEHOLDER_KEY,
            keys(),
            chunk_chars=chunk_chars,
        )

    return StreamedMessage(GetRevisionIdListResponse.OPERATION, chunks)


def update_data(
    updates: Iterable[ServerSyncUpdateData],
    file_urls: Callable[[], tuple[ServerSyncUrlData, ...]],
    *,
    chunk_chars: int = CHUNK_CHARS,
    blobs_escaped: bool = False,
) -> StreamedMessage:
    """GetUpdateData's answer (3.1.4.6.3.3), one update document after another, as
    `updates` yields them (read lazily: an answer waiting on a slow reader holds only what
    its next chunk needs). The file URLs follow the updates in the answer: `file_urls()` is
    called once the updates are written (the URLs of the files those name).

    With `blobs_escaped`, each update's `xml_update_blob` is already escaped as element
    content (`soap.escape_text`) and is written as it is: the service escapes each document
    once, to size its answer by it, and not a second time to write it."""
    placeholder = ServerSyncUpdateData(_PLACEHOLDER_KEY, xml_update_blob="")

    def shell(urls: tuple[ServerSyncUrlData, ...]) -> GetUpdateDataResponse:
        return GetUpdateDataResponse(ServerUpdateData((placeholder,), urls))

    def chunks() -> Iterator[bytes]:
        return array_chunks(
            shell(()),
            "updates",
            "ServerSyncUpdateData",
            ServerSyncUpdateData,
            placeholder,
            updates,
            chunk_chars=chunk_chars,
            finished=lambda: shell(file_urls()),
            escaped=_BLOB if blobs_escaped else frozenset(),
        )

    return StreamedMessage(GetUpdateDataResponse.OPERATION, chunks)
