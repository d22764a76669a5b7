"""What a sync sends and how it reads what comes back, as pure functions.

- `update_filter`: the GetRevisionIdList(GetConfig=false) filter of a subscription. With a
  saved anchor, every category or classification that was in the filter when the anchor
  was taken is sent with `Delta=true` (a real WSUS sends everything again otherwise,
  exchanges 000010/000011); one added since goes with `Delta=false`, so its older updates
  come too. Languages are kept in the subscription but not sent. An empty subscription
  sends neither Categories nor Classifications (the upstream answers with every update).
- `filter_key`: the subscription an update list anchor was taken under, saved beside it.
- `replica_items`: what a GetDeployments answer asks a replica to hold.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from updatesync.updateserver.deployments import Deployment, ReplicaItems, TargetGroup
from updatesync.updateserver.store import Subscription
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.messages import IdAndDelta, ServerSyncDeploymentResult, ServerSyncFilter

__all__ = ["filter_key", "read_filter_key", "replica_items", "update_filter"]


def filter_key(subscription: Subscription) -> str:
    """The subscription an update list anchor was taken under, as stored beside it."""
    return json.dumps(
        {
            "products": sorted(uid.lower() for uid in subscription.products),
            "classifications": sorted(uid.lower() for uid in subscription.classifications),
        },
        separators=(",", ":"),
    )


def read_filter_key(text: str | None) -> tuple[set[str], set[str]] | None:
    """The (products, classifications) of a saved `filter_key`; None if absent or
    unreadable."""
    if not text:
        return None
    try:
        value = json.loads(text)
        return set(value["products"]), set(value["classifications"])
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: treat every category as new (Delta=false)


def update_filter(
    subscription: Subscription, anchor: str | None, saved_key: str | None
) -> ServerSyncFilter:
    """The update list filter of `subscription` from `anchor`, taken under `saved_key`."""
    before = read_filter_key(saved_key) if anchor is not None else None

    def items(ids: Sequence[str], old: set[str] | None) -> tuple[IdAndDelta, ...] | None:
        if not ids:
            return None
        return tuple(IdAndDelta(uid.lower(), old is not None and uid.lower() in old) for uid in ids)

    return ServerSyncFilter(
        get_config=False,
        anchor=anchor,
        categories=items(subscription.products, before[0] if before else None),
        classifications=items(subscription.classifications, before[1] if before else None),
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
