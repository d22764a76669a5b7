"""Target groups, deployments (approvals), dead deployments and hidden updates: the rules
an administrator's changes and a replica's GetDeployments answer follow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from databases import Database
from generated_catalog import imported_store
from sqlalchemy import event

from updatesync.metadata.model import RevisionKey
from updatesync.updateserver.deployments import (
    ALL_COMPUTERS,
    BUILTIN_GROUPS,
    NO_DEADLINE,
    UNASSIGNED_COMPUTERS,
    Deployment,
    ReplicaItems,
    TargetGroup,
)
from updatesync.updateserver.errors import UpdateServerError
from updatesync.updateserver.store import UpdateStore


@pytest.fixture
def store(tmp_path: Path, database: Database) -> Iterator[UpdateStore]:
    with imported_store(tmp_path, updates=10, url=database.url) as opened:
        yield opened


def _update(store: UpdateStore) -> RevisionKey:
    categories = {c.update_id for c in store.categories()}
    return next(k for k in sorted(store.revision_keys()) if k.update_id not in categories)


def test_a_new_store_holds_the_two_builtin_groups_and_no_deployment(tmp_path: Path) -> None:
    with UpdateStore.open(tmp_path / "new") as store:
        groups = store.target_groups()
        assert groups == list(BUILTIN_GROUPS)
        assert [(g.name, g.is_builtin) for g in groups] == [
            ("All Computers", True),
            ("Unassigned Computers", True),
        ]
        assert groups[1].parent_group_id == ALL_COMPUTERS
        assert store.deployments() == [] and store.deployment_counter() == 0
        assert (store.status().target_groups, store.status().deployments) == (2, 0)


def test_groups_are_named_once_and_removed_with_their_deployments(store: UpdateStore) -> None:
    pilot = store.add_target_group(" Pilot ")
    assert pilot == TargetGroup(pilot.target_group_id, "Pilot", False, ALL_COMPUTERS)
    with pytest.raises(UpdateServerError, match="exists already"):
        store.add_target_group("pilot")
    with pytest.raises(UpdateServerError, match="needs a name"):
        store.add_target_group("  ")
    ring = store.add_target_group("Ring 1", parent_group_id=pilot.target_group_id)
    with pytest.raises(UpdateServerError, match="holds other groups"):
        store.remove_target_group(pilot.target_group_id)
    key = _update(store)
    deployment = store.approve(key.update_id, key.revision, ring.target_group_id, 0, "admin")
    assert store.remove_target_group(ring.target_group_id) == 1
    assert store.dead_deployments() == [deployment.deployment_id]
    assert store.remove_target_group(pilot.target_group_id) == 0
    assert store.target_groups() == list(BUILTIN_GROUPS)


def test_a_new_approval_kills_the_previous_one_and_counts(store: UpdateStore) -> None:
    key = _update(store)
    first = store.approve(key.update_id, key.revision, UNASSIGNED_COMPUTERS, 0, "admin")
    assert first.change_number == store.deployment_counter() == 1
    second = store.approve(key.update_id, key.revision, UNASSIGNED_COMPUTERS, 3, "admin")
    assert store.deployments() == [second]
    assert store.dead_deployments() == [first.deployment_id]
    assert store.deployments(since=second.change_number) == []
    summary = store.deployment_summary(since=0)
    assert (summary.deployments, summary.dead_deployments) == (1, 1)
    assert summary.by_action == {"block": 1}
    assert summary.items == [second]
    with pytest.raises(UpdateServerError, match="download priority"):
        store.approve(
            key.update_id, key.revision, UNASSIGNED_COMPUTERS, 0, "a", download_priority=9
        )
    assert store.remove_deployment(second.deployment_id)
    assert not store.remove_deployment(second.deployment_id)
    assert store.deployments() == []


def test_hidden_updates_and_the_changes_served(store: UpdateStore) -> None:
    key = _update(store)
    store.set_hidden(key.update_id)
    store.set_hidden(key.update_id)
    assert store.hidden_updates() == [key.update_id]
    changes = store.deployment_changes()
    assert changes.hidden == (key.update_id,) and changes.groups == BUILTIN_GROUPS
    store.set_hidden(key.update_id, False)
    assert store.hidden_updates() == []


def test_a_replica_answer_is_applied_with_what_goes_along_or_not_at_all(
    store: UpdateStore,
) -> None:
    pilot = TargetGroup("0e1c7a52-0000-4000-8000-000000000001", "Pilot", False, ALL_COMPUTERS)
    items = ReplicaItems(groups=(*BUILTIN_GROUPS, pilot), hidden=(_update(store).update_id,))

    def fail(_conn: object) -> None:
        raise RuntimeError("the anchors could not be written")

    with pytest.raises(RuntimeError):
        store.apply_replica(items, also=fail)
    assert store.target_groups() == list(BUILTIN_GROUPS) and store.hidden_updates() == []
    applied = store.apply_replica(items)
    assert applied.groups_added == 1 and applied.hidden_updates == 1
    assert pilot in store.target_groups()


def test_a_replica_writes_the_deployments_it_receives_in_bulk(store: UpdateStore) -> None:
    keys = sorted(k for k in store.revision_keys() if store.latest_revision(k.update_id))[:40]
    sent = tuple(
        Deployment(
            deployment_id=f"0e1c7a52-0000-4000-8000-{n:012x}",
            update_id=k.update_id,
            revision_number=k.revision,
            target_group_id=ALL_COMPUTERS,
            action=0,
            admin_name="upstream admin",
            deadline=NO_DEADLINE,
            is_assigned=True,
            go_live_time=datetime(2026, 12, 1, tzinfo=UTC),
            download_priority=1,
        )
        for n, k in enumerate(keys)
    )
    statements: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()[:3]).upper())

    applied = store.apply_replica(ReplicaItems(groups=BUILTIN_GROUPS, deployments=sent))
    again = store.apply_replica(
        ReplicaItems(groups=BUILTIN_GROUPS, deployments=tuple(replace(d, action=1) for d in sent))
    )

    assert applied.deployments_written == again.deployments_written == len(keys)
    assert {d.action for d in store.deployments()} == {1}
    assert store.deployment_counter() == 2 * len(keys)
    # Each apply: one INSERT of deployments, one DELETE of each table: not one per deployment.
    assert statements.count("INSERT INTO DEPLOYMENT") == 2
    assert statements.count("DELETE FROM DEPLOYMENT") == 2
