"""The shape of update documents: size and structure statistics per kind of update.

`document_stats` measures a set of update documents (real ones captured from Microsoft
Update, or generated ones) per kind (`Software`, `Driver`, `Detectoid`, `Category`): how many,
the mean and 95th percentile of their size in characters, and the mean count per document of
the structural elements that make real documents large (prerequisite groups, applicability
rule elements, files, languages of localized properties, bundled-update references,
superseded-update references). The generator is calibrated on these figures and
`tests/metadata/test_generator_shape.py` compares them; `size_stats` gives the two size
figures alone, cheaply, for benches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

__all__ = [
    "ELEMENTS",
    "DocumentStats",
    "document_stats",
    "percentile",
    "size_for_rank",
    "size_stats",
]

_UPD: Final = "{http://schemas.microsoft.com/msus/2002/12/Update}"

ELEMENTS: Final = (
    "prerequisite_groups",
    "rule_elements",
    "files",
    "languages",
    "bundled",
    "superseded",
)
"""The structural counts `DocumentStats.elements` holds (means per document)."""

_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def percentile(values: Iterable[int], share: float = 0.95) -> float:
    """The `share` percentile of `values`, interpolated linearly between the closest ranks
    (as numpy's default); 0.0 for no values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * share
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def size_stats(sizes: Iterable[int]) -> tuple[float, float]:
    """(mean, 95th percentile) of document sizes; (0.0, 0.0) for none."""
    values = list(sizes)
    if not values:
        return 0.0, 0.0
    return sum(values) / len(values), percentile(values)


def size_for_rank(percentiles: tuple[int, ...], rank: int, count: int) -> int:
    """The target size of the `rank`-th smallest of `count` documents: the mean of
    `percentiles` over the share of the distribution that rank stands for."""
    buckets = len(percentiles)
    low, high = rank * buckets / count, (rank + 1) * buckets / count
    total = 0.0
    position = low
    while position < high - 1e-9:
        index = min(int(position), buckets - 1)
        step = min(high, index + 1) - position
        total += percentiles[index] * step
        position += step
    return round(total / (high - low))


@dataclass(slots=True)
class DocumentStats:
    """Statistics of the documents of one kind (see `document_stats`)."""

    kind: str
    count: int = 0
    mean: float = 0.0
    p95: float = 0.0
    elements: dict[str, float] = field(default_factory=dict)

    def row(self) -> str:
        """One line: kind, count, mean and p95 size, then the element means."""
        counts = " ".join(f"{name}={self.elements.get(name, 0.0):.2f}" for name in ELEMENTS)
        return (
            f"{self.kind:<10} n={self.count:<6} mean={self.mean:>8.0f} p95={self.p95:>8.0f} "
            f"{counts}"
        )


def _kind(root: etree._Element) -> str:
    props = root.find(f"{_UPD}Properties")
    return (props.get("UpdateType") if props is not None else None) or "?"


def _counts(root: etree._Element) -> dict[str, int]:
    """The structural counts of one parsed document."""
    counts = dict.fromkeys(ELEMENTS, 0)
    relationships = root.find(f"{_UPD}Relationships")
    if relationships is not None:
        prerequisites = relationships.find(f"{_UPD}Prerequisites")
        if prerequisites is not None:
            # an AtLeastOne group, or a lone UpdateIdentity (a group of one)
            counts["prerequisite_groups"] = len(prerequisites)
        bundled = relationships.find(f"{_UPD}BundledUpdates")
        if bundled is not None:
            counts["bundled"] = sum(1 for _ in bundled.iter(f"{_UPD}UpdateIdentity"))
        superseded = relationships.find(f"{_UPD}SupersededUpdates")
        if superseded is not None:
            counts["superseded"] = len(superseded)
    rules = root.find(f"{_UPD}ApplicabilityRules")
    if rules is not None:
        # every rule element below IsInstalled / IsInstallable / IsSuperseded / Metadata
        counts["rule_elements"] = sum(
            1 for block in rules for element in block.iter() if element is not block
        )
    files = root.find(f"{_UPD}Files")
    if files is not None:
        counts["files"] = len(files)
    localized = root.find(f"{_UPD}LocalizedPropertiesCollection")
    if localized is not None:
        counts["languages"] = len(localized)
    return counts


def document_stats(documents: Iterable[str]) -> dict[str, DocumentStats]:
    """Statistics per kind (the `UpdateType` of each document) of update documents.

    Each document is parsed once (with a hardened parser); sizes are in characters of the
    XML text as given.
    """
    sizes: dict[str, list[int]] = {}
    totals: dict[str, dict[str, int]] = {}
    for xml in documents:
        root = etree.fromstring(xml.encode("utf-8"), _PARSER)
        kind = _kind(root)
        sizes.setdefault(kind, []).append(len(xml))
        total = totals.setdefault(kind, dict.fromkeys(ELEMENTS, 0))
        for name, value in _counts(root).items():
            total[name] += value
    result = {}
    for kind, values in sizes.items():
        mean, p95 = size_stats(values)
        result[kind] = DocumentStats(
            kind,
            len(values),
            mean,
            p95,
            {name: value / len(values) for name, value in totals[kind].items()},
        )
    return result


def stats_table(stats: Mapping[str, DocumentStats]) -> str:
    """The rows of `stats`, one line per kind, in a fixed order."""
    order = ("Software", "Driver", "Detectoid", "Category")
    kinds = sorted(stats, key=lambda k: (order.index(k) if k in order else len(order), k))
    return "\n".join(stats[kind].row() for kind in kinds)
