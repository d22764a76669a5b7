"""Synthetic update catalogs of the real shape, for tests, demos and benchmarks.

`generate_catalog` streams `ExportRecord`s as a WSUS export holds them: the category
revisions first (companies, product families, products, the real update classifications,
then 40 detectoids), then update revisions (Software mostly, some Driver) whose documents look
like the ones Microsoft Update serves: `upd:` identity and properties, titles and descriptions
in several languages, product/classification prerequisites as `AtLeastOne IsCategory="true"`
groups, detectoid prerequisites, bundle families (leaves, hidden sub-bundles, the bundle),
supersedence chains within a product, files with SHA-1 and SHA-256 digests, applicability
rules and handler data. Per kind, their size (mean, 95th percentile) and structure follow the
real documents (`shape` measures both; docs/architecture.md has the figures). Real
categories (from an export) may be passed in instead: they come out byte-identical and the
updates are filed under their products and classifications.

`evolve_catalog` turns one catalog into "next month's": it passes every record through and
applies an exact number of changes (new updates, new revisions with a changed title or
description, expirations), in one pass over its input.

Everything is deterministic for a given seed: the only randomness is `random.Random(seed)`,
GUIDs come from it, and dates are a fixed base date plus seed-driven offsets. Memory does not
grow with the number of updates: the generator keeps only a few recent update ids per
product (for supersedence); `evolve_catalog` keeps the records it is about to change.

The modules: `tables` (namespaces, publishers, dates, classifications, the category tree,
texts, the real size distributions) and `templates` (the kinds of updates per product kind) are
tables; `markup` writes document fragments and `rules` applicability rule blocks;
`categories` and `updates` generate the records, `license_terms` the license terms an
update names (its `upd:EulaFiles` and the texts of those files); `shape` measures
documents; `catalog` holds `generate_catalog` and `catalog_stats`, `evolve` holds
`evolve_catalog`.
"""

from __future__ import annotations

from updatesync.metadata.generator.catalog import CatalogStats, catalog_stats, generate_catalog
from updatesync.metadata.generator.evolve import evolve_catalog
from updatesync.metadata.generator.license_terms import LicenseTermsFile, license_terms
from updatesync.metadata.generator.tables import CLASSIFICATIONS, Classification

__all__ = [
    "CLASSIFICATIONS",
    "CatalogStats",
    "Classification",
    "LicenseTermsFile",
    "catalog_stats",
    "evolve_catalog",
    "generate_catalog",
    "license_terms",
]
