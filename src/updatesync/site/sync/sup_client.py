"""The site server's view of an update server: its admin API over HTTP.

WSyncMgr drives its WSUS through the WSUS administration API and never opens the WSUS
database; the site server drives an update server the same way: start a sync, follow its
progress (long polls, no sleeping), read its result, read the updates and categories that
changed since the last site-database phase. A replica SUP is asked for a replica's sync,
which also brings its upstream's target groups and deployments ("other items").
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

ProgressReport = Callable[[str, int, int, float | None], None]
"""(phase "categories" | "updates" | "other items", done in the phase, phase total, ETA in
seconds or None)."""


class UpdateServerUnavailable(Exception):
    """The update server did not answer, or answered something that is not its API."""

    def __init__(self, url: str, cause: str) -> None:
        self.url = url
        self.cause = cause
        super().__init__(f"update server {url}: {cause}")


class UpdateServerSyncFailed(Exception):
    """The update server ran the sync, and it failed; `error` is its own account."""

    def __init__(self, url: str, error: str) -> None:
        self.url = url
        self.error = error
        super().__init__(f"the sync of update server {url} failed: {error}")


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What the update server reported when its sync ended."""

    result: dict[str, Any]
    change_counter: int

    @property
    def changed(self) -> bool:
        return int(self.result.get("change_after", 0)) != int(self.result.get("change_before", 0))


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
    ) -> None:
        """`auth` signs each call (`updatesync.security.signing.HmacAuth`) for an update server
        whose admin API takes only its site server's calls; `verify` checks its certificate
        (the hierarchy's CA)."""
        self.base_url = base_url.rstrip("/")
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
            raise UpdateServerUnavailable(self.base_url, f"{path}: {exc}") from exc
        try:
            body = answer.json()
        except ValueError:
            raise UpdateServerUnavailable(
                self.base_url, f"{path} answered HTTP {answer.status_code} without JSON"
            ) from None
        if answer.status_code >= 400 and answer.status_code != 409:
            message = body.get("error") if isinstance(body, dict) else None
            raise UpdateServerUnavailable(
                self.base_url, f"{path} answered HTTP {answer.status_code}: {message or body}"
            )
        return body

    def status(self) -> dict[str, Any]:
        return self._get("/api/status")

    def change_counter(self) -> int:
        return int(self.status()["last_change"])

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
            raise UpdateServerSyncFailed(self.base_url, state["last_error"])
        return SyncOutcome(state["last_result"] or {}, self.change_counter())

    def changed_updates(
        self,
        since: int,
        *,
        products: Sequence[str] = (),
        classifications: Sequence[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """Every subscribed update changed after `since`, as CI fields, page by page."""
        after: int | None = None
        while True:
            params: dict[str, Any] = {
                "since": since,
                "product": list(products),
                "classification": list(classifications),
            }
            if after is not None:
                params["after"] = after
            page = self._get("/api/updates", **params)
            yield from page["items"]
            after = page["next_after"]
            if after is None:
                return

    def changed_categories(self, since: int) -> list[dict[str, Any]]:
        return list(self._get("/api/categories", since=since)["items"])

    def deployments(self, since: int | None = None) -> dict[str, Any]:
        """The target groups with their deployment counts and the totals; with `since`,
        also the deployments written after that deployment counter value (`items`)."""
        if since is None:
            return self._get("/api/deployments")
        return self._get("/api/deployments", since=since)
