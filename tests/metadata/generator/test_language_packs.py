"""Language packs of a generated catalog: language-specific, deterministic, and asking for
them leaves every other record of a catalog unchanged."""

from __future__ import annotations

from updatesync.metadata.document import parse_update
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.generator.language_packs import PACK_LANGUAGES


def test_packs_come_after_an_unchanged_catalog_each_for_one_language() -> None:
    plain = list(generate_catalog(60, seed=5))
    with_packs = list(generate_catalog(60, seed=5, language_packs=7))
    assert with_packs[: len(plain)] == plain
    assert with_packs == list(generate_catalog(60, seed=5, language_packs=7))
    packs = [parse_update(r.xml) for r in with_packs[len(plain) :]]
    names = [short for short, _english, _word in PACK_LANGUAGES]
    assert [p.update_languages for p in packs] == [(names[n % 5],) for n in range(7)]
    for pack in packs:
        language = pack.update_languages[0]
        assert pack.languages() == ("en", language)
        assert pack.title("en") != pack.title(language)
        assert len(pack.category_ids) == 2  # a product and a classification
    # Every update of the catalog itself is language-neutral.
    assert all(not parse_update(r.xml).update_languages for r in plain)
