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


class SubscriptionRefused(UpdateServerError):
    """A product or classification id of the subscription that this server's categories do
    not hold (or hold as another kind): syncing again will not help, the subscription must
    change."""


class UnsupportedLanguages(UpdateServerError):
    """The subscription names languages the upstream does not offer: it does not list them
    in its LanguageUpdateList, or lists them disabled. `languages` are those short names,
    `offered` what the upstream offers ("all" when it takes every language it lists)."""

    def __init__(self, upstream: str, languages: Sequence[str], offered: Sequence[str]) -> None:
        self.upstream = upstream
        self.languages = tuple(languages)
        self.offered = tuple(offered)
        names = ", ".join(self.languages)
        plural = "s" if len(self.languages) > 1 else ""
        super().__init__(
            f"the upstream server {upstream} does not offer update language{plural} {names}; "
            f"it offers {', '.join(self.offered) or 'no language'}. Subscribe to languages "
            "it offers, or enable the language at the upstream server"
        )
