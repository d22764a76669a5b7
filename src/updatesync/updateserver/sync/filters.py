"""What a sync sends and how it reads what comes back, as pure functions.

- `update_filter`: the GetRevisionIdList(GetConfig=false) filter of a subscription. With a
  saved anchor, every category or classification that was in the filter when the anchor
  was taken is sent with `Delta=true` (a real WSUS sends everything again otherwise,
  exchanges 000010/000011); one added since goes with `Delta=false`, so its older updates
  come too. Languages go the same way, as `Languages` of LanguageIDs (3.1.4.5.3.4) when the
  caller gives their ids (an upstream of protocol 1.3 or later, `sync/languages.py`): a
  language is a delta unless the anchor was taken with a list of languages that lacked it
  (a key without languages, or with none, was taken for every language). An empty
  subscription sends neither Categories nor Classifications (the upstream answers with
  every update); no language, no Languages (every language).
- `filter_key`: the subscription an update list anchor was taken under, saved beside it.
- `replica_items`: what a GetDeployments answer asks a replica to hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from updatesync.updateserver.deployments import Deployment, ReplicaItems, TargetGroup
from updatesync.updateserver.store import Subscription
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.messages import (
    IdAndDelta,
    LanguageAndDelta,
    ServerSyncDeploymentResult,
    ServerSyncFilter,
)

__all__ = ["FilterKey", "filter_key", "read_filter_key", "replica_items", "update_filter"]


@dataclass(frozen=True, slots=True)
class FilterKey:
    """What a saved `filter_key` says: the products, classifications and languages of the
    filter an anchor was taken with (`languages` None: a key written before languages were
    sent, when every language came)."""

    products: frozenset[str]
    classifications: frozenset[str]
    languages: frozenset[str] | None = None


def filter_key(subscription: Subscription, *, languages: Sequence[str] | None = None) -> str:
    """The subscription an update list anchor was taken under, as stored beside it;
    `languages` are those sent (default: the subscription's; empty when none was sent)."""
    sent = subscription.languages if languages is None else languages
    return json.dumps(
        {
            "products": sorted(uid.lower() for uid in subscription.products),
            "classifications": sorted(uid.lower() for uid in subscription.classifications),
            "languages": sorted({lang.lower() for lang in sent}),
        },
        separators=(",", ":"),
    )


def read_filter_key(text: str | None) -> FilterKey | None:
    """The `FilterKey` of a saved `filter_key`; None if absent or unreadable."""
    if not text:
        return None
    try:
        value = json.loads(text)
        languages = value.get("languages")
        return FilterKey(
            frozenset(value["products"]),
            frozenset(value["classifications"]),
            frozenset(languages) if languages is not None else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # unreadable: treat every category as new (Delta=false)


def update_filter(
    subscription: Subscription,
    anchor: str | None,
    saved_key: str | None,
    language_ids: Mapping[str, int] | None = None,
) -> ServerSyncFilter:
    """The update list filter of `subscription` from `anchor`, taken under `saved_key`;
    `language_ids` (short name -> LanguageID) when `Languages` is to be sent."""
    before = read_filter_key(saved_key) if anchor is not None else None

    def items(ids: Sequence[str], old: frozenset[str] | None) -> tuple[IdAndDelta, ...] | None:
        if not ids:
            return None
        return tuple(IdAndDelta(uid.lower(), old is not None and uid.lower() in old) for uid in ids)

    languages = None
    if language_ids:
        taken = before.languages if before is not None else None
        languages = tuple(
            LanguageAndDelta(
                lcid,
                before is not None and (not taken or name.lower() in taken),
            )
            for name, lcid in language_ids.items()
        )
    return ServerSyncFilter(
        get_config=False,
        anchor=anchor,
        categories=items(subscription.products, before.products if before else None),
        classifications=items(
            subscription.classifications, before.classifications if before else None
        ),
        languages=languages,
    )


def replica_items(
    answer: ServerSyncDeploymentResult, *, complete: bool, where: str
) -> ReplicaItems:
    """What a GetDeployments answer asks the replica to hold; an answer without the
    elements 3.1.4.10.3.1 makes mandatory is a `ProtocolError`."""
    for name, value in (("Anchor", answer.anchor), ("Groups", answer.groups)):
        if value is None:
            raise ProtocolError(
                f"the answer has no {name}, which every GetDeployments answer must carry; "
                "nothing of it was applied",
                where=f"GetDeploymentsResult from {where}",
                operation="GetDeployments",
            )
    groups = tuple(
        TargetGroup(g.target_group_id, g.name or "", g.is_builtin, g.parent_group_id)
        for g in answer.groups or ()
    )
    deployments = tuple(
        Deployment(
            deployment_id=d.deployment_guid,
            update_id=d.update_id,
            revision_number=d.revision_number,
            target_group_id=d.target_group_id,
            action=d.action,
            admin_name=d.admin_name,
            deadline=d.deadline,
            is_assigned=d.is_assigned,
            go_live_time=d.go_live_time,
            download_priority=d.download_priority,
        )
        for d in answer.deployments or ()
    )
    return ReplicaItems(
        groups=groups,
        deployments=deployments,
        dead=tuple(answer.dead_deployments or ()),
        hidden=tuple(answer.hidden_updates or ()),
        complete=complete,
    )
