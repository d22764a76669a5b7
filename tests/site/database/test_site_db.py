"""Opening a site database: schema by migrations, the site it belongs to, by folder or URL;
its repositories share one engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from databases import Database, Databases
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from updatesync.site.database.engine import current_revision, head_revision, sqlite_url
from updatesync.site.database.schema import metadata
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError

# -- schema ----------------------------------------------------------------------------------


def test_migrations_create_the_schema_the_code_expects(db: SiteDatabase) -> None:
    assert current_revision(db.engine) == head_revision() == "0010"
    tables = set(inspect(db.engine).get_table_names())
    assert tables == set(metadata.tables) | {"schema_version"}
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": "schema_version"})
        assert compare_metadata(context, metadata) == []


def test_a_database_remembers_its_site(databases: Databases) -> None:
    new, ps1, bad = databases.new(), databases.new(), databases.new()
    with pytest.raises(SiteDatabaseError, match="give the site code"):
        SiteDatabase.open(url=new.url)
    SiteDatabase.open(url=ps1.url, site_code="ps1").close()
    with SiteDatabase.open(url=ps1.url) as again:
        assert again.site_code == "PS1"
    with pytest.raises(SiteDatabaseError, match="belongs to site PS1, not CS1"):
        SiteDatabase.open(url=ps1.url, site_code="CS1")
    with pytest.raises(SiteDatabaseError, match="not three letters"):
        SiteDatabase.open(url=bad.url, site_code="CENTRAL")


def test_a_database_that_cannot_be_opened_is_one_line_with_what_to_do(
    database: Database,
) -> None:
    url = make_url(database.url)
    if database.is_postgresql:
        where = f"{url.database}_never_made"
        url = url.set(database=where)
        what_to_do = "does not exist on that PostgreSQL server; create it"
    else:
        where = url.database or ""
        Path(where).write_bytes(b"not a database" * 100)
        what_to_do = "move it aside and start the site again"
    with pytest.raises(SiteDatabaseError) as caught:
        SiteDatabase.open(url=url.render_as_string(hide_password=False), site_code="CS1")
    said = str(caught.value)
    assert where in said and what_to_do in said
    assert "\n" not in said and "Traceback" not in said


def test_open_by_url(tmp_path: Path) -> None:
    tmp_path.joinpath("x").mkdir()
    with SiteDatabase.open(url=sqlite_url(tmp_path / "x"), site_code="SS1") as site_db:
        assert site_db.content.version() == 0
    assert (tmp_path / "x" / "site.sqlite").is_file()


def test_a_damaged_database_is_a_site_database_error_with_what_to_do(tmp_path: Path) -> None:
    with SiteDatabase.open(tmp_path, site_code="CS1"):
        pass
    file = tmp_path / "site.sqlite"
    for leftover in tmp_path.glob("site.sqlite-*"):
        leftover.unlink()
    file.write_bytes(file.read_bytes()[:100])
    with pytest.raises(SiteDatabaseError) as caught:
        SiteDatabase.open(tmp_path, site_code="CS1")
    assert str(caught.value).startswith(f"{file.resolve()}: not a valid site database")
    assert "move it aside and start the site again" in str(caught.value)


def test_a_data_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "CS1").write_text("a file", encoding="utf-8")
    with pytest.raises(SiteDatabaseError, match="is a file, not the site's data folder"):
        SiteDatabase.open(tmp_path / "CS1", site_code="CS1")
