"""`generate_catalog`, and `catalog_stats`: what a catalog holds (for tests and benches)."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator.categories import (
    CATEGORY_TYPE_RE,
    UPDATE_TYPE_RE,
    Palette,
    attribute,
    generate_categories,
    learn_category,
)
from updatesync.metadata.generator.language_packs import language_packs
from updatesync.metadata.generator.tables import BASE_DATE, CATALOG_SPAN
from updatesync.metadata.generator.updates import UpdateFactory


def generate_catalog(
    updates: int,
    seed: int,
    *,
    categories: Iterable[ExportRecord] | None = None,
    language_packs: int = 0,
) -> Iterator[ExportRecord]:
    """Stream a synthetic catalog: category revisions first, then `updates` update revisions.

    Without `categories` a category tree is generated (three companies, Microsoft
    Corporation first; product families; products, most of them legacy ones no update is filed
    under; the ten real update classifications with their real GUIDs; 40 detectoids), each
    record as large as the real ones of its rank. With `categories` (e.g. the category and detectoid
    records of a real export) those records are passed through unchanged and the updates are
    filed under their products (CategoryType="Product") and classifications.

    `updates` counts every update revision yielded, bundle leaves included; leaves come just
    before the bundle naming them, and superseded updates before the ones superseding them.
    `language_packs` language-specific updates (`language_packs.py`: each names its language
    in `upd:Properties/upd:Language`) come last, beyond `updates`; without them (the default)
    every update is language-neutral, and asking for them changes no other record.

    The output depends only on the arguments.
    """
    if updates < 0:
        raise ValueError(f"updates must be >= 0, not {updates}")
    if language_packs < 0:
        raise ValueError(f"language_packs must be >= 0, not {language_packs}")
    return _generate(updates, seed, categories, language_packs)


def _generate(
    updates: int, seed: int, categories: Iterable[ExportRecord] | None, packs: int = 0
) -> Iterator[ExportRecord]:
    rng = random.Random(seed)
    palette = Palette()
    if categories is None:
        yield from generate_categories(rng, palette)
    else:
        for record in categories:
            learn_category(record, palette)
            yield record
    if updates == 0 and packs == 0:
        return
    palette.check()
    factory = UpdateFactory(rng, palette, BASE_DATE, CATALOG_SPAN, 5_005_000)
    yield from factory.stream(updates)
    yield from language_packs(packs, seed, palette)


# --------------------------------------------------------------------------------------
# Summary


@dataclass(slots=True)
class CatalogStats:
    """Counts over a stream of records (see `catalog_stats`)."""

    revisions: int = 0
    by_update_type: Counter[str] = field(default_factory=Counter)
    by_category_type: Counter[str] = field(default_factory=Counter)
    bundles: int = 0
    superseding: int = 0
    expired: int = 0
    with_files: int = 0
    multilingual: int = 0
    characters: int = 0

    def summary(self) -> str:
        types = ", ".join(f"{k} {v}" for k, v in sorted(self.by_update_type.items()))
        cats = ", ".join(f"{k} {v}" for k, v in sorted(self.by_category_type.items()))
        return (
            f"{self.revisions} revisions ({types}); categories: {cats}; "
            f"{self.bundles} bundles, {self.superseding} superseding, {self.expired} expired, "
            f"{self.with_files} with files, {self.multilingual} multilingual; "
            f"{self.characters} characters of XML"
        )


_BUNDLE_RE: Final = re.compile(r"<(?:\w+:)?BundledUpdates\b")
_SUPERSEDED_RE: Final = re.compile(r"<(?:\w+:)?SupersededUpdates\b")
_FILE_RE: Final = re.compile(r"<(?:\w+:)?File\b")
_STATE_ATTR_RE: Final = re.compile(r'\bPublicationState\s*=\s*"(\w+)"')


def catalog_stats(
    records: Iterable[ExportRecord],
    *,
    observe: Callable[[ExportRecord], None] | None = None,
) -> CatalogStats:
    """Count a catalog's records by type in one pass, without keeping them.

    `observe`, if given, is called with each record as it goes by (to tee a stream).
    """
    stats = CatalogStats()
    for record in records:
        if observe is not None:
            observe(record)
        xml = record.xml
        stats.revisions += 1
        stats.characters += len(xml)
        update_type = attribute(xml, "UpdateType", UPDATE_TYPE_RE) or "?"
        stats.by_update_type[update_type] += 1
        if update_type == "Category":
            stats.by_category_type[attribute(xml, "CategoryType", CATEGORY_TYPE_RE) or "?"] += 1
        elif xml.count("Language>") > 2:
            stats.multilingual += 1
        if "BundledUpdates" in xml and _BUNDLE_RE.search(xml):
            stats.bundles += 1
        if "SupersededUpdates" in xml and _SUPERSEDED_RE.search(xml):
            stats.superseding += 1
        if attribute(xml, "PublicationState", _STATE_ATTR_RE) == "Expired":
            stats.expired += 1
        if "Digest=" in xml and _FILE_RE.search(xml):
            stats.with_files += 1
    return stats
