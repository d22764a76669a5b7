"""Update languages between two update servers on loopback HTTP: B syncs from A over
MS-WSUSSS, and what B sends is read from the requests that actually go over the wire.

The catalog holds language-neutral updates and ten language packs (two each in German,
French, Japanese, Chinese (Simplified) and Arabic), each naming its language in
`upd:Properties/upd:Language`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import Databases

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import ExportRecord, write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import RevisionKey, UpdateRevision
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver import schema as t
from updatesync.updateserver.errors import UnsupportedLanguages
from updatesync.updateserver.failures import INVALID_ARGUMENT, SYNC_WSUS, sync_failure
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import Subscription, UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync import SyncFailed, SyncSettings, sync_from_upstream
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.messages import (
    GetRevisionIdListRequest,
    GetUpdateDataRequest,
    LanguageAndDelta,
    Message,
    parse_request,
)
from updatesync.wsusss.service import create_app

PACKS = 10


@pytest.fixture(scope="module")
def catalog() -> list[ExportRecord]:
    return list(generate_catalog(300, seed=41, language_packs=PACKS))


@pytest.fixture(scope="module")
def documents(catalog: list[ExportRecord]) -> list[UpdateRevision]:
    return [parse_update(r.xml) for r in catalog]


@pytest.fixture
def upstream(
    tmp_path: Path, databases: Databases, catalog: list[ExportRecord]
) -> Iterator[tuple[UpdateStore, str]]:
    write_export(tmp_path / "catalog.cab", catalog)
    store = UpdateStore.open(tmp_path / "A", url=databases.new("a").url)
    import_export_cabinet(store, tmp_path / "catalog.cab")
    with BackgroundServer(create_app(StoreBackend(store))) as server:
        yield store, server.url
    store.close()


class Recorder(httpx.HTTPTransport):
    """Real HTTP; keeps every request message sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Message] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":  # not a Content Download GET (license terms' files)
            self.sent.append(parse_request(request.read()))
        return super().handle_request(request)

    def update_filters(self) -> list[Any]:
        return [
            m.filter
            for m in self.sent
            if isinstance(m, GetRevisionIdListRequest) and m.filter and not m.filter.get_config
        ]

    def fetched(self) -> set[RevisionKey]:
        return {
            key
            for m in self.sent
            if isinstance(m, GetUpdateDataRequest)
            for key in m.update_ids or ()
        }


def _sync(store: UpdateStore, url: str, **settings: Any) -> Recorder:
    recorder = Recorder()
    with UpstreamClient(url, transport=recorder, retries=0) as client:
        sync_from_upstream(store, SyncSettings(url, **settings), client=client)
    return recorder


def _packs(documents: list[UpdateRevision], *languages: str) -> set[RevisionKey]:
    return {d.key for d in documents if set(d.update_languages) & set(languages)}


def test_only_the_subscribed_languages_packs_come_and_a_language_added_later_comes_whole(
    upstream: tuple[UpdateStore, str],
    documents: list[UpdateRevision],
    tmp_path: Path,
    databases: Databases,
) -> None:
    _store_a, url = upstream
    every = {d.key for d in documents}
    packs = _packs(documents, "de", "fr", "ja", "zh-cn", "ar")
    assert len(packs) == PACKS
    with UpdateStore.open(tmp_path / "B", url=databases.new("b").url) as store_b:
        first = _sync(store_b, url, languages=("de",))
        # On the wire: German by its LanguageID, not a delta (no anchor yet).
        assert [f.languages for f in first.update_filters()] == [(LanguageAndDelta(1031, False),)]
        # The upstream answered every language-neutral update and the German packs only.
        assert store_b.revision_keys() == (every - packs) | _packs(documents, "de")
        german = next(iter(_packs(documents, "de")))
        assert _title(store_b, german, "de").startswith(
            next(d for d in documents if d.key == german).title("de")[:20]
        )
        assert "Sprachpaket" in _title(store_b, german, "de")

        # French added: German stays a delta, French is not, and only the French packs come.
        second = _sync(store_b, url, languages=("de", "fr"))
        assert [f.languages for f in second.update_filters()] == [
            (LanguageAndDelta(1031, True), LanguageAndDelta(1036, False))
        ]
        assert second.fetched() == _packs(documents, "fr")
        assert store_b.revision_keys() == (every - packs) | _packs(documents, "de", "fr")
        # The updates held before got their texts in French (the store fills them in).
        neutral = next(
            d
            for d in documents
            if d.key in every - packs and d.update_type == "Software" and "fr" in d.languages()
        )
        assert _title(store_b, neutral.key, "fr") == neutral.title("fr")

        # Nothing changed: a delta for both, nothing fetched.
        third = _sync(store_b, url, languages=("de", "fr"))
        assert [f.languages for f in third.update_filters()] == [
            (LanguageAndDelta(1031, True), LanguageAndDelta(1036, True))
        ]
        assert third.fetched() == set()


def test_no_languages_sends_no_languages_and_every_update_comes(
    upstream: tuple[UpdateStore, str],
    documents: list[UpdateRevision],
    tmp_path: Path,
    databases: Databases,
) -> None:
    _store_a, url = upstream
    with UpdateStore.open(tmp_path / "B", url=databases.new("b").url) as store_b:
        sent = _sync(store_b, url)
        assert [f.languages for f in sent.update_filters()] == [None]
        assert store_b.revision_keys() == {d.key for d in documents}


def test_a_language_the_upstream_does_not_offer_fails_before_anything_is_fetched(
    upstream: tuple[UpdateStore, str], tmp_path: Path, databases: Databases
) -> None:
    store_a, url = upstream
    # A takes English and French, and holds packs in German, Japanese, Chinese, Arabic.
    store_a.set_subscription(Subscription(languages=("en", "fr")))
    with UpdateStore.open(tmp_path / "B", url=databases.new("b").url) as store_b:
        recorder = Recorder()
        with (
            UpstreamClient(url, transport=recorder, retries=0) as client,
            pytest.raises(SyncFailed) as failed,
        ):
            sync_from_upstream(
                store_b, SyncSettings(url, languages=("fr", "it", "xx")), client=client
            )
        cause = failed.value.cause
        assert isinstance(cause, UnsupportedLanguages)
        assert cause.languages == ("it", "xx")
        assert cause.offered == ("ar", "de", "en", "fr", "ja", "zh-cn")
        assert "does not offer update languages it, xx" in str(failed.value)
        # Nothing was fetched, nothing kept: not even the categories.
        assert not any(isinstance(m, GetUpdateDataRequest) for m in recorder.sent)
        assert store_b.revision_keys() == set()
        assert store_b.subscription().languages == ()
        # As WSyncMgr reports it: a .NET exception, the SyncWSUS source, an HRESULT.
        failure = sync_failure(failed.value)
        assert failure.kind == "System.ArgumentException"
        assert failure.source == SYNC_WSUS and failure.hresult == INVALID_ARGUMENT
        assert failure.message == (
            "The upstream server does not support the update languages it, xx. "
            "Languages it supports: ar, de, en, fr, ja, zh-cn."
        )
        assert "Traceback" not in failure.message and "/" not in failure.message


def test_the_language_list_is_sent_again_to_a_config_anchor_once_it_changed(
    upstream: tuple[UpdateStore, str],
) -> None:
    store_a, _url = upstream
    backend = StoreBackend(store_a)
    full = backend.languages()
    assert full[0].short_name == "all" and full[0].enabled  # no language subscribed: all
    # It holds language packs in these: enabled although not subscribed.
    assert {lang.short_name for lang in full if lang.enabled} == {
        "all",
        "de",
        "fr",
        "ja",
        "zh-cn",
        "ar",
    }
    from datetime import UTC, datetime

    from updatesync.wsusss.anchors import Anchor

    anchor = Anchor.issue(store_a.change_counter(), datetime.now(UTC))
    assert backend.languages(anchor) == []
    store_a.set_subscription(Subscription(languages=("en",)))
    again = backend.languages(anchor)
    assert again and not again[0].enabled
    assert next(lang for lang in again if lang.short_name == "en").enabled


def _title(store: UpdateStore, key: RevisionKey, language: str) -> str:
    loc = t.revision_localized
    with store.engine.connect() as conn:
        return str(
            conn.execute(
                loc.select()
                .with_only_columns(loc.c.title)
                .where(
                    loc.c.update_id == key.update_id,
                    loc.c.revision_number == key.revision,
                    loc.c.language == language,
                )
            ).scalar_one()
        )
