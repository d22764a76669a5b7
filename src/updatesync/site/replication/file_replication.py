"""File replication between sites (ConfigMgr's replication manager, `replmgr.box`): the
sending side queues a notification file such as `outbox/CS1.SYN` durably for each child site
and delivers it over signed HTTP; the receiving side drops it, once, into the child's inbox.

Sending (`ReplicationManager`, log `replmgr.log`, component `SMS_REPLICATION_MANAGER`):
`replicate(file, to)` writes one job per destination under `replmgr.box/outbound/<SITE>/`
(a JSON file with the notification id, the file's name and bytes and the sender; written under
a temporary `~` name, fsync'd, renamed into place) and wakes the worker. Each destination has
a worker thread of its own that posts its jobs oldest first to
`POST {base}/site/v1/replication/files/WSyncMgr.box/CS1.SYN?id=<id>&from=CS1` (the query is
covered by the signature, `updatesync.security.signing`) and removes a job only after a 2xx answer.
A destination that is down, answers 5xx, 401 or 429 is retried with exponential back-off
(`retry_initial` doubling up to `retry_max`, each wait drawn at random below its step:
`retry_policy.FILE_REPLICATION`), without holding up the others; any other 4xx
rejects the job for good: it moves to `replmgr.box/failed/<SITE>/` beside a `.reason` file.
Jobs left by a stopped or crashed manager are delivered after the next `start()`.

Receiving (`file_receiver_routes`, mounted behind `require_signature`): known boxes only
(`WSyncMgr.box`) and names `<three letters or digits>.SYN`; anything else is answered 400.
A notification id already in the ledger (`replmgr.box/received/`, one marker file per id,
pruned to `KEEP_DAYS` days and `KEEP_IDS` ids) is acknowledged as a duplicate and not dropped
again, so a delivery repeated because its answer was lost never causes a second sync, even
when the child has consumed the first drop.

Drop first, then record. If the receiver dies between the two, the sender got no answer and
sends again; the id is not in the ledger, so the file is dropped again: harmless if the first
drop is still waiting (`Inbox.drop` of a request already there changes nothing), and at worst
one extra sync if the child already consumed it. The other order could lose a notification for
good: the id recorded, the file never dropped, and every retry acknowledged as a duplicate.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import random
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.retry_policy import FILE_REPLICATION
from updatesync.security.private_files import private_dir
from updatesync.site.sync.inbox import Inbox, InboxError

BOX = "WSyncMgr.box"
KNOWN_BOXES = (BOX,)
ROUTE = "/site/v1/replication/files"
MAX_FILE_BYTES = 64 * 1024
"""Notification files are tiny (ConfigMgr's are empty); anything bigger is refused."""
KEEP_DAYS = 30
KEEP_IDS = 10_000

_SITE = re.compile(r"[A-Z0-9]{3}")
_NAME = re.compile(r"([A-Z0-9]{3})\.SYN")
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_JOB = re.compile(r"(\d{12})-[A-Za-z0-9_-]+\.job")
ALLOWED = f"a file named <SITE>.SYN (three letters or digits, e.g. CS1.SYN) in {BOX}"
_logger = logging.getLogger(__name__)


class FileReplicationError(Exception):
    """A file could not be queued for replication; the message says what, where, what to do."""


def normal_site_code(value: object, where: str) -> str:
    """`value` as an upper-case site code (three letters or digits), or FileReplicationError."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if not _SITE.fullmatch(code):
        raise FileReplicationError(
            f"{where}: {value!r} is not a site code; a site code is three letters or digits "
            "(e.g. PS1), as named in the hierarchy file"
        )
    return code


def notification_name(name: str) -> str | None:
    """`name` in upper case when it is a notification file name (`CS1.SYN`), else None."""
    upper = name.upper()
    return upper if _NAME.fullmatch(upper) else None


def _fsync_dir(path: Path) -> None:
    if os.name == "posix":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_durably(target: Path, data: bytes) -> None:
    """Write `data` to `target` through a `~` temporary file, fsync'd and renamed into place."""
    temp = target.with_name(f"~{target.name}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    _fsync_dir(target.parent)


@dataclass(frozen=True)
class Job:
    """One file waiting for one destination site."""

    path: Path
    id: str
    name: str
    sender: str
    box: str
    content: bytes

    @classmethod
    def read(cls, path: Path) -> Job:
        record = json.loads(path.read_bytes())
        return cls(
            path,
            str(record["id"]),
            str(record["name"]),
            str(record["from"]),
            str(record["box"]),
            base64.b64decode(record["content"]),
        )


def jobs_in(folder: Path) -> list[Path]:
    """The job files of one destination, oldest first (temporary `~` files skipped)."""
    try:
        names = [e.name for e in os.scandir(folder) if _JOB.fullmatch(e.name)]
    except FileNotFoundError:
        return []
    return [folder / name for name in sorted(names)]


class ReplicationManager:
    """The replication manager of site `site_code`, working in `box` (`inboxes/replmgr.box`).

    `resolve(site)` gives the base URL of a site's site-server endpoint (asked before each
    attempt, so a changed address is picked up); `auth` signs each request (`HmacAuth`).
    Without `log`, lines go to Python `logging`. Use `with manager:` or `start()`/`stop()`.
    """

    def __init__(
        self,
        box: Path,
        site_code: str,
        *,
        resolve: Callable[[str], str],
        auth: httpx.Auth,
        log: CMTraceLog | None = None,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        timeout: float = 30.0,
        verify: ssl.SSLContext | bool = True,
        rng: random.Random | None = None,
    ) -> None:
        """`verify`: what each child's certificate is verified with (the hierarchy's CA);
        `rng`: the random source of the back-off's jitter (None: the process's own)."""
        if not 0 < retry_initial <= retry_max or timeout <= 0:
            raise ValueError(
                f"replication manager in {box}: need 0 < retry_initial <= retry_max and "
                f"timeout > 0, got {retry_initial}, {retry_max}, {timeout}"
            )
        self.box = Path(box).absolute()
        self.site_code = normal_site_code(site_code, f"replication manager in {self.box}")
        self.outbound = self.box / "outbound"
        self.failed = self.box / "failed"
        private_dir(self.outbound)
        self.resolve = resolve
        self.auth = auth
        self.verify = verify
        self.log = log
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.retry_policy = FILE_REPLICATION.scaled(retry_initial, retry_max)
        self._rng = rng
        self.timeout = timeout
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._stopping: threading.Event | None = None  # one per start(); None when stopped
        self._workers: dict[str, tuple[threading.Event, threading.Thread]] = {}

    # -- queueing --------------------------------------------------------------------------

    def replicate(self, file: Path, to: Sequence[str]) -> str:
        """Queue `file` (e.g. `outbox/CS1.SYN`) for each site of `to` and return the
        notification id. The source file is left where it is."""
        where = f"replicate {file}"
        if isinstance(to, str):
            raise FileReplicationError(f"{where}: give the destinations as a list, e.g. ['PS1']")
        sites = list(dict.fromkeys(normal_site_code(s, where) for s in to))
        if not sites:
            raise FileReplicationError(f"{where}: no destination site given (e.g. ['PS1', 'PS2'])")
        if self.site_code in sites:
            raise FileReplicationError(f"{where}: site {self.site_code} cannot replicate to itself")
        name = notification_name(Path(file).name)
        if name is None:
            raise FileReplicationError(f"{where}: only {ALLOWED} can be replicated")
        try:
            content = Path(file).read_bytes()
        except OSError as exc:
            raise FileReplicationError(f"{where}: cannot read it: {exc}") from exc
        if len(content) > MAX_FILE_BYTES:
            raise FileReplicationError(f"{where}: {len(content)} bytes, over {MAX_FILE_BYTES}")
        nid = uuid.uuid4().hex
        record = {"id": nid, "name": name, "from": self.site_code, "box": BOX}
        record["queued_at"] = datetime.now(UTC).isoformat()
        record["content"] = base64.b64encode(content).decode("ascii")
        data = json.dumps(record).encode("utf-8")
        queued: list[str] = []
        with self._lock:
            for site in sites:
                folder = self.outbound / site
                try:
                    private_dir(folder)
                    jobs = jobs_in(folder)
                    seq = int(jobs[-1].name.partition("-")[0]) + 1 if jobs else 1
                    write_durably(folder / f"{seq:012d}-{nid}.job", data)
                except OSError as exc:
                    raise FileReplicationError(
                        f"{where}: cannot queue it for site {site} in {folder}: {exc}; fix "
                        f"that and call again; sites already queued ({', '.join(queued)}) "
                        "will be delivered"
                    ) from exc
                queued.append(site)
        self._say(
            logging.INFO,
            f"Replicating {file} to ({', '.join(sites)}): queued as notification {nid} "
            f"in {self.outbound}",
        )
        for site in sites:
            self._wake(site)
        return nid

    def pending(self, site: str | None = None) -> dict[str, int]:
        """Jobs waiting, per destination site (only `site` when given)."""
        if site is not None:
            code = normal_site_code(site, "pending")
            return {code: len(jobs_in(self.outbound / code))}
        counts: dict[str, int] = {}
        for folder in sorted(self.outbound.iterdir()):
            if _SITE.fullmatch(folder.name) and (count := len(jobs_in(folder))):
                counts[folder.name] = count
        return counts

    def wait_delivered(self, timeout: float | None = None, *, site: str | None = None) -> bool:
        """Wait until no job is pending (for `site` only, when given); False when `timeout`
        passed first. A job rejected for good counts as no longer pending."""
        with self._changed:
            return self._changed.wait_for(lambda: not any(self.pending(site).values()), timeout)

    # -- the workers -----------------------------------------------------------------------

    def start(self) -> ReplicationManager:
        with self._lock:
            if self._stopping is not None:
                raise RuntimeError(f"replication manager in {self.box} is already started")
            self._stopping = threading.Event()
            for temp in self.outbound.glob("*/~*"):  # a replicate() that died mid-write
                temp.unlink(missing_ok=True)
        waiting = self.pending()
        if waiting:
            listed = ", ".join(f"{site} ({n})" for site, n in waiting.items())
            self._say(logging.INFO, f"Started with jobs waiting from before for {listed}")
        for site in waiting:
            self._wake(site)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the workers; a delivery in flight finishes first (at most `timeout` s)."""
        with self._lock:
            if self._stopping is not None:
                self._stopping.set()
            self._stopping = None
            workers = list(self._workers.values())
            self._workers.clear()
        for wake, _ in workers:
            wake.set()
        for _, thread in workers:
            thread.join(timeout)

    def poke(self) -> None:
        """Try every waiting destination now, without waiting out its back-off."""
        with self._lock:
            wakes = [wake for wake, _ in self._workers.values()]
        for wake in wakes:
            wake.set()

    def __enter__(self) -> ReplicationManager:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wake(self, site: str) -> None:
        with self._lock:
            if self._stopping is None:
                return
            if site not in self._workers:
                wake = threading.Event()
                thread = threading.Thread(
                    target=self._run,
                    args=(site, wake, self._stopping),
                    name=f"replmgr {self.site_code}->{site}",
                    daemon=True,
                )
                self._workers[site] = (wake, thread)
                thread.start()
            self._workers[site][0].set()

    def _run(self, site: str, wake: threading.Event, stopping: threading.Event) -> None:
        failures = 0
        with httpx.Client(auth=self.auth, timeout=self.timeout, verify=self.verify) as client:
            while not stopping.is_set():
                wake.clear()
                folder = self.outbound / site
                delay: float | None = None
                try:
                    jobs = jobs_in(folder)
                    if not jobs:
                        wake.wait()
                        continue
                    # Drawn before the attempt, so its log line states the wait used.
                    delay = self.retry_policy.next_delay(failures + 1, self._rng)
                    retry_in = self._deliver(client, site, jobs[0], delay)
                except Exception as exc:  # keep the worker alive; say what happened
                    if delay is None:
                        delay = self.retry_policy.next_delay(failures + 1, self._rng)
                    self._say(
                        logging.ERROR,
                        f"Delivering from {folder} to site {site} failed: {exc!r}; "
                        f"retrying in {delay:g} s",
                    )
                    retry_in = delay
                if retry_in is None:
                    failures = 0
                else:
                    failures += 1
                    wake.wait(retry_in)

    def _deliver(self, client: httpx.Client, site: str, path: Path, delay: float) -> float | None:
        """One attempt at the oldest job: None when it is done with, else seconds to wait."""
        try:
            job = Job.read(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._reject(site, path, None, f"the job file cannot be read ({exc})")
            return None
        try:
            url = f"{self.resolve(site).rstrip('/')}{ROUTE}/{job.box}/{job.name}"
        except Exception as exc:
            self._say(
                logging.ERROR,
                f"Cannot find the address of site {site}: {exc}; retrying in {delay:g} s",
            )
            return delay
        try:
            answer = client.post(
                url, params={"id": job.id, "from": job.sender}, content=job.content
            )
        except httpx.HTTPError as exc:
            why = str(exc) or type(exc).__name__
            self._say(
                logging.WARNING, f"site {site} unreachable at {url}: {why}; retrying in {delay:g} s"
            )
            return delay
        status, reason = answer.status_code, _reason(answer)
        if answer.is_success:
            path.unlink(missing_ok=True)
            _fsync_dir(path.parent)
            self._changed_now()
            known = ", which it already had" if _json(answer).get("duplicate") is True else ""
            self._say(
                logging.INFO,
                f"Delivered {job.name} to site {site} at {url} (notification {job.id}{known})",
            )
            return None
        if status == 401:
            self._say(
                logging.ERROR,
                f"site {site} at {url} refused our signature: {reason}; check that both sites "
                f"hold the same shared secret and that their clocks agree; retrying in {delay:g} s",
            )
            return delay
        if status == 429:
            wait = _retry_after(answer, delay, self.retry_max)
            self._say(
                logging.WARNING, f"site {site} at {url} is busy (429); retrying in {wait:g} s"
            )
            return wait
        if 400 <= status < 500:
            self._reject(site, path, job, f"site {site} at {url} answered {status}: {reason}")
            return None
        self._say(
            logging.WARNING,
            f"site {site} at {url} answered {status}: {reason}; retrying in {delay:g} s",
        )
        return delay

    def _reject(self, site: str, path: Path, job: Job | None, why: str) -> None:
        folder = self.failed / site
        private_dir(folder)
        target = folder / path.name
        os.replace(path, target)
        write_durably(folder / f"{path.name}.reason", (why + "\n").encode("utf-8"))
        self._changed_now()
        what = f"{job.name} (notification {job.id})" if job else path.name
        self._say(
            logging.ERROR,
            f"Rejected {what} for site {site}: {why}. The job is kept as {target}; to send it "
            f"again, fix the cause and move it back to {self.outbound / site}: it goes with "
            "the next file for that site or at the next start of the replication manager",
        )

    def _changed_now(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _say(self, level: int, message: str) -> None:
        if self.log is None:
            _logger.log(level, "%s", message)
        elif level >= logging.ERROR:
            self.log.error(message)
        elif level >= logging.WARNING:
            self.log.warning(message)
        else:
            self.log.info(message)


def _json(answer: httpx.Response) -> dict[str, object]:
    try:
        value = answer.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _reason(answer: httpx.Response) -> str:
    error = _json(answer).get("error")
    return str(error) if error else (answer.text[:200].strip() or answer.reason_phrase)


def _retry_after(answer: httpx.Response, delay: float, most: float) -> float:
    try:
        asked = float(answer.headers.get("retry-after", ""))
    except ValueError:
        asked = 0.0
    return min(max(delay, asked), most)


class ReceivedLedger:
    """The notification ids a site has received: one marker file per id in `path`, written
    durably; `prune()` keeps those younger than `keep_days` days and at most `keep` of them
    (the newest). `record()` prunes every `prune_every` records."""

    def __init__(
        self,
        path: Path,
        *,
        keep_days: float = KEEP_DAYS,
        keep: int = KEEP_IDS,
        prune_every: int = 100,
    ) -> None:
        self.path = Path(path).absolute()
        private_dir(self.path)
        self.keep_days, self.keep, self.prune_every = keep_days, keep, prune_every
        self._since_prune = prune_every  # prune on the first record

    def has(self, nid: str) -> bool:
        return (self.path / nid).exists()

    def record(self, nid: str, sender: str, name: str) -> None:
        note = {"from": sender, "name": name, "received_at": datetime.now(UTC).isoformat()}
        write_durably(self.path / nid, json.dumps(note).encode("utf-8"))
        self._since_prune += 1
        if self._since_prune >= self.prune_every:
            self.prune()

    def prune(self, now: float | None = None) -> int:
        """Remove ids past their age or beyond the count; return how many were removed."""
        oldest = (time.time() if now is None else now) - self.keep_days * 86400
        marks = []
        for entry in os.scandir(self.path):
            if _ID.fullmatch(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    marks.append((entry.stat().st_mtime, entry.name))
        marks.sort(reverse=True)
        drop = [name for n, (mtime, name) in enumerate(marks) if n >= self.keep or mtime < oldest]
        for name in drop:
            (self.path / name).unlink(missing_ok=True)
        self._since_prune = 0
        return len(drop)


def file_receiver_routes(
    inboxes: Path,
    site_code: str,
    *,
    ledger: Path | None = None,
    on_received: Callable[[str, str], None] | None = None,
    log: CMTraceLog | None = None,
) -> list[Route]:
    """The route that receives replicated files into `inboxes/<box>` of site `site_code`;
    mount it behind `require_signature`. `on_received(sender, name)` follows each new drop."""
    inboxes = Path(inboxes).absolute()
    own = normal_site_code(site_code, f"file receiver in {inboxes}")
    ids = ReceivedLedger(ledger if ledger is not None else inboxes / "replmgr.box" / "received")
    boxes = {box.lower(): box for box in KNOWN_BOXES}
    lock = threading.Lock()

    def say(level: int, message: str) -> None:
        if log is None:
            _logger.log(level, "%s", message)
        else:
            (log.error if level >= logging.ERROR else log.info)(message)

    def refuse(status: int, why: str) -> JSONResponse:
        return JSONResponse({"error": why}, status_code=status)

    def receive(box: str, name: str, nid: str, sender: str) -> JSONResponse:
        answer = {"received": True, "box": box, "name": name, "id": nid}
        with lock:
            if ids.has(nid):
                say(logging.INFO, f"{name} from site {sender} (notification {nid}): duplicate")
                return JSONResponse({**answer, "duplicate": True})
            try:
                dropped = Inbox(inboxes / box).drop(name[:3])
                ids.record(nid, sender, name)
            except (InboxError, OSError) as exc:
                say(logging.ERROR, f"Receiving {name} from site {sender} into {box}: {exc}")
                return refuse(500, f"site {own} could not take {name}: {exc}; send it again")
        say(logging.INFO, f"Received {name} from site {sender} (notification {nid}): {dropped}")
        if on_received is not None:
            try:
                on_received(sender, name)
            except Exception as exc:
                say(logging.ERROR, f"After receiving {name} from site {sender}: {exc!r}")
        return JSONResponse({**answer, "duplicate": False})

    async def endpoint(request: Request) -> JSONResponse:
        parts = request.path_params["rest"].split("/")
        box = boxes.get(parts[0].lower()) if len(parts) == 2 else None
        name = notification_name(parts[1]) if box is not None else None
        if box is None or name is None:
            return refuse(400, f"{ALLOWED} is accepted here, not {request.path_params['rest']!r}")
        if name[:3] == own:
            return refuse(400, f"site {own} does not receive its own notification {name}")
        nid = request.query_params.get("id", "")
        if not _ID.fullmatch(nid):
            return refuse(400, "give the notification id as ?id= (8-64 letters, digits, - or _)")
        sender = request.query_params.get("from") or request.scope.get("updatesync.caller", "")
        if not _SITE.fullmatch(str(sender).upper()):
            return refuse(400, f"give the sending site's code as ?from=<SITE>, not {sender!r}")
        body = await request.body()
        if len(body) > MAX_FILE_BYTES:
            return refuse(413, f"{name} has {len(body)} bytes; at most {MAX_FILE_BYTES}")
        return await run_in_threadpool(receive, box, name, nid, str(sender).upper())

    return [Route(ROUTE + "/{rest:path}", endpoint, methods=["POST"])]
