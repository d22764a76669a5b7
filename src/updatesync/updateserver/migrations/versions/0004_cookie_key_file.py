"""The MS-WSUSSS cookie key leaves the database for its own file in the data folder.

The key that authenticates the cookies this server hands out was a column of
`server_identity`; anyone who could read the database could mint cookies. It now lives in
`<data folder>/cookie.key` (mode 0600, base64), which the server refuses to use when group
or others may read it. This migration writes an existing key to that file (created with
O_EXCL; a file already there must hold the same key) and drops the column; on SQLite with
`secure_delete`, so the freed pages that held it are overwritten. A store without a key yet
gets its file when it first serves.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import base64
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

from updatesync.security.private_files import create_private_file, read_private_file
from updatesync.updateserver.database import CookieKeyHomeless

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COOKIE_KEY_FILE = "cookie.key"


def upgrade() -> None:
    bind = op.get_bind()
    stored = bind.execute(sa.text("SELECT cookie_key FROM server_identity")).scalar()
    if stored:
        _write_key_file(stored)
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("PRAGMA secure_delete=ON")
    with op.batch_alter_table("server_identity") as batch:
        batch.drop_column("cookie_key")


def _write_key_file(stored: str) -> None:
    data_dir = context.config.attributes.get("data_dir")
    if data_dir is None:
        raise CookieKeyHomeless(
            "this update server's database holds its cookie key, which now lives in a file "
            "of its data folder: open it once with its data folder too (--data DIR beside "
            "--database) so the key can be moved there"
        )
    path = Path(data_dir) / COOKIE_KEY_FILE
    key = base64.b64decode(stored)
    try:
        create_private_file(path, stored.strip().encode("ascii") + b"\n")
    except FileExistsError:
        held = base64.b64decode(read_private_file(path, "the MS-WSUSSS cookie key file"))
        if held != key:
            raise RuntimeError(
                f"{path} holds another cookie key than this server's database; move it "
                "away and open the store again (the database's key is moved there)"
            ) from None


def downgrade() -> None:
    """The key goes back into the database (the file stays)."""
    with op.batch_alter_table("server_identity") as batch:
        batch.add_column(sa.Column("cookie_key", sa.String(88), nullable=False, server_default=""))
    data_dir = context.config.attributes.get("data_dir")
    path = Path(data_dir) / COOKIE_KEY_FILE if data_dir is not None else None
    if path is not None and path.exists():
        text = read_private_file(path, "the MS-WSUSSS cookie key file").decode("ascii").strip()
        op.get_bind().execute(sa.text("UPDATE server_identity SET cookie_key = :k"), {"k": text})
