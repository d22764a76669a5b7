"""The update languages a WSUS knows: each one's language id ([MS-LCID]), short name and
long name, as GetConfigData's LanguageUpdateList carries them ([MS-WSUSSS] 3.1.4.4.3.3).

The short names are what update documents write in `upd:Language` and what the hierarchy
file's `[hierarchy.criteria] languages` holds; the ids are what a downstream server sends
in its filter (`LanguageAndDelta/Id`, 3.1.4.5.3.5) and what ConfigMgr keeps as a localized
property's LocaleID. The list is the one a Windows Server 2025 WSUS offers (exchange 000005
of the real captures): 38 languages, with id 0 ("all") apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "ALL_LANGUAGES_ID",
    "LANGUAGES",
    "UpdateLanguage",
    "language_id",
    "language_named",
    "language_of_id",
]

ALL_LANGUAGES_ID: Final = 0
"""LanguageID 0, short and long name "all": every language (3.1.4.4.3.3)."""


@dataclass(frozen=True, slots=True)
class UpdateLanguage:
    """One update language: its LCID, short name (lower case) and long name."""

    id: int
    short_name: str
    long_name: str


LANGUAGES: Final[tuple[UpdateLanguage, ...]] = tuple(
    UpdateLanguage(lcid, short, long)
    for lcid, short, long in (
        (1025, "ar", "Arabic"),
        (1026, "bg", "Bulgarian"),
        (1028, "zh-tw", "Chinese (Traditional)"),
        (1029, "cs", "Czech"),
        (1030, "da", "Danish"),
        (1031, "de", "German"),
        (1032, "el", "Greek"),
        (1033, "en", "English"),
        (1034, "es", "Spanish"),
        (1035, "fi", "Finnish"),
        (1036, "fr", "French"),
        (1037, "he", "Hebrew"),
        (1038, "hu", "Hungarian"),
        (1040, "it", "Italian"),
        (1041, "ja", "Japanese"),
        (1042, "ko", "Korean"),
        (1043, "nl", "Dutch"),
        (1044, "no", "Norwegian"),
        (1045, "pl", "Polish"),
        (1046, "pt-br", "Portuguese (Brazil)"),
        (1048, "ro", "Romanian"),
        (1049, "ru", "Russian"),
        (1050, "hr", "Croatian"),
        (1051, "sk", "Slovak"),
        (1053, "sv", "Swedish"),
        (1054, "th", "Thai"),
        (1055, "tr", "Turkish"),
        (1058, "uk", "Ukrainian"),
        (1060, "sl", "Slovenian"),
        (1061, "et", "Estonian"),
        (1062, "lv", "Latvian"),
        (1063, "lt", "Lithuanian"),
        (1081, "hi", "Hindi"),
        (2052, "zh-cn", "Chinese (Simplified)"),
        (2070, "pt", "Portuguese (Portugal)"),
        (2074, "sr", "Serbian (Latin)"),
        (3076, "zh-hk", "Chinese (Hong Kong SAR)"),
        (66577, "ja-nec", "Japanese NEC"),
    )
)
"""Every language a WSUS offers, by id."""

_BY_SHORT: Final = {lang.short_name: lang for lang in LANGUAGES}
_BY_ID: Final = {lang.id: lang for lang in LANGUAGES}


def language_named(short_name: str) -> UpdateLanguage | None:
    """The language of a short name (any case), None when a WSUS knows no such language."""
    return _BY_SHORT.get(short_name.strip().lower())


def language_id(short_name: str) -> int | None:
    """The LCID of a short name, None when unknown."""
    found = language_named(short_name)
    return found.id if found is not None else None


def language_of_id(lcid: int) -> UpdateLanguage | None:
    """The language of an LCID, None when unknown (0, "all", included)."""
    return _BY_ID.get(lcid)
