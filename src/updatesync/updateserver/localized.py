"""Update languages in the store: what a language-specific update is for, and the localized
properties (title, description) of the languages this server subscribes to.

- `revision_language` holds, for each revision whose `upd:Properties` name languages (a
  language pack), one row per language; a language-neutral revision has none. The upstream
  side's language filter (`selection.py`) is an EXISTS on it.
- `revision_localized` holds the title and description of each software update and driver in
  each subscribed language: its text in that language, else its default language's (what a
  site shows for the update in that language). Written with each revision the importer or a
  sync stores, for the languages subscribed then; when languages are added to the
  subscription, `fill_localized` writes them for the latest revisions already stored (their
  documents read once). With no language subscribed (all languages) none are kept: a site
  then has the default language's title alone, as every configuration item does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Connection, and_, func, insert, select

from updatesync.metadata.document import parse_update
from updatesync.metadata.model import RevisionKey, UpdateRevision, UpdateType
from updatesync.updateserver import schema as t

__all__ = [
    "LanguageSettings",
    "fill_localized",
    "language_rows",
    "language_settings",
    "localized_rows",
    "read_localized",
    "subscribed_languages",
]

_LOCALIZED_TYPES: Final = (UpdateType.SOFTWARE, UpdateType.DRIVER)
_FILL_BATCH: Final = 500
_IN_CHUNK: Final = 500

Localized = dict[str, tuple[str, str | None]]
"""language -> (title, description) of one update."""


def subscribed_languages(conn: Connection) -> tuple[str, ...]:
    """The subscription's languages, lower case, sorted."""
    rows = conn.execute(select(t.subscription_language.c.language)).scalars()
    return tuple(sorted({str(lang).strip().lower() for lang in rows}))


def language_rows(doc: UpdateRevision) -> list[tuple[object, ...]]:
    """`revision_language` rows of `doc`: (update id, revision, language) each."""
    return [(doc.update_id, doc.revision, lang) for lang in doc.update_languages]


def localized_rows(doc: UpdateRevision, languages: Sequence[str]) -> list[tuple[object, ...]]:
    """`revision_localized` rows of `doc` in `languages` (a software update or driver with
    localized properties only): (update id, revision, language, title, description)."""
    if not languages or doc.update_type not in _LOCALIZED_TYPES or not doc.localized:
        return []
    return [
        (doc.update_id, doc.revision, lang, doc.title(lang), doc.description(lang))
        for lang in languages
    ]


def fill_localized(conn: Connection, languages: Sequence[str]) -> int:
    """Write the `revision_localized` rows of `languages` that the latest revisions of the
    stored software updates and drivers lack, in the caller's transaction; how many."""
    if not languages:
        return 0
    item, rev, loc = t.update_item, t.revision, t.revision_localized
    wanted = sorted({lang.lower() for lang in languages})
    written = 0
    after = ""
    while True:
        rows = conn.execute(
            select(item.c.update_id, item.c.latest_revision, rev.c.xml)
            .join(rev, t.is_latest(rev))
            .where(item.c.update_type.in_([k.value for k in _LOCALIZED_TYPES]))
            .where(item.c.update_id > after)
            .order_by(item.c.update_id)
            .limit(_FILL_BATCH)
        ).all()
        if not rows:
            return written
        held = {
            (uid, number, lang)
            for uid, number, lang in conn.execute(
                select(loc.c.update_id, loc.c.revision_number, loc.c.language).where(
                    loc.c.update_id.in_([r[0] for r in rows]), loc.c.language.in_(wanted)
                )
            )
        }
        new: list[dict[str, object]] = []
        for uid, number, xml in rows:
            missing = [lang for lang in wanted if (uid, number, lang) not in held]
            if missing:
                doc = parse_update(xml, where=f"stored update {uid} rev {number}")
                new += [
                    dict(zip(_LOCALIZED_COLUMNS, row, strict=True))
                    for row in localized_rows(doc, missing)
                ]
        if new:
            conn.execute(insert(loc), new)
            written += len(new)
        after = rows[-1][0]


_LOCALIZED_COLUMNS: Final = ("update_id", "revision_number", "language", "title", "description")


def read_localized(
    conn: Connection, keys: Iterable[RevisionKey], languages: Sequence[str]
) -> dict[str, Localized]:
    """The localized properties of the revisions `keys` in `languages`, by update id."""
    wanted = sorted({lang.lower() for lang in languages})
    found: dict[str, Localized] = {}
    if not wanted:
        return found
    chosen = {k.update_id: k.revision for k in keys}
    ids = sorted(chosen)
    loc = t.revision_localized
    for start in range(0, len(ids), _IN_CHUNK):
        query = select(
            loc.c.update_id, loc.c.revision_number, loc.c.language, loc.c.title, loc.c.description
        ).where(
            and_(loc.c.update_id.in_(ids[start : start + _IN_CHUNK]), loc.c.language.in_(wanted))
        )
        for uid, number, lang, title, description in conn.execute(query):
            if chosen.get(uid) == number:
                found.setdefault(uid, {})[lang] = (title, description)
    return found


@dataclass(frozen=True, slots=True)
class LanguageSettings:
    """What this server's LanguageUpdateList says: the subscribed languages, the languages
    it holds language-specific updates in, when the subscription's languages last changed
    and the change number of the newest language-specific revision."""

    subscribed: tuple[str, ...]
    held: tuple[str, ...]
    changed_at: datetime | None
    newest_specific: int | None

    def changed_after(self, change_number: int, moment: datetime) -> bool:
        """Whether any of it changed after a config anchor (`change_number`, `moment`)."""
        if self.newest_specific is not None and self.newest_specific > change_number:
            return True
        if self.changed_at is None:
            return False
        at = self.changed_at if self.changed_at.tzinfo else self.changed_at.replace(tzinfo=UTC)
        return at >= moment


def language_settings(conn: Connection) -> LanguageSettings:
    """The languages subscribed and held, and when they last changed."""
    lang, rev = t.revision_language, t.revision
    held = conn.execute(select(lang.c.language).distinct()).scalars().all()
    newest = conn.execute(
        select(func.max(rev.c.change_number)).join(
            lang,
            (lang.c.update_id == rev.c.update_id)
            & (lang.c.revision_number == rev.c.revision_number),
        )
    ).scalar()
    changed = conn.execute(select(t.store_state.c.languages_changed_at)).scalar()
    return LanguageSettings(subscribed_languages(conn), tuple(sorted(held)), changed, newest)
