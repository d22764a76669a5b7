"""Tests of `updatesync.metadata.generator.shape`: size and structure statistics of update
documents, per kind."""

from __future__ import annotations

import pytest
from lxml import etree

from updatesync.metadata.generator.shape import (
    ELEMENTS,
    document_stats,
    percentile,
    size_for_rank,
    size_stats,
    stats_table,
)

_UPD = 'xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update"'
_BAR = 'xmlns:bar="http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules"'


def _software(languages: int, bundled: int) -> str:
    texts = "".join(
        f"<upd:LocalizedProperties><upd:Language>l{n}</upd:Language><upd:Title>t</upd:Title>"
        "</upd:LocalizedProperties>"
        for n in range(languages)
    )
    refs = "".join(
        f'<upd:UpdateIdentity UpdateID="00000000-0000-0000-0000-{n:012d}" RevisionNumber="1" />'
        for n in range(bundled)
    )
    return (
        f'<upd:Update {_UPD} {_BAR}><upd:UpdateIdentity UpdateID="a" RevisionNumber="1" />'
        '<upd:Properties UpdateType="Software" />'
        f"<upd:LocalizedPropertiesCollection>{texts}</upd:LocalizedPropertiesCollection>"
        '<upd:Relationships><upd:SupersededUpdates><upd:UpdateIdentity UpdateID="s" />'
        '</upd:SupersededUpdates><upd:Prerequisites><upd:UpdateIdentity UpdateID="d" />'
        '<upd:AtLeastOne IsCategory="true"><upd:UpdateIdentity UpdateID="c1" />'
        '<upd:UpdateIdentity UpdateID="c2" /></upd:AtLeastOne></upd:Prerequisites>'
        f"<upd:BundledUpdates><upd:AtLeastOne>{refs}</upd:AtLeastOne></upd:BundledUpdates>"
        "</upd:Relationships><upd:ApplicabilityRules><upd:IsInstalled><bar:RegKeyExists />"
        "</upd:IsInstalled><upd:IsInstallable><bar:Processor /><bar:WindowsVersion />"
        "</upd:IsInstallable></upd:ApplicabilityRules><upd:Files><upd:File /><upd:File />"
        "</upd:Files></upd:Update>"
    )


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([]) == 0.0
    assert percentile([7]) == 7
    assert percentile(range(101)) == pytest.approx(95)
    assert percentile([10, 20], 0.5) == pytest.approx(15)
    assert size_stats([]) == (0.0, 0.0)
    assert size_stats([1, 3]) == (2.0, pytest.approx(2.9))


def test_document_stats_counts_each_structure_per_kind() -> None:
    category = (
        f'<upd:Update {_UPD}><upd:UpdateIdentity UpdateID="c" RevisionNumber="1" />'
        '<upd:Properties UpdateType="Category" /></upd:Update>'
    )
    documents = [_software(2, 3), _software(4, 5), category]
    stats = document_stats(documents)
    assert set(stats) == {"Software", "Category"}
    software = stats["Software"]
    assert software.count == 2
    assert software.mean == (len(documents[0]) + len(documents[1])) / 2
    assert software.elements == {
        "prerequisite_groups": 2,  # a lone identity and an AtLeastOne group
        "rule_elements": 3,
        "files": 2,
        "languages": 3,
        "bundled": 4,
        "superseded": 1,
    }
    assert stats["Category"].elements == dict.fromkeys(ELEMENTS, 0)
    table = stats_table(stats)
    assert table.splitlines()[0].startswith("Software") and "Category" in table


def test_document_stats_refuses_what_is_not_xml() -> None:
    with pytest.raises(etree.XMLSyntaxError):
        document_stats(["<upd:Update"])


def test_size_for_rank_follows_the_distribution_share_by_share() -> None:
    percentiles = tuple(range(100, 10_100, 100))  # 100 buckets: 100, 200, ... 10,000
    assert [size_for_rank(percentiles, rank, 4) for rank in range(4)] == [
        1_300,
        3_800,
        6_300,
        8_800,  # the mean of each quarter
    ]
    sizes = [size_for_rank(percentiles, rank, 35) for rank in range(35)]
    assert sizes == sorted(sizes)
    assert sum(sizes) / 35 == pytest.approx(sum(percentiles) / 100, rel=0.001)
    assert size_for_rank(percentiles, 0, 1) == round(sum(percentiles) / 100)
