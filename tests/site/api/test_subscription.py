"""The provider's subscription routes over real HTTP: the top-level site sets the products,
classifications and languages (Full Administrator), a child site shows what it inherits and
refuses a change, and a wrong id is refused naming it, with nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tokens import bearer, token_for

from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.roles.serving import BackgroundServer
from updatesync.security.access import SecurityRole
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.models import Category
from updatesync.site.database.site_db import SiteDatabase

WINDOWS_11 = "72e7624a-5b00-45d2-b92f-e561c0a6a160"
WINDOWS = "6964aab4-c5b5-43bd-a17d-ffb4346a8e1d"  # a product family
SECURITY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
CRITICAL = "e6cf1350-c01b-414d-a61f-263d14d133b4"
PATH = "/api/sites/{}/subscription"


@dataclass
class Provider:
    db: SiteDatabase
    client: httpx.Client
    url: str
    log_path: Path


def _provider(tmp_path: Path, site: str, parent: str | None) -> Iterator[Provider]:
    log_path = tmp_path / site / "SMSProv.log"
    with SiteDatabase.open(tmp_path / site, site_code=site) as db:
        app = create_provider_app(
            db,
            log=CMTraceLog(log_path, component="SMS Provider"),
            site_code=site,
            parent_site=parent,
        )
        headers = bearer(token_for(db, "root"))
        with (
            BackgroundServer(app) as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=30) as client,
        ):
            yield Provider(db, client, server.url, log_path)


@pytest.fixture
def top(tmp_path: Path) -> Iterator[Provider]:
    yield from _provider(tmp_path, "CS1", None)


@pytest.fixture
def child(tmp_path: Path) -> Iterator[Provider]:
    yield from _provider(tmp_path, "PS1", "CS1")


def _body(products: list[str], classifications: list[str], languages: list[str]) -> dict:
    return {"products": products, "classifications": classifications, "languages": languages}


def test_the_top_level_site_sets_the_subscription_and_the_version_rises(top: Provider) -> None:
    first = top.client.get(PATH.format("CS1")).json()
    assert (first["Products"], first["Version"], first["SetAt"]) == ([], 0, "CS1")
    answer = top.client.put(
        PATH.format("cs1"), json=_body([WINDOWS_11.upper()], [SECURITY], ["EN", "ja"])
    )
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert (view["Products"], view["Classifications"], view["Languages"], view["Version"]) == (
        [WINDOWS_11],
        [SECURITY],
        ["en", "ja"],
        1,
    )
    held = top.db.wsus.subscription()
    assert (held.products, held.languages, held.version) == ((WINDOWS_11,), ("en", "ja"), 1)
    # the same lists again, in another order: nothing changes, nobody is woken
    again = top.client.put(PATH.format("CS1"), json=_body([WINDOWS_11], [SECURITY], ["ja", "en"]))
    assert again.json()["Version"] == 1
    lines = [e.message for e in read_cmtrace(top.log_path)]
    assert (
        "User root set the subscription of site CS1 (version 1): 1 products, "
        "1 classifications, languages en, ja"
    ) in lines


def test_wrong_ids_are_refused_naming_them_and_nothing_changes(top: Provider) -> None:
    put = top.client.put
    bad = put(PATH.format("CS1"), json=_body(["windows 11"], [], []))
    assert bad.status_code == 422 and "'windows 11' is not a GUID" in bad.text
    twice = put(PATH.format("CS1"), json=_body([SECURITY, SECURITY.upper()], [], []))
    assert twice.status_code == 422 and "listed twice" in twice.text
    language = put(PATH.format("CS1"), json=_body([], [], ["english"]))
    assert language.status_code == 422 and "'english' is not a language code" in language.text
    extra = put(PATH.format("CS1"), json={**_body([], [], []), "proxy": "x"})
    assert extra.status_code == 422
    # once the site holds categories, an id must name one of the right kind
    top.db.content.upsert_categories(
        [
            Category(WINDOWS, "ProductFamily", "Windows"),
            Category(WINDOWS_11, "Product", "Windows 11", WINDOWS),
            Category(SECURITY, "UpdateClassification", "Security Updates"),
        ]
    )
    unknown = put(PATH.format("CS1"), json=_body([WINDOWS_11], [CRITICAL], []))
    assert unknown.status_code == 422
    assert f"classifications: {CRITICAL} is no category this site synced" in unknown.text
    kind = put(PATH.format("CS1"), json=_body([SECURITY], [WINDOWS_11], []))
    assert kind.status_code == 422
    assert f"products: {SECURITY} is a UpdateClassification" in kind.text
    assert f"classifications: {WINDOWS_11} is a Product" in kind.text
    assert top.db.wsus.subscription().version == 0
    family = put(PATH.format("CS1"), json=_body([WINDOWS], [SECURITY], []))
    assert family.status_code == 200 and family.json()["Products"] == [WINDOWS]


def test_only_a_full_administrator_sets_it(top: Provider) -> None:
    for role in (SecurityRole.SOFTWARE_UPDATE_MANAGER, SecurityRole.READ_ONLY_ANALYST):
        token = token_for(top.db, role.name.lower(), role)
        with httpx.Client(base_url=top.url, headers=bearer(token), timeout=30) as client:
            assert client.get(PATH.format("CS1")).status_code == 200
            refused = client.put(PATH.format("CS1"), json=_body([SECURITY], [], []))
            assert refused.status_code == 403, refused.text
    assert top.db.wsus.subscription().version == 0


def test_a_child_site_shows_what_it_inherits_and_refuses_a_change(child: Provider) -> None:
    child.db.wsus.set_subscription((WINDOWS_11,), (SECURITY,), ())
    view = child.client.get(PATH.format("PS1")).json()
    assert (view["Products"], view["SetAt"]) == ([WINDOWS_11], "the top-level site, through CS1")
    refused = child.client.put(PATH.format("PS1"), json=_body([], [SECURITY], []))
    assert refused.status_code == 409
    assert "set them at the top-level site's SMS Provider" in refused.text
    assert child.client.get(PATH.format("CS1")).status_code == 404
