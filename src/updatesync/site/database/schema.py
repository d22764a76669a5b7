"""The site database's tables (SQLAlchemy Core), as the code queries them.

The tables are created and changed only by the Alembic migrations in `migrations/versions/`
(their revision is kept in `schema_version`); this module must describe what they produce.
Every time is stored in UTC.

- `site_identity`: one row, the code of the site this database belongs to.
- `update_sync_status`: per site (ConfigMgr's `Update_SyncStatus`): the `sync_now` request
  flag (NULL, 'SELF', 'FULL' or the parent site's code) and the last sync's state (a status
  message id), its time, error, last success and catalog version.
- `update_source`: the catalogs the site syncs from, by unique id, with the content version.
- `configuration_item`: one configuration item (CI) per update; `ci_id` never changes for an
  update once given.
- `category`: products, product families, companies and classifications.
- `replication_sequence` (migration 0002): one row, the last replication sequence number
  given. Every write of a CI or a category stamps the row with the next number, in the
  write's transaction (`replication_seq`, unique, indexed): "what changed since N" for a child
  site is `replication_seq > N` over both tables. The counter row is updated before the
  numbers are used, so writers take numbers one transaction at a time and commit them in
  order (the SQLite write lock; a row lock on PostgreSQL).
- `replication_link` (0002): at a child site, one row per parent site it replicates from:
  the parent's sequence applied here, the parent's content version per update source when
  this site last reached the parent's head, and the link's health (ReplicationLinkStatus).
- `client_policy` (0002): per site, the site-wide policy published for clients: the update
  source and its content version, and where the site's SUPs are (intranet and Internet URLs).
- `status_message`: status messages as sent, newest looked up by time, each with its
  `record_id` (the RecordID the provider pages by); a message replicated from a child site
  (migration 0010) has `source_site`, its `source_record_id` there and `received_at`.
- `site_data` (0010): per site below this one, the site data last replicated upward (sync
  status, SUP sync status rows, raised alerts as the provider's JSON), the child it came
  through, `as_of` (when it was current at its own site) and `received_at`.
- `site_data_link` (0010): per child site, the last of its RecordIDs held here and the
  health of the upward pull from it.
- `alert`: alert occurrences; at most one raised per (type, site, instance).
- `site_control`: the software update points of the site in install order (the first is the
  default SUP), as the site control file lists them.
- `supsync_status`: per SUP, the fields ConfigMgr exposes as `SMS_SUPSyncStatus`.
- `sup_audit` (migration 0008): per SUP, the last consistency audit of its update server
  against its upstream (equal, differs, not available; both digests and counts; when), as
  the SUP reported it after its sync.
- `site_user` (migration 0003): the administrative users and their security roles, global
  data written at the top-level site and replicated to every site (a removed user stays as
  a row with `removed_at`, so the removal replicates too); passwords as argon2 hashes.
- `api_token` (0003): API tokens (`kind` 'api', replicated like users; a revoked token keeps
  its row with `revoked_at`) and login sessions (`kind` 'session', this site's only: no
  `replication_seq`), each stored as the argon2 hash of its secret, found by its id.
- `alert_webhook` (migration 0004): per webhook URL the alert watcher sends to, its retry
  state (consecutive refusals, when it may be tried again, the last error) and the delivery
  pass in progress (`claimed_until`: no other process sends to it before then).
- `alert_webhook_baseline` (0004): when each webhook was first used with a site database
  (its `epoch`, the database's set-up time): alerts already canceled then are not sent.
- `alert_delivery` (0004): one row per webhook and alert event (raise or cancel), written
  before it is sent, with its JSON body and its state (pending, sent, skipped, given up);
  `seq` orders a webhook's events.
- `wsus_subscription` (0005): the products, classifications and languages the site's
  software update points sync, and a `version` raised by every change (the database monitor
  wakes the WSUS configuration manager for each new one); `file_digest` (0009): the digest
  of the hierarchy file's criteria last applied (applied again only when they change).
- `wsus_configuration` (0005): per software update point, the WSUS configuration manager's
  state (0..4, WCM.log's `WSUS_CONFIG_...`), its time, the error of a failed configuration
  and the subscription version last applied.
- `deleted_item` (0006): the updates whose CI this site deleted (expired past the Updates
  Cleanup Age, or replicated from the parent), with the deletion's replication sequence
  number: database replication carries deletions like any other change.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

site_identity = Table(
    "site_identity",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("site_code", String(8), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

update_sync_status = Table(
    "update_sync_status",
    metadata,
    Column("site_code", String(8), primary_key=True),
    Column("sync_now", String(8)),
    Column("sync_now_requested_at", DateTime(timezone=True)),
    Column("last_sync_state", Integer),
    Column("last_sync_state_time", DateTime(timezone=True)),
    Column("last_error_code", BigInteger),
    Column("last_error_text", Text),
    Column("last_successful_sync_time", DateTime(timezone=True)),
    Column("sync_catalog_version", Integer),
)

update_source = Table(
    "update_source",
    metadata,
    Column("unique_id", String(38), primary_key=True),
    Column("name", Text, nullable=False),
    Column("content_version", Integer, nullable=False),
)

configuration_item = Table(
    "configuration_item",
    metadata,
    Column("ci_id", Integer, primary_key=True, autoincrement=True),
    Column("update_id", String(36), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("title", Text, nullable=False),
    Column("kb_article", String(32)),
    Column("bulletin", String(64)),
    Column("severity", String(16)),
    Column("creation_date", String(40)),
    Column("products", JSON, nullable=False),
    Column("classifications", JSON, nullable=False),
    Column("is_superseded", Boolean, nullable=False),
    Column("is_expired", Boolean, nullable=False),
    Column("xml_sha256", String(64), nullable=False),
    Column("date_revised", DateTime(timezone=True), nullable=False),
    Column("replication_seq", BigInteger, nullable=False),
    UniqueConstraint("update_id", name="uq_configuration_item_update"),
    Index("ix_configuration_item_replication_seq", "replication_seq", unique=True),
)

ci_localized_property = Table(
    "ci_localized_property",
    metadata,
    Column("update_id", String(36), primary_key=True),
    Column("language", String(16), primary_key=True),
    Column("locale_id", Integer, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("description", Text),
)

category = Table(
    "category",
    metadata,
    Column("category_id", String(36), primary_key=True),
    Column("category_type", String(32), nullable=False),
    Column("title", Text, nullable=False),
    Column("parent_id", String(36)),
    Column("replication_seq", BigInteger, nullable=False),
    Index("ix_category_replication_seq", "replication_seq", unique=True),
)

replication_sequence = Table(
    "replication_sequence",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

replication_link = Table(
    "replication_link",
    metadata,
    Column("parent_site_code", String(8), primary_key=True),
    Column("applied_seq", BigInteger, nullable=False),
    Column("replicated_versions", JSON, nullable=False),
    Column("link_status", Integer, nullable=False),
    Column("consecutive_failures", Integer, nullable=False),
    Column("failing_since", DateTime(timezone=True)),
    Column("last_check_time", DateTime(timezone=True)),
    Column("last_success_time", DateTime(timezone=True)),
    Column("last_error_text", Text),
)

client_policy = Table(
    "client_policy",
    metadata,
    Column("site_code", String(8), primary_key=True),
    Column("update_source_id", String(38), nullable=False),
    Column("content_version", Integer, nullable=False),
    Column("sup_locations", JSON, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)

status_message = Table(
    "status_message",
    metadata,
    Column("record_id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", Integer, nullable=False),
    Column("severity", String(1), nullable=False),
    Column("level", String(1), nullable=False),
    Column("source", String(64), nullable=False),
    Column("component", String(64), nullable=False),
    Column("site_code", String(8), nullable=False),
    Column("system", String(255), nullable=False),
    Column("process_id", BigInteger, nullable=False),
    Column("thread_id", BigInteger, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    *(Column(f"istr{i}", Text, nullable=False) for i in range(10)),
    Column("attributes", JSON, nullable=False),
    Column("last_error", BigInteger),
    Column("source_site", String(8)),
    Column("source_record_id", BigInteger),
    Column("received_at", DateTime(timezone=True)),
    Index("ix_status_message_time", "time"),
    Index("ix_status_message_site_time", "site_code", "time"),
    Index("ix_status_message_id_time", "message_id", "time"),
    Index("uq_status_message_source", "source_site", "source_record_id", unique=True),
)

site_data = Table(
    "site_data",
    metadata,
    Column("site_code", String(8), primary_key=True),
    Column("via_site", String(8), nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("sync_status", JSON),
    Column("sup_sync_status", JSON, nullable=False),
    Column("alerts", JSON, nullable=False),
    Column("stale_below", Boolean, nullable=False),
)

site_data_link = Table(
    "site_data_link",
    metadata,
    Column("child_site_code", String(8), primary_key=True),
    Column("last_record_id", BigInteger, nullable=False),
    Column("last_check_time", DateTime(timezone=True)),
    Column("last_success_time", DateTime(timezone=True)),
    Column("consecutive_failures", Integer, nullable=False),
    Column("last_error_text", Text),
)

RAISED_ONLY = text("state = 'raised'")

alert = Table(
    "alert",
    metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=True),
    Column("alert_type", String(32), nullable=False),
    Column("site_code", String(8), nullable=False),
    Column("instance", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("raised_at", DateTime(timezone=True), nullable=False),
    Column("canceled_at", DateTime(timezone=True)),
    Column("text", Text, nullable=False),
    Index(
        "uq_alert_raised",
        "alert_type",
        "site_code",
        "instance",
        unique=True,
        sqlite_where=RAISED_ONLY,
        postgresql_where=RAISED_ONLY,
    ),
    Index("ix_alert_site_raised_at", "site_code", "raised_at"),
)

site_control = Table(
    "site_control",
    metadata,
    Column("site_code", String(8), nullable=False),
    Column("install_order", Integer, nullable=False),
    Column("fqdn", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("https", Boolean, nullable=False),
    Column("internet_facing", Boolean, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
    PrimaryKeyConstraint("site_code", "install_order", name="pk_site_control"),
    UniqueConstraint("site_code", "fqdn", name="uq_site_control_fqdn"),
)

supsync_status = Table(
    "supsync_status",
    metadata,
    Column("site_code", String(8), nullable=False),
    Column("wsus_server_name", String(255), nullable=False),
    Column("wsus_source_server", String(255), nullable=False),
    Column("last_sync_state", Integer),
    Column("last_sync_state_time", DateTime(timezone=True)),
    Column("last_sync_error_code", BigInteger),
    Column("last_successful_sync_time", DateTime(timezone=True)),
    Column("sync_catalog_version", Integer),
    Column("replication_link_status", Integer, nullable=False),
    Column("last_replication_link_check_time", DateTime(timezone=True)),
    PrimaryKeyConstraint("site_code", "wsus_server_name", name="pk_supsync_status"),
)

sup_audit = Table(
    "sup_audit",
    metadata,
    Column("site_code", String(8), nullable=False),
    Column("wsus_server_name", String(255), nullable=False),
    Column("upstream_server", String(255), nullable=False),
    Column("result", String(16), nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("own_digest", String(64)),
    Column("own_count", Integer),
    Column("upstream_digest", String(64)),
    Column("upstream_count", Integer),
    Column("reason", Text),
    PrimaryKeyConstraint("site_code", "wsus_server_name", name="pk_sup_audit"),
)

site_user = Table(
    "site_user",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("removed_at", DateTime(timezone=True)),
    Column("replication_seq", BigInteger),
    Index("ix_site_user_replication_seq", "replication_seq", unique=True),
)

api_token = Table(
    "api_token",
    metadata,
    Column("token_id", String(16), primary_key=True),
    Column("user_name", String(64), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("secret_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("replication_seq", BigInteger),
    Index("ix_api_token_replication_seq", "replication_seq", unique=True),
    Index("ix_api_token_user", "user_name"),
)

alert_webhook = Table(
    "alert_webhook",
    metadata,
    Column("url", Text, primary_key=True),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("claimed_until", DateTime(timezone=True)),
)

alert_webhook_baseline = Table(
    "alert_webhook_baseline",
    metadata,
    Column("url", Text, nullable=False),
    Column("epoch", String(64), nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("url", "epoch", name="pk_alert_webhook_baseline"),
)

alert_delivery = Table(
    "alert_delivery",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("epoch", String(64), nullable=False),
    Column("alert_id", Integer, nullable=False),
    Column("event", String(16), nullable=False),
    Column("payload", Text, nullable=False),
    Column("happened_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("done_at", DateTime(timezone=True)),
    UniqueConstraint("url", "epoch", "alert_id", "event", name="uq_alert_delivery_event"),
    Index("ix_alert_delivery_pending", "url", "state", "seq"),
)

wsus_subscription = Table(
    "wsus_subscription",
    metadata,
    Column("site_code", String(8), primary_key=True),
    Column("products", JSON, nullable=False),
    Column("classifications", JSON, nullable=False),
    Column("languages", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("file_digest", String(64)),
)

wsus_configuration = Table(
    "wsus_configuration",
    metadata,
    Column("site_code", String(8), nullable=False),
    Column("wsus_server_name", String(255), nullable=False),
    Column("state", Integer, nullable=False),
    Column("state_time", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("last_error_code", BigInteger),
    Column("subscription_version", Integer),
    PrimaryKeyConstraint("site_code", "wsus_server_name", name="pk_wsus_configuration"),
)

deleted_item = Table(
    "deleted_item",
    metadata,
    Column("update_id", String(36), primary_key=True),
    Column("deleted_at", DateTime(timezone=True), nullable=False),
    Column("replication_seq", BigInteger, nullable=False),
    Index("ix_deleted_item_replication_seq", "replication_seq", unique=True),
)
