"""Alembic environment for the update server's store.

Migrations run on the connection the store hands over in `config.attributes["connection"]`,
so that a store opens, migrates and works inside one engine.
"""

from __future__ import annotations

from alembic import context

from updatesync.updateserver.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
