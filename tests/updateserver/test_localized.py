"""Update languages in the store: the languages of language-specific updates, and the texts
of the subscribed languages, written on import and filled in when a language is added."""

from __future__ import annotations

from pathlib import Path

from databases import Databases

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import RevisionKey
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.localized import language_settings, read_localized
from updatesync.updateserver.store import Subscription, UpdateStore


def test_texts_of_the_subscribed_languages_and_those_added_later(
    tmp_path: Path, databases: Databases
) -> None:
    records = list(generate_catalog(60, seed=3, language_packs=5))
    docs = [parse_update(r.xml) for r in records]
    updates = [d for d in docs if d.update_type == "Software" and d.localized]
    keys = [d.key for d in updates]
    write_export(tmp_path / "c.cab", records)
    with UpdateStore.open(tmp_path / "s", url=databases.new().url) as store:
        store.set_subscription(Subscription(languages=("DE",)))
        import_export_cabinet(store, tmp_path / "c.cab")
        with store.engine.connect() as conn:
            texts = read_localized(conn, keys, ["de", "ja"])
            settings = language_settings(conn)
        # German for each update (its own German text, else its English one); no Japanese.
        assert {uid: set(t) for uid, t in texts.items()} == {k.update_id: {"de"} for k in keys}
        assert all(
            texts[d.update_id]["de"] == (d.title("de"), d.description("de")) for d in updates
        )
        assert settings.subscribed == ("de",)
        assert settings.held == ("ar", "de", "fr", "ja", "zh-cn")
        # Japanese added: the updates held get their Japanese texts at once.
        store.set_subscription(Subscription(languages=("de", "ja")))
        with store.engine.connect() as conn:
            texts = read_localized(conn, keys, ["ja"])
            assert language_settings(conn).changed_at is not None
        pack = next(d for d in updates if d.update_languages == ("ja",))
        assert texts[pack.update_id]["ja"][0] == pack.title("ja") != pack.title("en")
        assert len(texts) == len(keys)
        # An older revision is not the one read.
        with store.engine.connect() as conn:
            assert read_localized(conn, [RevisionKey(pack.update_id, 1)], ["ja"]) == {}
