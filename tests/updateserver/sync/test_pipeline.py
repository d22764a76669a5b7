"""The three overlapping stages of a sync: items in order, the stages really overlapping, an
error in any stage raised as is with everything before it consumed and nothing after it,
and the threads gone when `run_stages` returns. Then the same through `BatchFetcher` on
SQLite and PostgreSQL: an error in the fetch, parse or commit stage leaves exactly the
batches before it committed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from databases import Database

from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import RevisionKey
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync import SyncHooks, SyncSettings
from updatesync.updateserver.sync.batches import BatchFetcher
from updatesync.updateserver.sync.context import SyncContext
from updatesync.updateserver.sync.pipeline import DEFAULT_DEPTH, run_stages
from updatesync.updateserver.sync.session import UpstreamSession
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.messages import ServerSyncUpdateData, ServerUpdateData

_T = TypeVar("_T")
WAIT = 30.0  # seconds an event may take before the test fails (never reached when it works)


class Boom(Exception):
    pass


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("sync-")}


def test_items_arrive_in_order_through_both_stages() -> None:
    got: list[int] = []

    def produce(emit: Callable[[int], bool]) -> None:
        for n in range(50):
            emit(n)

    run_stages(produce, lambda n: n * 10, got.append)
    assert got == [n * 10 for n in range(50)]
    assert not _threads()


def test_the_next_batch_is_fetched_while_the_one_before_is_committed() -> None:
    third_fetched = threading.Event()
    seen_while_committing: list[bool] = []

    def produce(emit: Callable[[int], bool]) -> None:
        for n in range(4):
            if n == 2:
                third_fetched.set()
            emit(n)

    def consume(n: int) -> None:
        if n == 0:  # batch 0 is being committed: batch 2 gets fetched meanwhile
            seen_while_committing.append(third_fetched.wait(WAIT))

    run_stages(produce, lambda n: n, consume)
    assert seen_while_committing == [True]


@pytest.mark.parametrize("stage", ["produce", "transform", "consume"])
def test_an_error_in_a_stage_is_raised_after_what_came_before_it(stage: str) -> None:
    consumed: list[int] = []
    produced: list[int] = []

    def produce(emit: Callable[[int], bool]) -> None:
        for n in range(1000):
            if stage == "produce" and n == 5:
                raise Boom("fetch failed")
            produced.append(n)
            if not emit(n):
                return

    def transform(n: int) -> int:
        if stage == "transform" and n == 5:
            raise Boom("parse failed")
        return n

    def consume(n: int) -> None:
        if stage == "consume" and n == 5:
            raise Boom("commit failed")
        consumed.append(n)

    with pytest.raises(Boom) as caught:
        run_stages(produce, transform, consume)
    assert str(caught.value) in ("fetch failed", "parse failed", "commit failed")
    assert consumed == [0, 1, 2, 3, 4]
    # The stages stopped: the fetch stage ran ahead at most as far as the queues hold.
    assert len(produced) <= 5 + 2 * DEFAULT_DEPTH + 3
    assert not _threads()


def test_a_ctrl_c_while_waiting_stops_the_threads() -> None:
    def produce(emit: Callable[[int], bool]) -> None:
        n = 0
        while emit(n):
            n += 1

    def consume(n: int) -> None:
        if n == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_stages(produce, lambda n: n, consume)
    assert not _threads()


# --------------------------------------------------------------------------- a sync's stages

RECORDS = {RevisionKey(r.update_id, r.revision): r.xml for r in generate_catalog(8, seed=5)}
LIMIT = 3


class Upstream:
    """GetUpdateData over `RECORDS`; `answer` may replace the answer of the nth call."""

    def __init__(self, answer: dict[int, Callable[[Sequence[RevisionKey]], Any]]) -> None:
        self.answer = answer
        self.asked: list[tuple[RevisionKey, ...]] = []

    def get_update_data(self, _cookie: object, ids: Sequence[RevisionKey]) -> ServerUpdateData:
        self.asked.append(tuple(ids))
        special = self.answer.get(len(self.asked))
        if special is not None:
            return special(ids)
        return ServerUpdateData(tuple(ServerSyncUpdateData(key, RECORDS[key]) for key in ids))


class NoFaults:
    def call(self, call: Callable[[object], _T]) -> _T:
        return call(None)


@pytest.fixture
def store(tmp_path: Path, database: Database) -> Iterator[UpdateStore]:
    with UpdateStore.open(tmp_path / "down", url=database.url) as opened:
        yield opened


def _fetch(store: UpdateStore, upstream: Upstream, hooks: SyncHooks) -> None:
    context = SyncContext(
        store,
        "http://up.test",
        cast(UpstreamClient, upstream),
        SyncSettings("http://up.test"),
        hooks,
        None,
        server_name="dss.test",
    )
    fetcher = BatchFetcher(context, cast(UpstreamSession, NoFaults()))
    fetcher.enter_phase("categories")
    fetcher.fetch(list(RECORDS), LIMIT)


def _first_batches(n: int) -> set[RevisionKey]:
    keys = list(RECORDS)
    return set(keys[: n * LIMIT])


def test_the_batches_are_committed_in_listing_order(store: UpdateStore) -> None:
    order: list[int] = []
    upstream = Upstream({})
    _fetch(store, upstream, SyncHooks(progress=lambda done, _total: order.append(done)))
    assert store.revision_keys() == set(RECORDS)
    assert [key for batch in upstream.asked for key in batch] == list(RECORDS)
    assert order == sorted(order) and order[-1] == len(RECORDS)


def test_a_fetch_stage_error_keeps_the_batches_before_it(store: UpdateStore) -> None:
    upstream = Upstream({3: lambda ids: ServerUpdateData(())})
    with pytest.raises(ProtocolError, match="holds none of the 3 revisions"):
        _fetch(store, upstream, SyncHooks())
    assert store.revision_keys() == _first_batches(2)


def test_a_parse_stage_error_keeps_the_batches_before_it(store: UpdateStore) -> None:
    def hostile(ids: Sequence[RevisionKey]) -> ServerUpdateData:
        return ServerUpdateData((ServerSyncUpdateData(ids[0], "<not-a-document/>"),))

    upstream = Upstream({3: hostile})
    with pytest.raises(Exception, match=str(list(RECORDS)[6])):
        _fetch(store, upstream, SyncHooks())
    assert store.revision_keys() == _first_batches(2)


def test_a_commit_stage_error_keeps_the_batches_before_it(store: UpdateStore) -> None:
    def progress(done: int, _total: int) -> None:
        if done == 2 * LIMIT:
            raise Boom("the progress report failed")

    with pytest.raises(Boom):
        _fetch(store, Upstream({}), SyncHooks(progress=progress))
    assert store.revision_keys() == _first_batches(2)
    assert not _threads()
