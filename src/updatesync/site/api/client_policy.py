"""The site-wide policy that tells client computers where the site's SUPs are.

After each successful sync a primary or secondary site publishes, in its site database, the
locations of its software update points (intranet URL, and the Internet URL of an
Internet-facing SUP) with the update source's unique id and the content version the sync
reached (SPEC section 3.7). Clients read it at `GET /policy/v1/software-update-points`.

As ConfigMgr's management point does, the answer lists no location when the published
policy and the site's update source disagree (another update source, or another content
version than the site database now holds): a client must not scan against an update server
whose catalog is not the one the site's configuration items describe. The answer then says
why, so an administrator who reads it knows what to fix (run a sync).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from updatesync.config import Site
from updatesync.site.database.models import MICROSOFT_UPDATE
from updatesync.site.database.site_db import SiteDatabase

POLICY_PATH = "/policy/v1/software-update-points"


def publish_policy(
    db: SiteDatabase, *, source_id: str = MICROSOFT_UPDATE, at: datetime | None = None
) -> None:
    """Publish the locations of the SUPs of the site control file with the update source's
    current content version."""
    db.sups.publish_client_policy(
        update_source_id=source_id,
        content_version=db.content.version(source_id),
        published_at=at or datetime.now(UTC),
    )


def current_policy(db: SiteDatabase, site_code: str) -> dict[str, Any]:
    """The policy as a client gets it: locations only when policy and site tables agree."""
    policy = db.sups.client_policy()
    if policy is None:
        return {
            "site_code": site_code,
            "update_source_id": None,
            "content_version": None,
            "locations": [],
            "reason": f"site {site_code} has not completed a sync yet; no policy is published",
        }
    answer: dict[str, Any] = {
        "site_code": site_code,
        "update_source_id": policy.update_source_id,
        "content_version": policy.content_version,
        "published_at": policy.published_at.isoformat(),
        "locations": list(policy.locations),
    }
    held = {source.unique_id: source.content_version for source in db.content.update_sources()}
    if policy.update_source_id not in held:
        answer["locations"] = []
        answer["reason"] = (
            f"the policy names update source {policy.update_source_id}, which site "
            f"{site_code}'s database does not hold"
        )
    elif held[policy.update_source_id] != policy.content_version:
        answer["locations"] = []
        answer["reason"] = (
            f"the policy was published for content version {policy.content_version} but the "
            f"site database holds version {held[policy.update_source_id]} of update source "
            f"{policy.update_source_id}; the next successful sync publishes it again"
        )
    return answer


def policy_routes(db: SiteDatabase, site: Site) -> list[Route]:
    """`GET /policy/v1/software-update-points` (open to clients; a CAS has none)."""

    def software_update_points(_request: Request) -> JSONResponse:
        if site.type == "cas":
            return JSONResponse(
                {
                    "error": f"site {site.code} is a central administration site: it has no "
                    "clients and publishes no client policy; ask a primary or secondary site"
                },
                status_code=404,
            )
        return JSONResponse(current_policy(db, site.code))

    return [Route(POLICY_PATH, software_update_points, methods=["GET"])]
