"""Users, security roles and API tokens (global data, replicated from the top-level site).

- `site_user`: the administrative users with their security role and password hash.
- `api_token`: API tokens and login sessions, each the argon2 hash of its secret.

Both carry `replication_seq` (NULL for a login session, which stays at its site) from the
same counter as CIs and categories, so database replication carries them to child sites.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_user",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True)),
        sa.Column("replication_seq", sa.BigInteger),
    )
    op.create_index("ix_site_user_replication_seq", "site_user", ["replication_seq"], unique=True)
    op.create_table(
        "api_token",
        sa.Column("token_id", sa.String(16), primary_key=True),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("replication_seq", sa.BigInteger),
    )
    op.create_index("ix_api_token_replication_seq", "api_token", ["replication_seq"], unique=True)
    op.create_index("ix_api_token_user", "api_token", ["user_name"])


def downgrade() -> None:
    op.drop_table("api_token")
    op.drop_table("site_user")
