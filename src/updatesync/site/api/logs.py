"""The SMS Provider's read-only log routes: the logs of the site server and of its SUPs, read
a page at a time, as a log viewer (CMTrace, the console's) shows them.

- `GET /api/sites/{site}/logs` → each log the site server knows: its components' logs in
  the site's logs folder (WSyncMgr.log, WCM.log, SMSDBMON.log, SMSProv.log, replmgr.log,
  rcmctrl.log, alerts.log) and each SUP's SoftwareDistribution.log (`<fqdn>/
  SoftwareDistribution.log`), with size and time of last change; a SUP's log that is not on
  this host is listed as not readable, saying where it is;
- `GET /api/sites/{site}/logs/{name}?file=F&offset=N&limit=B` → at most B bytes of entries
  from the cursor (F, N) on, each with its text, component, time, thread and type (error,
  warning, info), and the cursor to read on from (`updatesync.logs.tail`): a live tail asks
  again with it. No cursor: the end of the log. `at=T`: the page that holds the first entry
  at or after T.

`name` is looked up among the names the list gives, never used as a path. Reading needs the
same right as every read route (Read-only Analyst and above, or the hierarchy's signature).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from updatesync.config import Hierarchy
from updatesync.logs.rollover import LogReadError, rolled_path
from updatesync.logs.tail import Cursor, LogKind, LogPage, find_time, read_page
from updatesync.security.access import Permission
from updatesync.site.api.auth import require
from updatesync.vocabulary import (
    ALERT_WATCHER,
    ALERT_WATCHER_LOG,
    DATABASE_MONITOR_LOG,
    DATABASE_NOTIFICATION_MONITOR,
    PROVIDER,
    PROVIDER_LOG,
    REPLICATION_CONFIGURATION_LOG,
    REPLICATION_CONFIGURATION_MONITOR,
    REPLICATION_MANAGER,
    REPLICATION_MANAGER_LOG,
    SYNC_MANAGER,
    SYNC_MANAGER_LOG,
    UPDATE_SERVER_LOG,
    WSUS_CONFIGURATION_LOG,
    WSUS_CONFIGURATION_MANAGER,
)

DEFAULT_LIMIT = 256 * 1024
MAX_LIMIT = 1024 * 1024
"""The most bytes of a log one answer reads."""

SITE_LOGS: tuple[tuple[str, str], ...] = (
    (SYNC_MANAGER_LOG, SYNC_MANAGER),
    (WSUS_CONFIGURATION_LOG, WSUS_CONFIGURATION_MANAGER),
    (DATABASE_MONITOR_LOG, DATABASE_NOTIFICATION_MONITOR),
    (PROVIDER_LOG, PROVIDER),
    (REPLICATION_MANAGER_LOG, REPLICATION_MANAGER),
    (REPLICATION_CONFIGURATION_LOG, REPLICATION_CONFIGURATION_MONITOR),
    (ALERT_WATCHER_LOG, ALERT_WATCHER),
)
"""The site server's own logs (all in the CMTrace format), and the component of each."""

SUP_LOG = Path("logs") / UPDATE_SERVER_LOG
"""Where in its data folder an update server writes SoftwareDistribution.log
(`updatesync.updateserver.sync.context.default_log`)."""

LOG_OF_COMPONENT = {component: name for name, component in SITE_LOGS}
"""The log a site server component writes, by component name (a status message's)."""


@dataclass(frozen=True, slots=True)
class KnownLog:
    """One log the provider may read."""

    name: str
    """As the API names it: `WSyncMgr.log`, or `<sup fqdn>/SoftwareDistribution.log`."""
    path: Path
    kind: LogKind
    component: str
    server: str
    """The FQDN of the server that writes it."""
    folder: Path | None = None
    """A SUP's data folder; absent: the SUP runs on another host. None for the site
    server's own logs."""

    @property
    def elsewhere(self) -> bool:
        """The log is on another host than this site server."""
        return self.folder is not None and not self.folder.is_dir()


@dataclass(frozen=True)
class SiteLogs:
    """Where the site server and its SUPs write their logs: the site's logs folder and, for
    each SUP, its update server's data folder (where SoftwareDistribution.log is)."""

    site_fqdn: str
    log_dir: Path
    sups: Sequence[tuple[str, Path]] = ()
    """(FQDN, data folder) of each SUP of the site: its log is `SUP_LOG` in that folder;
    no such folder on this host means the SUP runs on another one."""

    @classmethod
    def of(cls, hierarchy: Hierarchy, code: str) -> SiteLogs:
        """Where the site `code` of `hierarchy` and its SUPs write their logs."""
        site = hierarchy.site(code)
        sups = [(sup.fqdn, hierarchy.update_server_dir(sup.fqdn)) for sup in site.sups]
        return cls(site.fqdn, hierarchy.log_dir(code), sups)

    def known(self) -> list[KnownLog]:
        own = [
            KnownLog(name, self.log_dir / name, LogKind.CMTRACE, comp, self.site_fqdn)
            for name, comp in SITE_LOGS
        ]
        sups = [
            KnownLog(
                f"{fqdn}/{UPDATE_SERVER_LOG}",
                folder / SUP_LOG,
                LogKind.SOFTWAREDISTRIBUTION,
                "WSUS",
                fqdn,
                folder,
            )
            for fqdn, folder in self.sups
        ]
        return own + sups

    def find(self, name: str) -> KnownLog | None:
        return next((log for log in self.known() if log.name.lower() == name.lower()), None)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class LogFileView(_Model):
    """One log the site server knows."""

    Name: str = Field(
        description="The log's name in this API (a SUP's: `<fqdn>/SoftwareDistribution.log`)."
    )
    Component: str = Field(description="The component that writes it.")
    Server: str = Field(description="The server that writes it (FQDN).")
    Format: LogKind = Field(description="cmtrace, or softwaredistribution.")
    Readable: bool = Field(description="This site server can read it.")
    Size: int | None = Field(description="Bytes in the log now; null when it is not written yet.")
    RolledOverSize: int | None = Field(description="Bytes in its `.lo_`; null when none.")
    Modified: datetime | None = Field(description="When it last changed (UTC).")
    Note: str | None = Field(description="Why it cannot be read, when it cannot.")


class LogLineView(_Model):
    """One entry of a log, as CMTrace shows it."""

    Text: str = Field(description="The entry's text (lines joined by LF).")
    Component: str = Field(description="Its component; empty for text that is no entry.")
    Time: datetime | None = Field(description="When it was written (UTC); null when unknown.")
    Thread: int | None = Field(description="The writing thread.")
    Type: str = Field(description="error, warning or info.")


class LogPageView(_Model):
    """A page of a log: its entries from a cursor, and the cursor to read on from."""

    Name: str = Field(description="The log, as the list names it.")
    File: str = Field(description="The file the page started in (its identity, for `file`).")
    Offset: int = Field(description="Where in it the page started.")
    NextFile: str = Field(description="Give as `file` to read on.")
    NextOffset: int = Field(description="Give as `offset` to read on.")
    More: bool = Field(description="More is written already: read on at once.")
    Gap: bool = Field(description="The log rolled over past the cursor given: lines were missed.")
    Lines: list[LogLineView] = Field(description="The entries, oldest first.")


router = APIRouter(tags=["tracking"], dependencies=[require(Permission.READ)])


def _site_logs(request: Request, site: str) -> SiteLogs:
    provider = request.app.state.provider
    code = provider.own_site(site)
    logs: SiteLogs | None = getattr(request.app.state, "logs", None)
    if logs is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"site {code}: this SMS Provider is given no logs to read"
        )
    return logs


def _modified(stat_time: float) -> datetime:
    return datetime.fromtimestamp(stat_time, UTC)


def _file_view(log: KnownLog) -> LogFileView:
    if log.elsewhere:
        return LogFileView(
            Name=log.name,
            Component=log.component,
            Server=log.server,
            Format=log.kind,
            Readable=False,
            Size=None,
            RolledOverSize=None,
            Modified=None,
            Note=f"{log.path.name} of {log.server} is on that server: its data folder is not "
            "on this site server's host; read it there",
        )
    try:
        current = log.path.stat()
    except FileNotFoundError:
        current = None
    try:
        rolled = rolled_path(log.path).stat()
    except FileNotFoundError:
        rolled = None
    latest = max((s.st_mtime for s in (current, rolled) if s is not None), default=None)
    return LogFileView(
        Name=log.name,
        Component=log.component,
        Server=log.server,
        Format=log.kind,
        Readable=True,
        Size=current.st_size if current else None,
        RolledOverSize=rolled.st_size if rolled else None,
        Modified=_modified(latest) if latest is not None else None,
        Note=None,
    )


@router.get(
    "/api/sites/{site}/logs",
    response_model=list[LogFileView],
    summary="The logs of the site server and its SUPs",
)
def list_logs(site: str, request: Request) -> list[LogFileView]:
    """Each log the site server writes, and each SUP's SoftwareDistribution.log, with its
    size and when it last changed; a SUP's log on another host is listed as not readable."""
    return [_file_view(log) for log in _site_logs(request, site).known()]


def _read(log: KnownLog, cursor: Cursor | None, limit: int, at: datetime | None) -> LogPage:
    if at is not None:
        found = find_time(log.path, log.kind, at, limit)
        if found is not None:
            return found
    return read_page(log.path, log.kind, cursor, limit)


@router.get(
    "/api/sites/{site}/logs/{name:path}",
    response_model=LogPageView,
    summary="Read a log from a cursor (a live tail)",
)
async def read_log(
    site: str,
    name: Annotated[str, PathParam(max_length=300, description="A name the list gives.")],
    request: Request,
    file: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=r"^[0-9a-f]*-?[0-9a-f]*$",
            description="NextFile of the page before.",
        ),
    ] = None,
    offset: Annotated[
        int, Query(ge=0, le=1 << 40, description="NextOffset of the page before.")
    ] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="At most this many bytes of the log.")
    ] = DEFAULT_LIMIT,
    at: Annotated[
        datetime | None,
        Query(description="Start at the page holding the first entry at or after this time (UTC)."),
    ] = None,
) -> LogPageView:
    """Entries of the log from the cursor (`file`, `offset`) on, at most `limit` bytes of
    them, each with text, component, time, thread and type; `NextFile` and `NextOffset` read
    on. Without `file`: the end of the log. With `at`: the page that holds the first entry
    at or after it (the end of the log when none does)."""
    logs = _site_logs(request, site)
    log = logs.find(name)
    if log is None:
        known = ", ".join(k.name for k in logs.known())
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"log {name!r}: this site server has no such log (its logs: {known})",
        )
    if log.elsewhere:
        raise HTTPException(status.HTTP_404_NOT_FOUND, _file_view(log).Note or "")
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    cursor = Cursor(file, offset) if file is not None else None
    try:
        page = await run_in_threadpool(_read, log, cursor, limit, at)
    except LogReadError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return LogPageView(
        Name=log.name,
        File=page.start.file,
        Offset=page.start.offset,
        NextFile=page.next.file,
        NextOffset=page.next.offset,
        More=page.more,
        Gap=page.gap,
        Lines=[
            LogLineView(
                Text=ln.text, Component=ln.component, Time=ln.time, Thread=ln.thread, Type=ln.type
            )
            for ln in page.lines
        ],
    )
