"""API tokens for tests that call an SMS Provider directly on its site database.

`token_for(db, user, role)` adds the user (once) with the security role and returns a new
API token of it, as `updatesync token new` would; `bearer(token)` is the header to send;
`BearerFile(path)` an httpx auth sending the token of a file (a standalone update server's
admin token).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import httpx

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


class BearerFile(httpx.Auth):
    """Sends the token in `path` (read at each request: a server may write it after the
    client is made), as `Authorization: Bearer`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.path.read_text(encoding="utf-8").strip()
        request.headers["authorization"] = f"Bearer {token}"
        yield request
