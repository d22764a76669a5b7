"""The consistency audit between two real update servers over loopback HTTP: B syncs from
A over MS-WSUSSS and ends each sync with GetRevisionSetDigest (our extension), and against
a stand-in of a real WSUS, which faults on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import Databases
from drift import lose_revision
from fake_upstream import FakeCatalog, FakeUpstream, serve
from wire import recorded_sync

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator import evolve_catalog, generate_catalog
from updatesync.metadata.model import RevisionKey
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.digest import RevisionDigest, stored
from updatesync.updateserver.importer import import_records
from updatesync.updateserver.peers import upstream_state
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync.audit import last_audit
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.faults import ErrorCode, WsusssFault
from updatesync.wsusss.service import create_app

SECURITY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"


@pytest.fixture(scope="module")
def month1() -> list[ExportRecord]:
    return list(generate_catalog(300, seed=67))


@pytest.fixture
def upstream(tmp_path: Path, databases: Databases) -> Iterator[tuple[UpdateStore, str]]:
    store = UpdateStore.open(tmp_path / "A", url=databases.new("a").url)
    with BackgroundServer(create_app(StoreBackend(store))) as server:
        yield store, server.url
    store.close()


def _log(store_dir: Path) -> str:
    return (store_dir / "logs" / "SoftwareDistribution.log").read_text(encoding="utf-8")


def test_a_mirror_is_proven_equal_and_stays_so_while_its_upstream_moves_on(
    upstream: tuple[UpdateStore, str],
    month1: list[ExportRecord],
    tmp_path: Path,
    databases: Databases,
) -> None:
    store_a, url = upstream
    import_records(store_a, month1, source="month 1")
    with UpdateStore.open(tmp_path / "B", url=databases.new("b").url) as store_b:
        result, _ = recorded_sync(store_b, url)
        audit = result.audit
        assert audit is not None and audit.result == "equal" and audit.scope == "all"
        held = RevisionDigest.of(store_a.revision_keys())
        assert (audit.upstream_digest, audit.upstream_count) == (held.hex, held.count)
        assert (audit.own_digest, audit.own_count) == (held.hex, held.count)
        assert last_audit(store_b, url) == audit
        assert (
            f"Revision set audit against {url}: equal ({held.count} revisions, scope all)"
            in _log(tmp_path / "B")
        )
        # A takes next month's revisions after B's anchors: asked for those anchors, it
        # answers what it held then (its kept digest less what came after), not its present.
        import_records(store_a, list(evolve_catalog(iter(month1), 40, seed=68)), source="m2")
        state = upstream_state(store_b, url)
        with UpstreamClient(url) as client:
            plugin = (client.get_auth_config().auth_info or ())[0]
            assert plugin.service_url is not None
            auth = client.get_authorization_cookie(
                plugin.service_url, "b.contoso.com", "7a1d0c4e-2b4f-4c36-9a3e-5f2d8c1b6e07"
            )
            cookie = client.get_cookie([auth])
            answer = client.get_revision_set_digest(
                cookie, state.config_list_anchor or "", state.update_list_anchor or ""
            )
        with store_b.engine.connect() as conn:
            own, _ = stored(conn)
        assert (answer.digest, answer.count, answer.scope) == (own.hex, own.count, "all")
        with store_a.engine.connect() as conn:
            assert stored(conn)[0].count > own.count


def test_a_drift_is_found_and_the_full_sync_after_it_repairs_it(
    upstream: tuple[UpdateStore, str],
    month1: list[ExportRecord],
    tmp_path: Path,
    databases: Databases,
) -> None:
    store_a, url = upstream
    import_records(store_a, month1, source="month 1")
    product = _security_product(store_a)
    with UpdateStore.open(tmp_path / "B", url=databases.new("b").url) as store_b:
        first, _ = recorded_sync(store_b, url)
        assert first.audit is not None and first.audit.result == "equal"
        # A narrower subscription: B holds more than its filter selects now, which is no
        # difference (both sides digest the filter's selection).
        narrowed, _ = recorded_sync(store_b, url, products=(product,), classifications=(SECURITY,))
        audit = narrowed.audit
        assert audit is not None and (audit.result, audit.scope) == ("equal", "filter")
        assert 0 < (audit.own_count or 0) < first.audit.own_count  # type: ignore[operator]

        # B loses a subscribed update's revision, at a point this test chooses.
        lost = _subscribed_update(store_b, product)
        lose_revision(store_b.engine, lost)
        drifted, requested = recorded_sync(store_b, url)
        audit = drifted.audit
        assert audit is not None and audit.result == "differs"
        assert (audit.own_count or 0) + 1 == audit.upstream_count
        assert requested == []  # the delta listed nothing: only the audit sees the loss
        state = upstream_state(store_b, url)
        assert (state.config_list_anchor, state.update_list_anchor) == (None, None)
        assert "anchors dropped, the next sync is a full sync" in _log(tmp_path / "B")
        assert last_audit(store_b, url) == audit

        repaired, requested = recorded_sync(store_b, url)
        assert requested == [lost]  # listed from no anchor, only what B lacks is fetched
        assert repaired.audit is not None and repaired.audit.result == "equal"
        assert repaired.audit.own_count == audit.upstream_count


def _security_product(store: UpdateStore) -> str:
    """A product some security update of the store is filed under."""
    for key in sorted(store.revision_keys()):
        products, classes = store.products_and_classifications(key.update_id)
        if SECURITY in classes and products:
            return products[0]
    raise AssertionError("the catalog holds a security update")


def _subscribed_update(store: UpdateStore, product: str) -> RevisionKey:
    for key in sorted(store.revision_keys()):
        products, classes = store.products_and_classifications(key.update_id)
        if product in products and SECURITY in classes:
            return key
    raise AssertionError("the catalog files a security update under the product")


def test_against_a_server_without_the_extension_the_audit_is_not_available(
    tmp_path: Path,
) -> None:
    """A real WSUS knows no GetRevisionSetDigest and faults (the stand-in answers as it
    does for any operation it lacks): the sync succeeds, its audit says why it has none."""
    catalog = FakeCatalog.from_records(generate_catalog(40, seed=69))
    fake = FakeUpstream(catalog)
    with serve(fake) as url, UpdateStore.open(tmp_path / "B") as store:
        result, _ = recorded_sync(store, url)
        assert store.revision_keys() == catalog.keys
        audit = result.audit
        assert audit is not None and audit.result == "not available"
        assert audit.reason == (
            "the upstream does not answer GetRevisionSetDigest (fault InvalidParameters)"
        )
        assert "GetRevisionSetDigest" in fake.operations
        assert upstream_state(store, url).update_list_anchor is not None  # nothing dropped


def test_the_extension_checks_its_anchors_as_get_revision_id_list_does(
    upstream: tuple[UpdateStore, str], month1: list[ExportRecord]
) -> None:
    store_a, url = upstream
    import_records(store_a, month1[:50], source="part")
    counter = store_a.change_counter()
    good = f"{counter},2026-12-05 10:00:00.000"
    with UpstreamClient(url) as client:
        plugin = (client.get_auth_config().auth_info or ())[0]
        assert plugin.service_url is not None
        auth = client.get_authorization_cookie(
            plugin.service_url, "b.contoso.com", "7a1d0c4e-2b4f-4c36-9a3e-5f2d8c1b6e07"
        )
        cookie = client.get_cookie([auth])
        answer = client.get_revision_set_digest(cookie, good, good)
        with store_a.engine.connect() as conn:
            assert (answer.digest, answer.count) == (stored(conn)[0].hex, 50)
        with pytest.raises(WsusssFault) as bad:
            client.get_revision_set_digest(cookie, "yesterday", good)
        assert (bad.value.code, bad.value.message) == (ErrorCode.INVALID_PARAMETERS, "configAnchor")
        ahead = f"{counter + 1},2026-12-05 10:00:00.000"
        with pytest.raises(WsusssFault) as changed:
            client.get_revision_set_digest(cookie, good, ahead)
        assert (changed.value.code, changed.value.message) == (
            ErrorCode.SERVER_CHANGED,
            "updateAnchor",
        )


def test_a_language_filter_is_audited_in_the_same_scope_on_both_sides(
    upstream: tuple[UpdateStore, str], tmp_path: Path, databases: Databases
) -> None:
    """B subscribed to German holds A's language-neutral updates and A's German packs only;
    the audit sends the LanguageIDs its filter sent, so both sides digest that selection:
    equal, not the alarm a digest of every language would raise."""
    store_a, url = upstream
    import_records(store_a, list(generate_catalog(120, seed=71, language_packs=10)), source="m1")
    with UpdateStore.open(tmp_path / "B", url=databases.new("b").url) as store_b:
        result, _ = recorded_sync(store_b, url, languages=("de",))
        audit = result.audit
        assert audit is not None and (audit.result, audit.scope) == ("equal", "filter"), audit
        assert (audit.own_count or 0) < len(store_a.revision_keys())
        assert audit.own_count == len(store_b.revision_keys())
