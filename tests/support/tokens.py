"""API tokens for tests that call an SMS Provider directly on its site database.

`token_for(db, user, role)` adds the user (once) with the security role and returns a new
API token of it, as `updatesync token new` would; `bearer(token)` is the header to send.
"""

from __future__ import annotations

from updatesync.security.access import SecurityRole, new_token
from updatesync.site.database.site_db import SiteDatabase


def token_for(
    db: SiteDatabase,
    user: str = "tester",
    role: SecurityRole = SecurityRole.FULL_ADMINISTRATOR,
) -> str:
    known = db.users.get(user)
    if known is None or not known.active:
        db.users.add(user, role.value, None)
    token = new_token()
    db.users.add_token(user, token.token_id, token.secret_hash)
    return token.text


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
