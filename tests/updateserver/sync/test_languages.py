"""The subscription's languages against the upstream's LanguageUpdateList."""

from __future__ import annotations

import pytest

from updatesync.updateserver.errors import UnsupportedLanguages
from updatesync.updateserver.sync.languages import (
    language_ids,
    merge_languages,
    read_languages,
    sends_languages,
)
from updatesync.wsusss.messages import ServerSyncLanguageData as Lang

ALL_OFF = Lang(0, "all", "all", False)
ALL_ON = Lang(0, "all", "all", True)
EN, DE_OFF = Lang(1033, "en", "English", True), Lang(1031, "de", "German", False)


def test_languages_go_to_an_upstream_of_protocol_1_3_or_later_only() -> None:
    assert [sends_languages(v) for v in ("1.20", "1.3", "1.8")] == [True, True, True]
    assert [sends_languages(v) for v in ("1.2", "1.1", None, "", "x")] == [False] * 5


def test_the_kept_list_is_merged_by_id_and_replaced_by_a_whole_one() -> None:
    kept = merge_languages(None, (ALL_OFF, EN, DE_OFF), complete=True)
    assert read_languages(kept) == [ALL_OFF, Lang(1031, "de", "German", False), EN]
    enabled = Lang(1031, "de", "German", True)
    merged = merge_languages(kept, (enabled,), complete=False)
    assert read_languages(merged) == [ALL_OFF, enabled, EN]
    assert read_languages(merge_languages(merged, (EN,), complete=True)) == [EN]
    assert read_languages(None) is None and read_languages("not json") is None


def test_ids_of_offered_languages_and_a_clear_refusal_of_the_others() -> None:
    kept = merge_languages(None, (ALL_OFF, EN, DE_OFF), complete=True)
    assert language_ids("http://up", ("EN",), kept) == {"en": 1033}
    with pytest.raises(UnsupportedLanguages) as refused:
        language_ids("http://up", ("en", "de", "it"), kept)
    assert refused.value.languages == ("de", "it") and refused.value.offered == ("en",)
    assert str(refused.value).startswith(
        "the upstream server http://up does not offer update languages de, it; it offers en."
    )
    # An upstream that takes every language offers every one it lists, enabled or not.
    every = merge_languages(None, (ALL_ON, EN, DE_OFF), complete=True)
    assert language_ids("http://up", ("de", "en"), every) == {"de": 1031, "en": 1033}
