"""The catalog the generator's tests share, generated and parsed once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from generated_catalog import UPDATES, parse_all

from updatesync.metadata.export import ExportRecord, read_export
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import UpdateRevision


@pytest.fixture(scope="session")
def catalog() -> list[ExportRecord]:
    return list(generate_catalog(UPDATES, 2024))


@pytest.fixture(scope="session")
def parsed(catalog: list[ExportRecord]) -> list[UpdateRevision]:
    return parse_all(catalog)


@pytest.fixture(scope="session")
def real_categories(fixtures_dir: Path) -> list[ExportRecord]:
    with read_export(fixtures_dir / "wsus-exports" / "wsus-export-2024-06.cab") as export:
        return list(export.records())
