"""Alembic environment for the site database.

Migrations run on the connection handed over in `config.attributes["connection"]`, so that
the site database opens, migrates and works inside one engine. The applied revision is kept
in the `schema_version` table.
"""

from __future__ import annotations

from alembic import context

from updatesync.site.database.engine import VERSION_TABLE
from updatesync.site.database.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
