"""The SMS Provider's routes that follow syncs: how many the site server finished since it
started (a long poll), and one sync as a resource, the one a SyncNow's `Location` names.

- `GET /api/sites/{site}/syncs?after=N&wait=S` → {"completed", "last"}: answers once more
  than N syncs finished (or after S seconds);
- `GET /api/sites/{site}/syncs/{number}?wait=S` → the `number`-th sync since the site server
  started: `requested` (not begun), `running` (with the site's state as the console words
  it) or `done` (with its result); with `wait`, answers when it is done or S seconds passed.
  Numbers count from the site server's start: after a restart they begin again at 1.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from updatesync.security.access import Permission
from updatesync.site.api.auth import require
from updatesync.site.database.site_db import SiteDatabase
from updatesync.vocabulary import CATALOGUE

REQUESTED, RUNNING, DONE = "requested", "running", "done"


class SyncHistory(Protocol):
    """The syncs the site server finished since it started (`SiteRole` keeps them)."""

    def wait_after(self, count: int, timeout: float) -> tuple[int, dict[str, Any] | None]:
        """Wait up to `timeout` s until more than `count` syncs finished; (finished, last)."""
        ...

    def nth(self, number: int) -> dict[str, Any] | None:
        """The `number`-th sync finished since the start (1: the first); None if not yet."""
        ...

    def next_retry_at(self) -> datetime | None:
        """When the site server retries its last sync, which failed; None: none pending."""
        ...


class ProviderState(Protocol):
    """What these routes use of the provider's state (`provider.ProviderState`)."""

    @property
    def db(self) -> SiteDatabase: ...
    @property
    def site_code(self) -> str: ...
    @property
    def sync_history(self) -> SyncHistory | None: ...
    def own_site(self, site: str) -> str:
        """`site` in upper case when it is the provider's site; else 404."""
        ...


def _state(request: Request) -> ProviderState:
    state: ProviderState = request.app.state.provider
    return state


State = Annotated[ProviderState, Depends(_state)]
SiteParam = Annotated[str, Path(description="Site code, e.g. CS1 (case does not matter).")]
Wait = Annotated[float, Query(ge=0, le=60, description="Seconds to wait at most.")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class SyncsView(_Model):
    completed: int = Field(description="Syncs finished since the site server started.")
    last: dict[str, Any] | None = Field(
        description="The last one: succeeded, content_version, items_updated, cis_changed, "
        "seconds, error."
    )


class SyncView(_Model):
    """One sync of the site server, by its number since the start."""

    Number: int = Field(description="1 for the first sync since the site server started.")
    State: str = Field(description="requested (not begun), running, or done.")
    LastSyncState: int | None = Field(description="The site's last status message id now.")
    LastSyncStateDescription: str | None = Field(description="What that state means.")
    Result: dict[str, Any] | None = Field(
        description="When done: succeeded, content_version, items_updated, cis_changed, "
        "seconds, error."
    )


router = APIRouter(tags=["sync"], dependencies=[require(Permission.READ)])


def state_text(state: int | None) -> str | None:
    """What a sync status message id means, as the console says it."""
    if state is None:
        return None
    definition = CATALOGUE.get(state)
    return definition.text if definition is not None else f"Status message {state}"


@router.get(
    "/api/sites/{site}/syncs",
    response_model=SyncsView,
    summary="Syncs finished since the site server started (long poll)",
)
def syncs(
    site: SiteParam,
    provider: State,
    after: Annotated[int, Query(ge=0, description="Answer once more syncs than this.")] = 0,
    wait: Wait = 0,
) -> SyncsView:
    """How many syncs the site server finished since it started, and the last one. With
    `after=N&wait=S` the answer waits (up to S seconds) for the sync after the N-th to
    end: a script follows a sync without polling."""
    provider.own_site(site)
    if provider.sync_history is None:
        return SyncsView(completed=0, last=None)
    completed, last = provider.sync_history.wait_after(after, wait)
    return SyncsView(completed=completed, last=last)


@router.get(
    "/api/sites/{site}/syncs/{number}",
    response_model=SyncView,
    summary="One sync since the site server started, as a SyncNow's Location names it",
)
def sync(
    site: SiteParam,
    number: Annotated[int, Path(ge=1, description="1 for the first sync since the start.")],
    provider: State,
    wait: Wait = 0,
) -> SyncView:
    """The sync's state (requested, running, done) and, when done, its result; with
    `wait=S` the answer waits up to S seconds for it to be done."""
    code = provider.own_site(site)
    history = provider.sync_history
    if history is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"site {code}: this provider follows no sync manager"
        )
    completed, _ = history.wait_after(number - 1, wait)
    sync_status = provider.db.sync.status(site_code=code)
    if completed >= number:
        state, result = DONE, history.nth(number)
    elif completed + 1 == number and sync_status.in_progress:
        state, result = RUNNING, None
    else:
        state, result = REQUESTED, None
    return SyncView(
        Number=number,
        State=state,
        LastSyncState=sync_status.last_sync_state,
        LastSyncStateDescription=state_text(sync_status.last_sync_state),
        Result=result,
    )
