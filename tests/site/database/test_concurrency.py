"""The site database under concurrent writers, on SQLite and on PostgreSQL.

Several writers, each with its own database connection (its own engine, as separate
processes would have), write configuration items in content updates and add users and API
tokens, all of which take replication sequence numbers, while a reader tails "the changes
after N" the way a child site's database replication does and applies each page to a child
site database. Once the writers are done: the numbers are 1..head with no hole and none
twice, the content version rose by exactly one per content update, with each update seeing
its own number, and the tailing reader saw every row exactly once (a reader that passes a
number which a slower transaction commits later would miss that row for good).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from databases import Database, Databases
from sqlalchemy import select, union_all

from updatesync.site.database import schema as t
from updatesync.site.database.models import Category, ConfigurationItem, ReplicationPage
from updatesync.site.database.site_db import SiteDatabase

CI_WRITERS = 6
BATCHES = 5
BATCH = 20
ACCOUNT_WRITERS = 2
ACCOUNTS = 10
PAGE = 37
PRODUCT = "0a4c6c73-8887-4d7f-9cbe-d08fa8fa9d1e"


def _item(writer: int, batch: int, n: int) -> ConfigurationItem:
    return ConfigurationItem(
        update_id=f"{writer:08x}-{batch:04x}-4000-8000-{n:012x}",
        revision=100 + n,
        title=f"Update {writer}.{batch}.{n}",
        xml_sha256=f"{writer:02x}{batch:02x}{n:02x}".ljust(64, "0"),
        products=(PRODUCT,),
    )


def _run_all(jobs: list[Callable[[], object]]) -> list[object]:
    """Run `jobs` at once (they start together) and return their results."""
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], object]) -> object:
        start.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return [f.result() for f in [pool.submit(run, job) for job in jobs]]


def _sequence_numbers(db: SiteDatabase) -> list[int]:
    tables = (t.category, t.configuration_item, t.site_user, t.api_token)
    query = union_all(
        *(select(x.c.replication_seq).where(x.c.replication_seq.is_not(None)) for x in tables)
    )
    with db.engine.connect() as conn:
        return sorted(int(n) for n in conn.execute(query).scalars())


def test_concurrent_writers_take_gap_free_numbers_and_a_tailing_child_misses_none(
    database: Database, databases: Databases
) -> None:
    child_database = databases.new("child")
    with (
        SiteDatabase.open(url=database.url, site_code="CS1") as parent,
        SiteDatabase.open(url=child_database.url, site_code="PS1") as child,
    ):
        parent.users.add("owner", "Full Administrator", None)
        parent.content.upsert_categories([Category(PRODUCT, "Product", "Windows 11")])
        writing = threading.Event()
        writing.set()
        seen: list[str] = []
        pages: list[ReplicationPage] = []

        # Each its own engine (opened here: migrations are not for threads).
        opened = [SiteDatabase.open(url=database.url) for _ in range(CI_WRITERS + 3)]

        def content_writer(writer: int) -> list[int]:
            versions = []
            with opened[writer] as own:
                for batch in range(BATCHES):
                    items = [_item(writer, batch, n) for n in range(BATCH)]
                    versions.append(own.content.apply_ci_batch(items).content_version)
            return versions

        def account_writer(writer: int) -> list[int]:
            with opened[CI_WRITERS + writer] as own:
                for n in range(ACCOUNTS):
                    name = f"admin{writer}-{n}"
                    own.users.add(name, "Read-only Analyst", None)
                    own.users.add_token(name, f"{writer:02x}{n:014x}", "$argon2id$hash")
                    # A refused write takes no number: it would be a hole for good.
                    assert own.users.set_password(f"gone{writer}-{n}", "$argon2id$x") is None
            return []

        def tailing_child() -> list[int]:
            after = 0
            with opened[-1] as own:
                while True:
                    still_writing = writing.is_set()  # read before the page: no last write lost
                    page = own.replication.changes(after, PAGE)
                    child.replication.apply("CS1", page)
                    pages.append(page)
                    seen.extend(i.update_id for i in page.items)
                    seen.extend(c.category_id for c in page.categories)
                    seen.extend(f"user {u.name}" for u in page.users)
                    seen.extend(f"token {k.token_id}" for k in page.tokens)
                    after = page.last_seq
                    if not still_writing and page.reaches_head:
                        return []

        writers = [lambda w=w: content_writer(w) for w in range(CI_WRITERS)]
        writers += [lambda w=w: account_writer(w) for w in range(ACCOUNT_WRITERS)]

        def all_writers() -> list[object]:
            try:
                return _run_all(writers)
            finally:
                writing.clear()

        written, _ = _run_all([all_writers, tailing_child])

        # The content version rose once per content update, each update seeing its own.
        versions = sorted(v for result in written for v in result)  # type: ignore[attr-defined]
        assert versions == list(range(1, CI_WRITERS * BATCHES + 1))
        assert parent.content.version() == CI_WRITERS * BATCHES

        # Every number from 1 to the head was given to exactly one row.
        head = parent.replication.head()
        rows = 1 + 1 + CI_WRITERS * BATCHES * BATCH + 2 * ACCOUNT_WRITERS * ACCOUNTS
        assert head == rows
        assert _sequence_numbers(parent) == list(range(1, head + 1))

        # The tailing reader saw each row once, pages followed one another without a hole,
        # and the child holds all of it.
        assert len(seen) == rows and len(set(seen)) == rows
        for before, page in itertools.pairwise(pages):
            assert page.after == before.last_seq
        assert all(p.last_seq - p.after == p.size for p in pages)
        assert child.content.ci_count() == CI_WRITERS * BATCHES * BATCH
        assert len(child.users.list()) == 1 + ACCOUNT_WRITERS * ACCOUNTS
        assert len(child.users.tokens()) == ACCOUNT_WRITERS * ACCOUNTS
        assert _sequence_numbers(child) == list(range(1, rows + 1))


def test_sources_and_links_registered_at_once_by_many_are_registered_once(
    database: Database,
) -> None:
    SiteDatabase.open(url=database.url, site_code="CS1").close()

    opened = [SiteDatabase.open(url=database.url) for _ in range(6)]

    def register(n: int) -> list[str]:
        with opened[n] as own:
            names = []
            for source in range(5):
                unique_id = f"{source:08x}-1111-2222-3333-444444444444"
                names.append(own.content.add_update_source(unique_id, f"source {n}").unique_id)
                own.replication.record_check(f"P{source:02d}", 0)
                own.sync.request("SELF", site_code=f"P{source:02d}")
            return names

    results = _run_all([lambda n=n: register(n) for n in range(6)])

    assert all(r == results[0] for r in results)
    with SiteDatabase.open(url=database.url) as db:
        assert len(db.content.update_sources()) == 1 + 5  # Microsoft Update and these
        assert [link.parent_site for link in db.replication.links()] == [
            f"P{n:02d}" for n in range(5)
        ]
        assert all(link.consecutive_failures == 0 for link in db.replication.links())
        assert all(db.sync.pending_request(site_code=f"P{n:02d}")[0] == "SELF" for n in range(5))
