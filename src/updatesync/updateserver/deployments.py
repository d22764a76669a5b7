"""Target groups, deployments (approvals) and hidden updates in the update server's store.

[MS-WSUSSS] 3.1.1 keeps a TargetGroup table and a Deployment table on every server: an
autonomous server's administrator fills them (`approve`, `add_target_group`), a replica
receives them from its upstream with GetDeployments (`apply_replica`). The functions here
work on a connection inside the caller's transaction; `UpdateStore` wraps them.

- Every store holds WSUS's two built-in groups, All Computers and Unassigned Computers (a
  child of All Computers); migration 0003 creates them.
- Each written or removed deployment takes the next value of the store's deployment
  counter (`store_state.deployment_counter`, apart from the change counter of revisions):
  "changed since N" is `change_number > N`, for deployments and for the dead ones alike.
  The counter is the number of the deployment anchors this server issues.
- A deployment is identified by its GUID. Approving an update for a group replaces the
  deployment that update (any revision) had for that group: the old one becomes dead.
- Deadlines and go-live times are kept as the wire's xsd:dateTime text, so .NET's
  "no deadline" value (seven fraction digits) and a value without a zone come back as sent.
- Hidden (declined) updates are a set of update ids; GetDeployments sends the whole set.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Connection, RowMapping, delete, func, insert, select, update

from updatesync.metadata.model import RevisionKey
from updatesync.updateserver import schema as t
from updatesync.updateserver.errors import UpdateServerError
from updatesync.wsusss.messages import NO_DEADLINE, format_datetime, parse_datetime

__all__ = [
    "ACTIONS",
    "ALL_COMPUTERS",
    "BUILTIN_GROUPS",
    "NO_DEADLINE",
    "UNASSIGNED_COMPUTERS",
    "Deployment",
    "DeploymentChanges",
    "DeploymentSummary",
    "ReplicaApplied",
    "ReplicaItems",
    "TargetGroup",
]

ALL_COMPUTERS: Final = "a0a08746-4dbe-4a37-9adf-9e7652c0b421"
UNASSIGNED_COMPUTERS: Final = "b73ca6ed-5727-47f3-84de-015e03f6a88a"
ACTIONS: Final = {0: "install", 1: "uninstall", 2: "scan", 3: "block"}
"""The deployment actions of [MS-WSUSSS] 3.1.4.10.3.5, by number."""


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """One target group. `parent_group_id` is None at the top of the hierarchy."""

    target_group_id: str
    name: str
    is_builtin: bool = False
    parent_group_id: str | None = None


BUILTIN_GROUPS: Final = (
    TargetGroup(ALL_COMPUTERS, "All Computers", True, None),
    TargetGroup(UNASSIGNED_COMPUTERS, "Unassigned Computers", True, ALL_COMPUTERS),
)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One deployment (approval) of an update revision for a target group.

    `action`: 0 install, 1 uninstall, 2 scan, 3 block. `deadline` is `NO_DEADLINE` when
    there is none. `change_number`: the deployment counter's value when this server wrote
    it (its LastChangedAnchor); 0 for one not stored yet.
    """

    deployment_id: str
    update_id: str
    revision_number: int
    target_group_id: str
    action: int
    admin_name: str | None
    deadline: datetime
    is_assigned: bool
    go_live_time: datetime
    download_priority: int
    change_number: int = 0

    @property
    def key(self) -> RevisionKey:
        return RevisionKey(self.update_id, self.revision_number)

    def same_as(self, other: Deployment) -> bool:
        """Whether the two say the same thing (whatever change number each carries)."""
        return _values(self) == _values(other)


@dataclass(frozen=True, slots=True)
class ReplicaItems:
    """What a replica received from GetDeployments, to apply in one transaction.

    `groups` is every group of the upstream; `deployments` those new or changed since the
    deployment anchor sent, or all of them when `complete` (no anchor was sent: the
    replica then drops the deployments the answer does not hold); `dead` the GUIDs of
    deployments removed since; `hidden` every hidden update id.
    """

    groups: tuple[TargetGroup, ...]
    deployments: tuple[Deployment, ...] = ()
    dead: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    complete: bool = False

    @property
    def count(self) -> int:
        """The "other items" WSyncMgr counts: groups, deployments and dead deployments."""
        return len(self.groups) + len(self.deployments) + len(self.dead)


@dataclass(frozen=True, slots=True)
class ReplicaApplied:
    """What applying `ReplicaItems` changed in the store."""

    groups_added: int = 0
    groups_changed: int = 0
    groups_removed: int = 0
    deployments_written: int = 0
    deployments_unchanged: int = 0
    deployments_removed: int = 0
    hidden_updates: int = 0
    deployment_counter: int = 0


@dataclass(frozen=True, slots=True)
class DeploymentChanges:
    """What an upstream serves with GetDeployments, read in one transaction: the counter
    (the number of the new deployment anchor), every group, the deployments and dead
    deployments after the anchor's number (all without one), every hidden update."""

    counter: int
    groups: tuple[TargetGroup, ...]
    deployments: tuple[Deployment, ...]
    dead: tuple[str, ...]
    hidden: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeploymentSummary:
    """What the admin API shows: the groups and how many deployments each has."""

    deployment_counter: int
    target_groups: list[dict[str, object]]
    deployments: int
    by_action: dict[str, int]
    hidden_updates: int
    dead_deployments: int
    items: list[Deployment] = field(default_factory=list)


# --------------------------------------------------------------------------- reading


def deployment_counter(conn: Connection) -> int:
    return conn.execute(select(t.store_state.c.deployment_counter)).scalar_one()


def read_groups(conn: Connection) -> list[TargetGroup]:
    """Every target group, the top ones first, then built-in ones, then by name."""
    g = t.target_group
    query = select(g.c.target_group_id, g.c.name, g.c.is_builtin, g.c.parent_group_id).order_by(
        g.c.parent_group_id.is_not(None), g.c.is_builtin.desc(), g.c.name, g.c.target_group_id
    )
    rows = conn.execute(query).all()
    return [TargetGroup(gid, name, bool(builtin), parent) for gid, name, builtin, parent in rows]


def read_deployments(conn: Connection, since: int | None = None) -> list[Deployment]:
    """The deployments written after the deployment counter stood at `since` (all of them
    without), in the order they were written."""
    d = t.deployment
    query = select(d).order_by(d.c.change_number, d.c.deployment_id)
    if since is not None:
        query = query.where(d.c.change_number > since)
    return [_deployment(row) for row in conn.execute(query).mappings()]


def read_dead(conn: Connection, since: int | None = None) -> list[str]:
    """The GUIDs of the deployments removed after the counter stood at `since`."""
    dead = t.dead_deployment
    query = select(dead.c.deployment_id).order_by(dead.c.change_number, dead.c.deployment_id)
    if since is not None:
        query = query.where(dead.c.change_number > since)
    return list(conn.execute(query).scalars())


def read_hidden(conn: Connection) -> list[str]:
    query = select(t.hidden_update.c.update_id).order_by(t.hidden_update.c.update_id)
    return list(conn.execute(query).scalars())


def changes(conn: Connection, since: int | None) -> DeploymentChanges:
    """Everything GetDeployments answers, after the deployment counter stood at `since`."""
    return DeploymentChanges(
        counter=deployment_counter(conn),
        groups=tuple(read_groups(conn)),
        deployments=tuple(read_deployments(conn, since)),
        dead=tuple(read_dead(conn, since)),
        hidden=tuple(read_hidden(conn)),
    )


def summary(conn: Connection, since: int | None = None) -> DeploymentSummary:
    """Groups with their deployment counts, totals; the deployments after `since` if given."""
    d = t.deployment
    per_group = dict(
        conn.execute(select(d.c.target_group_id, func.count()).group_by(d.c.target_group_id)).all()
    )
    per_action = dict(conn.execute(select(d.c.action, func.count()).group_by(d.c.action)).all())
    dead = conn.execute(select(func.count()).select_from(t.dead_deployment)).scalar_one()
    hidden = conn.execute(select(func.count()).select_from(t.hidden_update)).scalar_one()
    groups = [
        {
            "target_group_id": g.target_group_id,
            "name": g.name,
            "is_builtin": g.is_builtin,
            "parent_group_id": g.parent_group_id,
            "deployments": per_group.get(g.target_group_id, 0),
        }
        for g in read_groups(conn)
    ]
    return DeploymentSummary(
        deployment_counter=deployment_counter(conn),
        target_groups=groups,
        deployments=sum(per_group.values()),
        by_action={ACTIONS.get(a, str(a)): n for a, n in sorted(per_action.items())},
        hidden_updates=hidden,
        dead_deployments=dead,
        items=read_deployments(conn, since) if since is not None else [],
    )


# --------------------------------------------------------------------------- an administrator


def add_target_group(
    conn: Connection,
    name: str,
    *,
    parent_group_id: str | None = ALL_COMPUTERS,
    target_group_id: str | None = None,
) -> TargetGroup:
    """Create a target group (not built-in) under `parent_group_id`."""
    name = name.strip()
    if not name:
        raise UpdateServerError("a target group needs a name")
    _lock_counter(conn)  # before reading: two administrators cannot both add one name
    groups = {g.target_group_id: g for g in read_groups(conn)}
    if any(g.name.casefold() == name.casefold() for g in groups.values()):
        raise UpdateServerError(f"a target group named {name!r} exists already")
    parent = parent_group_id.lower() if parent_group_id else None
    if parent is not None and parent not in groups:
        raise UpdateServerError(
            f"cannot create target group {name!r} under {parent}: no such group on this server"
        )
    group = TargetGroup(_guid(target_group_id), name, False, parent)
    if group.target_group_id in groups:
        raise UpdateServerError(f"target group {group.target_group_id} exists already")
    conn.execute(insert(t.target_group), [_group_row(group)])
    return group


def remove_target_group(conn: Connection, target_group_id: str) -> int:
    """Delete a target group made by an administrator, and its deployments (they become
    dead). Returns how many deployments went with it."""
    gid = target_group_id.lower()
    _lock_counter(conn)  # before reading
    group = next((g for g in read_groups(conn) if g.target_group_id == gid), None)
    if group is None:
        raise UpdateServerError(f"no target group {target_group_id} on this server")
    if group.is_builtin:
        raise UpdateServerError(f"target group {group.name!r} is built in and cannot be removed")
    children = [g.name for g in read_groups(conn) if g.parent_group_id == gid]
    if children:
        raise UpdateServerError(
            f"target group {group.name!r} holds other groups ({', '.join(children)}); "
            "remove those first"
        )
    ids = list(
        conn.execute(
            select(t.deployment.c.deployment_id).where(t.deployment.c.target_group_id == gid)
        ).scalars()
    )
    _kill(conn, ids)
    conn.execute(delete(t.target_group).where(t.target_group.c.target_group_id == gid))
    return len(ids)


def approve(
    conn: Connection,
    update_id: str,
    revision: int,
    target_group_id: str,
    action: int,
    admin_name: str | None,
    *,
    deadline: datetime = NO_DEADLINE,
    is_assigned: bool = True,
    go_live_time: datetime | None = None,
    download_priority: int = 1,
) -> Deployment:
    """Deploy revision `revision` of `update_id` to a target group; the deployment that
    update had for that group, if any, becomes dead. The revision must be stored."""
    uid = update_id.lower()
    gid = target_group_id.lower()
    where = f"approving {uid} revision {revision} for target group {gid}"
    if action not in ACTIONS:
        raise UpdateServerError(
            f"{where}: action {action!r} is not one of 0 install, 1 uninstall, 2 scan, 3 block"
        )
    if download_priority not in (1, 2, 3):
        raise UpdateServerError(
            f"{where}: download priority {download_priority!r} is not 1 (low), 2 or 3 (high)"
        )
    counter = _lock_counter(conn)  # before reading: no other writer acts on what we read
    stored = conn.execute(
        select(t.revision.c.id).where(
            (t.revision.c.update_id == uid) & (t.revision.c.revision_number == revision)
        )
    ).first()
    if stored is None:
        raise UpdateServerError(
            f"{where}: this server holds no such revision; sync or import it first"
        )
    group = conn.execute(
        select(t.target_group.c.target_group_id).where(t.target_group.c.target_group_id == gid)
    ).first()
    if group is None:
        raise UpdateServerError(f"{where}: no such target group on this server")
    previous = list(
        conn.execute(
            select(t.deployment.c.deployment_id).where(
                (t.deployment.c.update_id == uid) & (t.deployment.c.target_group_id == gid)
            )
        ).scalars()
    )
    counter = _kill(conn, previous, counter=counter)
    counter += 1
    deployment = Deployment(
        deployment_id=str(uuid.uuid4()),
        update_id=uid,
        revision_number=revision,
        target_group_id=gid,
        action=action,
        admin_name=admin_name,
        deadline=deadline,
        is_assigned=is_assigned,
        go_live_time=go_live_time or datetime.now(UTC),
        download_priority=download_priority,
        change_number=counter,
    )
    conn.execute(insert(t.deployment), [_deployment_row(deployment, counter)])
    _set_counter(conn, counter)
    return deployment


def remove_deployment(conn: Connection, deployment_id: str) -> bool:
    """Remove a deployment (it becomes dead); False if there was none by that GUID."""
    gid = deployment_id.lower()
    _lock_counter(conn)  # before reading
    found = conn.execute(
        select(t.deployment.c.deployment_id).where(t.deployment.c.deployment_id == gid)
    ).first()
    if found is None:
        return False
    _kill(conn, [gid])
    return True


def set_hidden(conn: Connection, update_id: str, hidden: bool = True) -> None:
    """Hide (decline) an update, or show it again."""
    uid = update_id.lower()
    _lock_counter(conn)  # two hiding one update at once: the second waits, then finds it
    conn.execute(delete(t.hidden_update).where(t.hidden_update.c.update_id == uid))
    if hidden:
        conn.execute(insert(t.hidden_update), [{"update_id": uid}])


# --------------------------------------------------------------------------- a replica


def apply_replica(conn: Connection, items: ReplicaItems) -> ReplicaApplied:
    """Make the store's groups, deployments and hidden updates what the upstream sent
    ([MS-WSUSSS] 3.2.4.3), inside the caller's transaction.

    Groups not sent are deleted with their deployments; dead deployments are removed; the
    deployments sent are added or replace the stored ones of the same GUID (one that says
    the same thing is left as it is); with `complete`, stored deployments not sent are
    removed too. Removals are kept as dead deployments for this server's own replicas.
    A deployment naming a group the answer does not list is refused (`UpdateServerError`)
    before anything is written.
    """
    groups = {g.target_group_id.lower(): g for g in items.groups}
    for dep in items.deployments:
        if dep.target_group_id.lower() not in groups:
            raise UpdateServerError(
                f"deployment {dep.deployment_id} (update {dep.update_id} revision "
                f"{dep.revision_number}) targets group {dep.target_group_id}, which is not "
                f"among the {len(groups)} target groups received with it; nothing received "
                "was applied"
            )
        if dep.action not in ACTIONS:
            raise UpdateServerError(
                f"deployment {dep.deployment_id} has action {dep.action}, not one of 0 install, "
                "1 uninstall, 2 scan, 3 block; nothing received was applied"
            )
    counter = _lock_counter(conn)
    held_groups = {g.target_group_id: g for g in read_groups(conn)}
    held = {d.deployment_id: d for d in read_deployments(conn)}
    gone_groups = [gid for gid in held_groups if gid not in groups]
    incoming = {d.deployment_id.lower(): d for d in items.deployments}

    doomed = {d.deployment_id for d in held.values() if d.target_group_id in gone_groups}
    doomed |= {gid.lower() for gid in items.dead if gid.lower() in held}
    if items.complete:
        doomed |= {gid for gid in held if gid not in incoming}
    # One both dead and sent ends present, as 3.2.4.3 orders the steps (dead, then sent).
    doomed -= incoming.keys()
    counter = _kill(conn, sorted(doomed), counter=counter)

    added = changed = 0
    for gid, group in groups.items():
        wanted = TargetGroup(gid, group.name, group.is_builtin, _parent(group.parent_group_id))
        have = held_groups.get(gid)
        if have is None:
            conn.execute(insert(t.target_group), [_group_row(wanted)])
            added += 1
        elif have != wanted:
            conn.execute(
                update(t.target_group)
                .where(t.target_group.c.target_group_id == gid)
                .values(_group_row(wanted))
            )
            changed += 1
    if gone_groups:
        conn.execute(
            delete(t.target_group).where(t.target_group.c.target_group_id.in_(gone_groups))
        )

    rows = []
    for gid, dep in incoming.items():
        have = held.get(gid)
        if have is not None and have.same_as(dep):
            continue
        counter += 1
        rows.append(_deployment_row(dep, counter))
    # One statement per table (and per 500 GUIDs), not three per deployment.
    for start in range(0, len(rows), 500):
        ids = [row["deployment_id"] for row in rows[start : start + 500]]
        conn.execute(delete(t.deployment).where(t.deployment.c.deployment_id.in_(ids)))
        conn.execute(delete(t.dead_deployment).where(t.dead_deployment.c.deployment_id.in_(ids)))
    if rows:
        conn.execute(insert(t.deployment), rows)
    written, unchanged = len(rows), len(incoming) - len(rows)
    _set_counter(conn, counter)

    hidden = sorted({uid.lower() for uid in items.hidden})
    conn.execute(delete(t.hidden_update))
    if hidden:
        conn.execute(insert(t.hidden_update), [{"update_id": uid} for uid in hidden])
    return ReplicaApplied(
        groups_added=added,
        groups_changed=changed,
        groups_removed=len(gone_groups),
        deployments_written=written,
        deployments_unchanged=unchanged,
        deployments_removed=len(doomed),
        hidden_updates=len(hidden),
        deployment_counter=counter,
    )


# --------------------------------------------------------------------------- rows


def _lock_counter(conn: Connection) -> int:
    """The deployment counter, with the store's write lock taken (the write comes first)."""
    s = t.store_state
    conn.execute(update(s).values(deployment_counter=s.c.deployment_counter))
    return deployment_counter(conn)


def _set_counter(conn: Connection, counter: int) -> None:
    conn.execute(update(t.store_state).values(deployment_counter=counter))


def _kill(conn: Connection, deployment_ids: Sequence[str], *, counter: int | None = None) -> int:
    """Remove deployments, recording each as dead with the next counter value."""
    if counter is None:
        counter = _lock_counter(conn)
    if not deployment_ids:
        return counter
    rows = []
    for gid in deployment_ids:
        counter += 1
        rows.append({"deployment_id": gid, "change_number": counter})
    ids = [row["deployment_id"] for row in rows]
    conn.execute(delete(t.deployment).where(t.deployment.c.deployment_id.in_(ids)))
    conn.execute(delete(t.dead_deployment).where(t.dead_deployment.c.deployment_id.in_(ids)))
    conn.execute(insert(t.dead_deployment), rows)
    _set_counter(conn, counter)
    return counter


def _guid(value: str | None) -> str:
    if value is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UpdateServerError(f"{value!r} is not a GUID") from None


_NULL_GUID: Final = "00000000-0000-0000-0000-000000000000"


def _parent(value: str | None) -> str | None:
    """A parent group id as stored: None for the top (the wire's all-zero GUID)."""
    if value is None or value.lower() == _NULL_GUID:
        return None
    return value.lower()


def _group_row(group: TargetGroup) -> dict[str, object]:
    return {
        "target_group_id": group.target_group_id.lower(),
        "name": group.name,
        "is_builtin": group.is_builtin,
        "parent_group_id": _parent(group.parent_group_id),
    }


def _values(dep: Deployment) -> tuple[object, ...]:
    return (
        dep.deployment_id.lower(),
        dep.update_id.lower(),
        dep.revision_number,
        dep.target_group_id.lower(),
        dep.action,
        dep.admin_name,
        format_datetime(dep.deadline),
        dep.is_assigned,
        format_datetime(dep.go_live_time),
        dep.download_priority,
    )


def _deployment_row(dep: Deployment, change_number: int) -> dict[str, object]:
    values = _values(dep)
    names = (
        "deployment_id",
        "update_id",
        "revision_number",
        "target_group_id",
        "action",
        "admin_name",
        "deadline",
        "is_assigned",
        "go_live_time",
        "download_priority",
    )
    return {**dict(zip(names, values, strict=True)), "change_number": change_number}


def _deployment(r: RowMapping) -> Deployment:
    return Deployment(
        deployment_id=r["deployment_id"],
        update_id=r["update_id"],
        revision_number=r["revision_number"],
        target_group_id=r["target_group_id"],
        action=r["action"],
        admin_name=r["admin_name"],
        deadline=parse_datetime(r["deadline"]),
        is_assigned=bool(r["is_assigned"]),
        go_live_time=parse_datetime(r["go_live_time"]),
        download_priority=r["download_priority"],
        change_number=r["change_number"],
    )
