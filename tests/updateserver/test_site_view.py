"""Updates as configuration items, as the site server reads them (over the admin API)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from databases import Databases
from sqlalchemy import Engine, event

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import ExportRecord, write_export
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.metadata.model import UpdateRevision, category_type_map
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.admin_api import _jsonable, admin_routes
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.site_view import changed_categories, changed_updates
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.service import create_app

SECURITY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"


@pytest.fixture(scope="module")
def month1() -> list[ExportRecord]:
    return list(generate_catalog(800, seed=31))


def _latest(docs: list[UpdateRevision]) -> dict[str, UpdateRevision]:
    latest: dict[str, UpdateRevision] = {}
    for doc in docs:
        if doc.update_type in ("Software", "Driver"):
            held = latest.get(doc.update_id)
            if held is None or doc.revision > held.revision:
                latest[doc.update_id] = doc
    return latest


def _read_all(http: httpx.Client, **params: object) -> list[dict]:
    items, after = [], None
    while True:
        query = {**params, "limit": 7, **({"after": after} if after is not None else {})}
        page = http.get("/api/updates", params=query).json()
        items += page["items"]
        after = page["next_after"]
        if after is None:
            return items


def test_updates_as_cis_then_only_what_changed(
    month1: list[ExportRecord], tmp_path: Path, databases: Databases
) -> None:
    month2 = list(evolve_catalog(iter(month1), 60, seed=32))
    write_export(tmp_path / "m1.cab", month1)
    write_export(tmp_path / "m2.cab", month2)
    store = UpdateStore.open(tmp_path / "sup", url=databases.new().url)
    import_export_cabinet(store, tmp_path / "m1.cab")
    app = create_app(StoreBackend(store), extra_routes=admin_routes(store, None))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
        docs = [parse_update(r.xml) for r in month1]
        kinds = category_type_map(docs)
        product = _busiest_product(month1)  # so that next month changes some
        latest = _latest(docs)
        superseded = {uid for d in latest.values() for uid in d.superseded_updates}

        def expected(latest: dict[str, UpdateRevision], superseded: set[str]) -> dict[str, tuple]:
            out = {}
            for uid, doc in latest.items():
                prods, cls = doc.products_and_classifications(kinds)
                if product in prods and SECURITY in cls:
                    digest = hashlib.sha256(doc.xml.encode("utf-8")).hexdigest()
                    out[uid] = (doc.revision, doc.title(), doc.kb_article, uid in superseded)
                    out[uid] += (digest, sorted(prods), sorted(cls))
            return out

        def listed(items: list[dict]) -> dict[str, tuple]:
            return {
                i["update_id"]: (
                    i["revision"],
                    i["title"],
                    i["kb_article"],
                    i["is_superseded"],
                    i["xml_sha256"],
                    sorted(i["products"]),
                    sorted(i["classifications"]),
                )
                for i in items
            }

        first = _read_all(http, product=product, classification=SECURITY)
        assert len(first) == len({i["update_id"] for i in first}), "each update once"
        want = expected(latest, superseded)
        assert want, "the catalog files security updates under this product"
        assert listed(first) == want

        counter = store.change_counter()
        import_export_cabinet(store, tmp_path / "m2.cab")
        docs2 = docs + [parse_update(r.xml) for r in month2 if r.key not in {x.key for x in month1}]
        latest2 = _latest(docs2)
        superseded2 = {uid for d in latest2.values() for uid in d.superseded_updates}
        want2 = expected(latest2, superseded2)
        changed = {uid for uid, row in want2.items() if uid not in want or want[uid] != row}
        assert changed, "next month changes some security updates of this product"
        delta = _read_all(http, since=counter, product=product, classification=SECURITY)
        assert len(delta) == len({i["update_id"] for i in delta}), "each update once"
        assert {i["update_id"] for i in delta} == changed
        assert listed(delta) == {uid: want2[uid] for uid in changed}
        # The page as answered holds every field of the summaries, as they are.
        page = changed_updates(store, since=counter, products=[product], classifications=[SECURITY])
        assert page.items and page.to_json() == _jsonable(page)
        categories = http.get("/api/categories", params={"since": 0}).json()["items"]
        types = [c["category_type"] for c in categories]
        assert types == sorted(
            types, key=["Company", "ProductFamily", "Product", "UpdateClassification"].index
        )
    store.close()


def test_every_update_page_by_page_without_a_subscription(
    month1: list[ExportRecord], tmp_path: Path, databases: Databases
) -> None:
    """With no products and no classifications a site is given every update, each once,
    with its latest revision's digest, over pages of any size."""
    write_export(tmp_path / "m1.cab", month1)
    store = UpdateStore.open(tmp_path / "sup", url=databases.new().url)
    import_export_cabinet(store, tmp_path / "m1.cab")
    latest = _latest([parse_update(r.xml) for r in month1])
    items, after, pages = [], None, 0
    while True:
        page = changed_updates(store, after=after, limit=50)
        items += page.items
        pages += 1
        if page.next_after is None:
            break
        after = page.next_after
    store.close()
    assert pages > len(latest) // 50
    assert len(items) == len({i.update_id for i in items}) == len(latest)
    assert {i.update_id: (i.revision, i.xml_sha256) for i in items} == {
        uid: (doc.revision, hashlib.sha256(doc.xml.encode("utf-8")).hexdigest())
        for uid, doc in latest.items()
    }


def test_a_delta_page_reads_what_changed_not_the_catalog(
    month1: list[ExportRecord], tmp_path: Path
) -> None:
    """The site's delta page costs what changed: every query it runs is an index search on
    SQLite (EXPLAIN QUERY PLAN), none a scan of the revisions or their relations (the
    updates superseded since the last sync were found by listing every supersedes relation
    of the catalog: 2.4 s of a 100-change delta at 65,000 revisions)."""
    write_export(tmp_path / "m1.cab", month1)
    write_export(tmp_path / "m2.cab", list(evolve_catalog(iter(month1), 60, seed=32)))
    with UpdateStore.open(tmp_path / "sup") as store:
        import_export_cabinet(store, tmp_path / "m1.cab")
        counter = store.change_counter()
        import_export_cabinet(store, tmp_path / "m2.cab")
        with _statements(store.engine) as statements:
            page = changed_updates(
                store,
                since=counter,
                products=[_busiest_product(month1)],
                classifications=[SECURITY],
            )
        assert page.items
        with store.engine.connect() as conn:
            for sql, parameters in statements:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all()
                scans = [row[-1] for row in plan if row[-1].startswith("SCAN ")]
                allowed = ("SCAN changed", "SCAN store_state")  # the CTE; the one-row table
                assert all(scan.startswith(allowed) for scan in scans), (sql, plan)


def test_the_categories_are_found_by_type_not_by_walking_every_revision(
    month1: list[ExportRecord], tmp_path: Path
) -> None:
    """A site's first call of its site-database phase (`/api/categories?since=0`) reads the
    categories from update_item's type index: found by the revisions' change numbers, SQLite
    walked every revision of the store, and at a million revisions (16 GB) the site's call
    timed out (bench/site_scale.py)."""
    write_export(tmp_path / "m1.cab", month1)
    with UpdateStore.open(tmp_path / "sup") as store:
        import_export_cabinet(store, tmp_path / "m1.cab")
        with _statements(store.engine) as statements:
            found = changed_categories(store, since=0)
        assert {c.update_id for c in found} == {c.update_id for c in store.categories()}
        with store.engine.connect() as conn:
            ((sql, parameters),) = [(q, a) for q, a in statements if "JOIN update_item" in q]
            plan = [
                row[-1]
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all()
            ]
        assert plan[0].startswith("SEARCH update_item USING INDEX ix_update_item_type"), plan
        assert not any("revision" in step and "change_number" in step for step in plan), plan


@contextmanager
def _statements(engine: Engine) -> Iterator[list[tuple[str, object]]]:
    """Every statement (and its parameters) run on `engine` inside the block."""
    statements: list[tuple[str, object]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def _busiest_product(records: list[ExportRecord]) -> str:
    """The product with the most security updates."""
    docs = [parse_update(r.xml) for r in records]
    kinds = category_type_map(docs)
    counts: dict[str, int] = {}
    for doc in docs:
        prods, cls = doc.products_and_classifications(kinds)
        if SECURITY in cls:
            for p in prods:
                counts[p] = counts.get(p, 0) + 1
    return max(counts, key=counts.__getitem__)
