"""Every update document of a real WSUS export cabinet parses, with the right counts.

`wsus-export-2024-06.cab` holds 4,125 revisions: 3,674 detectoids and 451 categories
(367 Product, 61 ProductFamily, 20 UpdateClassification, 3 Company), per the fixtures
README. The export reader is used when it exists; otherwise a tiny splitter here reads
`metadata.txt` (records `guid,rev-hex8,len-hex8,<xml>` + CRLF, length in characters).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from updatesync.metadata.document import parse_update, parse_update_identity
from updatesync.metadata.model import (
    CategoryType,
    PublicationState,
    UpdateRevision,
    UpdateType,
    category_type_map,
)


def _shared_fixtures() -> Path:
    """../shared/fixtures beside the project (stand-in until tests/conftest.py has one)."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


EXPORT_2024 = _shared_fixtures() / "wsus-exports" / "wsus-export-2024-06.cab"


def _split_metadata(text: str) -> Iterator[tuple[str, int, str]]:
    """(update id, revision, xml) of each record of a metadata.txt."""
    pos = 1 if text.startswith("\ufeff") else 0
    while pos < len(text):
        uid, rev, length = text[pos : pos + 27].split(",")[:3]
        start = pos + len(uid) + len(rev) + len(length) + 3
        end = start + int(length, 16)
        yield uid, int(rev, 16), text[start:end]
        assert text[end : end + 2] == "\r\n", f"record at character {pos} not ended by CRLF"
        pos = end + 2


def _records(cab: Path, tmp: Path) -> list[tuple[str, int, str]]:
    try:
        from updatesync.metadata.export import read_export
    except ImportError:
        from pylibmspack import CabArchive

        CabArchive(str(cab)).extract_all(str(tmp))
        text = (tmp / "metadata.txt").read_text(encoding="utf-8", newline="")
        return list(_split_metadata(text))
    with read_export(cab) as export:
        return [(r.update_id, r.revision, r.xml) for r in export.records()]


@pytest.fixture(scope="module")
def export_2024(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int, str]]:
    if not EXPORT_2024.is_file():
        pytest.skip(f"real fixtures not present: {EXPORT_2024} (a user's clone)")
    return _records(EXPORT_2024, tmp_path_factory.mktemp("export-2024"))


@pytest.fixture(scope="module")
def revisions_2024(export_2024: list[tuple[str, int, str]]) -> list[UpdateRevision]:
    return [
        parse_update(xml, where=f"{EXPORT_2024.name} metadata.txt record {index}")
        for index, (_, _, xml) in enumerate(export_2024, start=1)
    ]


def test_every_document_parses_and_matches_its_record(
    export_2024: list[tuple[str, int, str]], revisions_2024: list[UpdateRevision]
) -> None:
    assert len(revisions_2024) == 4125
    for (uid, rev, xml), parsed in zip(export_2024, revisions_2024, strict=True):
        assert (parsed.update_id, parsed.revision) == (uid.lower(), rev)
        assert parsed.xml == xml
        assert parse_update_identity(xml) == parsed.key
    assert len({r.key for r in revisions_2024}) == 4125
    assert len({r.update_id for r in revisions_2024}) == 4087


def test_counts_by_type(revisions_2024: list[UpdateRevision]) -> None:
    types = Counter(r.update_type for r in revisions_2024)
    assert types == {UpdateType.DETECTOID: 3674, UpdateType.CATEGORY: 451}
    kinds = Counter(r.category_type for r in revisions_2024 if r.is_category)
    assert kinds == {
        CategoryType.PRODUCT: 367,
        CategoryType.PRODUCT_FAMILY: 61,
        CategoryType.UPDATE_CLASSIFICATION: 20,
        CategoryType.COMPANY: 3,
    }
    assert all(r.category_type is None for r in revisions_2024 if not r.is_category)


def test_every_product_sits_under_a_family_or_company_of_the_export(
    revisions_2024: list[UpdateRevision],
) -> None:
    kinds = category_type_map(revisions_2024)
    parents = (CategoryType.PRODUCT_FAMILY, CategoryType.COMPANY)
    products = [r for r in revisions_2024 if r.category_type is CategoryType.PRODUCT]
    assert len(products) == 367
    for product in products:
        assert product.parent_categories, f"{product.key} ({product.title()}) has no parent"
        for parent in product.parent_categories:
            assert kinds.get(parent) in parents, (
                f"{product.key}: parent {parent} is {kinds.get(parent)}"
            )


def test_facts_of_the_real_data(revisions_2024: list[UpdateRevision]) -> None:
    """Facts worth knowing about real exports, pinned so that a parser change shows."""
    # GUID case varies: 3,327 documents spell their own UpdateID in lower case, 667 in
    # upper case and 131 in mixed case ("7C40E8C2-01AE-47f5-9AF2-6E75A0582518").
    spelling = Counter()
    for r in revisions_2024:
        found = re.search(r'UpdateID="([^"]+)"', r.xml).group(1)
        assert found.lower() == r.update_id
        spelling[
            "lower" if found == r.update_id else "upper" if found == found.upper() else "mixed"
        ] += 1
    assert spelling == {"lower": 3327, "upper": 667, "mixed": 131}
    # Detectoids carry DetectoidType; categories never do.
    assert all(r.detectoid_type for r in revisions_2024 if r.update_type is UpdateType.DETECTOID)
    assert not any(r.detectoid_type for r in revisions_2024 if r.is_category)
    # Six revisions are Expired; everything else is Published.
    states = Counter(r.publication_state for r in revisions_2024)
    assert states == {PublicationState.PUBLISHED: 4119, PublicationState.EXPIRED: 6}
    # Every title exists in English, the default language of all of them.
    assert all(r.default_language == "en" and "en" in r.languages() for r in revisions_2024)
    # 132 documents hold line breaks inside their XML (so records are read by length).
    assert sum(1 for r in revisions_2024 if "\n" in r.xml) == 132
