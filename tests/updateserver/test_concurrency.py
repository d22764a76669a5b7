"""The update server's store under concurrent writers, on SQLite and on PostgreSQL.

Several writers, each with its own engine (as separate processes would have), commit
batches of revisions (a sync's `commit_batch`) and approve updates (the deployment
counter), while readers tail the store the way a downstream server does: the change
counter, then the revisions changed since the last counter it saw (GetRevisionIdList), and
the deployments written since the last deployment counter (GetDeployments). Once the
writers are done: the change numbers are 1..counter with no hole and none twice, so are the
deployment numbers, and each reader saw every row exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from databases import Database
from generated_catalog import parse_all
from sqlalchemy import select, union_all

from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import RevisionKey, UpdateRevision
from updatesync.updateserver import schema as t
from updatesync.updateserver.importer import commit_batch
from updatesync.updateserver.store import UpdateStore

WRITERS = 5
BATCHES = 4
APPROVERS = 3
APPROVALS = 8


def _run_all(jobs: list[Callable[[], object]]) -> list[object]:
    """Run `jobs` at once (they start together) and return their results."""
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], object]) -> object:
        start.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return [f.result() for f in [pool.submit(run, job) for job in jobs]]


def _numbers(store: UpdateStore, *columns: object) -> list[int]:
    query = union_all(*(select(c) for c in columns))  # type: ignore[arg-type]
    with store.engine.connect() as conn:
        return sorted(int(n) for n in conn.execute(query).scalars())


def test_concurrent_batches_and_approvals_number_gap_free_and_tailing_readers_miss_none(
    database: Database, tmp_path: Path
) -> None:
    documents = parse_all(generate_catalog(WRITERS * BATCHES * 12, seed=23))
    updates = [n for n, d in enumerate(documents) if str(d.update_type) in ("Software", "Driver")]
    # The categories and the first updates come first: the approvers approve those.
    first, rest = documents[: updates[APPROVALS // 2] + 1], documents[updates[APPROVALS // 2] + 1 :]
    chunks = [rest[n :: WRITERS * BATCHES] for n in range(WRITERS * BATCHES)]
    stores = [
        UpdateStore.open(tmp_path / f"host{n}", url=database.url)
        for n in range(WRITERS + APPROVERS + 2)
    ]
    main = stores[-1]
    commit_batch(main, first)  # what the approvers approve
    approvable = [documents[n] for n in updates[: APPROVALS // 2]]
    groups = [main.add_target_group(f"Ring {n}").target_group_id for n in range(APPROVERS)]
    writing = threading.Event()
    writing.set()
    revisions_seen: list[RevisionKey] = []
    deployments_seen: list[str] = []
    dead_seen: list[str] = []

    def writer(n: int) -> list[int]:
        batches: list[list[UpdateRevision]] = chunks[n * BATCHES : (n + 1) * BATCHES]
        return [commit_batch(stores[n], batch).change_after for batch in batches]

    def approver(n: int) -> list[int]:
        store = stores[WRITERS + n]
        numbers = []
        for a in range(APPROVALS):
            doc = approvable[a // 2]
            # The second approval of an update for a group kills the first (a dead one).
            made = store.approve(doc.update_id, doc.revision, groups[n], a % 2, "admin")
            numbers.append(made.change_number)
        return numbers

    def downstream() -> list[int]:
        """GetRevisionIdList and GetDeployments, called again and again with the anchors."""
        store = stores[WRITERS + APPROVERS]
        change = deployment = 0
        while True:
            still_writing = writing.is_set()  # read before: no last write lost
            counter = store.change_counter()
            revisions_seen.extend(store.changed_since(change, through=counter))
            change = counter
            answer = store.deployment_changes(deployment)
            deployments_seen.extend(d.deployment_id for d in answer.deployments)
            dead_seen.extend(answer.dead)
            deployment = answer.counter
            if not still_writing:
                return [change, deployment]

    def all_writers() -> list[object]:
        try:
            jobs = [lambda n=n: writer(n) for n in range(WRITERS)]
            return _run_all(jobs + [lambda n=n: approver(n) for n in range(APPROVERS)])
        finally:
            writing.clear()

    try:
        results, (last_change, last_deployment) = _run_all([all_writers, downstream])  # type: ignore[misc]
        counter = main.change_counter()
        assert counter == len(documents) == last_change
        assert _numbers(main, t.revision.c.change_number) == list(range(1, counter + 1))
        batches_ended = sorted(n for r in results[:WRITERS] for n in r)  # type: ignore[index]
        assert len(set(batches_ended)) == WRITERS * BATCHES

        approvals = APPROVERS * APPROVALS
        killed = approvals // 2
        assert main.deployment_counter() == approvals + killed == last_deployment
        # Each approval and each removal took one number: a deployment's own, and its dead
        # record's (the deployment row itself goes when it dies).
        made = [n for r in results[WRITERS:] for n in r]  # type: ignore[union-attr]
        died = _numbers(main, t.dead_deployment.c.change_number)
        assert sorted(made + died) == list(range(1, approvals + killed + 1))

        assert sorted(revisions_seen) == sorted(d.key for d in documents)
        live = {d.deployment_id for d in main.deployments()}
        dead = set(main.dead_deployments())
        assert len(live) == len(dead) == killed
        assert len(deployments_seen) == len(set(deployments_seen))
        assert live <= set(deployments_seen) <= live | dead
        assert sorted(dead_seen) == sorted(dead)
    finally:
        for store in stores:
            store.close()
