"""The site database tests' fixture: a new database of site CS1, on SQLite and on PostgreSQL
(the `database` fixture of tests/conftest.py: the PostgreSQL half skips without a server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from updatesync.site.database.site_db import SiteDatabase

if TYPE_CHECKING:
    from databases import Database


@pytest.fixture
def db(tmp_path: Path, database: Database) -> Iterator[SiteDatabase]:
    with SiteDatabase.open(tmp_path / "cs1", site_code="CS1", url=database.url) as site_db:
        yield site_db
