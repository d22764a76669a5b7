"""What a site's sync ends with: its result, the failure of a phase, the error codes.

`SyncFailure` carries where a phase failed (ISTR0 of the 6703) and what failed (ISTR1) with
the HRESULT of `LE=`; `origin` names where an unexpected exception was raised.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass

from updatesync.updateserver.failures import GENERIC_ERROR, Failure

__all__ = ["GENERIC_ERROR", "SiteSyncResult", "SyncFailure", "origin"]


@dataclass(frozen=True, slots=True)
class SiteSyncResult:
    """One sync's result. `retry_in`: for a failed sync, the seconds until the retry its
    "Sync failed. Will retry in N minutes" line announced (None: no line announced one)."""

    succeeded: bool
    content_version: int
    items_updated: int
    cis_changed: int
    seconds: float
    error: str | None = None
    retry_in: float | None = None


class SyncFailure(Exception):
    """A phase failed: `source` is where (ISTR0), the message what (ISTR1)."""

    def __init__(self, message: str, source: str, last_error: int) -> None:
        super().__init__(message)
        self.source = source
        self.last_error = last_error

    @classmethod
    def of(cls, failure: Failure) -> SyncFailure:
        """The failure as ConfigMgr writes it (`updateserver.failures`)."""
        return cls(failure.message, failure.source, failure.hresult)


def origin(exc: BaseException) -> str:
    """Where an unexpected exception was raised, as `module.function` (ISTR0)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__qualname__
    frame = frames[-1]
    module = os.path.splitext(os.path.basename(frame.filename))[0]
    return f"{module}.{frame.name}"
