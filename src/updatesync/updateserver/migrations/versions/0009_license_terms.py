"""License terms: the files of each EULA the stored revisions name, and their texts.

An update may name license terms (`Properties/@EulaID`, [MS-WSUSSS] 3.1.1.1: the EULAs
table of 3.1.1) that an administrator accepts before it is deployed; Microsoft Update lists
their files (one text per language, `upd:EulaFiles`) in the update's metadata and serves
them apart from it. `eula_file` holds each EULA's files as the metadata lists them (written
with the revisions that list them); `eula_content` the text of each file this server has
downloaded (by its SHA-1 digest, checked before it is written). A file listed without a
text is pending: the server asks its upstream for it at every sync until it has it, and
serves the texts it has to its own downstream servers (`/Content/...`).

Revisions stored before this migration list no files here: none of the documents updatesync
imported or generated before carried `upd:EulaFiles`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eula_file",
        sa.Column("eula_id", sa.String(36), primary_key=True),
        sa.Column("digest", sa.String(44), primary_key=True),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_eula_file_digest", "eula_file", ["digest"])
    op.create_table(
        "eula_content",
        sa.Column("digest", sa.String(44), primary_key=True),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("eula_content")
    op.drop_index("ix_eula_file_digest", table_name="eula_file")
    op.drop_table("eula_file")
