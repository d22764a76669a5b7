"""Site-to-site calls are signed with the hierarchy's shared secret, accepted once, and
refused with a reason otherwise (`updatesync.security.signing`)."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from updatesync.roles.serving import BackgroundServer
from updatesync.security.signing import (
    MAX_SKEW,
    HmacAuth,
    SharedSecret,
    SignatureRefused,
    check_request,
    key_id,
    require_signature,
)

SECRET = b"0123456789abcdef0123456789abcdef-shared"
OTHER = b"another-secret-another-secret-0000"


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"caller": request.scope.get("updatesync.caller"), "body": body.decode()})


class Lines(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture(scope="module")
def refused() -> Lines:
    return Lines()


@pytest.fixture(scope="module")
def server(refused: Lines):
    app = Starlette(
        routes=[Route("/site/echo", echo, methods=["GET", "POST"]), Route("/policy/echo", echo)]
    )
    guarded = require_signature(
        app,
        SECRET,
        public=["/policy/"],
        callers=["PS1", "cs1site.contoso.com", "console"],
        hosts=["127.0.0.1"],
        log=refused,
        max_body=1024,
    )
    with BackgroundServer(guarded) as running:
        yield running


def test_a_signed_call_passes_and_names_its_caller(server):
    with httpx.Client(base_url=server.url, auth=HmacAuth(SECRET, "PS1")) as client:
        answer = client.post("/site/echo?x=1", content=b"payload")
    assert answer.status_code == 200
    assert answer.json() == {"caller": "PS1", "body": "payload"}


def test_caller_names_are_matched_in_any_case(server):
    answer = httpx.get(server.url + "/site/echo", auth=HmacAuth(SECRET, "CS1SITE.contoso.com"))
    assert answer.status_code == 200


def test_an_unsigned_call_is_refused_with_a_reason_in_the_answer_and_the_log(server, refused):
    answer = httpx.post(server.url + "/site/echo", content=b"payload")
    assert answer.status_code == 401
    assert "no signature" in answer.json()["error"]
    assert answer.headers["www-authenticate"].startswith("Updatesync-HMAC keys=")
    assert any("POST /site/echo" in line and "no signature" in line for line in refused)


def test_a_call_signed_with_another_secret_names_the_keys(server):
    answer = httpx.get(server.url + "/site/echo", auth=HmacAuth(OTHER, "PS1"))
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert key_id(OTHER) in error and key_id(SECRET) in error
    assert "secret files differ" in error


def test_an_old_signature_is_refused_as_a_replay(server):
    old = HmacAuth(SECRET, "PS1", clock=lambda: time.time() - MAX_SKEW - 5)
    answer = httpx.get(server.url + "/site/echo", auth=old)
    assert answer.status_code == 401
    assert "ago" in answer.json()["error"] and "replay" in answer.json()["error"]


def test_a_signature_from_the_future_is_refused(server):
    ahead = HmacAuth(SECRET, "PS1", clock=lambda: time.time() + MAX_SKEW + 5)
    answer = httpx.get(server.url + "/site/echo", auth=ahead)
    assert answer.status_code == 401
    assert "in the future" in answer.json()["error"]


def test_a_request_within_the_window_from_either_side_passes(server):
    for shift in (-MAX_SKEW + 20, MAX_SKEW - 20):
        auth = HmacAuth(SECRET, "PS1", clock=lambda shift=shift: time.time() + shift)
        assert httpx.get(server.url + "/site/echo", auth=auth).status_code == 200


def test_an_unknown_caller_is_refused(server):
    answer = httpx.get(server.url + "/site/echo", auth=HmacAuth(SECRET, "XX9"))
    assert answer.status_code == 401
    assert "'XX9' is not a site" in answer.json()["error"]


def test_a_body_over_the_limit_is_refused_before_it_is_read(server):
    with httpx.Client(base_url=server.url, auth=HmacAuth(SECRET, "PS1")) as client:
        answer = client.post("/site/echo", content=b"x" * 2048)
    assert answer.status_code == 413
    assert "over the 1024" in answer.json()["error"]


def test_a_streamed_body_over_the_limit_is_refused(server):
    """No Content-Length: the limit is counted while the body streams."""
    auth = HmacAuth(SECRET, "PS1")
    request = httpx.Request("POST", server.url + "/site/echo", content=b"y" * 4096)
    auth.sign(request, SECRET)
    del request.headers["content-length"]
    request.headers["transfer-encoding"] = "chunked"

    def chunks():
        for _ in range(4):
            yield b"y" * 1024

    streamed = httpx.Request("POST", request.url, headers=request.headers, content=chunks())
    with httpx.Client() as client:
        answer = client.send(streamed)
    assert answer.status_code == 413
    assert "over 1024 bytes" in answer.json()["error"]


def test_public_paths_need_no_signature(server):
    assert httpx.get(server.url + "/policy/echo").status_code == 200


def _signed_headers(method: str, url: str, body: bytes, secret: bytes = SECRET) -> dict:
    request = httpx.Request(method, url, content=body)
    HmacAuth(secret, "PS1").sign(request, secret)
    return dict(request.headers)


def test_check_request_accepts_once_and_refuses_the_replay():
    headers = _signed_headers("POST", "http://cs1.contoso.com:4430/site/x?a=1", b"body")
    assert check_request(SECRET, "POST", "/site/x?a=1", headers, b"body") == "PS1"
    with pytest.raises(SignatureRefused, match="already received"):
        check_request(SECRET, "POST", "/site/x?a=1", headers, b"body")


@pytest.mark.parametrize(
    ("method", "target", "body", "host"),
    [
        ("GET", "/site/x?a=1", b"body", None),
        ("POST", "/site/y?a=1", b"body", None),
        ("POST", "/site/x?a=2", b"body", None),
        ("POST", "/site/x?a=1", b"other", None),
        ("POST", "/site/x?a=1", b"body", "ps1.contoso.com:4430"),
    ],
    ids=["method", "path", "query", "body", "host"],
)
def test_check_request_refuses_every_altered_part(method, target, body, host):
    headers = _signed_headers("POST", "http://cs1.contoso.com:4430/site/x?a=1", b"body")
    if host is not None:
        headers["host"] = host
    with pytest.raises(SignatureRefused, match="altered"):
        check_request(SECRET, method, target, headers, body)


def test_a_request_addressed_to_another_server_is_refused():
    headers = _signed_headers("POST", "http://cs1.contoso.com:4430/site/x", b"")
    with pytest.raises(SignatureRefused, match="meant for another server"):
        check_request(SECRET, "POST", "/site/x", headers, b"", hosts=["ps1.contoso.com"])
    headers = _signed_headers("POST", "http://cs1.contoso.com:4430/site/x", b"")
    with pytest.raises(SignatureRefused, match="listens on port 4431"):
        check_request(SECRET, "POST", "/site/x", headers, b"", server=("10.0.0.1", 4431))


def test_during_a_rotation_both_secrets_are_accepted_and_the_caller_falls_back():
    new = b"n" * 40
    rotating = SharedSecret(new, SECRET)
    old_signed = _signed_headers("GET", "http://h:1/site/x", b"", secret=SECRET)
    assert check_request(rotating, "GET", "/site/x", old_signed, b"") == "PS1"
    new_signed = _signed_headers("GET", "http://h:1/site/x", b"", secret=new)
    assert check_request(rotating, "GET", "/site/x", new_signed, b"") == "PS1"


def test_a_caller_in_rotation_asks_again_with_the_previous_secret_of_an_old_callee(server):
    """The callee holds only the old secret; the caller signs with the new one, reads the
    keys the callee holds from its 401, and asks again with the previous secret."""
    caller = HmacAuth(SharedSecret(b"n" * 40, SECRET), "PS1")
    with httpx.Client(base_url=server.url, auth=caller) as client:
        answer = client.post("/site/echo", content=b"again")
    assert answer.status_code == 200
    assert answer.json()["body"] == "again"
    assert [r.status_code for r in answer.history] == [401]


def test_the_body_digest_header_is_the_sha256_of_the_body():
    headers = _signed_headers("POST", "http://h:1/site/x", b"abc")
    assert headers["x-updatesync-content-sha256"] == hashlib.sha256(b"abc").hexdigest()
