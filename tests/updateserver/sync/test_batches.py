"""GetUpdateData batches: at most the upstream's limit a call, short answers asked again,
each answer checked against what was asked and committed on its own, progress reported, and
a cancelled sync stopped before its next batch."""

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
from updatesync.updateserver.sync import SyncCancelled, SyncHooks, SyncSettings
from updatesync.updateserver.sync.batches import BatchFetcher
from updatesync.updateserver.sync.context import SyncContext
from updatesync.updateserver.sync.pipeline import DEFAULT_DEPTH
from updatesync.updateserver.sync.session import UpstreamSession
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.messages import ServerSyncUpdateData, ServerUpdateData

_T = TypeVar("_T")
RECORDS = {RevisionKey(r.update_id, r.revision): r.xml for r in generate_catalog(5, seed=3)}


class Upstream:
    """GetUpdateData over `RECORDS`, at most `short` documents an answer."""

    def __init__(
        self, short: int = 1000, answer: Callable[[Sequence[RevisionKey]], Any] | None = None
    ):
        self.short = short
        self.answer = answer
        self.asked: list[tuple[RevisionKey, ...]] = []

    def get_update_data(self, _cookie: object, ids: Sequence[RevisionKey]) -> ServerUpdateData:
        self.asked.append(tuple(ids))
        if self.answer is not None:
            return self.answer(ids)
        return ServerUpdateData(
            tuple(ServerSyncUpdateData(key, RECORDS[key]) for key in ids[: self.short])
        )


class NoFaults:
    def call(self, call: Callable[[object], _T]) -> _T:
        return call(None)


@pytest.fixture
def store(tmp_path: Path, database: Database) -> Iterator[UpdateStore]:
    with UpdateStore.open(tmp_path / "down", url=database.url) as opened:
        yield opened


def _fetcher(store: UpdateStore, upstream: Upstream, hooks: SyncHooks) -> BatchFetcher:
    context = SyncContext(
        store,
        "http://up.test",
        cast(UpstreamClient, upstream),
        SyncSettings("http://up.test"),
        hooks,
        None,
        server_name="dss.test",
    )
    return BatchFetcher(context, cast(UpstreamSession, NoFaults()))


def test_batches_of_the_limit_and_short_answers_asked_again(store: UpdateStore) -> None:
    upstream = Upstream(short=3)
    progress: list[tuple[int, int]] = []
    phases: list[tuple[str, int, int]] = []
    fetcher = _fetcher(
        store,
        upstream,
        SyncHooks(
            progress=lambda *p: progress.append(p), phase_progress=lambda *p: phases.append(p)
        ),
    )
    fetcher.enter_phase("categories")
    keys = list(RECORDS)
    fetcher.fetch([*keys, keys[0]], limit=5)
    assert store.revision_keys() == set(keys)
    assert all(len(asked) <= 5 for asked in upstream.asked)
    assert upstream.asked[1] == tuple(keys[3:5])  # the two the first answer left out
    tally = fetcher.context.tally
    assert (tally.listed, tally.new, tally.batches) == (len(keys), len(keys), len(upstream.asked))
    assert progress[0] == (0, len(keys)) and progress[-1] == (len(keys), len(keys))
    assert phases[0] == ("categories", 0, 0) and phases[-1] == ("categories", len(keys), len(keys))
    fetcher.fetch(keys, limit=5)  # held already: nothing asked
    assert tally.batches == len(upstream.asked)
    # A new revision of an update held already counts as a changed update, not a new one.
    old = keys[-1]
    newer = RevisionKey(old.update_id, old.revision + 1)
    text = RECORDS[old].replace(
        f'RevisionNumber="{old.revision}"', f'RevisionNumber="{newer.revision}"', 1
    )
    upstream.answer = lambda ids: ServerUpdateData((ServerSyncUpdateData(newer, text),))
    fetcher.fetch([newer], limit=5)
    assert (tally.new, tally.changed, store.latest_revision(old.update_id)) == (
        len(keys),
        1,
        newer.revision,
    )


def test_an_answer_that_is_not_what_was_asked_is_refused(store: UpdateStore) -> None:
    keys = list(RECORDS)
    other = Upstream(
        answer=lambda ids: ServerUpdateData((ServerSyncUpdateData(keys[-1], RECORDS[keys[-1]]),))
    )
    with pytest.raises(ProtocolError, match="which was not asked for"):
        _fetcher(store, other, SyncHooks()).fetch(keys[:2], limit=5)
    empty = Upstream(answer=lambda ids: ServerUpdateData(()))
    with pytest.raises(ProtocolError, match="holds none of the 2 revisions"):
        _fetcher(store, empty, SyncHooks()).fetch(keys[:2], limit=5)
    swapped = Upstream(
        answer=lambda ids: ServerUpdateData((ServerSyncUpdateData(ids[0], RECORDS[keys[1]]),))
    )
    with pytest.raises(ProtocolError, match="the document delivered for"):
        _fetcher(store, swapped, SyncHooks()).fetch(keys[:1], limit=5)
    assert store.revision_keys() == set()


def test_a_cancelled_fetch_stops_between_batches(store: UpdateStore) -> None:
    cancel = threading.Event()
    upstream = Upstream()

    def progress(done: int, _total: int) -> None:
        if done:
            cancel.set()

    fetcher = _fetcher(store, upstream, SyncHooks(progress=progress, cancel=cancel))
    with pytest.raises(SyncCancelled):
        fetcher.fetch(list(RECORDS), limit=2)
    # Only the first batch is committed; the fetch stage ran ahead at most as far as the
    # pipeline's queues hold (what it fetched past the cancel is dropped).
    assert store.revision_keys() == set(upstream.asked[0])
    assert len(upstream.asked) <= 2 * DEFAULT_DEPTH + 3
