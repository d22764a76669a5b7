"""The subscription's languages against what the upstream offers (GetConfigData).

The upstream lists its languages in GetConfigData's LanguageUpdateList: id 0 ("all") first,
enabled when it takes every language, then each language with its LanguageID, short name
and whether it is enabled ([MS-WSUSSS] 3.1.4.4.3.1, .3.3). To a config anchor it lists
only the languages whose settings changed since, so the downstream keeps the list between
syncs (3.2.4.2: the Parent USS State), merged by LanguageID (`merge_languages`; JSON in
`upstream_state.languages`).

`language_ids` maps the subscribed short names to the upstream's LanguageIDs for the filter's
`Languages` (3.1.4.5.3.4); a language the upstream does not list, or lists disabled while it
does not take every language, is `UnsupportedLanguages`, raised before anything is fetched.
`Languages` is sent only to an upstream of protocol 1.3 or later (`sends_languages`: 1.1
and 1.2 do not define it, 3.1.4.5.3.1); GetConfigData's ProtocolVersion says which (absent
before WSUS 3.0: 1.1, note 32).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from updatesync.updateserver.errors import UnsupportedLanguages
from updatesync.wsusss.messages import ServerSyncLanguageData, parse_protocol_version

__all__ = ["language_ids", "merge_languages", "read_languages", "sends_languages"]

_LANGUAGES_FILTER_SINCE = (1, 3)


def sends_languages(protocol_version: str | None) -> bool:
    """Whether an upstream of `protocol_version` (GetConfigData's ProtocolVersion) takes a
    `Languages` filter: 1.3 and later. Absent or unreadable: 1.1 (WSUS 2.0), no."""
    if not protocol_version:
        return False
    try:
        return parse_protocol_version(protocol_version) >= _LANGUAGES_FILTER_SINCE
    except ValueError:
        return False


def read_languages(text: str | None) -> list[ServerSyncLanguageData] | None:
    """The upstream's languages kept in `upstream_state.languages`; None if none kept."""
    if not text:
        return None
    try:
        return [
            ServerSyncLanguageData(int(lcid), str(short), str(long), bool(enabled))
            for lcid, short, long, enabled in json.loads(text)
        ]
    except (ValueError, TypeError):
        return None


def merge_languages(
    kept: str | None, answered: Sequence[ServerSyncLanguageData] | None, *, complete: bool
) -> str:
    """The list to keep: the answer over what was kept, by LanguageID (`complete`: the
    answer to no config anchor, the whole list, replaces it)."""
    merged = {} if complete else {lang.language_id: lang for lang in read_languages(kept) or ()}
    for lang in answered or ():
        merged[lang.language_id] = lang
    return json.dumps(
        [
            [lang.language_id, lang.short_language or "", lang.long_language or "", lang.enabled]
            for lang in sorted(merged.values(), key=lambda item: item.language_id)
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def language_ids(upstream: str, subscribed: Sequence[str], kept: str | None) -> dict[str, int]:
    """The upstream's LanguageID of each subscribed short name (any case), in order.

    Raises `UnsupportedLanguages` naming every subscribed language the upstream does not
    list, or lists disabled when its "all" entry is not enabled, and what it offers."""
    listed = read_languages(kept) or []
    takes_all = any(lang.language_id == 0 and lang.enabled for lang in listed)
    by_name = {
        (lang.short_language or "").lower(): lang for lang in listed if lang.language_id != 0
    }
    ids: dict[str, int] = {}
    missing: list[str] = []
    for name in dict.fromkeys(lang.strip().lower() for lang in subscribed):
        found = by_name.get(name)
        if found is None or not (found.enabled or takes_all):
            missing.append(name)
        else:
            ids[name] = found.language_id
    if missing:
        offered = ["all"] if takes_all else []
        offered += [name for name, lang in by_name.items() if takes_all or lang.enabled]
        raise UnsupportedLanguages(upstream, missing, offered)
    return ids
