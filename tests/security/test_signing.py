"""Site-to-site calls are signed with the hierarchy's shared secret; others are refused."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from updatesync.roles.serving import BackgroundServer
from updatesync.security.signing import (
    HmacAuth,
    SecretError,
    create_secret,
    load_secret,
    require_signature,
)

SECRET = b"0123456789abcdef0123456789abcdef-shared"


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"caller": request.scope.get("updatesync.caller"), "body": body.decode()})


@pytest.fixture(scope="module")
def server():
    app = Starlette(
        routes=[Route("/site/echo", echo, methods=["GET", "POST"]), Route("/policy/echo", echo)]
    )
    with BackgroundServer(require_signature(app, SECRET, public=["/policy/"])) as running:
        yield running


def test_a_signed_call_passes_and_names_its_caller(server):
    with httpx.Client(base_url=server.url, auth=HmacAuth(SECRET, "PS1")) as client:
        answer = client.post("/site/echo?x=1", content=b"payload")
    assert answer.status_code == 200
    assert answer.json() == {"caller": "PS1", "body": "payload"}


def test_an_unsigned_call_is_refused_with_a_reason(server):
    answer = httpx.post(server.url + "/site/echo", content=b"payload")
    assert answer.status_code == 401
    assert "no signature" in answer.json()["error"]


def test_a_call_signed_with_another_secret_is_refused(server):
    other = HmacAuth(b"another-secret-another-secret-0000", "PS1")
    answer = httpx.get(server.url + "/site/echo", auth=other)
    assert answer.status_code == 401
    assert "does not hold" in answer.json()["error"]


def test_an_old_signature_is_refused_as_a_replay(server):
    old = HmacAuth(SECRET, "PS1", clock=lambda: 1_000_000.0)
    answer = httpx.get(server.url + "/site/echo", auth=old)
    assert answer.status_code == 401
    assert "replay" in answer.json()["error"]


def test_public_paths_need_no_signature(server):
    assert httpx.get(server.url + "/policy/echo").status_code == 200


def test_the_secret_file_is_created_private_and_read_back(tmp_path):
    path = tmp_path / "keys" / "hierarchy.secret"
    written = create_secret(path)
    assert load_secret(path) == written
    assert path.stat().st_mode & 0o077 == 0


def test_a_missing_or_short_secret_says_what_to_do(tmp_path):
    with pytest.raises(SecretError, match="updatesync secret new"):
        load_secret(tmp_path / "absent")
    (tmp_path / "short").write_text("abc")
    with pytest.raises(SecretError, match="at least 32"):
        load_secret(tmp_path / "short")
