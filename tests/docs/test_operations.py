"""The operations guide (`docs/operations.md`) holds true: its backup and restore recipes,
run as written against a real update server's database (SQLite, and PostgreSQL with
pg_dump/pg_restore when a test server is given) while the store is open and writing, give
back a database that opens with the content of the backup; its reset of a replication link
runs; the configuration reference it links follows the typed model."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from updatesync.config.model import SiteTable
from updatesync.config.reference import markdown
from updatesync.metadata.export import read_export, write_export
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.site.database.engine import VERSION_TABLE
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.peers import COOKIE_KEY_FILE, server_identity
from updatesync.updateserver.store import UpdateStore

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operations.md"
REFERENCE = ROOT / "docs" / "configuration.md"


def recipe(name: str) -> str:
    """The shell block of the guide marked `<!-- recipe: NAME -->`."""
    found = re.search(
        rf"<!-- recipe: {re.escape(name)} -->\n```sh\n(.*?)\n```", GUIDE.read_text(), re.DOTALL
    )
    assert found, f"no recipe {name!r} in {GUIDE}"
    return found.group(1)


def run_recipe(name: str, **variables: str) -> None:
    """Run a recipe with bash, `set -eu`, this Python first on PATH (as the venv's bin)."""
    path = os.pathsep.join(
        [str(Path(sys.executable).parent), *_postgresql_bin(), os.environ["PATH"]]
    )
    env = {**os.environ, "PATH": path, **variables}
    done = subprocess.run(
        ["bash", "-c", "set -eu\n" + recipe(name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"recipe {name}: {done.stdout}{done.stderr}"


def _postgresql_bin() -> list[str]:
    return sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)[:1]


def _catalogs(folder: Path) -> tuple[Path, Path]:
    month1, month2 = folder / "month1.cab", folder / "month2.cab"
    write_export(month1, generate_catalog(40, 5))
    with read_export(month1) as previous:
        write_export(month2, evolve_catalog(previous.records(), 10, 6))
    return month1, month2


def _content(store: UpdateStore) -> tuple[object, ...]:
    status = store.status()
    return (store.revision_keys(), status.revisions, status.updates, status.categories)


@pytest.fixture
def store_url(database_kind: str, databases: object, tmp_path: Path) -> str | None:
    """None: the role's own SQLite file; else a fresh PostgreSQL database's URL."""
    if database_kind == "sqlite":
        return None
    return databases.new().url  # type: ignore[attr-defined]


def test_the_backup_and_restore_recipes_give_back_the_database(
    tmp_path: Path, store_url: str | None
) -> None:
    if store_url is not None and not (shutil.which("pg_dump") or _postgresql_bin()):
        pytest.skip("pg_dump and pg_restore are not installed here")
    month1, month2 = _catalogs(tmp_path)
    role_dir = tmp_path / "data" / "ps1site.contoso.com"
    backup = tmp_path / "backup"
    variables = {"ROLE_DIR": str(role_dir), "BACKUP": str(backup)}
    if store_url is not None:
        variables["DATABASE"] = (
            make_url(store_url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
    store = UpdateStore.open(role_dir, url=store_url)
    try:
        import_export_cabinet(store, month1)
        identity = server_identity(store)  # writes cookie.key
        before = _content(store)
        run_recipe("backup", **variables)  # the store open, as a running role holds it
        import_export_cabinet(store, month2)  # written after the backup: not in it
        assert _content(store) != before
    finally:
        store.close()
    assert (backup / "files.tar").is_file()
    assert (backup / ("database.dump" if store_url else "updateserver.sqlite")).is_file()
    (role_dir / COOKIE_KEY_FILE).unlink()  # lost with the host, say

    run_recipe("restore", **variables)

    restored = UpdateStore.open(role_dir, url=store_url)
    try:
        assert _content(restored) == before
        assert server_identity(restored) == identity, "the same server, the same cookie key"
    finally:
        restored.close()
    if store_url is None:
        assert (role_dir / "updateserver.sqlite").stat().st_mode & 0o077 == 0


def test_the_backup_recipe_takes_writes_still_in_the_wal(tmp_path: Path) -> None:
    """A copy of a live `.sqlite` file can miss what is still in its `-wal`; the recipe's
    VACUUM INTO does not."""
    month1, _ = _catalogs(tmp_path)
    role_dir = tmp_path / "role"
    store = UpdateStore.open(role_dir)
    try:
        import_export_cabinet(store, month1)
        wal = role_dir / "updateserver.sqlite-wal"
        assert wal.is_file() and wal.stat().st_size > 0, "the test needs writes in the WAL"
        run_recipe("backup", ROLE_DIR=str(role_dir), BACKUP=str(tmp_path / "backup"))
        keys = store.revision_keys()
    finally:
        store.close()
    copy = UpdateStore.open(
        tmp_path / "copy", url=f"sqlite:///{tmp_path / 'backup' / 'updateserver.sqlite'}"
    )
    try:
        assert copy.revision_keys() == keys and keys
    finally:
        copy.close()


def test_the_reset_of_a_replication_link_runs_as_written(tmp_path: Path) -> None:
    folder = tmp_path / "PS1"
    SiteDatabase.open(folder, site_code="PS1").close()
    snippet = re.search(r"python -c '\n(.*?)'", GUIDE.read_text(), re.DOTALL)
    assert snippet, "the guide's reset of a replication link"
    # In a list item: the rendered guide shows the block without the item's indentation.
    code = textwrap.dedent(snippet.group(1)).replace("/var/lib/updatesync/PS1", str(folder))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    db = SiteDatabase.open(folder, site_code="PS1")
    try:
        link = db.replication.link("CS1")
        assert link is not None and link.applied_seq == 0
    finally:
        db.close()


def test_the_guide_links_the_configuration_reference() -> None:
    text = GUIDE.read_text()
    assert "(configuration.md)" in text and REFERENCE.is_file()
    assert "(security.md)" in text


def test_the_reference_changes_with_a_key_of_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/config/test_reference.py compares the committed reference with what the model
    generates: a key changed or added in the model gives another text, so that test fails
    until the reference is regenerated."""
    committed = REFERENCE.read_text(encoding="utf-8")
    assert markdown() == committed
    field = SiteTable.model_fields["port"]
    monkeypatch.setattr(field, "description", "A changed meaning.")
    changed = markdown()
    assert changed != committed and "A changed meaning." in changed
    monkeypatch.undo()
    monkeypatch.setitem(SiteTable.model_fields, "added_key", field)
    added = markdown()
    assert added != committed and "| `added_key` |" in added


def test_an_older_updatesync_refuses_a_database_as_the_guide_says(tmp_path: Path) -> None:
    """The guide's Upgrading quotes what a role says of a database a newer updatesync
    migrated; a schema revision this version does not know gives that line."""
    folder = tmp_path / "PS1"
    db = SiteDatabase.open(folder, site_code="PS1")
    try:
        with db.engine.begin() as conn:
            conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00000000001'"))
    finally:
        db.close()
    with pytest.raises(SiteDatabaseError) as refused:
        SiteDatabase.open(folder, site_code="PS1")
    said = str(refused.value)
    quoted = re.search(
        r"`(this site database was written by a newer updatesync) \(\.\.\.\); "
        r"(run that version, or restore a backup made with this one)`",
        " ".join(GUIDE.read_text().split()),
    )
    assert quoted, "the guide quotes the refusal"
    assert quoted.group(1) in said and said.endswith(quoted.group(2)), said
