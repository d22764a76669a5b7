"""Small helpers that write fragments of update documents (escaped text, identities,
localized properties), GUIDs and stamps."""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final
from xml.sax.saxutils import escape

from updatesync.metadata.generator.tables import NS

_QUOTE: Final = {'"': "&quot;"}


_MARKUP: Final = re.compile(r'[&<>"]')


def esc(text: str) -> str:
    """Escape text for an attribute value or element content."""
    if _MARKUP.search(text) is None:
        return text
    return escape(text, _QUOTE)


_V4_CLEAR: Final = ~((0xC000 << 48) | (0xF000 << 64))
_V4_SET: Final = (0x8000 << 48) | (4 << 76)


def guid(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng` (what `uuid.UUID(int=..., version=4)` gives, faster)."""
    h = f"{rng.getrandbits(128) & _V4_CLEAR | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def stamp(moment: datetime, millis: int) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def root(prefixes: Iterable[str]) -> str:
    decl = "".join(f' xmlns:{p}="{NS[p]}"' for p in prefixes if p != "upd")
    return f'<upd:Update{decl} xmlns:upd="{NS["upd"]}">'


def identity(uid: str, revision: int | None = None) -> str:
    if revision is None:
        return f'<upd:UpdateIdentity UpdateID="{uid}" />'
    return f'<upd:UpdateIdentity UpdateID="{uid}" RevisionNumber="{revision}" />'


def localized(titles: Mapping[str, str], descriptions: Mapping[str, str], extra: str = "") -> str:
    parts = ["<upd:LocalizedPropertiesCollection>"]
    for lang, title in titles.items():
        parts.append(f"<upd:LocalizedProperties><upd:Language>{lang}</upd:Language>")
        parts.append(f"<upd:Title>{esc(title)}</upd:Title>")
        description = descriptions.get(lang)
        if description:
            parts.append(f"<upd:Description>{esc(description)}</upd:Description>")
        parts.append(extra)
        parts.append("</upd:LocalizedProperties>")
    parts.append("</upd:LocalizedPropertiesCollection>")
    return "".join(parts)
