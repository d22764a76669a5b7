"""GetRevisionSetDigest: updatesync's own extension of the server-sync service, not part of
MS-WSUSSS. A downstream asks its upstream, with the session cookie of its sync, for the
digest of the revisions the upstream had listed to it: the categories and detectoids up to
the change number of its config list anchor, the updates its filter selects up to that of
its update list anchor (`updateserver/digest.py`). Its own namespace (`UPDATESYNC_NS`)
keeps it apart from Microsoft's: a real WSUS answers it with a fault, which the downstream
reads as "no audit available"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from updatesync.wsusss.messages.auth import Cookie
from updatesync.wsusss.messages.codec import Field, Message
from updatesync.wsusss.messages.sync_data import IdAndDelta, LanguageAndDelta
from updatesync.wsusss.soap import UPDATESYNC_NS


@dataclass(frozen=True, slots=True)
class GetRevisionSetDigestRequest(Message):
    cookie: Cookie | None
    config_anchor: str | None = None
    update_anchor: str | None = None
    categories: tuple[IdAndDelta, ...] | None = None
    classifications: tuple[IdAndDelta, ...] | None = None
    languages: tuple[LanguageAndDelta, ...] | None = None
    """The LanguageIDs the downstream's filter sent (none: every language)."""
    OPERATION: ClassVar = "GetRevisionSetDigest"
    NAMESPACE: ClassVar = UPDATESYNC_NS
    _FIELDS: ClassVar = (
        Field("cookie", "cookie", Cookie),
        Field("configAnchor", "config_anchor", "str"),
        Field("updateAnchor", "update_anchor", "str"),
        Field("categories", "categories", IdAndDelta, item="IdAndDelta"),
        Field("classifications", "classifications", IdAndDelta, item="IdAndDelta"),
        Field("languages", "languages", LanguageAndDelta, item="LanguageAndDelta"),
    )


@dataclass(frozen=True, slots=True)
class RevisionSetDigest:
    """`Digest`: 64 hexadecimal digits; `Count`: the revisions summed; `Scope`: "all" (every
    revision held by those numbers) or "filter" (the filter's selection)."""

    digest: str
    count: int
    scope: str
    _FIELDS: ClassVar = (
        Field("Digest", "digest", "str", required=True),
        Field("Count", "count", "int", required=True),
        Field("Scope", "scope", "str", required=True),
    )


@dataclass(frozen=True, slots=True)
class GetRevisionSetDigestResponse(Message):
    result: RevisionSetDigest
    OPERATION: ClassVar = "GetRevisionSetDigest"
    NAMESPACE: ClassVar = UPDATESYNC_NS
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (
        Field("GetRevisionSetDigestResult", "result", RevisionSetDigest, required=True),
    )
