"""The update server as an upstream: what the MS-WSUSSS service reads from the store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import Database
from generated_catalog import imported_store

from updatesync.updateserver.deployments import ALL_COMPUTERS, UNASSIGNED_COMPUTERS
from updatesync.updateserver.peers import downstream_servers, server_identity
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import (
    NULL_GUID,
    StoreBackend,
    deployment_message,
    group_message,
)


@pytest.fixture
def store(tmp_path: Path, database: Database) -> Iterator[UpdateStore]:
    with imported_store(tmp_path, updates=10, url=database.url) as opened:
        yield opened


def test_the_backend_reads_the_store(store: UpdateStore) -> None:
    backend = StoreBackend(store)
    assert backend.identity().server_id == server_identity(store).server_id
    enabled = [lang.short_name for lang in backend.languages() if lang.enabled]
    assert enabled == ["all"]
    assert backend.change_counter() == store.change_counter()
    keys = sorted(store.revision_keys())[:3]
    assert [d.key for d in backend.documents(keys)] == keys
    store.save_file_urls({"digest": "http://mu/file"})
    assert backend.file_urls(["digest", "other"]) == {"digest": "http://mu/file"}


def test_groups_and_deployments_as_messages(store: UpdateStore) -> None:
    top, unassigned = store.target_groups()
    assert group_message(top).parent_group_id == NULL_GUID
    assert group_message(unassigned).parent_group_id == ALL_COMPUTERS
    categories = {c.update_id for c in store.categories()}
    key = next(k for k in sorted(store.revision_keys()) if k.update_id not in categories)
    deployment = store.approve(key.update_id, key.revision, UNASSIGNED_COMPUTERS, 2, "admin")
    message = deployment_message(deployment)
    assert (message.deployment_guid, message.update_id, message.revision_number) == (
        deployment.deployment_id,
        key.update_id,
        key.revision,
    )
    assert (message.action, message.target_group_id) == (2, UNASSIGNED_COMPUTERS)
    answer = StoreBackend(store).deployments(None)
    assert answer.counter == deployment.change_number
    assert answer.groups == (group_message(top), group_message(unassigned))
    assert answer.deployments == (message,)


def test_a_downstream_registers_through_the_backend(store: UpdateStore) -> None:
    backend = StoreBackend(store)
    guid = "6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12"
    backend.register_downstream(guid, "dss.one", "10.0.0.2", "")
    backend.note_downstream(guid, is_replica=True)
    assert [
        (d.account_name, d.protocol_version, d.is_replica) for d in downstream_servers(store)
    ] == [("dss.one", None, True)]
