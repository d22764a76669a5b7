"""The generated catalogs have the real shape: per kind of update, the size of the documents
(mean and 95th percentile) and their structure (prerequisite groups, applicability rule
elements, files, languages, bundled and superseded updates per document) agree with the real
documents: the software updates captured from Microsoft Update (`wsusss/docs`) and the
categories and detectoids of the June 2024 WSUS export.

Tolerances: 15% on means, 25% on the 95th percentile. The real software sample is small (six
documents: leaves, hidden sub-bundles and one definition bundle); the generator reproduces
that mix. No real driver document is at hand, so drivers are not compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from updatesync.metadata.export import read_export
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.generator.shape import ELEMENTS, DocumentStats, document_stats

MEAN_TOLERANCE = 0.15
P95_TOLERANCE = 0.25
KINDS = ("Software", "Detectoid", "Category")


@pytest.fixture(scope="module")
def real(fixtures_dir: Path) -> dict[str, DocumentStats]:
    captured = [path.read_text("utf-8") for path in (fixtures_dir / "wsusss" / "docs").glob("*")]
    software = document_stats(captured)["Software"]
    export = fixtures_dir / "wsus-exports" / "wsus-export-2024-06.cab"
    with read_export(export) as reader:
        stats = document_stats(record.xml for record in reader.records())
    return {"Software": software, "Detectoid": stats["Detectoid"], "Category": stats["Category"]}


@pytest.fixture(scope="module", params=[2024, 7])
def generated(request: pytest.FixtureRequest) -> dict[str, DocumentStats]:
    return document_stats(r.xml for r in generate_catalog(4000, request.param))


def _close(ours: float, theirs: float, tolerance: float) -> bool:
    return abs(ours - theirs) <= tolerance * theirs + 0.05


@pytest.mark.parametrize("kind", KINDS)
def test_document_sizes_match_the_real_ones(
    real: dict[str, DocumentStats], generated: dict[str, DocumentStats], kind: str
) -> None:
    theirs, ours = real[kind], generated[kind]
    assert _close(ours.mean, theirs.mean, MEAN_TOLERANCE), (
        f"{kind}: mean {ours.mean:.0f} characters, real {theirs.mean:.0f}"
    )
    assert _close(ours.p95, theirs.p95, P95_TOLERANCE), (
        f"{kind}: 95th percentile {ours.p95:.0f} characters, real {theirs.p95:.0f}"
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("element", ELEMENTS)
def test_document_structure_matches_the_real_one(
    real: dict[str, DocumentStats], generated: dict[str, DocumentStats], kind: str, element: str
) -> None:
    theirs, ours = real[kind].elements[element], generated[kind].elements[element]
    assert _close(ours, theirs, MEAN_TOLERANCE), (
        f"{kind}: {ours:.2f} {element} per document, real {theirs:.2f}"
    )
