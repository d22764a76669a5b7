"""Document-size figures every bench prints beside its timings.

A figure per revision means little without the size of the revisions: the generated catalogs
are calibrated on real documents (see docs/architecture.md, "Generated catalogs"), and this
module prints what the measured catalog actually held. Use it from a bench (bench/ is on the
path when a bench runs as `python bench/<name>.py`):

    from docstats import catalog_doc_stats, doc_stats_line

    stats = catalog_doc_stats(cabinet_path)   # or any iterable of ExportRecord
    print(doc_stats_line(stats))              # "documents: 10,127, mean 12,873 characters, ..."
    figures.update(stats)                     # into the bench's last line of JSON

`catalog_doc_stats` returns {"doc_mean_chars": ..., "doc_p95_chars": ..., "doc_count": ...}
(characters of the update XML, as metadata.txt counts them; the 95th percentile interpolated
between ranks). It reads the cabinet once, keeping one integer per revision. Run alone, it
prints the line for each cabinet named: `python bench/docstats.py catalog.cab ...`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from pathlib import Path

from updatesync.metadata.export import ExportRecord, read_export
from updatesync.metadata.generator.shape import size_stats


def catalog_doc_stats(source: Path | str | Iterable[ExportRecord]) -> dict[str, float]:
    """Mean and 95th percentile of the document size (characters) of a catalog: an export
    cabinet's path, or its records."""
    sizes = array("L")
    if isinstance(source, (str, Path)):
        with read_export(Path(source)) as export:
            sizes.extend(len(record.xml) for record in export.records())
    else:
        sizes.extend(len(record.xml) for record in source)
    mean, p95 = size_stats(sizes)
    return {"doc_mean_chars": round(mean), "doc_p95_chars": round(p95), "doc_count": len(sizes)}


def doc_stats_line(stats: dict[str, float]) -> str:
    """One line for a bench's output."""
    return (
        f"documents: {stats.get('doc_count', 0):,}, mean {stats['doc_mean_chars']:,.0f} "
        f"characters, 95th percentile {stats['doc_p95_chars']:,.0f} (real software updates: "
        "mean about 13,000, 95th percentile about 30,000)"
    )


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:]:
        print(f"{name}: {doc_stats_line(catalog_doc_stats(name))}")
