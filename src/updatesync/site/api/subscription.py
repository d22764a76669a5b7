"""The SMS Provider's routes for the software update point's subscription: the products,
classifications and languages the site's SUPs sync (ConfigMgr's Software Update Point
Component properties, kept in CI_UpdateCategorySubscription).

Criteria are set at the top-level site and inherited below: a child site's provider shows
its subscription and refuses a change with 409, naming the top-level site; database
replication carries the top-level site's subscription to every child. A change raises the
subscription's version; the database monitor drops `<version>.CSB` into WSUSMgr.box, which
wakes the WSUS configuration manager to set it on every SUP of the site (WCM.log).

- `GET /api/sites/{site}/subscription` → the subscription, its version and when it changed
  (Read-only Analyst and above);
- `PUT /api/sites/{site}/subscription` {"products", "classifications", "languages"} → 200
  with what is stored now (Full Administrator; top-level site only). Ids are category GUIDs;
  once the site holds categories (after its first sync), an id it does not hold, or one of
  the wrong kind, is refused with 422 naming it, as the console offers only the categories
  the site synced. The same lists again change nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from updatesync.config.values import category_id, language_code
from updatesync.security.access import Permission
from updatesync.site.api.auth import require
from updatesync.site.api.users import Administrator, ProviderState, State
from updatesync.site.database.models import WsusSubscription
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError

PRODUCT_TYPES = ("Company", "ProductFamily", "Product")
"""Category types a subscription's products may name (WSUS subscribes product families and
companies too)."""
CLASSIFICATION_TYPES = ("UpdateClassification",)
MAX_IDS = 2000
"""Ids in one list at most (a real catalog has fewer than 500 products)."""


SiteParam = Annotated[str, Path(description="The site code, e.g. CS1.")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _unique(values: list[str], normal: Any, name: str) -> list[str]:
    if len(values) > MAX_IDS:
        raise ValueError(f"{len(values)} {name}: give at most {MAX_IDS}")
    out: list[str] = []
    for value in values:
        item = normal(value.strip())
        if item in out:
            raise ValueError(f"{item} is listed twice")
        out.append(item)
    return out


class SubscriptionRequest(_Model):
    """The products, classifications and languages the site's SUPs are to sync."""

    products: list[str] = Field(
        max_length=MAX_IDS,
        description="Product (or product family) category ids, such as "
        "a105a108-7c9b-4518-bbbe-73f0fe30012b; none means every product.",
    )
    classifications: list[str] = Field(
        max_length=MAX_IDS,
        description="Update classification ids, such as 0fa1201d-4330-4fa8-8ae9-b877473b6441 "
        "(Security Updates); none means every classification.",
    )
    languages: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Language codes such as en, de, zh-cn; none means every language.",
    )

    @field_validator("products", "classifications")
    @classmethod
    def _ids(cls, values: list[str]) -> list[str]:
        return _unique(values, category_id, "ids")

    @field_validator("languages")
    @classmethod
    def _languages(cls, values: list[str]) -> list[str]:
        return _unique(values, language_code, "languages")


class SubscriptionView(_Model):
    """A site's subscription (CI_UpdateCategorySubscription)."""

    SiteCode: str = Field(description="The site, e.g. CS1.")
    Products: list[str] = Field(description="Product category ids; empty: every product.")
    Classifications: list[str] = Field(
        description="Update classification ids; empty: every classification."
    )
    Languages: list[str] = Field(description="Language codes; empty: every language.")
    Version: int = Field(description="Rises with every change; 0 when none was ever stored.")
    ChangedAt: datetime | None = Field(description="When it last changed.")
    SetAt: str = Field(
        description="The site where it is set: this site at the top-level site, else the "
        "top-level site it is inherited from (by database replication)."
    )


router = APIRouter(tags=["software update point"])


def _view(provider: ProviderState, held: WsusSubscription) -> SubscriptionView:
    return SubscriptionView(
        SiteCode=provider.site_code,
        Products=list(held.products),
        Classifications=list(held.classifications),
        Languages=list(held.languages),
        Version=held.version,
        ChangedAt=held.changed_at,
        SetAt=provider.site_code
        if provider.parent_site is None
        else "the top-level site, through " + provider.parent_site,
    )


@router.get(
    "/api/sites/{site}/subscription",
    response_model=SubscriptionView,
    summary="The products, classifications and languages the site's SUPs sync",
    dependencies=[require(Permission.READ)],
)
def get_subscription(site: SiteParam, provider: State) -> SubscriptionView:
    """The site's subscription as its WSUS configuration manager sets it on its SUPs."""
    provider.own_site(site)
    return _view(provider, provider.db.wsus.subscription())


@router.put(
    "/api/sites/{site}/subscription",
    response_model=SubscriptionView,
    summary="Set the products, classifications and languages to sync (top-level site)",
)
def put_subscription(
    site: SiteParam, body: SubscriptionRequest, provider: State, who: Administrator
) -> SubscriptionView:
    """Set the subscription of the hierarchy at its top-level site; every child inherits
    it by database replication, and each site's WSUS configuration manager sets it on its
    SUPs (WCM.log)."""
    code = provider.own_site(site)
    if provider.parent_site is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"site {code} inherits its products, classifications and languages from its "
            f"parent {provider.parent_site}: set them at the top-level site's SMS Provider",
        )
    _check_known(provider.db, body)
    try:
        held = provider.db.wsus.set_subscription(
            tuple(body.products), tuple(body.classifications), tuple(body.languages)
        )
    except SiteDatabaseError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    provider.log.info(
        f"User {who.user} set the subscription of site {code} (version {held.version}): "
        f"{len(held.products)} products, {len(held.classifications)} classifications, "
        f"languages {', '.join(held.languages) or 'all'}"
    )
    return _view(provider, held)


def _check_known(db: SiteDatabase, body: SubscriptionRequest) -> None:
    """Once the site holds categories, every id names one of the right kind."""
    kinds = {c.category_id.lower(): c.category_type for c in db.content.categories()}
    if not kinds:
        return  # no sync yet: the SUP's configuration checks them (WCM.log)
    problems: list[str] = []
    for name, ids, allowed in (
        ("products", body.products, PRODUCT_TYPES),
        ("classifications", body.classifications, CLASSIFICATION_TYPES),
    ):
        for uid in ids:
            kind = kinds.get(uid)
            if kind is None:
                problems.append(f"{name}: {uid} is no category this site synced")
            elif kind not in allowed:
                problems.append(f"{name}: {uid} is a {kind}, not one of {', '.join(allowed)}")
    if problems:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "; ".join(problems) + "; nothing was changed (`updatesync updateserver categories "
            "--data <the top SUP's data>` lists the categories the update server holds)",
        )
