"""A top-level site's sync with subscribed languages, end to end over HTTP: a stand-in
Microsoft Update (an update server serving a generated catalog with language packs), the
site's SUP syncing from it over MS-WSUSSS, the site's sync manager driving the SUP through
its admin API, and the SMS Provider showing the CIs' titles in a subscribed language."""

from __future__ import annotations

from pathlib import Path

import httpx
from databases import Databases
from tokens import bearer, token_for
from upstream import stand_in_upstream, sync_runner, update_server_app

from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.metadata.document import parse_update
from updatesync.metadata.generator import generate_catalog
from updatesync.roles.serving import BackgroundServer
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.sup_client import UpdateServerApi
from updatesync.site.sync.sync_manager import SiteSyncSettings, SyncManager
from updatesync.updateserver.store import UpdateStore
from updatesync.vocabulary import PROVIDER

SUP = "cs1sup.contoso.com"


def _manager(
    db: SiteDatabase, log: CMTraceLog, port: int, languages: tuple[str, ...]
) -> SyncManager:
    settings = SiteSyncSettings(
        site_code="CS1", site_fqdn="CS1SITE.CONTOSO.COM", languages=languages
    )
    return SyncManager(
        db, settings, log, lambda _sup: UpdateServerApi(f"http://127.0.0.1:{port}", timeout=30)
    )


def test_the_cis_carry_their_titles_in_each_subscribed_language(
    tmp_path: Path, databases: Databases
) -> None:
    records = list(generate_catalog(120, seed=61, language_packs=10))
    docs = {r.update_id: parse_update(r.xml) for r in records}
    updates = {uid for uid, d in docs.items() if d.update_type in ("Software", "Driver")}
    packs = {uid: d.update_languages[0] for uid, d in docs.items() if d.update_languages}
    wsync = tmp_path / "CS1" / "logs" / "WSyncMgr.log"
    log = CMTraceLog(wsync, component="SMS_WSUS_SYNC_MANAGER")
    with (
        stand_in_upstream(tmp_path, records) as (_mu, upstream),
        UpdateStore.open(tmp_path / SUP, url=databases.new("sup").url) as sup_store,
        SiteDatabase.open(url=databases.new("site").url, site_code="CS1") as db,
        BackgroundServer(update_server_app(sup_store, sync_runner(sup_store, upstream.url))) as sup,
    ):
        db.sups.replace([SoftwareUpdatePoint(SUP, port=sup.port)])
        first = _manager(db, log, sup.port, ("de",)).run("SELF")
        assert first.succeeded
        # The CIs: every language-neutral update, and the German packs only.
        cis = {ci.update_id for ci in db.content.configuration_items()}
        assert cis == {uid for uid in updates if packs.get(uid, "de") == "de"}
        assert db.content.localized_languages() == {"de"}
        assert db.content.localized_count() == len(cis)  # one per CI and language
        line = f"sync: SMS synchronized {len(cis)} localized properties of {len(cis)} updates"
        assert f"{line} in languages de" in [entry.message for entry in read_cmtrace(wsync)]

        # French added: every CI is read again for its French texts; the French packs come.
        second = _manager(db, log, sup.port, ("de", "fr")).run("SELF")
        assert second.succeeded
        cis = {ci.update_id for ci in db.content.configuration_items()}
        assert cis == {uid for uid in updates if packs.get(uid, "de") in ("de", "fr")}
        assert db.content.localized_languages() == {"de", "fr"}
        assert db.content.localized_count() == 2 * len(cis)

        # What an administrator sees: each CI's display name in the language asked for.
        app = create_provider_app(
            db, log=CMTraceLog(tmp_path / "SMSProv.log", component=PROVIDER), site_code="CS1"
        )
        with (
            BackgroundServer(app) as provider,
            httpx.Client(base_url=provider.url, headers=bearer(token_for(db))) as client,
        ):
            page = client.get("/api/sites/CS1/cis", params={"limit": 500, "language": "fr"})
            assert page.status_code == 200
            body = page.json()
            assert body["Language"] == "fr" and body["LocalizedPropertyCount"] == 2 * len(cis)
            for item in body["Items"]:
                doc = docs[item["CI_UniqueID"]]
                assert item["LocalizedDisplayName"] == doc.title("fr")
                assert item["LocaleID"] == 1036
                assert item["LocalizedDescription"] == doc.description("fr")
            french = [i for i in body["Items"] if packs.get(i["CI_UniqueID"]) == "fr"]
            assert french and all(
                "Module linguistique" in i["LocalizedDisplayName"] for i in french
            )
            # Without a language: the default language's title, no LocaleID.
            plain = client.get("/api/sites/CS1/cis", params={"limit": 500}).json()["Items"]
            assert all(i["LocaleID"] is None for i in plain)
            assert {i["LocalizedDisplayName"] for i in plain} == {
                docs[i["CI_UniqueID"]].title() for i in plain
            }
