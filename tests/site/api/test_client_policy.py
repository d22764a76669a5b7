"""The site-wide client policy (SPEC section 3.7): after its sync every primary and secondary
site tells its clients where its SUPs are, for the content version it holds; a client asks
`GET /policy/v1/software-update-points` on the site server, unsigned."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hierarchy_inprocess import InProcessHierarchy

from updatesync.site.api.client_policy import POLICY_PATH
from updatesync.site.database.models import MICROSOFT_UPDATE

UPDATE_SOURCE = "{C2D17964-BBDD-4339-B9F3-12D7205B39CC}"


@dataclass
class Synced:
    h: InProcessHierarchy
    before: dict[str, Any]
    """SS1's answer before any sync."""


def policy(h: InProcessHierarchy, code: str) -> httpx.Response:
    return httpx.get(h.url(code) + POLICY_PATH, timeout=30, verify=h.verify)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    with InProcessHierarchy(tmp_path_factory.mktemp("hierarchy"), updates=120) as h:
        before = policy(h, "SS1").json()
        h.sync_now("CS1")
        h.wait_all(1)
        h.wait_idle()
        yield Synced(h, before)


def _sup_port(h: InProcessHierarchy, fqdn: str) -> int:
    return h.hierarchy.find_sup(fqdn)[1].port


def test_a_primary_lists_its_sups_for_the_version_it_synced(synced: Synced) -> None:
    h = synced.h
    assert MICROSOFT_UPDATE == UPDATE_SOURCE
    answer = policy(h, "PS1")
    assert answer.status_code == 200
    body = answer.json()
    assert body["site_code"] == "PS1"
    assert body["update_source_id"] == UPDATE_SOURCE
    assert body["content_version"] == h.db("CS1").content.version() > 0
    assert "reason" not in body
    # Clients get the SUPs by their names (not the loopback address they run at here), in
    # install order: the default SUP first, then its replica; over HTTPS, as the SUPs serve.
    assert body["locations"] == [
        {
            "fqdn": fqdn,
            "intranet_url": f"https://{fqdn}:{_sup_port(h, fqdn)}",
            "internet_url": None,
        }
        for fqdn in ("ps1site.contoso.com", "ps1sys.contoso.com")
    ]


def test_a_secondary_lists_its_own_sup(synced: Synced) -> None:
    h = synced.h
    body = policy(h, "SS1").json()
    assert body["content_version"] == h.db("CS1").content.version()
    assert [loc["fqdn"] for loc in body["locations"]] == ["ss1site.contoso.com"]
    assert body["locations"][0]["intranet_url"] == (
        f"https://ss1site.contoso.com:{_sup_port(h, 'ss1site.contoso.com')}"
    )
    # Before its first sync it had nothing to give, and said so.
    assert synced.before["locations"] == []
    assert "has not completed a sync yet" in synced.before["reason"]


def test_the_cas_has_no_client_policy(synced: Synced) -> None:
    answer = policy(synced.h, "CS1")
    assert answer.status_code == 404
    assert "central administration site" in answer.json()["error"]


def test_a_policy_for_another_content_version_than_the_site_holds_lists_no_location(
    synced: Synced,
) -> None:
    h = synced.h
    db = h.db("PS1")
    version = db.content.version()
    db.content.set_version(version + 1)
    try:
        body = policy(h, "PS1").json()
        assert body["locations"] == []
        assert body["content_version"] == version
        reason = body["reason"]
        assert f"content version {version}" in reason
        assert f"holds version {version + 1}" in reason
        assert "sync" in reason
    finally:
        db.content.set_version(version)
    assert len(policy(h, "PS1").json()["locations"]) == 2
