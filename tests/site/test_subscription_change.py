"""A subscription changed while the hierarchy runs: set at the top-level site's SMS Provider,
carried to every child by database replication, set on every SUP by each site's WSUS
configuration manager (WCM.log), and kept over a restart with the same hierarchy file."""

from __future__ import annotations

from pathlib import Path

import httpx
from hierarchy_inprocess import InProcessHierarchy

from updatesync.demo import DEMO_CLASSIFICATIONS
from updatesync.logs.cmtrace import read_cmtrace

LANGUAGES = ["en", "ja"]


def _wcm_lines(h: InProcessHierarchy, code: str) -> list[str]:
    return [e.message for e in read_cmtrace(h.site(code).log_dir / "WCM.log")]


def _sup_languages(h: InProcessHierarchy, fqdn: str) -> list[str]:
    site, sup = h.hierarchy.find_sup(fqdn)
    answer = httpx.get(
        f"{sup.url}/api/configuration", auth=h.signed(site.code), timeout=30, verify=h.verify
    )
    answer.raise_for_status()
    return list(answer.json()["languages"])


def test_a_subscription_set_at_the_top_reaches_every_sup_and_outlives_a_restart(
    tmp_path: Path,
) -> None:
    with InProcessHierarchy(tmp_path, updates=60, tls=False) as h:
        h.sync_now("CS1")
        h.wait_all(1)
        before = h.db("CS1").wsus.subscription()
        assert before.languages == ("en",)
        products = list(before.products)
        classifications = list(DEMO_CLASSIFICATIONS[:1])
        answer = httpx.put(
            f"{h.url('CS1')}/api/sites/CS1/subscription",
            json={
                "products": products,
                "classifications": classifications,
                "languages": LANGUAGES,
            },
            headers=h.admin(),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        version = answer.json()["Version"]
        assert version == before.version + 1
        # The next sync configures CS1's SUP first; PS1 and SS1 get the subscription with
        # the CIs (database replication) and their configuration managers set it too.
        h.sync_now("CS1")
        h.wait_all(2)
        for code in ("PS1", "PS2", "SS1"):
            held = h.db(code).wsus.subscription()
            assert (list(held.languages), list(held.classifications)) == (
                LANGUAGES,
                classifications,
            ), code
            for sup in h.db(code).sups.find():
                assert h.site(code).wcm.ensure_configured(sup), (code, sup.fqdn)
        for fqdn in h.sup_fqdns():
            assert _sup_languages(h, fqdn) == LANGUAGES, fqdn
        # the CIs' titles in Japanese, written at CS1 for the CIs it still subscribes (those
        # of the classification kept), replicated with the CIs below it
        ids = sorted(h.cis("CS1"))
        kept = {
            c.update_id
            for c in h.db("CS1").content.configuration_items()
            if set(c.classifications) & set(classifications)
        }
        at_top = h.db("CS1").content.localized(ids, "ja")
        assert set(at_top) == kept and kept
        for code in ("PS1", "PS2", "SS1"):
            assert h.db(code).content.localized(ids, "ja") == at_top, code
        lines = _wcm_lines(h, "CS1")
        assert "Subscribed Update Languages en, ja" in lines
        assert "File notification triggered WCM Inbox." in lines or (
            "Configuration requested by SMS_WSUS_SYNC_MANAGER." in lines
        )
        assert "Subscribed Update Languages en, ja" in _wcm_lines(h, "SS1")
        # A restart with the same hierarchy file keeps the change.
        h.restart_role("site:CS1")
        kept = h.db("CS1").wsus.subscription()
        assert (list(kept.languages), kept.version) == (LANGUAGES, version)
