"""License terms carried in a content folder (WsusContent's layout) beside an export, as a
disconnected WSUS gets them: a generated catalog's files written there, read into a store
that imported the catalog, each checked against its listed SHA-1."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.updateserver.content_folder import load_license_terms
from updatesync.updateserver.license_terms import counts
from updatesync.updateserver.store import UpdateStore


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path]:
    cabinet, content = tmp_path / "june.cab", tmp_path / "content"
    result = CliRunner().invoke(
        app,
        [
            "catalog",
            "generate",
            "--updates",
            "200",
            "--out",
            str(cabinet),
            "--content",
            str(content),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "license terms files to" in result.output
    return cabinet, content


def test_import_with_the_content_folder_holds_every_license_term(
    tmp_path: Path, exported: tuple[Path, Path]
) -> None:
    cabinet, content = exported
    files = sorted(p.relative_to(content) for p in content.rglob("*") if p.is_file())
    assert files and all(p.suffix == ".txt" and p.parent.name == p.stem[-2:] for p in files)
    result = CliRunner().invoke(
        app,
        [
            "updateserver",
            "import",
            str(cabinet),
            "--data",
            str(tmp_path / "s"),
            "--content",
            str(content),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"{len(files)} files stored, 0 not in the folder" in " ".join(result.output.split())
    with UpdateStore.open(tmp_path / "s", existing=True) as store:
        assert counts(store) == (len(files), 0)


def test_a_missing_or_altered_file_stays_pending(
    tmp_path: Path, exported: tuple[Path, Path]
) -> None:
    cabinet, content = exported
    files = sorted(p for p in content.rglob("*") if p.is_file())
    files[0].unlink()
    files[1].write_bytes(b"not the license terms")
    result = CliRunner().invoke(
        app, ["updateserver", "import", str(cabinet), "--data", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    with UpdateStore.open(tmp_path / "s", existing=True) as store:
        loaded = load_license_terms(store, content)
        assert (loaded.stored, loaded.missing) == (len(files) - 2, 1)
        (refused,) = loaded.refused
        assert str(files[1]) in refused and "not the text the metadata lists" in refused
        assert counts(store) == (len(files), 2)
        with pytest.raises(FileNotFoundError, match="no such folder"):
            load_license_terms(store, tmp_path / "nowhere")
