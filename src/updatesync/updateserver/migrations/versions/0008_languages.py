"""Update languages: what the language filter of GetRevisionIdList and a site's localized
properties need.

- `revision_language`: the languages a language-specific update is for
  (`upd:Properties/upd:Language`), one row per revision and language; a language-neutral
  revision has none. GetRevisionIdList's `Languages` filter is an EXISTS on it.
- `revision_localized`: the title and description of a software update or driver in each
  language the server subscribes to (its default language's when it has none in that
  language), one row per revision and language. Revision 0006 dropped every language's
  texts as a JSON column (a tenth of a store's bytes, read by nothing); these rows are the
  subscribed languages' only, read by the site's pages of configuration items.
- `upstream_state.languages`: the upstream's LanguageUpdateList (GetConfigData), JSON
  [[id, short name, long name, enabled], ...], kept between syncs since an answer to a
  config anchor lists only the languages changed since ([MS-WSUSSS] 3.2.4.2).
- `store_state.languages_changed_at`: when the subscription's languages last changed, so
  that this server, as an upstream, lists its languages again to a config anchor older.

The upgrade reads every stored revision's document once (a thousand at a time) for both
tables.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "revision_language",
        sa.Column("update_id", sa.String(36), primary_key=True),
        sa.Column("revision_number", sa.Integer, primary_key=True),
        sa.Column("language", sa.String(16), primary_key=True),
    )
    op.create_table(
        "revision_localized",
        sa.Column("update_id", sa.String(36), primary_key=True),
        sa.Column("revision_number", sa.Integer, primary_key=True),
        sa.Column("language", sa.String(16), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
    )
    op.add_column("upstream_state", sa.Column("languages", sa.Text))
    op.add_column("store_state", sa.Column("languages_changed_at", sa.DateTime(timezone=True)))
    _fill(op.get_bind())


def _fill(conn: sa.Connection) -> None:
    # The parser of update documents, as the importer uses it (hardened, no network).
    from updatesync.metadata.document import parse_update

    subscribed = sorted(
        {
            str(lang).strip().lower()
            for (lang,) in conn.execute(sa.text("SELECT language FROM subscription_language"))
        }
    )
    after = -1
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT id, xml FROM revision WHERE id > :after "
                "AND update_type IN ('Software', 'Driver') ORDER BY id LIMIT :batch"
            ),
            {"after": after, "batch": _BATCH},
        ).all()
        if not rows:
            return
        languages: list[dict[str, object]] = []
        texts: list[dict[str, object]] = []
        for _id, xml in rows:
            if not subscribed and not _names_a_language(xml):
                continue  # nothing to write for it: not parsed
            doc = parse_update(xml)
            key = {"uid": doc.update_id, "rev": doc.revision}
            languages += [{**key, "lang": lang} for lang in doc.update_languages]
            if doc.localized:
                texts += [
                    {**key, "lang": lang, "title": doc.title(lang), "d": doc.description(lang)}
                    for lang in subscribed
                ]
        if languages:
            conn.execute(
                sa.text(
                    "INSERT INTO revision_language (update_id, revision_number, language) "
                    "VALUES (:uid, :rev, :lang)"
                ),
                languages,
            )
        if texts:
            conn.execute(
                sa.text(
                    "INSERT INTO revision_localized "
                    "(update_id, revision_number, language, title, description) "
                    "VALUES (:uid, :rev, :lang, :title, :d)"
                ),
                texts,
            )
        after = rows[-1][0]


def _names_a_language(xml: str) -> bool:
    """Whether `Language>` occurs before the localized properties (in `upd:Properties`),
    as a language-specific update's does: the documents worth parsing."""
    end = xml.find("LocalizedPropertiesCollection")
    return xml.find("Language>", 0, end if end >= 0 else len(xml)) >= 0


def downgrade() -> None:
    op.drop_column("store_state", "languages_changed_at")
    op.drop_column("upstream_state", "languages")
    op.drop_table("revision_localized")
    op.drop_table("revision_language")
