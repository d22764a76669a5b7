"""Localized properties of configuration items: one row per CI and language, replaced with
the CI, dropped with its language, its CI or its expiry."""

from __future__ import annotations

from databases import Databases

from updatesync.site.database.models import ConfigurationItem, LocalizedProperty
from updatesync.site.database.site_db import SiteDatabase

DE = LocalizedProperty("de", 1031, "Sicherheitsupdate", "Beschreibung")
FR = LocalizedProperty("fr", 1036, "Mise à jour de sécurité", None)


def _ci(n: int, localized: tuple[LocalizedProperty, ...] | None) -> ConfigurationItem:
    return ConfigurationItem(
        update_id=f"af5eb87e-cdd6-40bf-984f-{n:012x}",
        revision=100,
        title=f"Security Update {n}",
        xml_sha256=f"{n:064x}",
        localized=localized,
    )


def test_rows_per_ci_and_language_replaced_kept_and_pruned(databases: Databases) -> None:
    with SiteDatabase.open(url=databases.new().url, site_code="CS1") as db:
        with db.content.update() as content:
            content.upsert_cis([_ci(1, (DE, FR)), _ci(2, (DE,))])
            assert content.localized_written == 3
        ids = [_ci(1, None).update_id, _ci(2, None).update_id]
        assert db.content.localized(ids, "FR") == {ids[0]: FR}
        assert db.content.localized_count() == 3
        # An unchanged CI given without localized properties keeps its own.
        with db.content.update() as content:
            content.upsert_cis([_ci(1, None)])
            assert content.localized_written == 0
        assert db.content.localized_languages() == {"de", "fr"}
        # Given again, they are replaced; a language no longer subscribed goes.
        with db.content.update() as content:
            content.upsert_cis([_ci(2, (FR,))])
            assert content.keep_languages(["fr"]) == 1  # CI 1's German
        assert db.content.localized(ids, "de") == {}
        assert db.content.localized(ids, "fr") == {ids[0]: FR, ids[1]: FR}
