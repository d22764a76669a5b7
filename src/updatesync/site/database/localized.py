"""Localized properties of configuration items (`ci_localized_property`, migration 0007).

ConfigMgr keeps, per CI and locale, the update's display name and description in the
languages the site subscribes to. Here: one row per CI (its update id) and language, with
the language's LocaleID (LCID), written with the CIs in the site-database phase of a sync
(`ContentUpdate.upsert_cis`: a CI given with its localized properties has them replaced),
read by the SMS Provider's CI pages in a language asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from sqlalchemy import Connection, delete, func, insert, select

from updatesync.site.database import schema as t
from updatesync.site.database.models import ConfigurationItem, LocalizedProperty

__all__ = [
    "localized_by_update",
    "localized_count",
    "localized_languages",
    "prune_localized",
    "read_localized",
    "same_localized",
    "write_localized",
]

_CHUNK: Final = 500


def write_localized(conn: Connection, items: Iterable[ConfigurationItem]) -> int:
    """Replace the localized properties of the CIs given with theirs (CIs whose
    `localized` is None are left alone); how many rows were written."""
    given = [item for item in items if item.localized is not None]
    loc = t.ci_localized_property
    for start in range(0, len(given), _CHUNK):
        ids = [item.update_id for item in given[start : start + _CHUNK]]
        conn.execute(delete(loc).where(loc.c.update_id.in_(ids)))
    rows = [
        {
            "update_id": item.update_id,
            "language": prop.language,
            "locale_id": prop.locale_id,
            "display_name": prop.display_name,
            "description": prop.description,
        }
        for item in given
        for prop in item.localized or ()
    ]
    if rows:
        conn.execute(insert(loc), rows)
    return len(rows)


def prune_localized(conn: Connection, languages: Iterable[str]) -> int:
    """Delete the localized properties of languages not in `languages`; how many."""
    loc = t.ci_localized_property
    keep = sorted({lang.lower() for lang in languages})
    return int(conn.execute(delete(loc).where(loc.c.language.not_in(keep))).rowcount or 0)


def localized_languages(conn: Connection) -> set[str]:
    """The languages the site holds localized properties in."""
    loc = t.ci_localized_property
    return set(conn.execute(select(loc.c.language).distinct()).scalars())


def localized_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(t.ci_localized_property)).scalar_one())


def read_localized(
    conn: Connection, update_ids: Sequence[str], language: str
) -> dict[str, LocalizedProperty]:
    """The localized properties of the CIs `update_ids` in `language`, by update id."""
    loc = t.ci_localized_property
    found: dict[str, LocalizedProperty] = {}
    for start in range(0, len(update_ids), _CHUNK):
        query = select(loc).where(
            loc.c.update_id.in_(list(update_ids[start : start + _CHUNK])),
            loc.c.language == language.lower(),
        )
        for row in conn.execute(query):
            found[row.update_id] = LocalizedProperty(
                row.language, row.locale_id, row.display_name, row.description
            )
    return found


def localized_by_update(
    conn: Connection, update_ids: Sequence[str]
) -> dict[str, tuple[LocalizedProperty, ...]]:
    """Every localized property of the CIs `update_ids` (all languages, by language), by
    update id; a CI with none is absent."""
    loc = t.ci_localized_property
    found: dict[str, list[LocalizedProperty]] = {}
    for start in range(0, len(update_ids), _CHUNK):
        query = (
            select(loc)
            .where(loc.c.update_id.in_(list(update_ids[start : start + _CHUNK])))
            .order_by(loc.c.update_id, loc.c.language)
        )
        for row in conn.execute(query):
            found.setdefault(row.update_id, []).append(
                LocalizedProperty(row.language, row.locale_id, row.display_name, row.description)
            )
    return {uid: tuple(props) for uid, props in found.items()}


def same_localized(
    given: Sequence[LocalizedProperty] | None, held: Sequence[LocalizedProperty]
) -> bool:
    """Whether a CI given with `given` (None: not given) leaves its localized properties as
    they are, whatever their order."""
    return given is None or sorted(given, key=_key) == sorted(held, key=_key)


def _key(prop: LocalizedProperty) -> tuple[str, int, str, str]:
    return (prop.language, prop.locale_id, prop.display_name, prop.description or "")
