"""Users and API tokens in the site database: written once, never deleted (a removal and a
revocation are rows that replicate too), carried to a child by database replication; login
sessions stay at their site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from databases import Databases

from updatesync.site.database.models import TOKEN_SESSION
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.store import SiteDatabaseError

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ADMIN = "Full Administrator"
ANALYST = "Read-only Analyst"


def test_a_user_is_added_once_listed_and_removed_with_its_tokens(db: SiteDatabase) -> None:
    db.users.add("ada", ADMIN, "$argon2id$x", at=T0)
    db.users.add_token("ada", "00000000000000a1", "$argon2id$t", at=T0)
    with pytest.raises(SiteDatabaseError, match="exists already"):
        db.users.add("ada", ANALYST, None)

    assert [u.name for u in db.users.list()] == ["ada"]
    removed = db.users.remove("ada", at=T0 + timedelta(hours=1))

    assert removed is not None and removed.removed_at == T0 + timedelta(hours=1)
    assert db.users.list() == []
    assert db.users.count_ever() == 1
    token, user = db.users.token("00000000000000a1") or (None, None)
    assert token is not None and token.revoked_at is not None
    assert user is not None and not user.active
    assert db.users.remove("ada") is None
    # The name can be used again; the old token stays revoked.
    db.users.add("ada", ANALYST, None)
    assert db.users.get("ada").role == ANALYST  # type: ignore[union-attr]
    assert db.users.tokens("ada") == []


def test_a_token_needs_an_active_user_and_a_known_kind(db: SiteDatabase) -> None:
    with pytest.raises(SiteDatabaseError, match="user bob does not exist"):
        db.users.add_token("bob", "00000000000000b1", "h")
    db.users.add("bob", ANALYST, None)
    with pytest.raises(SiteDatabaseError, match="not 'api' or 'session'"):
        db.users.add_token("bob", "00000000000000b1", "h", kind="cookie")


def test_revoking_a_token_keeps_its_row_and_says_when(db: SiteDatabase) -> None:
    db.users.add("bob", ANALYST, None)
    db.users.add_token("bob", "00000000000000b2", "h", expires_at=T0 + timedelta(days=1))

    revoked = db.users.revoke_token("00000000000000b2", at=T0)

    assert revoked is not None and revoked.revoked_at == T0
    assert not revoked.valid_at(T0 - timedelta(hours=1))
    assert db.users.revoke_token("00000000000000b2") is None
    assert db.users.tokens() == []


def test_users_and_api_tokens_replicate_to_a_child_and_sessions_do_not(
    db: SiteDatabase, databases: Databases
) -> None:
    db.users.add("ada", ADMIN, "$argon2id$p", at=T0)
    db.users.add_token("ada", "00000000000000a1", "$argon2id$t", at=T0)
    db.users.add_token("ada", "00000000000000a2", "$argon2id$s", kind=TOKEN_SESSION, expires_at=T0)
    with SiteDatabase.open(url=databases.new().url, site_code="PS1") as child:
        page = db.replication.changes(0, 100)
        assert [u.name for u in page.users] == ["ada"]
        assert [k.token_id for k in page.tokens] == ["00000000000000a1"]
        child.replication.apply("CS1", page)

        assert child.users.get("ada") == db.users.get("ada")
        assert child.users.token("00000000000000a1") == db.users.token("00000000000000a1")
        assert child.users.token("00000000000000a2") is None

        # A revocation and a removal are changes too.
        db.users.revoke_token("00000000000000a1", at=T0 + timedelta(minutes=5))
        db.users.remove("ada", at=T0 + timedelta(minutes=6))
        more = db.replication.changes(page.last_seq, 100)
        child.replication.apply("CS1", more)

        token, user = child.users.token("00000000000000a1") or (None, None)
        assert token is not None and token.revoked_at == T0 + timedelta(minutes=5)
        assert user is not None and user.removed_at == T0 + timedelta(minutes=6)
        # The child numbers what it received, so it can pass it on to its own children.
        onward = child.replication.changes(0, 100)
        assert [u.name for u in onward.users] == ["ada"]


def test_a_page_holds_users_and_cis_in_sequence_order_up_to_the_limit(db: SiteDatabase) -> None:
    for n in range(3):
        db.users.add(f"user{n}", ANALYST, None)

    first = db.replication.changes(0, 2)
    rest = db.replication.changes(first.last_seq, 2)

    assert [u.name for u in first.users] == ["user0", "user1"]
    assert [u.name for u in rest.users] == ["user2"]
    assert rest.reaches_head


def test_a_new_password_replicates_and_a_removed_user_gets_none(
    db: SiteDatabase, databases: Databases
) -> None:
    db.users.add("admin", ADMIN, None, at=T0)
    with SiteDatabase.open(url=databases.new().url, site_code="PS1") as child:
        page = db.replication.changes(0, 100)
        child.replication.apply("CS1", page)
        changed = db.users.set_password("admin", "$argon2id$new")
        assert changed is not None and changed.password_hash == "$argon2id$new"
        child.replication.apply("CS1", db.replication.changes(page.last_seq, 100))
        assert child.users.get("admin").password_hash == "$argon2id$new"  # type: ignore[union-attr]
    assert db.users.set_password("nobody", "$argon2id$x") is None
    db.users.add("ben", ANALYST, None)
    db.users.remove("ben")
    assert db.users.set_password("ben", "$argon2id$x") is None
    assert db.users.get("ben").password_hash is None  # type: ignore[union-attr]
