"""The license terms' files, downloaded after the metadata ([MS-WSUSSS] 3.2.4.4).

Once the metadata is in, the server asks its upstream's Content Download service for every
license-term file its store lists and lacks: those of this sync's revisions and those an
earlier sync could not get, so that a later sync completes them even when no new revision
comes. Each text is checked against the SHA-1 digest the metadata lists before it is
written. A file that cannot be had (the upstream does not hold it yet, a network error, a
text that is not the listed one) stays pending: the sync does not fail for it, it says so
in SoftwareDistribution.log, and its result names the updates whose license terms are
still pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from updatesync.updateserver import license_terms
from updatesync.updateserver.license_terms import LicenseFileRefused
from updatesync.updateserver.sync.context import SyncContext
from updatesync.wsusss.client import ContentUnavailable

__all__ = ["LicenseTermsOutcome", "download_license_files"]

LOG_SOURCE: Final = "ContentSyncAgent.DownloadLicenseTerms"


@dataclass(frozen=True, slots=True)
class LicenseTermsOutcome:
    """What the download step did: files written, files that failed, and the updates whose
    license terms are still not completely downloaded."""

    downloaded: int
    failed: int
    pending_updates: tuple[str, ...]


def download_license_files(ctx: SyncContext) -> LicenseTermsOutcome:
    """Download the license-term files the store lacks from the upstream (see the module)."""
    downloaded = failed = 0
    for file in license_terms.pending_files(ctx.store):
        ctx.stop_if_cancelled()
        try:
            content = ctx.client.download_content(file.digest, file.name)
            license_terms.save_file(ctx.store, file, content)
        except (ContentUnavailable, LicenseFileRefused) as exc:
            failed += 1
            if ctx.log is not None:
                ctx.log.warning(
                    LOG_SOURCE,
                    f"License terms file {file.name} of EULA {file.eula_id} could not be "
                    f"downloaded: {exc}; it stays pending and is asked for again at the next "
                    "sync",
                    process=ctx.log.service_process,
                )
            continue
        downloaded += 1
    pending = tuple(license_terms.pending_updates(ctx.store))
    if ctx.log is not None and (downloaded or failed):
        ctx.log.info(
            LOG_SOURCE,
            f"License terms: {downloaded} files downloaded, {failed} failed; license terms of "
            f"{len(pending)} updates pending",
            process=ctx.log.service_process,
        )
    return LicenseTermsOutcome(downloaded, failed, pending)
