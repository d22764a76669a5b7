"""What GetRevisionIdList hands a downstream server, checked against the documents."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from databases import Database
from sqlalchemy import event, inspect

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import ExportRecord, write_export
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.metadata.model import CategoryType, RevisionKey, UpdateRevision, category_type_map
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.selection import (
    FilterItem,
    RevisionFilter,
    iter_revisions,
    select_revisions,
    with_descendants,
)
from updatesync.updateserver.store import UpdateStore


@pytest.fixture(scope="module")
def catalog() -> list[ExportRecord]:
    return list(generate_catalog(600, seed=11))


@pytest.fixture
def store(tmp_path: Path, catalog: list[ExportRecord], database: Database) -> UpdateStore:
    write_export(tmp_path / "m1.cab", catalog)
    opened = UpdateStore.open(tmp_path / "sup", url=database.url)
    import_export_cabinet(opened, tmp_path / "m1.cab")
    return opened


def _docs(records: list[ExportRecord]) -> list[UpdateRevision]:
    return [parse_update(r.xml) for r in records]


def _expected(
    docs: list[UpdateRevision], products: set[str], classes: set[str], among: set[RevisionKey]
) -> set[RevisionKey]:
    """Matching updates among `among`, plus the leaves their bundles name (computed here from
    the documents, independently of the store's SQL)."""
    kinds = category_type_map(docs)
    chosen = set()
    for doc in docs:
        if doc.update_type not in ("Software", "Driver") or doc.key not in among:
            continue
        prods, cls = doc.products_and_classifications(kinds)
        if set(prods) & products and set(cls) & classes:
            chosen.add(doc.key)
    by_key = {d.key: d for d in docs}
    leaves = {b for key in chosen for b in by_key[key].bundled_updates if b in by_key}
    return chosen | leaves


def _brought_before(
    docs: list[UpdateRevision],
    before: list[ExportRecord],
    products: set[str],
    classes: set[str],
) -> set[RevisionKey]:
    """The leaves a downstream got with an older revision of their bundle: named by a
    revision of the first import that the filter selects, and imported before it (records
    are numbered in the order of the cabinet)."""
    order = {r.key: n for n, r in enumerate(before)}
    kinds = category_type_map(docs)
    brought = set()
    for doc in docs:
        if doc.key not in order or doc.update_type not in ("Software", "Driver"):
            continue
        prods, cls = doc.products_and_classifications(kinds)
        if set(prods) & products and set(cls) & classes:
            brought |= {b for b in doc.bundled_updates if b in order and order[b] < order[doc.key]}
    return brought


def _pick(docs: list[UpdateRevision], kind: CategoryType) -> list[UpdateRevision]:
    return [d for d in docs if d.category_type is kind]


def test_config_lists_every_category_and_detectoid(
    store: UpdateStore, catalog: list[ExportRecord]
) -> None:
    docs = _docs(catalog)
    listed = select_revisions(store, RevisionFilter(get_config=True))
    assert set(listed) == {d.key for d in docs if d.update_type in ("Category", "Detectoid")}
    assert len(listed) == len(set(listed))


def test_product_and_classification_select_exactly_the_matching_updates(
    store: UpdateStore, catalog: list[ExportRecord]
) -> None:
    docs = _docs(catalog)
    everything = {d.key for d in docs}
    kinds = category_type_map(docs)
    used = [set(d.products_and_classifications(kinds)[0]) for d in docs if not d.is_category]
    product = next(
        p.update_id
        for p in _pick(docs, CategoryType.PRODUCT)
        if any(p.update_id in u for u in used)
    )
    security = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
    wanted = RevisionFilter(
        get_config=False,
        categories=(FilterItem(product),),
        classifications=(FilterItem(security),),
    )
    expected = _expected(docs, {product}, {security}, everything)
    assert expected, "the generated catalog files security updates under this product"
    listed = select_revisions(store, wanted)
    assert set(listed) == expected
    assert len(listed) == len(expected)


def test_a_family_selects_the_products_below_it(
    store: UpdateStore, catalog: list[ExportRecord]
) -> None:
    docs = _docs(catalog)
    family = _pick(docs, CategoryType.PRODUCT_FAMILY)[0]
    products = {
        p.update_id
        for p in _pick(docs, CategoryType.PRODUCT)
        if family.update_id in p.parent_categories
    }
    classes = {c.update_id for c in _pick(docs, CategoryType.UPDATE_CLASSIFICATION)}
    wanted = RevisionFilter(
        get_config=False,
        categories=(FilterItem(family.update_id),),
        classifications=tuple(FilterItem(c) for c in sorted(classes)),
    )
    expected = _expected(docs, products | {family.update_id}, classes, {d.key for d in docs})
    assert expected
    assert set(select_revisions(store, wanted)) == expected


def test_only_products_or_only_classifications_select_nothing_and_neither_all(
    store: UpdateStore, catalog: list[ExportRecord]
) -> None:
    docs = _docs(catalog)
    product = _pick(docs, CategoryType.PRODUCT)[0].update_id
    security = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
    only_products = RevisionFilter(get_config=False, categories=(FilterItem(product),))
    only_classes = RevisionFilter(get_config=False, classifications=(FilterItem(security),))
    assert select_revisions(store, only_products) == []
    assert select_revisions(store, only_classes) == []
    every_update = {d.key for d in docs if d.update_type in ("Software", "Driver")}
    assert set(select_revisions(store, RevisionFilter(get_config=False))) == every_update


def test_an_anchor_selects_what_changed_and_delta_false_selects_all_again(
    store: UpdateStore, catalog: list[ExportRecord], tmp_path: Path
) -> None:
    since = store.change_counter()
    evolved = list(evolve_catalog(iter(catalog), 60, seed=12))
    write_export(tmp_path / "m2.cab", evolved)
    import_export_cabinet(store, tmp_path / "m2.cab")
    new_keys = {r.key for r in evolved} - {r.key for r in catalog}
    assert len(new_keys) == 60
    docs = _docs(catalog) + [parse_update(r.xml) for r in evolved if r.key in new_keys]
    classes = {c.update_id for c in _pick(docs, CategoryType.UPDATE_CLASSIFICATION)}
    products = {p.update_id for p in _pick(docs, CategoryType.PRODUCT)}

    def wanted(delta: bool) -> RevisionFilter:
        return RevisionFilter(
            get_config=False,
            since=since,
            categories=tuple(FilterItem(p, delta) for p in sorted(products)),
            classifications=tuple(FilterItem(c) for c in sorted(classes)),
        )

    changed = set(select_revisions(store, wanted(delta=True)))
    brought = _brought_before(docs, catalog, products, classes)
    assert brought & _expected(docs, products, classes, new_keys), "leaves listed before"
    assert changed == _expected(docs, products, classes, new_keys) - brought
    assert set(select_revisions(store, RevisionFilter(get_config=True, since=since))) == set()
    everything = _expected(docs, products, classes, {d.key for d in docs})
    assert set(select_revisions(store, wanted(delta=False))) == everything


def test_a_listing_read_in_pages_stops_at_the_counter_it_began_with(
    store: UpdateStore, catalog: list[ExportRecord], tmp_path: Path
) -> None:
    every_update = RevisionFilter(get_config=False)
    whole = select_revisions(store, every_update)
    counter = store.change_counter()
    listing = iter_revisions(store, every_update, through=counter, page=50)
    begun = list(itertools.islice(listing, 120))
    evolved = list(evolve_catalog(iter(catalog), 60, seed=13))
    write_export(tmp_path / "m2.cab", evolved)
    import_export_cabinet(store, tmp_path / "m2.cab")  # commits while the listing is read
    assert begun + list(listing) == whole
    new_keys = {r.key for r in evolved} - {r.key for r in catalog}
    next_delta = set(select_revisions(store, RevisionFilter(get_config=False, since=counter)))
    assert {k for k in new_keys if k in set(select_revisions(store, every_update))} <= next_delta


def test_without_a_product_filter_every_update_is_listed_and_no_bundle_expanded(
    store: UpdateStore, catalog: list[ExportRecord]
) -> None:
    """A listing without products lists every software update and driver, bundle leaves
    included, once each, and never reads the bundles' lists to find leaves (at a million
    revisions that query ran for minutes before its first row)."""
    docs = _docs(catalog)
    assert any(doc.bundled_updates for doc in docs)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        listed = select_revisions(store, RevisionFilter(get_config=False))
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    updates = [doc.key for doc in docs if doc.update_type in ("Software", "Driver")]
    assert len(listed) == len(set(listed)) and set(listed) == set(updates)
    assert statements and not [s for s in statements if "json_" in s]


def test_a_delta_listing_reads_by_index_not_the_whole_catalog(
    store: UpdateStore, catalog: list[ExportRecord], tmp_path: Path
) -> None:
    """A delta's listing costs what changed, not what the store holds: on SQLite, no query of
    it scans a stored table (only the small sets it materializes itself are scanned)."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    since = store.change_counter()
    evolved = list(evolve_catalog(iter(catalog), 60, seed=14))
    write_export(tmp_path / "m2.cab", evolved)
    import_export_cabinet(store, tmp_path / "m2.cab")
    docs = _docs(catalog)
    products = sorted(p.update_id for p in _pick(docs, CategoryType.PRODUCT))
    classes = sorted(c.update_id for c in _pick(docs, CategoryType.UPDATE_CLASSIFICATION))
    statements: list[tuple[str, object]] = []

    def seen(_conn: object, _cursor: object, statement: str, params: object, *_: object) -> None:
        if statement.lstrip().startswith(("SELECT revision", "WITH")):
            statements.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        for wanted in (
            RevisionFilter(get_config=False, since=since),
            RevisionFilter(
                get_config=False,
                since=since,
                categories=tuple(FilterItem(p) for p in products),
                classifications=tuple(FilterItem(c) for c in classes),
            ),
        ):
            assert select_revisions(store, wanted)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert len(statements) >= 4
    materialized = {"listed_bundle", "leaves", "member"}  # member: one row's JSON list
    with store.engine.connect() as conn:
        for statement, params in statements:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
            scans = {row[3].split()[1] for row in plan if row[3].startswith("SCAN ")}
            assert scans <= materialized, (statement, plan)


def test_the_category_and_supersedes_lookups_use_the_partial_reverse_index(
    store: UpdateStore, catalog: list[ExportRecord]
) -> None:
    """Only category prerequisites and superseded updates are looked up from their target:
    the reverse index holds those kinds alone (migration 0006), and the lookups that need it
    still find an index, so a product filter never scans every bundled-update row."""
    indexes = {i["name"]: i for i in inspect(store.engine).get_indexes("revision_relation")}
    assert "ix_revision_relation_target" not in indexes
    assert "ix_revision_relation_reverse" in indexes
    with store.engine.connect() as conn:
        definition = conn.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_revision_relation_reverse'"
            if store.engine.dialect.name == "postgresql"
            else "SELECT sql FROM sqlite_master WHERE name = 'ix_revision_relation_reverse'"
        ).scalar_one()
    # Partial: bundled updates and plain prerequisites are not in it.
    assert "WHERE" in definition and "'prerequisite'" not in definition, definition
    assert "'category'" in definition and "'supersedes'" in definition, definition
    statements: list[tuple[str, object]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if "revision_relation" in statement:
            statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        with store.engine.connect() as conn:
            company = _pick(_docs(catalog), CategoryType.COMPANY)[0]
            found = with_descendants(conn, [company.update_id])
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert len(found) > 1  # the company's families and products were found
    assert statements and all("'category'" in sql for sql, _ in statements)
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            for sql, parameters in statements:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all()
                assert not any(row[-1].startswith("SCAN revision_relation") for row in plan), plan
