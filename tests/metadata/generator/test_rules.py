"""Tests of `updatesync.metadata.generator.rules`: applicability rule blocks of the real size."""

from __future__ import annotations

import random

import pytest
from lxml import etree

from updatesync.metadata.generator.rules import PAIRS, update_rules

_VALUES = {"ver": "1.459.547.0", "file": "AM_Delta.exe", "build": "22631"}


@pytest.mark.parametrize("kind", ["defender", "windows", "driver", "office", "sql", "lob"])
def test_a_rule_block_is_well_formed_and_as_large_as_a_real_one(kind: str) -> None:
    rng = random.Random(5)
    sizes = []
    for _ in range(40):
        xml = update_rules(kind, "Microsoft\\Contoso", _VALUES, "9", rng)
        root = etree.fromstring(
            f'<r xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update">{xml}</r>'
        )
        elements = sum(1 for block in root[0] for e in block.iter() if e is not block)
        low, high = PAIRS
        assert 19 + 3 * low <= elements <= 19 + 3 * high
        sizes.append(len(xml))
    # the real Defender leaves carry 54 to 67 rule elements in 10,000 to 12,500 characters
    assert 6_000 < sum(sizes) / len(sizes) < 14_000
    assert len(set(sizes)) > 1


def test_every_element_declares_its_namespace_as_real_ones_do() -> None:
    xml = update_rules("office", "Microsoft\\Office", _VALUES, "0", random.Random(1))
    assert "<msiar:MsiPatchInstalledForProduct" in xml
    assert xml.count("<msiar:") == xml.count("xmlns:msiar=")
    windows = update_rules("windows", "k", _VALUES, "9", random.Random(1))
    assert "<cbsar:CbsPackageInstalledByIdentity" in windows and "~~22631." in windows
