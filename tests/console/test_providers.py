"""The console's reads of the providers: a status message page gives its messages, and an
alert that a parent holds as replicated site data and its own site answers live is shown
once, as its own site says it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from updatesync.config import load_hierarchy
from updatesync.console.providers import Providers
from updatesync.demo import example_hierarchy

RAISED = {
    "AlertID": 3,
    "AlertType": "sync_failure",
    "SiteCode": "PS1",
    "Instance": "PS1SITE.CONTOSO.COM",
    "State": "raised",
    "RaisedAt": "2026-12-05T01:00:00Z",
    "CanceledAt": None,
    "Name": "Synchronization failure alert for software update point: PS1SITE.CONTOSO.COM",
}


def _answers(request: httpx.Request) -> httpx.Response:
    at_cas = str(request.url).startswith(hierarchy.site("CS1").url.rstrip("/") + "/")
    body: Any
    if request.url.path == "/api/alerts":
        body = (
            [RAISED | {"AsOf": "2026-12-05T01:00:01Z", "Stale": True}]
            if at_cas
            else [RAISED | {"State": "canceled", "CanceledAt": "2026-12-05T01:05:00Z"}]
        )
    else:
        body = {"count": 0, "value": [], "next": None}
    return httpx.Response(200, json=body)


hierarchy = load_hierarchy(example_hierarchy())


def test_the_sites_own_answer_wins_over_a_replicated_copy() -> None:
    async def read() -> Any:
        async with Providers(hierarchy, transport=httpx.MockTransport(_answers)) as providers:
            return await providers.alerts([]), await providers.status_messages([])

    alerts, messages = asyncio.run(read())

    assert [(a["SiteCode"], a["State"]) for a in alerts.items] == [("PS1", "canceled")]
    assert (messages.items, messages.down) == ([], [])
