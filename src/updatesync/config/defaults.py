"""The defaults of the hierarchy file, each one a value an administrator can see in
`docs/configuration.md`: ports, intervals, folders, and Microsoft Update's address."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_HTTPS_PORT",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_OVERDUE_AFTER",
    "DEFAULT_REPLICATION_TIMEOUT",
    "DEFAULT_RETRY_INTERVAL",
    "DEFAULT_SECRET_FILE",
    "DEFAULT_SITE_PORT",
    "DEFAULT_UPDATES_CLEANUP_AGE",
    "MAX_TZ_BIAS",
    "MICROSOFT_UPDATE_URL",
    "MIN_TZ_BIAS",
    "OVERDUE_MARGIN",
]

MICROSOFT_UPDATE_URL: Final = "https://sws.update.microsoft.com"
"""Microsoft Update's server-sync root (the `MUUrl` of a WSUS; Microsoft's "Troubleshoot
WSUS synchronization and import issues", section Endpoints). The services sit under it at
the paths of [MS-WSUSSS] 2.1. Whether it answers this anonymous DSS flow is unverified."""

DEFAULT_HTTP_PORT: Final = 8530
"""A SUP's port (WSUS's default)."""
DEFAULT_HTTPS_PORT: Final = 8531
"""A SUP's port with `https = true` (WSUS's default)."""
DEFAULT_SITE_PORT: Final = 8440
"""Where a site server takes the calls of its parent and child sites, the SMS Provider's API
and the client policy."""
DEFAULT_REPLICATION_TIMEOUT: Final = timedelta(minutes=30)
DEFAULT_SECRET_FILE: Final = "hierarchy.secret"
DEFAULT_RETRY_INTERVAL: Final = timedelta(minutes=60)
"""SPEC section 4: "Will retry in 60 minutes"."""
DEFAULT_UPDATES_CLEANUP_AGE: Final = timedelta(days=7)
"""ConfigMgr's Updates Cleanup Age: an expired update's CI is deleted 7 days after it expired."""
DEFAULT_DATA_DIR: Final = "data"
DEFAULT_OVERDUE_AFTER: Final = timedelta(days=2)
"""The least `overdue_after` defaults to; see `default_overdue_after`."""
OVERDUE_MARGIN: Final = timedelta(days=1)
"""What the default `overdue_after` adds to the longest gap between two scheduled syncs."""
MIN_TZ_BIAS: Final = -840
MAX_TZ_BIAS: Final = 720
