"""The provider's authentication: which token is taken (known, verified, not revoked, not
expired, of an active user), the refusals' answers, and the first Full Administrator of a
top-level site (its token file written once, an existing one adopted)."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from tokens import bearer, token_for

from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.roles.serving import BackgroundServer
from updatesync.security.access import SESSION_PREFIX, SecurityRole, new_token
from updatesync.security.private_files import InsecureFileError
from updatesync.security.signing import HmacAuth
from updatesync.site.api.auth import ProviderAuth, Unauthorized, bootstrap_admin
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database import schema
from updatesync.site.database.models import TOKEN_SESSION
from updatesync.site.database.site_db import SiteDatabase

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SiteDatabase]:
    with SiteDatabase.open(tmp_path / "CS1", site_code="CS1") as site_db:
        yield site_db


def test_a_token_gives_its_users_role(db: SiteDatabase) -> None:
    token = token_for(db, "reader", SecurityRole.READ_ONLY_ANALYST)
    principal = ProviderAuth(db, None).principal(token)

    assert (principal.user, principal.role) == ("reader", SecurityRole.READ_ONLY_ANALYST)
    assert principal.token_id == token.split("_")[1]
    assert not principal.system


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda t: "ust_nothing", "not an updatesync token"),
        (lambda t: t[:-2] + ("xy" if not t.endswith("xy") else "zz"), "does not hold"),
        (lambda t: "ust_" + "f" * 16 + t[20:], "is not known at site CS1"),
        (lambda t: t.replace("ust_", SESSION_PREFIX + "_", 1), "is not known"),
    ],
)
def test_a_bad_token_is_refused_saying_why(db: SiteDatabase, mangle, reason: str) -> None:  # type: ignore[no-untyped-def]
    token = token_for(db)
    with pytest.raises(Unauthorized, match=reason):
        ProviderAuth(db, None).principal(mangle(token))


def test_an_expired_session_is_refused(db: SiteDatabase) -> None:
    token_for(db, "op", SecurityRole.SOFTWARE_UPDATE_MANAGER)
    session = new_token(SESSION_PREFIX)
    db.users.add_token(
        "op",
        session.token_id,
        session.secret_hash,
        kind=TOKEN_SESSION,
        expires_at=T0 + timedelta(hours=8),
    )

    early = ProviderAuth(db, None, clock=lambda: T0 + timedelta(hours=7))
    late = ProviderAuth(db, None, clock=lambda: T0 + timedelta(hours=8))

    assert early.principal(session.text).user == "op"
    with pytest.raises(Unauthorized, match="expired"):
        late.principal(session.text)


def test_a_provider_without_the_hierarchys_secret_refuses_signed_calls(
    db: SiteDatabase, tmp_path: Path
) -> None:
    app = create_provider_app(
        db, log=CMTraceLog(tmp_path / "SMSProv.log", component="SMS Provider"), site_code="CS1"
    )
    with BackgroundServer(app) as server:
        signed = httpx.get(
            f"{server.url}/api/alerts", auth=HmacAuth(b"s" * 64, "console"), timeout=30
        )
        analyst = token_for(db, "reader", SecurityRole.READ_ONLY_ANALYST)
        forbidden = httpx.post(
            f"{server.url}/api/tokens", json={"user": "reader"}, headers=bearer(analyst)
        )

    assert signed.status_code == 401
    assert "site-to-site signature" in signed.json()["detail"]
    assert forbidden.status_code == 403
    assert forbidden.json()["detail"].startswith("user reader (Read-only Analyst) may not")


# -- the first Full Administrator --------------------------------------------------------------


def test_the_first_start_writes_the_admin_token_once(db: SiteDatabase, tmp_path: Path) -> None:
    log_path = tmp_path / "SMSProv.log"
    log = CMTraceLog(log_path, component="SMS Provider")
    path = tmp_path / "CS1" / "admin.token"

    written = bootstrap_admin(db, path, log)
    again = bootstrap_admin(db, path, log)

    assert written == path and again is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    principal = ProviderAuth(db, None).principal(path.read_text().strip())
    assert (principal.user, principal.role) == ("admin", SecurityRole.FULL_ADMINISTRATOR)
    lines = [e.message for e in read_cmtrace(log_path)]
    assert lines == [
        f"Created the Full Administrator user admin; its API token is in {path} (readable "
        "by its owner only)"
    ]


def test_a_new_database_beside_an_existing_token_file_adopts_its_token(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    with SiteDatabase.open(tmp_path / "old", site_code="CS1") as old:
        bootstrap_admin(old, path, None)
    before = path.read_text()

    with SiteDatabase.open(tmp_path / "new", site_code="CS1") as new:
        assert bootstrap_admin(new, path, None) is None
        assert ProviderAuth(new, None).principal(before.strip()).user == "admin"
    assert path.read_text() == before


def test_a_token_file_that_holds_no_token_is_left_and_logged(
    db: SiteDatabase, tmp_path: Path
) -> None:
    path = tmp_path / "admin.token"
    path.write_text("something else\n")
    path.chmod(0o600)
    log_path = tmp_path / "SMSProv.log"

    bootstrap_admin(db, path, CMTraceLog(log_path, component="SMS Provider"))

    assert db.users.count_ever() == 0
    assert path.read_text() == "something else\n"
    (entry,) = read_cmtrace(log_path)
    assert "holds no updatesync token" in entry.message and "Remove the file" in entry.message


def test_a_token_file_others_may_read_is_not_adopted(db: SiteDatabase, tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    path.write_text(new_token().text + "\n")
    path.chmod(0o644)
    with pytest.raises(InsecureFileError, match=r"has mode 0644.*chmod 600"):
        bootstrap_admin(db, path, None)
    assert db.users.count_ever() == 0


def test_a_session_of_a_removed_user_stays_refused_when_the_name_comes_back(
    db: SiteDatabase,
) -> None:
    """A child site's sessions are its own: the removal that replicates does not revoke
    them, and a user added again under the same name must not revive them."""
    db.users.add("op", SecurityRole.SOFTWARE_UPDATE_MANAGER.value, None, at=T0)
    session = new_token(SESSION_PREFIX)
    db.users.add_token(
        "op", session.token_id, session.secret_hash, kind=TOKEN_SESSION, at=T0,
        expires_at=T0 + timedelta(hours=8),
    )  # fmt: skip
    auth = ProviderAuth(db, None, clock=lambda: T0 + timedelta(hours=2))
    assert auth.principal(session.text).user == "op"
    # As replication writes it at a child: the user removed, then added again.
    with db.store.begin() as conn:
        conn.execute(update(schema.site_user).values(created_at=T0 + timedelta(hours=1)))

    with pytest.raises(Unauthorized, match="user op was removed"):
        auth.principal(session.text)
