"""The update server's database tables (SQLAlchemy Core), as the code queries them.

The tables themselves are created and changed only by the Alembic migrations in
`migrations/versions/`; this module must describe the schema those migrations produce.

- `revision`: every stored revision of an update, category or detectoid, with the parsed
  fields and the original XML. `change_number` is the value of the store's change counter
  when the revision arrived: "what changed since N" is `change_number > N`.
- `revision_relation`: the relationships of a revision (category prerequisites, plain
  prerequisites, superseded updates), keyed by the revision's identity. The updates a bundle
  bundles are a list in `revision.bundled` (migration 0006): a real bundle lists up to 200,
  five relation rows in six of a real catalog, and nothing looks them up one by one.
- `update_item`: one row per update id, naming its latest (highest) revision number and
  the SHA-256 digest of that revision's document (migration 0007: what a site's pages
  report, read without the documents).
- `store_state`: one row holding the change counter, and the digest of the revision set
  with its count (migration 0010, `digest.py`).
- `revision_audit` (migration 0010): the last consistency audit against each upstream
  (`sync/audit.py`).
- `subscription_category`, `subscription_language`: what this server syncs.
- `sync_history`: one row per import or sync, successful or not.
- `server_identity`: this server's id (the key that signs the cookies it hands out is in
  its own file of the data folder since migration 0004, `peers.cookie_key`).
- `downstream_server`: the servers that sync from this one, registered on first contact.
- `upstream_state`: per upstream, the anchors of the last sync, saved only once the data
  they cover is committed; `filter_key` says which subscription they were taken under.
- `file_url`: where a content file (by its SHA-1 digest, base64) can be downloaded, as the
  upstream said (`MUUrl` of GetUpdateData), so this server can tell its own downstreams.
- `target_group`, `deployment`, `dead_deployment`, `hidden_update` (migration 0003): the
  target groups, the deployments (approvals) with the deployment counter's value when each
  was written, the deployments removed (and when), and the updates hidden (declined).
  `store_state.deployment_counter` numbers those changes, apart from the change counter
  of revisions; deadlines and go-live times are kept as the xsd:dateTime text of the wire.
- `revision_language`, `revision_localized` (migration 0008): the languages a
  language-specific update is for (none: language-neutral), and the title and description
  of each software update and driver in each subscribed language (`localized.py`).
- `eula_file`, `eula_content` (migration 0009): the files of the license terms (EULAs)
  the stored revisions name, as their metadata lists them, and the text of each file this
  server holds, by SHA-1 digest (base64); a listed file without a text is pending.
- `sync_holder` (migration 0005): who holds the store's sync lock when the store is on
  PostgreSQL (one row, written by the holder of the advisory lock; see `sync_lock.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    literal,
    select,
)

from updatesync.metadata.model import RevisionKey

metadata = MetaData()

revision = Table(
    "revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("update_id", String(36), nullable=False),
    Column("revision_number", Integer, nullable=False),
    Column("update_type", String(16), nullable=False),
    Column("category_type", String(32)),
    Column("title", Text, nullable=False),
    Column("default_language", String(16)),
    Column("kb_article", String(32)),
    Column("security_bulletin", String(64)),
    Column("msrc_severity", String(16)),
    Column("creation_date", String(40)),
    Column("publication_state", String(16), nullable=False),
    Column("eula_id", String(36)),
    Column("detectoid_type", String(64)),
    Column("files", JSON, nullable=False),
    Column("xml", Text, nullable=False),
    Column("change_number", Integer, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    # The updates a bundle bundles, [[update id, revision number], ...] in document order;
    # NULL when it bundles none (migration 0006; before, one relation row each).
    Column("bundled", JSON),
    UniqueConstraint("update_id", "revision_number", name="uq_revision_identity"),
    Index("ix_revision_change_number", "change_number"),
)

REVERSE_KINDS = ("category", "supersedes")
"""The kinds of relation looked up from their target (migration 0006): a category's sub-categories
(`selection.with_descendants`) and the updates that supersede one (`site_view`). Plain
prerequisites are read only from the revision that names them, so the reverse index leaves
them out: each row was a random insert into a B-tree larger than SQLite's page cache. A
query served by it names its kind with `reverse_kind`."""

revision_relation = Table(
    "revision_relation",
    metadata,
    Column("update_id", String(36), nullable=False),
    Column("revision_number", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("group_no", Integer, nullable=False),
    Column("target_update_id", String(36), nullable=False),
    Column("target_revision", Integer),
    ForeignKeyConstraint(
        ["update_id", "revision_number"], ["revision.update_id", "revision.revision_number"]
    ),
    Index("ix_revision_relation_revision", "update_id", "revision_number"),
    # Partial: WHERE kind = 'category' OR kind = 'supersedes' (REVERSE_KINDS; migration 0006
    # makes it so, said here in a comment: a dialect's `*_where` option would load that
    # dialect into every process).
    Index("ix_revision_relation_reverse", "target_update_id", "kind"),
)

update_item = Table(
    "update_item",
    metadata,
    Column("update_id", String(36), primary_key=True),
    Column("latest_revision", Integer, nullable=False),
    Column("update_type", String(16), nullable=False),
    Column("category_type", String(32)),
    # hashlib.sha256(the latest revision's xml, UTF-8).hexdigest(), written with
    # latest_revision (migration 0007 filled it for the updates stored before).
    Column("latest_xml_sha256", String(64)),
    Index("ix_update_item_type", "update_type"),
)

store_state = Table(
    "store_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("change_counter", Integer, nullable=False),
    Column("deployment_counter", Integer, nullable=False, server_default="0"),
    # When the subscription's languages last changed (migration 0008; None: never).
    Column("languages_changed_at", DateTime(timezone=True)),
    # The digest of every revision held and how many (`digest.py`; migration 0010),
    # written by the transaction that writes the revisions.
    Column("revision_digest", String(64), nullable=False, server_default="0" * 64),
    Column("revision_count", Integer, nullable=False, server_default="0"),
)

revision_language = Table(
    "revision_language",
    metadata,
    Column("update_id", String(36), primary_key=True),
    Column("revision_number", Integer, primary_key=True),
    Column("language", String(16), primary_key=True),
)

revision_localized = Table(
    "revision_localized",
    metadata,
    Column("update_id", String(36), primary_key=True),
    Column("revision_number", Integer, primary_key=True),
    Column("language", String(16), primary_key=True),
    Column("title", Text, nullable=False),
    Column("description", Text),
)

revision_audit = Table(
    "revision_audit",
    metadata,
    Column("upstream_url", Text, primary_key=True),
    Column("result", String(16), nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("scope", String(16)),
    Column("own_digest", String(64)),
    Column("own_count", Integer),
    Column("upstream_digest", String(64)),
    Column("upstream_count", Integer),
    Column("config_counter", Integer),
    Column("updates_counter", Integer),
    Column("reason", Text),
)

sync_holder = Table(
    "sync_holder",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("backend_pid", Integer, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("host", Text, nullable=False),
    Column("started_at", Text, nullable=False),
    Column("source", Text, nullable=False),
)

subscription_category = Table(
    "subscription_category",
    metadata,
    Column("update_id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
)

subscription_language = Table(
    "subscription_language",
    metadata,
    Column("language", String(16), primary_key=True),
)

sync_history = Table(
    "sync_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("source", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("result", String(16), nullable=False),
    Column("error", Text),
    Column("new_revisions", Integer, nullable=False),
    Column("unchanged_revisions", Integer, nullable=False),
    Column("conflicting_revisions", Integer, nullable=False),
    Column("change_before", Integer, nullable=False),
    Column("change_after", Integer, nullable=False),
)

server_identity = Table(
    "server_identity",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("server_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

downstream_server = Table(
    "downstream_server",
    metadata,
    Column("account_guid", String(36), primary_key=True),
    Column("account_name", Text, nullable=False),
    Column("address", Text),
    Column("protocol_version", String(16)),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("last_sync_anchor", Text),
    Column("is_replica", Boolean, nullable=False, server_default=false()),
)

upstream_state = Table(
    "upstream_state",
    metadata,
    Column("upstream_url", Text, primary_key=True),
    Column("config_anchor", Text),
    Column("config_list_anchor", Text),
    Column("update_list_anchor", Text),
    Column("filter_key", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deployment_anchor", Text),
    # The upstream's LanguageUpdateList, JSON [[id, short, long, enabled], ...] (0008).
    Column("languages", Text),
)

file_url = Table(
    "file_url",
    metadata,
    Column("digest", String(44), primary_key=True),
    Column("mu_url", Text, nullable=False),
)

eula_file = Table(
    "eula_file",
    metadata,
    Column("eula_id", String(36), primary_key=True),
    Column("digest", String(44), primary_key=True),
    Column("file_name", Text, nullable=False),
    Column("language", String(16), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("ix_eula_file_digest", "digest"),
)

eula_content = Table(
    "eula_content",
    metadata,
    Column("digest", String(44), primary_key=True),
    Column("content", LargeBinary, nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False),
)

target_group = Table(
    "target_group",
    metadata,
    Column("target_group_id", String(36), primary_key=True),
    Column("name", Text, nullable=False),
    Column("is_builtin", Boolean, nullable=False),
    Column("parent_group_id", String(36)),
)

deployment = Table(
    "deployment",
    metadata,
    Column("deployment_id", String(36), primary_key=True),
    Column("update_id", String(36), nullable=False),
    Column("revision_number", Integer, nullable=False),
    Column("target_group_id", String(36), nullable=False),
    Column("action", Integer, nullable=False),
    Column("admin_name", Text),
    Column("deadline", String(40), nullable=False),
    Column("is_assigned", Boolean, nullable=False),
    Column("go_live_time", String(40), nullable=False),
    Column("download_priority", Integer, nullable=False),
    Column("change_number", Integer, nullable=False),
    ForeignKeyConstraint(["target_group_id"], ["target_group.target_group_id"]),
    Index("ix_deployment_change_number", "change_number"),
    Index("ix_deployment_update", "update_id", "target_group_id"),
)

dead_deployment = Table(
    "dead_deployment",
    metadata,
    Column("deployment_id", String(36), primary_key=True),
    Column("change_number", Integer, nullable=False),
    Index("ix_dead_deployment_change_number", "change_number"),
)

hidden_update = Table(
    "hidden_update",
    metadata,
    Column("update_id", String(36), primary_key=True),
)


def reverse_kind(kind: str) -> ColumnElement[str]:
    """`kind` as a literal in the SQL, so that the planner can see that the query's rows are
    within the partial reverse index (`REVERSE_KINDS`) whatever the driver binds: a
    PostgreSQL generic plan cannot prove that of a bound parameter."""
    if kind not in REVERSE_KINDS:
        raise ValueError(f"no reverse index for relations of kind {kind!r}")
    return literal(kind, literal_execute=True)


def is_latest(table: Table) -> ColumnElement[bool]:
    """Join condition: the row of `table` (revision or revision_relation) belongs to the
    latest revision of its update, as `update_item` names it."""
    return (update_item.c.update_id == table.c.update_id) & (
        update_item.c.latest_revision == table.c.revision_number
    )


def rows_for_revisions(
    conn: Connection,
    table: Table,
    columns: Sequence[Column[object]],
    keys: Sequence[RevisionKey],
    *,
    chunk: int = 500,
) -> Iterator[Row[tuple[object, ...]]]:
    """Rows of `table` whose (update_id, revision_number) is among `keys`, as
    (update_id, revision_number, *columns).

    Looks up by update id, which the indexes serve, and keeps the wanted revisions: SQLite
    answers a row-value `IN` by scanning the whole table.
    """
    for start in range(0, len(keys), chunk):
        wanted = set(keys[start : start + chunk])
        query = select(table.c.update_id, table.c.revision_number, *columns).where(
            table.c.update_id.in_(sorted({k.update_id for k in wanted}))
        )
        for row in conn.execute(query):
            if RevisionKey(row[0], row[1]) in wanted:
                yield row
