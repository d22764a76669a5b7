"""Tests of DeclaredIndex (metadata/declared.py): the declared revisions of an export in a
scratch SQLite file, written and checked in batches. Reading whole exports through it is
tested in tests/metadata/test_export.py."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from updatesync.metadata.declared import DeclaredIndex
from updatesync.metadata.model import RevisionKey

KEYS = [RevisionKey(str(uuid.UUID(int=i + 1)), 1 + i % 4) for i in range(2600)]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[DeclaredIndex]:
    declared = DeclaredIndex(tmp_path / "declared.sqlite")
    yield declared
    declared.close()


def _declare(index: DeclaredIndex, keys: list[RevisionKey]) -> tuple[int, RevisionKey] | None:
    for key in keys:
        twice = index.add(key)
        if twice is not None:
            return twice
    return index.settle()


def test_keys_come_back_in_declared_order(index: DeclaredIndex) -> None:
    assert _declare(index, KEYS) is None
    assert index.count == len(KEYS)
    assert list(index) == KEYS


@pytest.mark.parametrize(
    ("again_at", "of"),
    [(1500, 10), (999, 998), (2599, 2598), (1000, 3)],
    ids=["batches apart", "same batch", "last, unsettled", "first of a batch"],
)
def test_a_revision_declared_twice_is_found_with_its_number(
    index: DeclaredIndex, again_at: int, of: int
) -> None:
    keys = [*KEYS[:again_at], KEYS[of], *KEYS[again_at:]]
    assert _declare(index, keys) == (again_at + 1, KEYS[of])


def test_the_first_of_two_repeats_is_the_one_reported(index: DeclaredIndex) -> None:
    keys = [*KEYS[:1200], KEYS[5], *KEYS[1200:1300], KEYS[1250]]
    assert _declare(index, keys) == (1201, KEYS[5])


@pytest.mark.parametrize("order", ["declared", "shuffled"])
def test_records_are_ticked_off_once_in_any_order(index: DeclaredIndex, order: str) -> None:
    _declare(index, KEYS)
    records = list(KEYS)
    if order == "shuffled":
        random.Random(3).shuffle(records)
    gone = records.pop(1700)
    assert [index.mark(k) for k in records] == [None] * len(records)
    assert index.mark(records[2]) == "appears a second time"
    assert index.mark(RevisionKey(str(uuid.UUID(int=99_999)), 1)) == (
        "is not declared in package.xml"
    )
    assert index.missing() == (gone, 1)
    assert index.mark(gone) is None
    assert index.missing() is None
