"""The provider's routes for users, tokens and sessions, over real HTTP: what a Full
Administrator is told when a request is wrong, and what a token's answer holds (the token
once, never again)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tokens import bearer, token_for

from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.roles.serving import BackgroundServer
from updatesync.site.api.provider import create_provider_app
from updatesync.site.database.site_db import SiteDatabase


@dataclass
class Provider:
    db: SiteDatabase
    client: httpx.Client
    log_path: Path


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Provider]:
    log_path = tmp_path / "SMSProv.log"
    with SiteDatabase.open(tmp_path / "CS1", site_code="CS1") as db:
        app = create_provider_app(
            db, log=CMTraceLog(log_path, component="SMS Provider"), site_code="CS1"
        )
        headers = bearer(token_for(db, "root"))
        with (
            BackgroundServer(app) as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=30) as client,
        ):
            yield Provider(db, client, log_path)


def test_adding_a_user_says_what_is_wrong(provider: Provider) -> None:
    post = provider.client.post

    role = post("/api/users", json={"name": "ann", "role": "root"})
    name = post("/api/users", json={"name": "ann smith", "role": "Read-only Analyst"})
    short = post("/api/users", json={"name": "ann", "role": "Read-only Analyst", "password": "x"})
    added = post("/api/users", json={"name": "Ann", "role": "read-only-analyst"})
    twice = post("/api/users", json={"name": "ann", "role": "Read-only Analyst"})

    assert role.status_code == 422 and "not a security role" in role.json()["detail"]
    assert name.status_code == 422 and "user name 'ann smith'" in name.json()["detail"]
    assert short.status_code == 422 and "at least 12" in short.json()["detail"]
    assert added.status_code == 201
    assert added.json() | {"created": None} == {
        "name": "ann",
        "role": "Read-only Analyst",
        "created": None,
        "has_password": False,
    }
    assert twice.status_code == 409 and "exists already" in twice.json()["detail"]
    assert "User root added user ann (Read-only Analyst)" in [
        e.message for e in read_cmtrace(provider.log_path)
    ]


def test_a_token_is_shown_once_and_listed_by_its_id_only(provider: Provider) -> None:
    provider.client.post("/api/users", json={"name": "ann", "role": "Software Update Manager"})

    issued = provider.client.post("/api/tokens", json={"user": "ann", "expires_days": 30})
    listed = provider.client.get("/api/tokens")
    unknown = provider.client.post("/api/tokens", json={"user": "nobody"})

    assert issued.status_code == 201
    body = issued.json()
    assert body["user"] == "ann" and body["role"] == "Software Update Manager"
    assert body["expires"] is not None
    assert body["token"].startswith(f"ust_{body['id']}_")
    assert body["id"] in listed.text and body["token"] not in listed.text
    assert body["token"] not in provider.log_path.read_text(encoding="utf-8")
    assert unknown.status_code == 404
    assert provider.client.delete("/api/tokens/0123456789abcdef").status_code == 404


def test_signing_out_needs_a_session(provider: Provider) -> None:
    answer = provider.client.delete("/api/sessions/current")
    assert answer.status_code == 409
    assert "not a login session" in answer.json()["detail"]


def test_a_user_without_a_password_is_given_one_and_signs_in(provider: Provider) -> None:
    """The first Full Administrator has a token but no password: `PUT
    /api/users/{name}/password` gives one (the console's login page needs it)."""
    provider.client.post("/api/users", json={"name": "ann", "role": "Full Administrator"})
    password = "a long enough password"
    sign_in = {"user": "ann", "password": password}

    before = provider.client.post("/api/sessions", json=sign_in)
    short = provider.client.put("/api/users/ann/password", json={"password": "short"})
    unknown = provider.client.put("/api/users/nobody/password", json={"password": password})
    given = provider.client.put("/api/users/ann/password", json={"password": password})
    after = provider.client.post("/api/sessions", json=sign_in)

    assert before.status_code == 401
    assert short.status_code == 422 and "at least 12" in short.json()["detail"]
    assert unknown.status_code == 404 and "no user nobody" in unknown.json()["detail"]
    assert given.status_code == 200 and given.json()["has_password"] is True
    assert after.status_code == 201 and after.json()["user"] == "ann"
    log = provider.log_path.read_text(encoding="utf-8")
    assert "User root set the password of user ann" in log
    assert password not in log


def test_only_a_full_administrator_sets_passwords(provider: Provider) -> None:
    provider.client.post("/api/users", json={"name": "sam", "role": "Software Update Manager"})
    token = provider.client.post("/api/tokens", json={"user": "sam"}).json()["token"]
    answer = httpx.put(
        f"{provider.client.base_url}/api/users/sam/password",
        json={"password": "a long enough password"},
        headers=bearer(token),
        timeout=30,
    )
    assert answer.status_code == 403
