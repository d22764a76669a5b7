"""The site server's view of an update server: its admin API over HTTP.

WSyncMgr drives its WSUS through the WSUS administration API and never opens the WSUS
database; the site server drives an update server the same way: start a sync, follow its
progress (long polls, no sleeping), read its result, read the updates and categories that
changed since the last site-database phase. A replica SUP is asked for a replica's sync,
which also brings its upstream's target groups and deployments ("other items").
"""

from __future__ import annotations

import queue
import ssl
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from updatesync.updateserver.failures import Failure, admin_failure

PREFETCH = 2
"""Pages of updates read ahead of the one being written."""

ProgressReport = Callable[[str, int, int, float | None], None]
"""(phase "categories" | "updates" | "other items", done in the phase, phase total, ETA in
seconds or None)."""


class UpdateServerUnavailable(Exception):
    """The update server did not answer (`error`: the network error), or answered an HTTP
    error (`status`) or something that is not its API."""

    def __init__(
        self,
        url: str,
        cause: str,
        *,
        error: BaseException | None = None,
        status: int | None = None,
    ) -> None:
        self.url = url
        self.cause = cause
        self.error = error
        self.status = status
        super().__init__(f"update server {url}: {cause}")

    @property
    def failure(self) -> Failure:
        """As WSyncMgr writes it."""
        return admin_failure(self.error, self.url, self.status)


class UpdateServerSyncFailed(Exception):
    """The update server ran the sync, and it failed; `error` is its own account for people,
    `failure` the same as ConfigMgr writes it (None from an update server that gives none)."""

    def __init__(self, url: str, error: str, failure: Failure | None = None) -> None:
        self.url = url
        self.error = error
        self.failure = failure
        super().__init__(f"the sync of update server {url} failed: {error}")


class ConfigurationRefused(Exception):
    """The update server refused the configuration asked of it; `error` is its reason."""

    def __init__(self, url: str, error: str) -> None:
        self.url = url
        self.error = error
        super().__init__(f"update server {url} refused the configuration: {error}")


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What the update server reported when its sync ended."""

    result: dict[str, Any]

    @property
    def change_counter(self) -> int:
        """The update server's change counter when its sync ended, from the sync's own
        result (asking `/api/status` would count everything the store holds: a fifth of a
        second at 100k revisions, seconds with a cold cache)."""
        return int(self.result.get("change_after", 0))

    @property
    def changed(self) -> bool:
        return self.change_counter != int(self.result.get("change_before", 0))


class UpdateServerApi:
    """A client of one update server's admin API (`updatesync.updateserver.admin_api`)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
        verify: ssl.SSLContext | bool = True,
        page_size: int | None = None,
    ) -> None:
        """`auth` signs each call (`updatesync.security.signing.HmacAuth`) for an update server
        whose admin API takes only its site server's calls; `verify` checks its certificate
        (the hierarchy's CA). `page_size`: updates asked for per page (None: as many as the
        update server gives, 1000)."""
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, auth=auth, verify=verify
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> UpdateServerApi:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _get(self, path: str, **params: Any) -> Any:
        return self._json(lambda: self._http.get(path, params=params), path)

    def _json(self, send: Callable[[], httpx.Response], path: str) -> Any:
        try:
            answer = send()
        except httpx.HTTPError as exc:
            raise UpdateServerUnavailable(self.base_url, f"{path}: {exc}", error=exc) from exc
        try:
            body = answer.json()
        except ValueError:
            raise UpdateServerUnavailable(
                self.base_url,
                f"{path} answered HTTP {answer.status_code} without JSON",
                status=answer.status_code,
            ) from None
        if answer.status_code >= 400 and answer.status_code != 409:
            message = body.get("error") if isinstance(body, dict) else None
            raise UpdateServerUnavailable(
                self.base_url,
                f"{path} answered HTTP {answer.status_code}: {message or body}",
                status=answer.status_code,
            )
        return body

    def status(self) -> dict[str, Any]:
        return self._get("/api/status")

    def configuration(self) -> dict[str, Any]:
        """What the update server is configured with (`GET /api/configuration`)."""
        return self._get("/api/configuration")

    def configure(
        self, products: Sequence[str], classifications: Sequence[str], languages: Sequence[str]
    ) -> dict[str, Any]:
        """Replace its subscription; its configuration as it then is. ConfigurationRefused
        when it refuses one (a category it does not hold)."""
        body = {
            "products": list(products),
            "classifications": list(classifications),
            "languages": list(languages),
        }
        path = "/api/configuration"
        try:
            answer = self._http.put(path, json=body)
        except httpx.HTTPError as exc:
            raise UpdateServerUnavailable(self.base_url, f"{path}: {exc}", error=exc) from exc
        if answer.status_code == 422:
            try:
                reason = answer.json().get("error")
            except (ValueError, AttributeError):
                reason = None
            raise ConfigurationRefused(self.base_url, str(reason or answer.text[:500]))
        return self._json(lambda: answer, path)

    def synchronize(
        self,
        *,
        full: bool = False,
        replica: bool = False,
        products: Sequence[str] = (),
        classifications: Sequence[str] = (),
        languages: Sequence[str] = (),
        progress: ProgressReport | None = None,
        wait: float = 30.0,
    ) -> SyncOutcome:
        """Start a sync (or join the one running) and follow it to its end. Every change of
        its state is reported through `progress` (phase, done, total, ETA). `replica`: the
        update server syncs as a replica of its upstream (groups and deployments too)."""
        body = {
            "full": full,
            "replica": replica,
            "products": list(products),
            "classifications": list(classifications),
            "languages": list(languages),
        }
        state = self._json(lambda: self._http.post("/api/sync", json=body), "/api/sync")
        if "running" not in state:
            raise UpdateServerUnavailable(self.base_url, f"/api/sync: {state.get('error')}")
        if not state["running"] and state.get("error"):
            # Refused (409) while another process syncs the update server's store: that
            # sync is not this one's to wait for.
            raise UpdateServerSyncFailed(self.base_url, state["error"])
        while state["running"]:
            if progress is not None and state["phase"]:
                progress(
                    state["phase"], state["phase_done"], state["phase_total"], state["eta_seconds"]
                )
            state = self._get("/api/sync", version=state["version"], wait=wait)
        if progress is not None and state["phase"]:
            progress(state["phase"], state["phase_done"], state["phase_total"], None)
        if state["last_error"]:
            raise UpdateServerSyncFailed(
                self.base_url, state["last_error"], Failure.from_json(state.get("last_failure"))
            )
        return SyncOutcome(state["last_result"] or {})

    def changed_updates(
        self,
        since: int,
        *,
        products: Sequence[str] = (),
        classifications: Sequence[str] = (),
        languages: Sequence[str] = (),
    ) -> Generator[dict[str, Any], None, None]:
        """Every subscribed update changed after `since`, as CI fields, page by page (with
        its localized properties in `languages`).

        The next page is asked for while the caller works on this one (a thread of its own,
        at most `PREFETCH` pages ahead), so the update server's reading and the site's
        writing overlap; memory holds a few pages, whatever the catalog's size. An error
        reading a page is raised where that page would have been yielded."""
        pages: queue.Queue[list[dict[str, Any]] | BaseException | None] = queue.Queue(PREFETCH)
        stop = threading.Event()

        def put(value: list[dict[str, Any]] | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    pages.put(value, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def fetch() -> None:
            after: int | None = None
            try:
                while True:
                    params: dict[str, Any] = {
                        "since": since,
                        "product": list(products),
                        "classification": list(classifications),
                        "language": list(languages),
                    }
                    if after is not None:
                        params["after"] = after
                    if self.page_size is not None:
                        params["limit"] = self.page_size
                    page = self._get("/api/updates", **params)
                    if not put(page["items"]):
                        return
                    after = page["next_after"]
                    if after is None:
                        put(None)
                        return
            except BaseException as exc:  # handed to the reader, raised there
                put(exc)

        fetcher = threading.Thread(target=fetch, name="updates-prefetch", daemon=True)
        fetcher.start()
        try:
            while True:
                got = pages.get()
                if got is None:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield from got
        finally:
            stop.set()
            fetcher.join()

    def changed_categories(self, since: int) -> list[dict[str, Any]]:
        return self.category_changes(since)[1]

    def category_changes(self, since: int) -> tuple[int, list[dict[str, Any]]]:
        """(the update server's change counter, read before the categories; the categories
        changed after `since`). Every change after that counter comes in a later call, so
        the site database phase records it as the point it has read up to."""
        answer = self._get("/api/categories", since=since)
        return int(answer["change_counter"]), list(answer["items"])

    def deployments(self, since: int | None = None) -> dict[str, Any]:
        """The target groups with their deployment counts and the totals; with `since`,
        also the deployments written after that deployment counter value (`items`)."""
        if since is None:
            return self._get("/api/deployments")
        return self._get("/api/deployments", since=since)
