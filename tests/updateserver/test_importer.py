"""Importing export cabinets into the update server's store: all or nothing, idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from databases import Database, Databases
from generated_catalog import parse_all
from sqlalchemy import event, select, text
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.metadata.cabinet import extract_member, write_cabinet
from updatesync.metadata.export import ExportRecord, write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import RevisionKey
from updatesync.updateserver import schema as t
from updatesync.updateserver.errors import ImportFailed
from updatesync.updateserver.importer import BATCH_SIZE, import_export_cabinet
from updatesync.updateserver.store import Subscription, UpdateStore

UPD = "http://schemas.microsoft.com/msus/2002/12/Update"
CAT = "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category"
PRODUCT = "11111111-0000-4000-8000-000000000001"
CLASSIFICATION = "11111111-0000-4000-8000-000000000002"


def _category(uid: str, kind: str, title: str) -> ExportRecord:
    xml = (
        f'<upd:Update xmlns:upd="{UPD}" xmlns:cat="{CAT}">'
        f'<upd:UpdateIdentity UpdateID="{uid.upper()}" RevisionNumber="1" />'
        '<upd:Properties UpdateType="Category" PublicationState="Published" '
        'DefaultPropertiesLanguage="en" />'
        "<upd:LocalizedPropertiesCollection><upd:LocalizedProperties><upd:Language>en"
        f"</upd:Language><upd:Title>{title}</upd:Title></upd:LocalizedProperties>"
        "</upd:LocalizedPropertiesCollection>"
        '<upd:HandlerSpecificData xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:type="cat:Category"><cat:CategoryInformation CategoryType="{kind}" />'
        "</upd:HandlerSpecificData></upd:Update>"
    )
    return ExportRecord(uid, 1, xml)


def _update(number: int, revision: int = 200, *, title: str | None = None) -> ExportRecord:
    uid = f"22222222-0000-4000-8000-{number:012d}"
    xml = (
        f'<upd:Update xmlns:upd="{UPD}">'
        f'<upd:UpdateIdentity UpdateID="{uid}" RevisionNumber="{revision}" />'
        '<upd:Properties UpdateType="Software" PublicationState="Published" '
        'DefaultPropertiesLanguage="en" MsrcSeverity="Important">'
        f"<upd:KBArticleID>{5000000 + number}</upd:KBArticleID></upd:Properties>"
        "<upd:LocalizedPropertiesCollection><upd:LocalizedProperties><upd:Language>en"
        f"</upd:Language><upd:Title>{title or f'Update {number}'}</upd:Title>"
        "</upd:LocalizedProperties></upd:LocalizedPropertiesCollection>"
        "<upd:Relationships><upd:Prerequisites>"
        f'<upd:AtLeastOne IsCategory="true"><upd:UpdateIdentity UpdateID="{PRODUCT}" />'
        "</upd:AtLeastOne>"
        f'<upd:AtLeastOne IsCategory="true"><upd:UpdateIdentity UpdateID="{CLASSIFICATION}" />'
        "</upd:AtLeastOne></upd:Prerequisites></upd:Relationships></upd:Update>"
    )
    return ExportRecord(uid, revision, xml)


def _catalog(count: int) -> list[ExportRecord]:
    return [
        _category(PRODUCT, "Product", "Windows 11"),
        _category(CLASSIFICATION, "UpdateClassification", "Security Updates"),
        *(_update(n) for n in range(count)),
    ]


def _snapshot(store: UpdateStore) -> tuple[object, ...]:
    status = store.status()
    with store.engine.connect() as conn:
        relations = conn.execute(text("select count(*) from revision_relation")).scalar_one()
    return (
        status.revisions,
        status.updates,
        status.by_type,
        status.last_change,
        relations,
        frozenset(store.revision_keys()),
    )


def test_newer_revision_becomes_latest_and_both_stay(tmp_path: Path, databases: Databases) -> None:
    write_export(tmp_path / "m1.cab", _catalog(3))
    write_export(tmp_path / "m2.cab", [_update(1, 201, title="Update 1 (re-released)")])
    with UpdateStore.open(tmp_path / "sup", url=databases.new("sup").url) as store:
        import_export_cabinet(store, tmp_path / "m1.cab")
        counter = store.change_counter()
        result = import_export_cabinet(store, tmp_path / "m2.cab")
        uid = _update(1).update_id
        assert result.new_revisions == 1
        assert store.latest_revision(uid) == 201
        assert "re-released" in (store.xml(uid) or "")
        assert "re-released" not in (store.xml(uid, 200) or "")
        assert store.changed_since(counter) == [RevisionKey(uid, 201)]
        assert store.status().updates == 5
        assert store.status().revisions == 6
        assert store.products_and_classifications(uid) == ([PRODUCT], [CLASSIFICATION])


def test_a_bad_record_after_many_good_batches_imports_nothing(
    tmp_path: Path, databases: Databases
) -> None:
    good = _catalog(5)
    write_export(tmp_path / "good.cab", good)
    records = _catalog(BATCH_SIZE * 3)
    bad_xml = records[-1].xml.replace("</upd:Update>", "")  # truncated document
    records[-1] = ExportRecord(records[-1].update_id, records[-1].revision, bad_xml)
    write_export(tmp_path / "bad.cab", records)
    with UpdateStore.open(tmp_path / "sup", url=databases.new("sup").url) as store:
        import_export_cabinet(store, tmp_path / "good.cab")
        before = _snapshot(store)
        with pytest.raises(ImportFailed) as failure:
            import_export_cabinet(store, tmp_path / "bad.cab")
        message = str(failure.value)
        assert f"record {len(records)}" in message
        assert "Nothing was imported" in message
        assert _snapshot(store) == before
        history = store.history()
        assert history[0].result == "Failed"
        assert history[0].error
        # The next import succeeds from there.
        fixed = _catalog(BATCH_SIZE * 3)
        write_export(tmp_path / "fixed.cab", fixed)
        result = import_export_cabinet(store, tmp_path / "fixed.cab")
        assert result.new_revisions == len(fixed) - len(good)
        assert store.status().revisions == len(fixed)


def test_a_record_whose_document_names_another_revision_is_refused(
    tmp_path: Path, databases: Databases
) -> None:
    real = _update(7)
    write_export(tmp_path / "lying.cab", [ExportRecord(real.update_id, 999, real.xml)])
    with UpdateStore.open(tmp_path / "sup", url=databases.new("sup").url) as store:
        with pytest.raises(ImportFailed, match="rev 999"):
            import_export_cabinet(store, tmp_path / "lying.cab")
        assert store.status().revisions == 0


@pytest.mark.parametrize(
    "payload",
    [
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        "<lolz>&lol2;</lolz>",
        '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>',
    ],
    ids=["billion-laughs", "external-entity"],
)
def test_hostile_documents_are_refused_and_nothing_is_stored(
    tmp_path: Path, payload: str, databases: Databases
) -> None:
    records = [*_catalog(2), ExportRecord("33333333-0000-4000-8000-000000000001", 1, payload)]
    write_export(tmp_path / "hostile.cab", records)
    with UpdateStore.open(tmp_path / "sup", url=databases.new("sup").url) as store:
        with pytest.raises(ImportFailed, match="record 5"):
            import_export_cabinet(store, tmp_path / "hostile.cab")
        assert store.status().revisions == 0
        assert store.change_counter() == 0


def test_a_truncated_cabinet_is_a_clear_error_and_the_store_is_unchanged(tmp_path: Path) -> None:
    write_export(tmp_path / "whole.cab", _catalog(200))
    data = (tmp_path / "whole.cab").read_bytes()
    (tmp_path / "cut.cab").write_bytes(data[: len(data) // 2])
    with UpdateStore.open(tmp_path / "sup") as store:
        import_export_cabinet(store, tmp_path / "whole.cab")
        before = _snapshot(store)
    runner = CliRunner()
    result = runner.invoke(
        app, ["updateserver", "import", "--data", str(tmp_path / "sup"), str(tmp_path / "cut.cab")]
    )
    assert result.exit_code == 1
    assert "cut.cab" in result.output
    assert "Traceback" not in result.output
    with UpdateStore.open(tmp_path / "sup") as store:
        assert _snapshot(store) == before


def test_subscription_is_kept_and_checked_against_the_categories(tmp_path: Path) -> None:
    write_export(tmp_path / "m1.cab", _catalog(3))
    runner = CliRunner()
    data = str(tmp_path / "sup")
    assert (
        runner.invoke(
            app, ["updateserver", "import", "--data", data, str(tmp_path / "m1.cab")]
        ).exit_code
        == 0
    )
    listed = runner.invoke(app, ["updateserver", "categories", "--data", data, "--json"])
    assert json.loads(listed.stdout) == [
        {"id": PRODUCT, "type": "Product", "title": "Windows 11", "parents": []},
        {
            "id": CLASSIFICATION,
            "type": "UpdateClassification",
            "title": "Security Updates",
            "parents": [],
        },
    ]
    wanted = Subscription(
        products=(PRODUCT,), classifications=(CLASSIFICATION,), languages=("en", "ja")
    )
    with UpdateStore.open(tmp_path / "sup") as store:
        store.set_subscription(wanted)
    # A classification given as a product, or an unknown id, is refused; nothing changes.
    swapped = runner.invoke(
        app,
        ["updateserver", "subscription", "--data", data, "--product", CLASSIFICATION],
    )
    assert swapped.exit_code == 1
    assert f"{CLASSIFICATION} cannot be a subscribed product" in swapped.output
    unknown = runner.invoke(
        app,
        ["updateserver", "subscription", "--data", data, "--classification", PRODUCT[:-1] + "9"],
    )
    assert unknown.exit_code == 1
    assert "not a category this server holds" in unknown.output
    shown = runner.invoke(app, ["updateserver", "subscription", "--data", data, "--json"])
    assert json.loads(shown.stdout) == {
        "products": [PRODUCT],
        "classifications": [CLASSIFICATION],
        "languages": ["en", "ja"],
    }
    with UpdateStore.open(tmp_path / "sup") as store:
        assert store.subscription() == wanted


def _corrupt_metadata(good: Path, out: Path, tmp_path: Path, damage: str) -> Path:
    """Rebuild `good` with its metadata.txt damaged near the end, after many good batches."""
    work = tmp_path / "members"
    package = extract_member(good, "package.xml", work, 2**30)
    metadata = extract_member(good, "metadata.txt", work, 2**30)
    raw = metadata.read_bytes()
    last = raw.rindex(b"\r\n", 0, len(raw) - 2) + 2  # start of the last record
    header, body = raw[last : last + 55], raw[last + 55 :]
    if damage == "length-too-short":
        length = int(header[46:54], 16)
        header = header[:46] + f"{length - 7:08x}".encode() + header[54:]
    elif damage == "length-too-long":
        length = int(header[46:54], 16)
        header = header[:46] + f"{length + 7:08x}".encode() + header[54:]
    elif damage == "invalid-utf8":
        body = body.replace(b"<upd:Title>", b"<upd:Title>\xff\xfe", 1)
    metadata.write_bytes(raw[:last] + header + body)
    write_cabinet(out, [("package.xml", package), ("metadata.txt", metadata)])
    return out


@pytest.mark.parametrize("damage", ["length-too-short", "length-too-long", "invalid-utf8"])
def test_a_damaged_metadata_record_imports_nothing(
    tmp_path: Path, damage: str, databases: Databases
) -> None:
    records = _catalog(BATCH_SIZE * 2 + 10)
    write_export(tmp_path / "good.cab", records)
    bad = _corrupt_metadata(tmp_path / "good.cab", tmp_path / "bad.cab", tmp_path, damage)
    with UpdateStore.open(tmp_path / "sup", url=databases.new("sup").url) as store:
        import_export_cabinet(store, tmp_path / "good.cab")
        before = _snapshot(store)
        with UpdateStore.open(tmp_path / "other", url=databases.new("other").url) as empty:
            with pytest.raises(ImportFailed) as failure:
                import_export_cabinet(empty, bad)
            assert f"record {len(records)}" in str(failure.value)
            assert empty.status().revisions == 0
            assert empty.history()[0].result == "Failed"
        with pytest.raises(ImportFailed):
            import_export_cabinet(store, bad)
        assert _snapshot(store) == before


def test_an_import_writes_each_table_in_bulk_and_stores_what_sqlite_stores(
    tmp_path: Path, database: Database
) -> None:
    records = list(generate_catalog(BATCH_SIZE * 2, seed=41))
    write_export(tmp_path / "catalog.cab", records)
    inserts: list[str] = []
    with (
        UpdateStore.open(tmp_path / "reference") as reference,
        UpdateStore.open(tmp_path / "sup", url=database.url) as store,
    ):
        import_export_cabinet(reference, tmp_path / "catalog.cab")

        @event.listens_for(store.engine, "before_cursor_execute")
        def _count(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("INSERT INTO REVISION"):
                inserts.append(statement.split("(")[0].split()[2])

        result = import_export_cabinet(store, tmp_path / "catalog.cab")

        batches = -(-len(records) // BATCH_SIZE)
        assert result.new_revisions == len(records)
        if database.is_postgresql:
            assert inserts == []  # COPY: no INSERT at all
        else:
            assert inserts.count("revision") == inserts.count("revision_relation") == batches
        keys = sorted(reference.revision_keys())
        assert keys == sorted(store.revision_keys()) == sorted(d.key for d in parse_all(records))
        assert store.documents(keys) == reference.documents(keys)
        assert list(store.iter_records()) == list(reference.iter_records())


def test_a_batch_costs_the_same_few_statements_whatever_it_holds(
    tmp_path: Path, database: Database
) -> None:
    """Per batch: one look-up of what is stored, the bulk writes, and ONE statement for the
    latest-revision view (an upsert), never a query of update_item per batch."""
    records = list(generate_catalog(BATCH_SIZE * 3, seed=43))
    write_export(tmp_path / "catalog.cab", records)
    statements: list[str] = []
    with UpdateStore.open(tmp_path / "sup", url=database.url) as store:

        @event.listens_for(store.engine, "before_cursor_execute")
        def _count(_conn, _cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
            statements.append(" ".join(statement.split()).upper())

        import_export_cabinet(store, tmp_path / "catalog.cab")
        batches = -(-len(records) // BATCH_SIZE)
        on_latest = [s for s in statements if "UPDATE_ITEM" in s]
        assert len(on_latest) == batches
        assert all(s.startswith("INSERT INTO UPDATE_ITEM") for s in on_latest)
        assert store.status().updates == len({r.update_id for r in records})


def test_an_older_revision_arriving_later_never_becomes_the_latest(
    tmp_path: Path, databases: Databases
) -> None:
    write_export(tmp_path / "new.cab", [*_catalog(2), _update(1, 205, title="Newest")])
    write_export(tmp_path / "old.cab", [_update(1, 201, title="Older"), _update(7, 3)])
    with UpdateStore.open(tmp_path / "sup", url=databases.new("sup").url) as store:
        import_export_cabinet(store, tmp_path / "new.cab")
        result = import_export_cabinet(store, tmp_path / "old.cab")
        assert result.new_revisions == 2
        uid = _update(1).update_id
        assert store.latest_revision(uid) == 205
        assert "Newest" in (store.xml(uid) or "")
        assert store.latest_revision(_update(7).update_id) == 3


def test_titles_in_any_script_are_stored_as_written(tmp_path: Path, database: Database) -> None:
    title = "Обновление для Windows 11 — 更新プログラム"
    write_export(tmp_path / "m.cab", [*_catalog(0), _update(3, title=title)])
    with UpdateStore.open(tmp_path / "sup", url=database.url) as store:
        import_export_cabinet(store, tmp_path / "m.cab")
        with store.engine.connect() as conn:
            stored, xml = conn.execute(
                select(t.revision.c.title, t.revision.c.xml).where(
                    t.revision.c.update_id == _update(3).update_id
                )
            ).one()
        assert stored == title
        assert title in xml  # the document itself, not &#NNNN; references
