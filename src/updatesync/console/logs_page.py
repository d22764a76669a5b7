"""The `/logs` page: upload logs, see the sync runs the tracker rebuilds from them.

GET shows the form; POST (multipart/form-data, the files in the field `logs`, and
`stuck_after` in minutes) receives the files (`updatesync.console.uploads`), lays them out in
a scratch folder of their own, runs the tracker over them (`updatesync.console.logruns`) and
removes the folder before the page is rendered. The form carries the session's CSRF token
(field `csrf`); an upload without it, or with another, is refused (`CsrfRefused`) before any
file is tracked. A refused upload (too big, no file, not a
form) shows the form again with the reason; a file that is not a log is a warning.
"""

from __future__ import annotations

import math
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from updatesync.console.logruns import LogsReport, track_stored
from updatesync.console.sessions import CSRF_FIELD, ConsoleSession
from updatesync.console.uploads import (
    Upload,
    UploadLimits,
    UploadRefused,
    multipart_available,
    receive,
    size_text,
    store,
)
from updatesync.logs.tracker import DEFAULT_STUCK_AFTER

SCRATCH_PREFIX = "updatesync-logs-"


def _stuck_after(text: str | None) -> timedelta:
    text = (text or "").strip()
    if not text:
        return DEFAULT_STUCK_AFTER
    try:
        minutes = float(text)
    except ValueError:
        minutes = math.nan
    if not math.isfinite(minutes) or minutes < 0 or minutes > 60 * 24 * 365:
        raise UploadRefused(
            f"Stuck after: {text!r} is not a number of minutes (0 or more); 60 is the default."
        )
    return timedelta(minutes=minutes)


def _track(upload: Upload, limits: UploadLimits, stuck_after: timedelta) -> LogsReport:
    """Blocking: store, track, and remove the scratch folder whatever happens."""
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, ignore_cleanup_errors=True) as root:
        stored = store(upload, Path(root), limits)
        return track_stored(stored, stuck_after=stuck_after)


def _form(limits: UploadLimits, stuck_after: str = "") -> dict[str, Any]:
    return {
        "limit": size_text(limits.max_bytes),
        "max_files": limits.max_files,
        "stuck_after": stuck_after or str(int(DEFAULT_STUCK_AFTER.total_seconds() // 60)),
        "can_upload": multipart_available(),
    }


async def logs_page(
    request: Request, limits: UploadLimits, session: ConsoleSession
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, values of `logs.html`); `CsrfRefused` for an upload that does not carry
    `session`'s CSRF token."""
    if request.method != "POST":
        return 200, {"form": _form(limits), "report": None, "problem": ""}
    try:
        upload = await receive(request, limits)
    except UploadRefused as exc:
        return exc.status, {"form": _form(limits), "report": None, "problem": str(exc)}
    given = upload.fields.get("stuck_after", "")
    try:
        session.check_csrf(upload.fields.get(CSRF_FIELD))
        stuck_after = _stuck_after(given)
        report = await run_in_threadpool(_track, upload, limits, stuck_after)
    except UploadRefused as exc:
        return exc.status, {"form": _form(limits, given), "report": None, "problem": str(exc)}
    finally:
        await upload.close()
    names = [f.filename or "?" for f in upload.files]
    return 200, {"form": _form(limits, given), "report": report, "problem": "", "names": names}
