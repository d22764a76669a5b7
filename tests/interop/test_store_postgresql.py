"""The update server's store on a database named with `--database`, against Microsoft's real
WSUS export cabinets: the 2020 export, then the 2024 one, imported through the command line
into PostgreSQL (and into an SQLite file named by URL) give what the default store (the SQLite
file of `--data`) gives: the same status, and an export cabinet with the same records."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from databases import Database
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.metadata.cabinet import extract_member
from updatesync.metadata.export import METADATA_MEMBER, PACKAGE_MEMBER

EXPORTS = ("wsus-export-2020-04.cab", "wsus-export-2024-06.cab")
MEMBER_LIMIT = 64 * 1024**2
NO_PASSWORD = {"UPDATESYNC_DATABASE_PASSWORD": None, "UPDATESYNC_DATABASE": None}


@dataclass(frozen=True)
class Outcome:
    """What an administrator sees of one store: the status after each import (JSON), and
    the two members of the cabinet `updateserver export` wrote."""

    statuses: list[dict[str, object]]
    metadata: bytes
    package: str


def _run(args: list[str], env: dict[str, str | None] | None = None) -> str:
    result = CliRunner().invoke(app, ["updateserver", *args], env={**NO_PASSWORD, **(env or {})})
    assert result.exit_code == 0, result.output
    return result.stdout


def _store_outcome(where: list[str], exports: Path, out: Path) -> Outcome:
    """Import both exports into the store `where` names, read its status after each, export."""
    statuses = []
    for name in EXPORTS:
        _run(["import", *where, str(exports / name)])
        statuses.append(json.loads(_run(["status", *where, "--json"])))
    out.mkdir(parents=True, exist_ok=True)
    cabinet = out / "export.cab"
    _run(["export", *where, str(cabinet)])
    metadata = extract_member(cabinet, METADATA_MEMBER, out, MEMBER_LIMIT).read_bytes()
    package = extract_member(cabinet, PACKAGE_MEMBER, out, MEMBER_LIMIT).read_text("utf-8-sig")
    return Outcome(statuses, metadata, package)


def _comparable(status: dict[str, object]) -> dict[str, object]:
    """A status without the time of the last import (the rest must be equal)."""
    shown = dict(status)
    last = shown.pop("last_sync")
    assert isinstance(last, dict)
    shown["last_sync"] = {k: v for k, v in last.items() if not k.endswith("_at")}
    return shown


def _package_without_identity(text: str) -> str:
    """package.xml without the two attributes every export makes anew (a new server id for
    the package, the time it was written)."""
    return re.sub(r' (ServerID|CreationTime)="[^"]*"', "", text, count=2)


@pytest.fixture(scope="module")
def default_store(fixtures_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The exports through the default store: the SQLite file of `--data`."""
    root = tmp_path_factory.mktemp("default-store")
    return _store_outcome(["--data", str(root / "sup")], fixtures_dir / "wsus-exports", root)


def test_the_default_store_counts_the_revisions_of_both_exports(default_store: Outcome) -> None:
    after_2020, after_2024 = default_store.statuses
    assert after_2020["revisions"] == after_2020["last_change"] == 3690
    assert after_2024["revisions"] == after_2024["last_change"] == 4254
    assert default_store.metadata.count(b"\r\n") >= 4254


def test_a_store_on_database_gives_what_the_default_store_gives(
    default_store: Outcome, database: Database, fixtures_dir: Path, tmp_path: Path
) -> None:
    # No --data: the database alone holds the store (PostgreSQL, or an SQLite file by URL).
    got = _store_outcome(["--database", database.url], fixtures_dir / "wsus-exports", tmp_path)

    assert [s["revisions"] for s in got.statuses] == [3690, 4254]
    assert [_comparable(s) for s in got.statuses] == [
        _comparable(s) for s in default_store.statuses
    ]
    assert got.metadata == default_store.metadata
    assert _package_without_identity(got.package) == _package_without_identity(
        default_store.package
    )
    assert got.package != _package_without_identity(got.package)  # the two were there
