"""License terms across the article's hierarchy: Microsoft Update serves the metadata but not
yet its license terms' files, so every update server below keeps them pending (each fetches
them from its own upstream's Content Download service), every site fails those updates in
WSUS's words, holds no CI for them and ends with 6708; once Microsoft Update serves the
files, the next SyncNow at CS1 brings them down the tree and every site ends with 6702,
holding the same CIs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hierarchy_inprocess import SITE_CODES, InProcessHierarchy

from updatesync.config import Hierarchy
from updatesync.updateserver.license_terms import add_generated_license_files

FAILED_LINE = (
    "Error: The Microsoft Software License Terms have not been completely downloaded and~~"
    "cannot be accepted. Source: Microsoft.UpdateServices.Internal.BaseApi.LicenseAgreement"
    ".GetById"
)


def _everything(hierarchy: Hierarchy) -> Hierarchy:
    """Every product and classification: the updates naming license terms are of several."""
    return replace(hierarchy, criteria=replace(hierarchy.criteria, products=(), classifications=()))


def _last_message(h: InProcessHierarchy, code: str) -> int:
    return h.db(code).messages.find(site_code=code, limit=1)[0].message_id


def test_pending_license_terms_travel_down_the_hierarchy_and_complete_on_the_next_sync(
    tmp_path: Path,
) -> None:
    with InProcessHierarchy(
        tmp_path, updates=120, tls=False, license_files=False, adjust=_everything
    ) as h:
        h.sync_now("CS1")
        h.wait_all(1)
        h.wait_idle()
        pending: dict[str, set[str]] = {}
        for code in SITE_CODES:
            assert h.results(code)[-1].succeeded, (code, h.results(code)[-1].error)
            assert _last_message(h, code) == 6708, code
            failed = {
                line.split()[4].rstrip(".")
                for line in h.log(code)
                if line.startswith("Failed to sync update ") and FAILED_LINE in line
            }
            assert failed, code
            assert not failed & set(h.cis(code)), code
            pending[code] = failed
        assert len({frozenset(p) for p in pending.values()}) == 1  # the same updates everywhere
        assert h.cis("PS1") == h.cis("CS1") == h.cis("SS1")

        add_generated_license_files(h.mu)  # Microsoft Update has the files now
        h.sync_now("CS1")
        h.wait_all(2)
        h.wait_idle()
        for code in SITE_CODES:
            assert _last_message(h, code) == 6702, code
            assert pending[code] <= set(h.cis(code)), code
        assert h.cis("PS1") == h.cis("CS1") == h.cis("SS1") == h.cis("PS2")
