"""The site database tests' fixture: a new database of site CS1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from updatesync.site.database.site_db import SiteDatabase


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SiteDatabase]:
    with SiteDatabase.open(tmp_path / "cs1", site_code="CS1") as site_db:
        yield site_db
