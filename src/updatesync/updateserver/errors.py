"""Errors of the update server role."""

from __future__ import annotations

from collections.abc import Sequence

from updatesync.metadata.model import RevisionKey


class UpdateServerError(Exception):
    """An update server operation failed; the message says what, where and what to do."""


class StoreUnreadable(UpdateServerError):
    """The store's database cannot be opened or read: damaged, not a database, not
    readable, or written by a newer updatesync; the message names the file and what to do."""


class ImportFailed(UpdateServerError):
    """An import was refused or failed part-way; nothing of it was kept."""


class UnknownRevisions(UpdateServerError):
    """Revisions were asked for that this server does not hold."""

    def __init__(self, missing: Sequence[RevisionKey]) -> None:
        self.missing = tuple(missing)
        shown = ", ".join(str(k) for k in self.missing[:3])
        more = f" and {len(self.missing) - 3} more" if len(self.missing) > 3 else ""
        super().__init__(f"this server does not hold {shown}{more}")
