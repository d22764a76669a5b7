"""Generated catalogs in tests: parse one, its latest revisions, a store holding one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import ExportRecord, write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import UpdateRevision, UpdateType
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore

UPDATES = 1500
"""Updates of the catalog the generator's tests share."""
UPDATE_TYPES = (UpdateType.SOFTWARE, UpdateType.DRIVER)


def parse_all(records: Iterable[ExportRecord]) -> list[UpdateRevision]:
    parsed = []
    for number, record in enumerate(records, start=1):
        revision = parse_update(record.xml, where=f"generated record {number}")
        assert (revision.update_id, revision.revision) == (record.update_id, record.revision)
        parsed.append(revision)
    return parsed


def latest(revisions: Iterable[UpdateRevision]) -> dict[str, UpdateRevision]:
    latest: dict[str, UpdateRevision] = {}
    for revision in revisions:
        held = latest.get(revision.update_id)
        if held is None or revision.revision > held.revision:
            latest[revision.update_id] = revision
    return latest


def imported_store(
    root: Path, updates: int = 30, seed: int = 5, *, url: str | None = None
) -> UpdateStore:
    """A store at `root`/store (in the database at `url` if given) holding a generated
    catalog of `updates` updates."""
    write_export(root / "catalog.cab", generate_catalog(updates, seed))
    store = UpdateStore.open(root / "store", url=url)
    import_export_cabinet(store, root / "catalog.cab")
    return store
