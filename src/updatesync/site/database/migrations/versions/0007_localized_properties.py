"""Localized properties of configuration items.

`ci_localized_property`: one row per configuration item and subscribed language, as
ConfigMgr keeps a CI's localized properties (LocaleID, DisplayName, Description): the
update's title and description in that language (its default language's where it has none
in that language), keyed by the CI's update id and the language's short name, with the
language's LocaleID (LCID). Written with the CIs in the site-database phase of a sync.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ci_localized_property",
        sa.Column("update_id", sa.String(36), primary_key=True),
        sa.Column("language", sa.String(16), primary_key=True),
        sa.Column("locale_id", sa.Integer, nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("ci_localized_property")
