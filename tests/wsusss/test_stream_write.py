"""Large answers written in chunks: the same bytes as the whole message, in bounded memory,
served chunked over real HTTP and read by the downstream's client; cut when writing fails."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import httpx
import pytest
from databases import Database

from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import RevisionKey
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.selection import RevisionFilter, select_revisions
from updatesync.updateserver.store import StoredDocument, UpdateStore
from updatesync.updateserver.store_backend import DOCUMENTS_AT_ONCE, StoreBackend
from updatesync.wsusss.client import UpstreamClient, UpstreamError
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.messages import (
    Cookie,
    GetRevisionIdListRequest,
    GetRevisionIdListResponse,
    GetUpdateDataRequest,
    GetUpdateDataResponse,
    RevisionIdList,
    ServerSyncFilter,
    ServerSyncUpdateData,
    ServerSyncUrlData,
    ServerUpdateData,
    operation_for,
)
from updatesync.wsusss.service import (
    SOAP_WORKERS,
    RevisionQuery,
    ServedDocument,
    create_app,
)
from updatesync.wsusss.soap import CONTENT_TYPE, SERVER_SYNC_PATH, escape_text
from updatesync.wsusss.stream_write import revision_id_list, update_data

ACCOUNT = "6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12"


def _keys(count: int) -> Iterator[RevisionKey]:
    for n in range(count):
        yield RevisionKey(f"{n:08x}-0000-4000-8000-{n * 7919 % 16**12:012x}", 100 + n % 250)


@pytest.mark.parametrize("count", [0, 1, 2, 3_000])
@pytest.mark.parametrize("anchor", [None, "2026-12-03 10:00:00.000, 42 & <co>"])
def test_a_streamed_listing_is_byte_for_byte_the_whole_answer(
    count: int, anchor: str | None
) -> None:
    keys = list(_keys(count))
    streamed = revision_id_list(anchor, lambda: iter(keys), chunk_chars=1000)
    whole = GetRevisionIdListResponse(RevisionIdList(anchor, tuple(keys))).to_xml()
    chunks = list(streamed.chunks())
    assert b"".join(chunks) == whole
    assert streamed.to_xml() == whole
    if count == 3_000:
        assert len(chunks) > 100, "written in chunks of about a thousand characters"
        assert max(len(c) for c in chunks) < 1200


@pytest.mark.parametrize("count", [0, 1, 40])
def test_a_streamed_update_data_answer_is_byte_for_byte_the_whole_answer(count: int) -> None:
    updates = tuple(
        ServerSyncUpdateData(
            key,
            xml_update_blob=f'<upd:Update a="{n}">Å & <b>\r\n{"x" * (n * 97)}</upd:Update>',
            file_digest_list=(f"{n:027d}A=",) if n % 3 else None,
        )
        for n, key in enumerate(_keys(count))
    )
    urls = tuple(ServerSyncUrlData(f"{n:027d}A=", f"http://mu/{n}.cab") for n in range(count // 3))
    whole = GetUpdateDataResponse(ServerUpdateData(updates, urls)).to_xml()
    assert update_data(updates, lambda: urls, chunk_chars=500).to_xml() == whole
    # Read as they are written (the service's way): the same bytes.
    assert update_data(iter(updates), lambda: urls, chunk_chars=500).to_xml() == whole
    # Escaped beforehand (the service's way, to size its answer by them): the same bytes.
    escaped = tuple(
        dataclasses.replace(u, xml_update_blob=escape_text(u.xml_update_blob or ""))
        for u in updates
    )
    assert update_data(escaped, lambda: urls, chunk_chars=500, blobs_escaped=True).to_xml() == whole


def test_200k_ids_are_written_in_a_fraction_of_their_size() -> None:
    count = 200_000
    some = list(_keys(1_000))  # used over and over: the ids cost next to nothing to make
    streamed = revision_id_list("anchor", lambda: itertools.islice(itertools.cycle(some), count))
    tracemalloc.start()
    try:
        size = sum(len(chunk) for chunk in streamed.chunks())
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 20_000_000, "about 130 bytes an id"
    assert peak < size / 4, f"peak {peak:,} bytes writing an answer of {size:,}"


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def cabinet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("streamed") / "m1.cab"
    write_export(path, generate_catalog(2_000, seed=21))
    return path


@pytest.fixture
def store(tmp_path: Path, cabinet: Path, database: Database) -> Iterator[UpdateStore]:
    opened = UpdateStore.open(tmp_path / "A", url=database.url)
    import_export_cabinet(opened, cabinet)
    yield opened
    opened.close()


def _cookie(client: UpstreamClient) -> Cookie:
    plugin = (client.get_auth_config().auth_info or ())[0]
    assert plugin.service_url is not None
    auth = client.get_authorization_cookie(plugin.service_url, "dss.test.invalid", ACCOUNT)
    return client.get_cookie([auth])


def _post(url: str, request: GetRevisionIdListRequest) -> httpx.Response:
    return httpx.post(
        url + SERVER_SYNC_PATH,
        content=request.to_xml(),
        headers={"Content-Type": CONTENT_TYPE, "SOAPAction": operation_for(request).soap_action},
        timeout=30,
    )


def test_a_large_listing_is_sent_chunked_and_the_downstream_reads_it(store: UpdateStore) -> None:
    every_update = ServerSyncFilter(get_config=False)
    with (
        BackgroundServer(create_app(StoreBackend(store))) as server,
        UpstreamClient(server.url, retries=0) as client,
    ):
        cookie = _cookie(client)
        answer = _post(server.url, GetRevisionIdListRequest(cookie, every_update))
        assert answer.status_code == 200
        assert answer.headers["content-type"] == CONTENT_TYPE
        assert "content-length" not in answer.headers
        assert answer.headers["transfer-encoding"] == "chunked"
        listing = client.get_revision_id_list(cookie, every_update)
        assert len(answer.content) > 100_000
        assert listing.anchor is not None
        expected = select_revisions(store, RevisionFilter(get_config=False))
        assert list(listing.new_revisions or ()) == expected
        assert len(expected) > 1_000
        # A delta with nothing new is small: sent whole, with its length.
        delta = ServerSyncFilter(get_config=False, anchor=listing.anchor)
        small = _post(server.url, GetRevisionIdListRequest(cookie, delta))
        assert small.headers["content-length"] == str(len(small.content))
        assert GetRevisionIdListResponse.from_xml(small.content).result.new_revisions == ()


class _FailingBackend(StoreBackend):
    """The store's backend whose listing fails after 1,500 revisions (its database gone)."""

    def list_revisions(self, query: RevisionQuery) -> Iterator[RevisionKey]:
        listed = super().list_revisions(query)
        for n, key in enumerate(listed):
            if n == 1_500:
                raise ConnectionError("the database server closed the connection")
            yield key


def test_a_listing_that_fails_midway_is_cut_not_ended(store: UpdateStore) -> None:
    failures: list[tuple[str, str]] = []
    app = create_app(
        _FailingBackend(store), on_error=lambda op, exc: failures.append((op, str(exc)))
    )
    every_update = ServerSyncFilter(get_config=False)
    with (
        BackgroundServer(app) as server,
        UpstreamClient(server.url, retries=0) as client,
    ):
        cookie = _cookie(client)
        with pytest.raises(httpx.RemoteProtocolError):
            _post(server.url, GetRevisionIdListRequest(cookie, every_update))
        with pytest.raises((UpstreamError, ProtocolError)):
            client.get_revision_id_list(cookie, every_update)
    assert failures[0] == ("GetRevisionIdList", "the database server closed the connection")


class _HeldBackend(StoreBackend):
    """The store's backend whose documents wait until the test lets them go."""

    def __init__(self, store: UpdateStore) -> None:
        super().__init__(store)
        self.inside = 0
        self.most_inside = 0
        self.changed = threading.Condition()
        self.go = threading.Event()

    def documents(self, keys: Sequence[RevisionKey]) -> list[ServedDocument]:
        with self.changed:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.changed.notify_all()
        try:
            assert self.go.wait(60), "the test never let the documents go"
            return super().documents(keys)
        finally:
            with self.changed:
                self.inside -= 1


def test_more_downstreams_than_workers_get_at_most_soap_workers_answers_built_at_once(
    store: UpdateStore,
) -> None:
    backend = _HeldBackend(store)
    app = create_app(backend)
    workers: anyio.CapacityLimiter = app.state.soap_workers
    keys = select_revisions(store, RevisionFilter(get_config=True))[:100]
    asking = 2 * SOAP_WORKERS
    with (
        BackgroundServer(app) as server,
        UpstreamClient(server.url, retries=0) as client,
        ThreadPoolExecutor(asking) as pool,
    ):
        cookie = _cookie(client)

        def ask() -> int:
            with UpstreamClient(server.url, retries=0) as own:
                return len(own.get_update_data(cookie, keys).updates or ())

        answers = [pool.submit(ask) for _ in range(asking)]
        with backend.changed:
            assert backend.changed.wait_for(lambda: backend.inside == SOAP_WORKERS, 60)
        deadline = time.monotonic() + 60
        while workers.statistics().tasks_waiting < asking - SOAP_WORKERS:
            assert time.monotonic() < deadline, "the other requests never queued"
            backend.go.wait(0.01)
        assert backend.inside == SOAP_WORKERS
        backend.go.set()
        assert [a.result(60) for a in answers] == [len(keys)] * asking
    assert backend.most_inside == SOAP_WORKERS


class _CountingStore:
    """The store, counting the documents each `documents()` call reads."""

    def __init__(self, store: UpdateStore) -> None:
        self._store = store
        self.reads: list[int] = []

    def documents(self, keys: Sequence[RevisionKey]) -> list[StoredDocument]:
        self.reads.append(len(keys))
        return self._store.documents(keys)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_an_update_data_answer_reads_its_documents_as_it_writes_them(store: UpdateStore) -> None:
    """Fifty downstreams reading slowly hold fifty answers in flight: each holds the
    documents its next chunk needs, not its whole batch (bench/fanout.py's upstream peak)."""
    counting = _CountingStore(store)
    app = create_app(StoreBackend(counting))  # type: ignore[arg-type]
    service = app.state.service
    keys = select_revisions(store, RevisionFilter(get_config=False))[:100]
    with (
        BackgroundServer(app) as server,
        UpstreamClient(server.url, retries=0) as client,
    ):
        cookie = _cookie(client)
    request = GetUpdateDataRequest(cookie, tuple(keys))
    action = operation_for(request).soap_action

    status, answer = service.answer(request.to_xml(), SERVER_SYNC_PATH, action, None, "x")
    assert status == 200 and not isinstance(answer, bytes), "a batch of 100 is streamed"
    assert counting.reads == [DOCUMENTS_AT_ONCE], "only the first few read before sending"
    body = b"".join(answer)
    assert all(n <= DOCUMENTS_AT_ONCE for n in counting.reads)
    updates = GetUpdateDataResponse.from_xml(body).result.updates or ()
    assert [u.id for u in updates] == keys[: len(updates)]
    assert sum(counting.reads) >= len(updates) > 2 * DOCUMENTS_AT_ONCE

    # A revision it does not hold, even the last of the batch, faults the call before the
    # first byte (as a real WSUS does), with no document read.
    counting.reads.clear()
    unknown = (*keys[:99], RevisionKey("00000000-0000-4000-8000-000000000000", 1))
    request = GetUpdateDataRequest(cookie, unknown)
    status, answer = service.answer(request.to_xml(), SERVER_SYNC_PATH, action, None, "x")
    assert isinstance(answer, bytes) and b"InternalServerError" in answer
    assert counting.reads == []
