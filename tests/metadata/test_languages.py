"""The update languages a WSUS knows, by short name and by LanguageID."""

from __future__ import annotations

from updatesync.metadata.languages import LANGUAGES, language_id, language_named, language_of_id


def test_short_names_and_ids_both_ways() -> None:
    assert language_id("de") == 1031 and language_id(" ZH-CN ") == 2052
    assert language_named("en") is not None and language_named("en").long_name == "English"
    assert language_id("xx") is None and language_of_id(0) is None
    assert all(language_of_id(lang.id) == lang for lang in LANGUAGES)
    assert len({lang.short_name for lang in LANGUAGES}) == len(LANGUAGES) == 38
