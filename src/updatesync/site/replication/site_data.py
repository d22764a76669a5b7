"""Site data replicated upward: each parent site pulls it from its child sites, as ConfigMgr
replicates site data (status messages, the sync status of the sites and their software
update points, alerts) up to the central administration site.

- The child answers `GET /site/v1/site-data?after=N&limit=L` (`site_data_routes`): its
  status messages stored after its RecordID N (its own, and those it holds of the sites
  below it), at most L, lowest first; and the pictures of itself and of each site below it
  (`api/hierarchy.pictures`: the views its provider gives). The routes check no signature:
  whoever mounts them puts them behind `auth.require_signature`, as database replication's.
- The parent runs a `SiteDataPuller`: a background thread that pulls from each child on its
  interval, and at once on `poke(child)` (the child greets its parent after each sync, and
  when it received new data from below). Each page is applied in one transaction
  (`db.site_data.apply`), which moves the link on; a child that is down leaves the last data
  it gave, with its age, and the pull retries with a back-off.
- The puller writes replmgr.log (component `SMS_REPLICATION_MANAGER`): `Replicated site data
  from child site PS1: ...`, and failures with the child's URL.
"""

from __future__ import annotations

import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.status_messages import StatusMessage
from updatesync.retry_policy import SITE_DATA
from updatesync.site.database.site_data import SitePicture
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.status_messages import StoredMessage
from updatesync.site.database.store import SiteDatabaseError
from updatesync.vocabulary import MessageSeverity

SITE_DATA_PATH = "/site/v1/site-data"
PAGE = 500
"""Status messages per page."""

# -- the page on the wire --------------------------------------------------------------------


def message_to_json(stored: StoredMessage) -> dict[str, Any]:
    m = stored.message
    return {
        "record_id": stored.record_id,
        "message_id": m.message_id,
        "severity": m.severity.value,
        "level": m.level,
        "source": m.source,
        "component": m.component,
        "site_code": m.site_code,
        "system": m.system,
        "process_id": m.process_id,
        "thread_id": m.thread_id,
        "time": m.time.isoformat(),
        "strings": list(m.strings),
        "attributes": [[k, v] for k, v in m.attributes],
        "last_error": m.last_error,
    }


def message_from_json(data: Mapping[str, Any]) -> tuple[int, StatusMessage]:
    strings = [str(s) for s in data["strings"]]
    if len(strings) != 10:
        raise ValueError(f"message {data.get('record_id')} has {len(strings)} strings, not 10")
    moment = datetime.fromisoformat(str(data["time"]))
    if moment.tzinfo is None:
        raise ValueError(f"message {data.get('record_id')} has a time without a time zone")
    last_error = data.get("last_error")
    return int(data["record_id"]), StatusMessage(
        message_id=int(data["message_id"]),
        severity=MessageSeverity(data["severity"]),
        level=str(data["level"]),
        source=str(data["source"]),
        component=str(data["component"]),
        site_code=str(data["site_code"]).upper(),
        system=str(data["system"]),
        process_id=int(data["process_id"]),
        thread_id=int(data["thread_id"]),
        time=moment,
        strings=tuple(strings),
        attributes=tuple((int(k), str(v)) for k, v in data["attributes"]),
        last_error=None if last_error is None else int(last_error),
    )


def picture_to_json(p: SitePicture) -> dict[str, Any]:
    return {
        "site": p.site_code,
        "as_of": p.as_of.isoformat(),
        "sync_status": p.sync_status,
        "sup_sync_status": p.sup_sync_status,
        "alerts": p.alerts,
        "stale": p.stale_below,
    }


def picture_from_json(data: Mapping[str, Any]) -> SitePicture:
    moment = datetime.fromisoformat(str(data["as_of"]))
    if moment.tzinfo is None:
        raise ValueError(f"site {data.get('site')}: as_of has no time zone")
    status = data.get("sync_status")
    if status is not None and not isinstance(status, dict):
        raise ValueError(f"site {data.get('site')}: sync_status is not an object")
    rows, alerts = data["sup_sync_status"], data["alerts"]
    if not all(isinstance(r, dict) for r in [*rows, *alerts]):
        raise ValueError(f"site {data.get('site')}: a SUP row or an alert is not an object")
    return SitePicture(
        site_code=str(data["site"]).upper(),
        as_of=moment,
        sync_status=status,
        sup_sync_status=list(rows),
        alerts=list(alerts),
        stale_below=bool(data.get("stale")),
    )


# -- the child's side: the route ---------------------------------------------------------------


def site_data_routes(
    db: SiteDatabase, pictures: Callable[[datetime], list[SitePicture]]
) -> list[Route]:
    """`GET /site/v1/site-data?after=N&limit=L`: this site's status messages after RecordID
    N (default 0), at most L (default and most 500), and `pictures(now)`. Bad parameters get
    400 with a JSON `error` naming the parameter."""

    def page(after: int, limit: int) -> dict[str, Any]:
        messages = db.messages.after(after, limit + 1)
        now = datetime.now(UTC)
        return {
            "site": db.site_code,
            "after": after,
            "last_record_id": messages[:limit][-1].record_id if messages else after,
            "more": len(messages) > limit,
            "messages": [message_to_json(m) for m in messages[:limit]],
            "sites": [picture_to_json(p) for p in pictures(now)],
        }

    async def site_data(request: Request) -> JSONResponse:
        numbers = {}
        for name, default, least in (("after", 0, 0), ("limit", PAGE, 1)):
            raw = request.query_params.get(name, str(default))
            if not (raw.isascii() and raw.isdigit()) or int(raw) < least:
                return JSONResponse(
                    {
                        "error": f"parameter {name}={raw!r} is not allowed: give a whole number "
                        f"from {least}"
                    },
                    status_code=400,
                )
            numbers[name] = int(raw)
        try:
            body = await run_in_threadpool(page, numbers["after"], min(numbers["limit"], PAGE))
        except (SiteDatabaseError, SQLAlchemyError) as exc:
            return JSONResponse(
                {"error": f"site {db.site_code} could not read its site data: {exc}"},
                status_code=503,
            )
        return JSONResponse(body)

    return [Route(SITE_DATA_PATH, site_data, methods=["GET"])]


# -- the parent's side: the puller ---------------------------------------------------------------


class SiteDataError(Exception):
    """A pull of site data from a child failed; the message says which child and why."""


class SiteDataPuller:
    """Pulls the site data of each child site (`children`: code -> URL, with the codes of
    the sites below each, `below`) into `db`.

    `start()` runs the background thread: each child is pulled every `interval` seconds,
    at once after `poke(child)`, and after a failure again after a back-off doubling from
    `retry_delay` up to `interval`, with jitter (`retry_policy.SITE_DATA`; `rng` its random
    source), so the parents of a hierarchy do not retry a child in lockstep (the one loop,
    `_run`). `pull(child)` pulls now (one pull
    of a child at a time). `on_changed` is called after a pull that brought something new
    (a site passes it on to its own parent)."""

    def __init__(
        self,
        db: SiteDatabase,
        children: Mapping[str, str],
        *,
        below: Mapping[str, Iterable[str]],
        auth: httpx.Auth,
        log: CMTraceLog | None = None,
        interval: float = 60.0,
        retry_delay: float = 1.0,
        request_timeout: float = 30.0,
        verify: ssl.SSLContext | bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_changed: Callable[[], None] | None = None,
        check: Callable[[SitePicture], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`check` raises `ValueError` for a picture this site cannot answer with (the
        provider's views), refusing the page."""
        if interval <= 0 or retry_delay <= 0:
            raise ValueError("interval and retry_delay must be positive")
        self.db = db
        self.children = {code.upper(): url.rstrip("/") for code, url in children.items()}
        self.below = {c.upper(): {s.upper() for s in below.get(c, ())} for c in self.children}
        self.log = log
        self.interval = interval
        self.retry_policy = SITE_DATA.scaled(retry_delay, max(interval, retry_delay))
        self._rng = rng
        self._clock = clock
        self._on_changed = on_changed
        self._check = check
        self._client = httpx.Client(auth=auth, timeout=request_timeout, verify=verify)
        self._locks = {code: threading.Lock() for code in self.children}
        self._due = dict.fromkeys(self.children, 0.0)
        self._failures = dict.fromkeys(self.children, 0)
        self._delay = dict.fromkeys(self.children, retry_delay)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pulled = threading.Condition()

    def start(self) -> SiteDataPuller:
        if self._thread is None and self.children:
            self._thread = threading.Thread(
                target=self._run, name=f"site data replication to {self.db.site_code}", daemon=True
            )
            self._thread.start()
        return self

    def poke(self, child: str | None = None) -> None:
        """Pull from `child` (every child: None) now, not at its next turn."""
        for code in [child.upper()] if child else list(self.children):
            if code in self._due:
                self._due[code] = 0.0
        self._wake.set()

    def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until `done()` holds, asking again after each pull (of any child) ends; False
        when `timeout` seconds passed first."""
        with self._pulled:
            return self._pulled.wait_for(done, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._client.close()

    def __enter__(self) -> SiteDataPuller:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            for code in self.children:
                if self._stopping.is_set():
                    return
                if self._due[code] > time.monotonic():
                    continue
                try:
                    self.pull(code)
                    self._due[code] = time.monotonic() + self.interval
                except SiteDataError:
                    self._due[code] = time.monotonic() + self._delay[code]
            self._wake.wait(max(0.0, min(self._due.values()) - time.monotonic()))

    # -- one pull ----------------------------------------------------------------------------

    def pull(self, child: str) -> int:
        """Pull `child`'s site data until it has no more; the status messages added. A failure
        is recorded on the link, logged and raised as `SiteDataError`; the data held stays."""
        code = child.upper()
        try:
            with self._locks[code]:
                try:
                    added, changed = self._pull(code)
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                    raise self._failed(code, self._reason(exc)) from None
                except (SiteDatabaseError, SQLAlchemyError) as exc:
                    raise self._failed(code, f"storing its data here failed: {exc}") from None
                except Exception as exc:  # the loop must outlive any one failure
                    raise self._failed(code, f"{type(exc).__name__}: {exc}") from None
        finally:
            with self._pulled:
                self._pulled.notify_all()
        self._failures[code] = 0
        if changed and self._on_changed is not None:
            self._on_changed()
        return added

    def _pull(self, code: str) -> tuple[int, bool]:
        url = self.children[code]
        added, changed, sites = 0, False, []
        while True:
            link = self.db.site_data.link(code)
            after = link.last_record_id if link is not None else 0
            answer = self._client.get(url + SITE_DATA_PATH, params={"after": after})
            if answer.status_code != 200:
                raise ValueError(f"it answered HTTP {answer.status_code}: {answer.text[:200]}")
            data = answer.json()
            if str(data["site"]).upper() != code:
                raise ValueError(f"{url} is site {data['site']}, not {code}")
            pictures = [picture_from_json(p) for p in data["sites"]]
            for picture in pictures if self._check is not None else ():
                self._check(picture)
            foreign = {p.site_code for p in pictures} - {code} - self.below[code]
            if foreign:
                raise ValueError(f"it sent data of {', '.join(sorted(foreign))}, not below it")
            result = self.db.site_data.apply(
                code,
                after=int(data["after"]),
                messages=[message_from_json(m) for m in data["messages"]],
                last_record_id=int(data["last_record_id"]),
                pictures=pictures,
                at=self._clock(),
            )
            added += result.messages_added
            changed |= result.changed
            sites = [p.site_code for p in pictures]
            if not data["more"]:
                break
        self._succeeded(code, added, sites, link)
        return added, changed

    def _reason(self, exc: Exception) -> str:
        if isinstance(exc, httpx.HTTPError):
            return f"cannot reach it: {type(exc).__name__}: {exc}"
        return f"its answer cannot be used: {exc}"

    def _succeeded(self, code: str, added: int, sites: list[str], link: Any) -> None:
        if self.log is None:
            return
        if link is not None and link.consecutive_failures:
            self.log.info(
                f"Site data replication from child site {code} succeeded again after "
                f"{link.consecutive_failures} failed attempt(s)"
            )
        if added:
            held = self.db.site_data.link(code)
            self.log.info(
                f"Replicated site data from child site {code}: {added} status message(s) up "
                f"to RecordID {held.last_record_id if held else 0}, site status of "
                f"{', '.join(sites)}"
            )

    def _failed(self, code: str, reason: str) -> SiteDataError:
        self._failures[code] += 1
        self._delay[code] = self.retry_policy.next_delay(self._failures[code], self._rng)
        text = (
            f"Site data replication from child site {code} at {self.children[code]} failed: "
            f"{reason}"
        )
        try:
            link = self.db.site_data.record_failure(code, text, at=self._clock())
        except (SiteDatabaseError, SQLAlchemyError) as exc:
            if self.log is not None:
                self.log.error(f"Recording the failed site data replication failed: {exc}")
            return SiteDataError(text)
        if self.log is not None:
            kept = link.last_success_time
            self.log.warning(
                f"{text}. Keeping the site data last received from {code}"
                + (f" at {kept:%m/%d/%Y %H:%M:%S} UTC" if kept else " (none yet)")
                + f"; failed {link.consecutive_failures} time(s) in a row, will retry in "
                f"{self._delay[code]:.2f} s"
            )
        return SiteDataError(text)
