"""`updatesync sync-now`: ask a site to synchronize software updates now
(SMS_SoftwareUpdate::SyncNow), and with `--wait` follow that sync to its end.

`--wait` follows the sync resource the provider's 202 names in `Location`
(`/api/sites/{site}/syncs/{number}`: the sync that serves this request, the next one or,
when a sync is under way, the one after it), long-polling it until it is `done`. Meanwhile
it shows the site's state (6701 .. 6706, the console's words) on standard error. It prints
the result
(`--json`: an object with named fields) and exits 0 when the sync succeeded, 3
(`exits.SYNC_FAILED`) when it failed, 1 when it did not end within `--timeout` or the
provider cannot be asked.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from updatesync.cli import exits
from updatesync.cli.output import console, err_console, error, say
from updatesync.cli.users import (
    CaOption,
    ProviderEndpoint,
    TokenFileOption,
    provider_call,
    provider_exchange,
    provider_url,
    resolve_token,
)

PROVIDER = "http://127.0.0.1:8080"
"""`sync-now`'s provider when neither --provider nor --hierarchy is given."""
POLL_SECONDS = 20.0
"""How long one long poll of `syncs` waits at most (the provider allows 60)."""


def sync_now(
    site: Annotated[str, typer.Option(help="The site to synchronize, e.g. CS1.")],
    full: Annotated[bool, typer.Option("--full", help="A full sync (FULL.SYN).")] = False,
    provider: Annotated[str, typer.Option(help="The site's SMS Provider address.")] = PROVIDER,
    hierarchy: Annotated[
        Path | None,
        typer.Option(help="Find the site's provider in this hierarchy file (its address, port)."),
    ] = None,
    ca: CaOption = None,
    token_file: TokenFileOption = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Follow the sync to its end and exit with its result (0 succeeded, 3 failed).",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="With --wait: seconds to wait for the sync's end.", min=1)
    ] = 3600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Ask a site to synchronize software updates now (SMS_SoftwareUpdate::SyncNow); needs
    a token of a Software Update Manager or a Full Administrator."""
    code = site.strip().upper()
    endpoint = provider_url(hierarchy, provider, site, ca=ca)
    token = resolve_token(token_file, hierarchy)
    base = f"/api/sites/{code}"
    state, headers = provider_exchange(
        endpoint,
        "POST",
        f"{base}/sync",
        token,
        json={"full": True} if full else None,
        expect=(202,),
    )
    kind = "full" if full else "delta"
    if not wait:
        if as_json:
            console.print_json(
                json.dumps({"site": code, "requested": kind, "pending": state.get("SyncNow")})
            )
            return
        say(
            f"sync requested at {code} ({kind}); pending request: {state.get('SyncNow')}; last "
            f"state: {state.get('LastSyncState')}"
        )
        return
    location = headers.get("location")
    if not location or not location.startswith(f"{base}/syncs/"):
        error(
            f"the SMS Provider of {code} did not say which sync serves the request (no Location "
            "in its answer): it is older than this command; follow the sync with "
            f"`updatesync logs track` on {code}'s logs"
        )
        raise typer.Exit(exits.FAILED)
    last = _follow(endpoint, token, code, location, timeout)
    if last is None:
        error(
            f"the sync at {code} did not end within {timeout:g} s; it goes on (see "
            f"`updatesync logs track` on {code}'s logs, or ask again with --wait)"
        )
        raise typer.Exit(exits.FAILED)
    status = provider_call(endpoint, "GET", f"{base}/sync-status", token)
    result = _result(code, kind, last, status)
    if as_json:
        console.print_json(json.dumps(result))
    elif result["succeeded"]:
        say(
            f"sync at {code} succeeded: content version {result['content_version']}, "
            f"{result['items_updated']:,} items updated, {result['cis_changed']:,} CIs "
            f"changed ({result['seconds']:.1f} s)"
        )
    else:
        error(f"sync at {code} failed: {result['error']}")
    raise typer.Exit(exits.DONE if result["succeeded"] else exits.SYNC_FAILED)


def _follow(
    endpoint: ProviderEndpoint, token: str | None, code: str, location: str, timeout: float
) -> dict[str, Any] | None:
    """Long-poll the sync resource at `location` until it is done; its result, or None on
    timeout. The site's state is shown on standard error meanwhile."""
    deadline = time.monotonic() + timeout
    with err_console.status(f"waiting for the sync at {code}") as shown:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            wait = min(POLL_SECONDS, left)
            answer = provider_call(
                endpoint, "GET", location, token, params={"wait": round(wait, 1)}, timeout=wait + 30
            )
            if answer["State"] == "done":
                result: dict[str, Any] | None = answer["Result"]
                return result
            if answer["State"] == "running":
                described = answer.get("LastSyncStateDescription") or "running"
            else:
                described = "waiting for the sync to start"
            shown.update(f"{code}: {described}")


def _result(
    code: str, kind: str, last: dict[str, Any] | None, status: dict[str, Any]
) -> dict[str, Any]:
    last = last or {}
    return {
        "site": code,
        "requested": kind,
        "succeeded": bool(last.get("succeeded")),
        "content_version": last.get("content_version"),
        "items_updated": last.get("items_updated"),
        "cis_changed": last.get("cis_changed"),
        "seconds": last.get("seconds"),
        "error": last.get("error"),
        "last_state": status.get("LastSyncState"),
        "last_state_description": status.get("LastSyncStateDescription"),
        "last_error_code": status.get("LastErrorCode"),
    }
