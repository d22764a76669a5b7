"""The update server's store: what it holds and the questions asked of it.

One `UpdateStore` per update server. It holds every revision it has received (older
revisions stay stored; `update_item` points at the latest one), a change counter, the
subscription and the sync history (its status and history are read by
`store_status.py`), and the target groups, deployments (approvals) and hidden updates.
Writing revisions in bulk is `importer.py`'s job; the rules of groups and deployments are
`deployments.py`'s, which the methods here run in one transaction each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, insert, make_url, select, update

from updatesync.metadata.export import ExportRecord, write_export
from updatesync.metadata.model import CategoryType, RevisionKey
from updatesync.security.private_files import private_dir
from updatesync.updateserver import deployments as dep
from updatesync.updateserver import license_terms
from updatesync.updateserver import schema as t
from updatesync.updateserver.database import (
    DATABASE_FILE,
    OPEN_ERRORS,
    CookieKeyHomeless,
    create_store_engine,
    database_name,
    describe_database_error,
    migrate,
    sqlite_url,
    stored_revision,
)
from updatesync.updateserver.errors import (
    StoreUnreadable,
    SubscriptionRefused,
    UnknownRevisions,
)
from updatesync.updateserver.localized import fill_localized, subscribed_languages
from updatesync.updateserver.store_status import (
    HistoryEntry,
    StoreStatus,
    read_history,
    read_status,
)

Progress = Callable[[int, int], None]

PRODUCT_TYPES = (CategoryType.COMPANY, CategoryType.PRODUCT_FAMILY, CategoryType.PRODUCT)
"""Category types a subscription may name as a product (WSUS lets one pick a whole family)."""


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """One stored revision's document and the SHA-1 digests (base64) of its files."""

    key: RevisionKey
    xml: str
    file_digests: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    """One category as its latest revision describes it."""

    update_id: str
    revision: int
    category_type: str | None
    title: str
    parents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subscription:
    """What this server syncs: product and classification ids, and languages."""

    products: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()


def _sqlite_folder(engine: Engine) -> Path | None:
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).absolute().parent


def _data_folder(data_dir: Path | str) -> Path:
    """The server's data folder `data_dir`, made (0700) if missing; absolute."""
    folder = Path(data_dir)
    if folder.exists() and not folder.is_dir():
        raise StoreUnreadable(
            f"{folder}: is a file, not a folder; give the update server's data folder"
        )
    return private_dir(folder).absolute()


def _existing_folder(folder: Path) -> None:
    """A data folder that holds a store, else `StoreUnreadable` saying what was found."""
    if folder.exists() and not folder.is_dir():
        raise StoreUnreadable(
            f"{folder}: is a file, not a folder; give the update server's data folder"
        )
    if not folder.is_dir():
        raise StoreUnreadable(
            f"{folder}: no such folder, so no update server store (nothing was made); check "
            "--data, or fill a store first with `updatesync updateserver import` or `sync`"
        )
    if not (folder / DATABASE_FILE).exists():  # a folder in its place: opening says so
        raise StoreUnreadable(
            f"{folder}: this folder holds no update server store ({DATABASE_FILE} is not in "
            "it; nothing was made); check --data, or give --database if the store is on "
            "PostgreSQL"
        )


def _existing_sqlite_file(url: str) -> None:
    """An SQLite URL whose file is missing names no store (opening it would make one)."""
    engine_url = make_url(url)
    if engine_url.get_backend_name() != "sqlite" or engine_url.database in (None, "", ":memory:"):
        return
    if not Path(engine_url.database).is_file():
        raise StoreUnreadable(
            f"{engine_url.database}: no such file, so no update server store (nothing was "
            "made); check --database"
        )


STORE_REBUILD = "run `updatesync updateserver sync` (or `import`) again to fill a new one"


def store_problem(exc: BaseException, url: str) -> str:
    """One line for a store database at `url` that cannot be opened or read."""
    return describe_database_error(exc, database_name(url), "update server store", STORE_REBUILD)


class UpdateStore:
    """The database of one update server."""

    def __init__(self, engine: Engine, data_dir: Path | None = None) -> None:
        self.engine = engine
        self.data_dir = data_dir if data_dir is not None else _sqlite_folder(engine)
        """The server's data folder (its cookie key, its sync lock, its logs); None for a
        store opened on a database alone."""

    @classmethod
    def open(
        cls,
        data_dir: Path | str | None = None,
        *,
        url: str | None = None,
        existing: bool = False,
    ) -> UpdateStore:
        """Open (creating and migrating as needed) the store of the server at `data_dir`
        (created 0700 if missing), in its SQLite file there or in the database at `url`.
        With `url` alone the store has no data folder (no cookie key, no sync lock: enough to
        import, export and read it; an SQLite store's folder is its file's). `existing`:
        only a store that is there already (a command that only reads it): a data folder
        without its database file, or a database without the store's tables, is a
        `StoreUnreadable` naming it, and nothing is made."""
        if data_dir is None and url is None:
            raise StoreUnreadable(
                "no update server store given: name its data folder, or its database URL"
            )
        if existing and url is None:
            _existing_folder(Path(data_dir))  # type: ignore[arg-type]  # not None here
        if existing and url is not None:
            _existing_sqlite_file(url)
        folder = _data_folder(data_dir) if data_dir is not None else None
        if url is None:
            assert folder is not None
            url = sqlite_url(folder)
        try:
            engine = create_store_engine(url)
        except OPEN_ERRORS as exc:
            raise StoreUnreadable(store_problem(exc, url)) from exc
        if existing:
            try:
                found = stored_revision(engine) is not None
            except OPEN_ERRORS as exc:
                engine.dispose()
                raise StoreUnreadable(store_problem(exc, url)) from exc
            if not found:
                engine.dispose()
                raise StoreUnreadable(
                    f"{database_name(url)}: no update server store in this database (nothing "
                    "was made); check the database URL, or fill a store first with "
                    "`updatesync updateserver import` or `sync`"
                )
        try:
            migrate(engine, folder if folder is not None else _sqlite_folder(engine))
        except OPEN_ERRORS as exc:
            engine.dispose()
            raise StoreUnreadable(store_problem(exc, url)) from exc
        except CookieKeyHomeless as exc:
            engine.dispose()
            raise StoreUnreadable(f"{database_name(url)}: {exc}") from exc
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, folder)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> UpdateStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """One read transaction whose queries all see the same committed state (SQLite in WAL
        mode: the snapshot of its first read; PostgreSQL: REPEATABLE READ)."""
        with self.engine.connect() as conn:
            if conn.dialect.name != "sqlite":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def change_counter(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(t.store_state.c.change_counter)).scalar_one()

    def changed_since(self, change_number: int, *, through: int | None = None) -> list[RevisionKey]:
        """The revisions that arrived after the change counter stood at `change_number` (and,
        with `through`, up to the counter standing there: a reader that read the counter
        first gets each revision once, whatever commits meanwhile)."""
        query = (
            select(t.revision.c.update_id, t.revision.c.revision_number)
            .where(t.revision.c.change_number > change_number)
            .order_by(t.revision.c.change_number)
        )
        if through is not None:
            query = query.where(t.revision.c.change_number <= through)
        with self.engine.connect() as conn:
            return [RevisionKey(uid, rev) for uid, rev in conn.execute(query)]

    def revision_keys(self) -> set[RevisionKey]:
        query = select(t.revision.c.update_id, t.revision.c.revision_number)
        with self.engine.connect() as conn:
            return {RevisionKey(uid, rev) for uid, rev in conn.execute(query)}

    def xml(self, update_id: str, revision: int | None = None) -> str | None:
        """The stored XML of a revision; without `revision`, of the latest one."""
        query = select(t.revision.c.xml).where(t.revision.c.update_id == update_id.lower())
        if revision is None:
            query = query.join(t.update_item, t.is_latest(t.revision))
        else:
            query = query.where(t.revision.c.revision_number == revision)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def documents(self, keys: Sequence[RevisionKey]) -> list[StoredDocument]:
        """The XML (and file digests: its files', then its license terms' files') of each
        revision in `keys`, in that order; every one must be stored, else UnknownRevisions
        names the missing ones."""
        found: dict[RevisionKey, StoredDocument] = {}
        columns = (t.revision.c.eula_id, t.revision.c.files, t.revision.c.xml)
        with self.engine.connect() as conn:
            rows = list(t.rows_for_revisions(conn, t.revision, columns, keys))
            terms = license_terms.digests_by_eula(conn, (r[2] for r in rows if r[2]))
            for uid, rev, eula, files, xml in rows:
                key = RevisionKey(uid, rev)
                digests = tuple(f[2] for f in files) + terms.get(eula or "", ())
                found[key] = StoredDocument(key, xml, digests)
        missing = [k for k in keys if k not in found]
        if missing:
            raise UnknownRevisions(missing)
        return [found[k] for k in keys]

    def file_urls(self, digests: Iterable[str]) -> dict[str, str]:
        """Where the files with these SHA-1 digests can be downloaded, for those known: as
        the upstream said, else (license-term files stored by an import) where Microsoft
        Update serves them."""
        wanted = list(dict.fromkeys(digests))
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                query = select(t.file_url.c.digest, t.file_url.c.mu_url).where(
                    t.file_url.c.digest.in_(wanted[start : start + 500])
                )
                found.update((digest, url) for digest, url in conn.execute(query))
            rest = [d for d in wanted if d not in found]
            if rest:
                found.update(license_terms.origin_urls(conn, rest))
        return found

    def save_file_urls(self, urls: dict[str, str]) -> None:
        """Remember download addresses of content files (digest -> URL), newest wins."""
        if not urls:
            return
        with self.engine.begin() as conn:
            conn.execute(delete(t.file_url).where(t.file_url.c.digest.in_(list(urls))))
            conn.execute(insert(t.file_url), [{"digest": d, "mu_url": u} for d, u in urls.items()])

    def stored(self, keys: Iterable[RevisionKey]) -> set[RevisionKey]:
        """Which of `keys` this store holds."""
        keys = list(keys)
        with self.engine.connect() as conn:
            rows = t.rows_for_revisions(conn, t.revision, (), keys)
            return {RevisionKey(uid, rev) for uid, rev in rows}

    def latest_revision(self, update_id: str) -> int | None:
        query = select(t.update_item.c.latest_revision).where(
            t.update_item.c.update_id == update_id.lower()
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def products_and_classifications(self, update_id: str) -> tuple[list[str], list[str]]:
        """The product and classification ids of the latest revision of `update_id`.

        Every prerequisite that names a known category counts, as in
        `UpdateRevision.products_and_classifications`.
        """
        target = t.update_item.alias("target")
        query = (
            select(t.revision_relation.c.target_update_id, target.c.category_type)
            .select_from(t.update_item)
            .join(t.revision_relation, t.is_latest(t.revision_relation))
            .join(target, target.c.update_id == t.revision_relation.c.target_update_id)
            .where(t.update_item.c.update_id == update_id.lower())
            .where(t.revision_relation.c.kind.in_(("category", "prerequisite")))
            .order_by(t.revision_relation.c.kind, t.revision_relation.c.group_no)
        )
        products: list[str] = []
        classifications: list[str] = []
        with self.engine.connect() as conn:
            for uid, kind in conn.execute(query):
                bucket = classifications if kind == CategoryType.UPDATE_CLASSIFICATION else products
                if kind is not None and uid not in bucket:
                    bucket.append(uid)
        return products, classifications

    def iter_records(self, *, batch: int = 1000) -> Iterator[ExportRecord]:
        """Every stored revision, in the order it arrived, without loading them all."""
        query = select(
            t.revision.c.update_id, t.revision.c.revision_number, t.revision.c.xml
        ).order_by(t.revision.c.id)
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch).execute(query)
            for uid, rev, xml in result:
                yield ExportRecord(uid, rev, xml)

    def status(self) -> StoreStatus:
        sub = self.subscription()
        subscription = {
            "products": list(sub.products),
            "classifications": list(sub.classifications),
            "languages": list(sub.languages),
        }
        return read_status(self.engine, subscription)

    def history(self, *, limit: int | None = None) -> list[HistoryEntry]:
        """The sync history, newest first."""
        return read_history(self.engine, limit=limit)

    def subscription(self) -> Subscription:
        with self.engine.connect() as conn:
            cats = conn.execute(
                select(
                    t.subscription_category.c.update_id, t.subscription_category.c.kind
                ).order_by(t.subscription_category.c.update_id)
            ).all()
            langs = conn.execute(
                select(t.subscription_language.c.language).order_by(
                    t.subscription_language.c.language
                )
            ).scalars()
            languages = tuple(langs)
        return Subscription(
            products=tuple(uid for uid, kind in cats if kind == "product"),
            classifications=tuple(uid for uid, kind in cats if kind == "classification"),
            languages=languages,
        )

    def categories(self, category_type: str | None = None) -> list[CategoryInfo]:
        """The categories (companies, families, products, classifications), by title."""
        return _categories(self.engine, category_type)

    # -- target groups, deployments, hidden updates (deployments.py) --------------

    def deployment_counter(self) -> int:
        """The counter behind deployment anchors: it rises with each deployment written or
        removed."""
        with self.engine.connect() as conn:
            return dep.deployment_counter(conn)

    def target_groups(self) -> list[dep.TargetGroup]:
        with self.engine.connect() as conn:
            return dep.read_groups(conn)

    def deployments(self, since: int | None = None) -> list[dep.Deployment]:
        """The deployments written after the deployment counter stood at `since` (all of
        them without)."""
        with self.engine.connect() as conn:
            return dep.read_deployments(conn, since)

    def dead_deployments(self, since: int | None = None) -> list[str]:
        """The GUIDs of the deployments removed after the counter stood at `since`."""
        with self.engine.connect() as conn:
            return dep.read_dead(conn, since)

    def hidden_updates(self) -> list[str]:
        with self.engine.connect() as conn:
            return dep.read_hidden(conn)

    def deployment_changes(self, since: int | None = None) -> dep.DeploymentChanges:
        """What GetDeployments serves, read from one snapshot (see `deployments.changes`):
        the counter handed out as the next anchor covers exactly the deployments served."""
        with self.snapshot() as conn:
            return dep.changes(conn, since)

    def deployment_summary(self, since: int | None = None) -> dep.DeploymentSummary:
        with self.engine.connect() as conn:
            return dep.summary(conn, since)

    def add_target_group(
        self,
        name: str,
        *,
        parent_group_id: str | None = dep.ALL_COMPUTERS,
        target_group_id: str | None = None,
    ) -> dep.TargetGroup:
        """Create a target group under `parent_group_id` (default: All Computers)."""
        with self.engine.begin() as conn:
            return dep.add_target_group(
                conn, name, parent_group_id=parent_group_id, target_group_id=target_group_id
            )

    def remove_target_group(self, target_group_id: str) -> int:
        """Delete a group an administrator made; its deployments become dead (counted)."""
        with self.engine.begin() as conn:
            return dep.remove_target_group(conn, target_group_id)

    def approve(
        self,
        update_id: str,
        revision: int,
        target_group_id: str,
        action: int,
        admin_name: str | None,
        *,
        deadline: datetime = dep.NO_DEADLINE,
        is_assigned: bool = True,
        go_live_time: datetime | None = None,
        download_priority: int = 1,
    ) -> dep.Deployment:
        """Deploy a stored revision to a target group: action 0 install, 1 uninstall,
        2 scan, 3 block. The update's previous deployment for that group becomes dead.
        Raises `UpdateServerError` naming what is wrong (revision, group, action)."""
        with self.engine.begin() as conn:
            return dep.approve(
                conn,
                update_id,
                revision,
                target_group_id,
                action,
                admin_name,
                deadline=deadline,
                is_assigned=is_assigned,
                go_live_time=go_live_time,
                download_priority=download_priority,
            )

    def remove_deployment(self, deployment_id: str) -> bool:
        """Remove a deployment (it becomes dead); False if none has that GUID."""
        with self.engine.begin() as conn:
            return dep.remove_deployment(conn, deployment_id)

    def set_hidden(self, update_id: str, hidden: bool = True) -> None:
        """Hide (decline) an update, or show it again."""
        with self.engine.begin() as conn:
            dep.set_hidden(conn, update_id, hidden)

    def apply_replica(
        self, items: dep.ReplicaItems, *, also: Callable[[Connection], object] | None = None
    ) -> dep.ReplicaApplied:
        """Apply what a replica received from GetDeployments, and then `also(connection)`
        (a sync saves its anchors there), in ONE transaction: all of it or none of it."""
        with self.engine.begin() as conn:
            applied = dep.apply_replica(conn, items)
            if also is not None:
                also(conn)
            return applied

    # -- writing -----------------------------------------------------------------

    def set_subscription(self, subscription: Subscription, *, check: bool = True) -> None:
        """Replace the subscription, in one transaction.

        Products must name categories of type Company, ProductFamily or Product and
        classifications categories of type UpdateClassification that this store holds;
        anything else is refused with the offending id, and nothing is changed. With
        `check=False` (a server that holds no category yet: its first sync brings them) the
        ids are kept as given, and that sync checks them once it has the categories.
        """
        if check:
            check_subscription(self, subscription)
        rows = [{"update_id": uid.lower(), "kind": "product"} for uid in subscription.products]
        rows += [
            {"update_id": uid.lower(), "kind": "classification"}
            for uid in subscription.classifications
        ]
        languages = tuple(dict.fromkeys(lang.strip().lower() for lang in subscription.languages))
        with self.engine.begin() as conn:
            before = subscribed_languages(conn)
            conn.execute(delete(t.subscription_category))
            conn.execute(delete(t.subscription_language))
            if rows:
                conn.execute(insert(t.subscription_category), rows)
            if languages:
                conn.execute(
                    insert(t.subscription_language), [{"language": lang} for lang in languages]
                )
            if set(before) != set(languages):
                # A downstream's config anchor from before now lists the languages again;
                # the updates held get their texts in the languages added.
                conn.execute(update(t.store_state).values(languages_changed_at=datetime.now(UTC)))
                fill_localized(conn, [lang for lang in languages if lang not in before])

    def export(self, path: Path, *, progress: Progress | None = None) -> int:
        """Write every stored revision into a WSUS export cabinet at `path`."""
        total = self.status().revisions

        def records() -> Iterator[ExportRecord]:
            for done, record in enumerate(self.iter_records(), start=1):
                yield record
                if progress is not None:
                    progress(done, total)

        return write_export(path, records())


def check_subscription(store: UpdateStore, subscription: Subscription) -> None:
    """Refuse (UpdateServerError naming the first offending id) a product that is not a
    company, product family or product, or a classification that is not an update
    classification, of `store`'s categories."""
    kinds = {c.update_id: c.category_type for c in store.categories()}
    for uid, wanted, label in (
        *((u, PRODUCT_TYPES, "product") for u in subscription.products),
        *(
            (u, (CategoryType.UPDATE_CLASSIFICATION,), "classification")
            for u in subscription.classifications
        ),
    ):
        kind = kinds.get(uid.lower())
        if kind not in wanted:
            found = f"a {kind} category" if kind else "not a category this server holds"
            raise SubscriptionRefused(
                f"{uid} cannot be a subscribed {label}: it is {found}. "
                "List the categories with `updatesync updateserver categories`."
            )


def _categories(engine: Engine, category_type: str | None) -> list[CategoryInfo]:
    """`UpdateStore.categories`: each category's latest revision and its parents."""
    item = t.update_item
    query = (
        select(item.c.update_id, item.c.latest_revision, item.c.category_type, t.revision.c.title)
        .join(t.revision, t.is_latest(t.revision))
        .where(item.c.update_type == "Category")
        .order_by(item.c.category_type, t.revision.c.title, item.c.update_id)
    )
    if category_type is not None:
        query = query.where(item.c.category_type == category_type)
    parents_query = (
        select(t.revision_relation.c.update_id, t.revision_relation.c.target_update_id)
        .join(item, t.is_latest(t.revision_relation))
        .where(item.c.update_type == "Category")
        .where(t.revision_relation.c.kind == "category")
        .order_by(t.revision_relation.c.group_no)
    )
    with engine.connect() as conn:
        parents: dict[str, list[str]] = {}
        for uid, parent in conn.execute(parents_query):
            parents.setdefault(uid, []).append(parent)
        return [
            CategoryInfo(uid, rev, kind, title, tuple(parents.get(uid, ())))
            for uid, rev, kind, title in conn.execute(query)
        ]
