"""The console's sessions, CSRF tokens and sign-in limit on their own (the pages that use
them: tests/security/test_console_login.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from updatesync.console.sessions import (
    COOKIE,
    LOGIN_COOKIE,
    SESSION,
    ConsoleSession,
    CsrfRefused,
    SessionGate,
    Sessions,
    SignInLimit,
    check_csrf,
    cookie_header,
    is_csrf_token,
    local_target,
    new_csrf_token,
)
from updatesync.security.access import SecurityRole

NOON = datetime(2026, 1, 1, 12, tzinfo=UTC)


def session(
    expires: datetime, role: SecurityRole = SecurityRole.READ_ONLY_ANALYST
) -> ConsoleSession:
    return ConsoleSession("ann", role, expires, provider_token="usr_x")


def test_a_session_is_found_until_it_expires_and_not_after_it_ends() -> None:
    now = [NOON]
    sessions = Sessions(clock=lambda: now[0])
    kept = sessions.add(session(NOON + timedelta(hours=8)))
    assert sessions.get(kept.id) is kept
    assert sessions.get("another id") is None and sessions.get(None) is None
    now[0] = NOON + timedelta(hours=8)
    assert sessions.get(kept.id) is None
    again = sessions.add(session(NOON + timedelta(hours=9)))
    assert sessions.end(again.id) is again and sessions.get(again.id) is None


def test_ids_and_csrf_tokens_are_random_and_never_shown() -> None:
    one, two = session(NOON), session(NOON)
    assert one.id != two.id and one.csrf != two.csrf and len(one.csrf) >= 40
    assert one.id not in repr(one) and one.csrf not in repr(one) and "usr_x" not in repr(one)


def test_the_csrf_check_and_the_sync_right() -> None:
    analyst = session(NOON)
    manager = session(NOON, SecurityRole.SOFTWARE_UPDATE_MANAGER)
    manager.check_csrf(manager.csrf)
    for given in (None, "", analyst.csrf):
        with pytest.raises(CsrfRefused):
            manager.check_csrf(given)
    assert manager.can_sync and not analyst.can_sync


def test_failures_count_per_user_and_client_for_a_minute() -> None:
    now = [0.0]
    limit = SignInLimit(clock=lambda: now[0])
    ann = SignInLimit.key(" Ann ", "10.0.0.1")
    assert ann == SignInLimit.key("ann", "10.0.0.1")
    for _ in range(5):
        assert not limit.blocked(ann)
        limit.failed(ann)
    assert limit.blocked(ann)
    assert not limit.blocked(SignInLimit.key("ann", "10.0.0.2"))
    now[0] = 60.5
    assert not limit.blocked(ann)
    limit.failed(ann)
    limit.succeeded(ann)
    assert not limit.blocked(ann)


def test_a_flood_of_user_names_does_not_grow_the_counter_without_end() -> None:
    limit = SignInLimit(max_keys=100)
    for n in range(1000):
        limit.failed(SignInLimit.key(f"user{n}", "10.0.0.1"))
    assert len(limit._failures) <= 100


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/messages?site=CS1", "/messages?site=CS1"),
        ("/", "/"),
        ("", "/"),
        (None, "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("messages", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
    ],
)
def test_next_is_a_path_of_the_console_only(given: str | None, kept: str) -> None:
    assert local_target(given) == kept


def test_the_cookie_attributes() -> None:
    assert cookie_header("abc", secure=False, max_age=60) == (
        "updatesync_console=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
    )
    assert cookie_header("", secure=True, max_age=0).endswith("Max-Age=0; Secure")
    assert cookie_header("t", secure=True, max_age=3600, name=LOGIN_COOKIE) == (
        "updatesync_console_login=t; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600; Secure"
    )


def test_the_sign_in_forms_token_is_checked_against_the_browsers_cookie() -> None:
    token = new_csrf_token()
    assert is_csrf_token(token) and token != new_csrf_token()
    for made_up in (None, "", "a" * 42, "a" * 43 + ";", "é" * 43):
        assert not is_csrf_token(made_up)
    check_csrf(token, token, "this browser's form")
    with pytest.raises(CsrfRefused, match="missing"):
        check_csrf("", token, "this browser's form")
    for held in (None, "", new_csrf_token()):
        with pytest.raises(CsrfRefused, match="not the one of this browser's form"):
            check_csrf(token, held, "this browser's form")


def _gated(sessions: Sessions, answers: list[object], clock: list[float]) -> tuple[Any, list[Any]]:
    """A SessionGate over an app that records the session each request reached it with;
    the provider's answers to its checks come from `answers` (a role, None or an error)."""
    reached: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope[SESSION])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def check(_session: ConsoleSession) -> SecurityRole | None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    gate = SessionGate(app, sessions, check=check, every=60.0, clock=lambda: clock[0])
    return gate, reached


def _request(gate: Any, session_id: str) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": [(b"cookie", f"{COOKIE}={session_id}".encode())],
    }
    asyncio.run(gate(scope, receive, send))
    return int(sent[0]["status"])


def test_a_session_is_asked_about_at_the_provider_once_a_minute() -> None:
    """Just signed in: not asked; a minute on: asked, a changed role applies; the provider
    not answering keeps the session; the provider no longer knowing it signs it out here."""
    sessions = Sessions()
    kept = sessions.add(session(datetime.now(UTC) + timedelta(hours=8)))
    clock = [0.0]
    answers: list[object] = [
        SecurityRole.SOFTWARE_UPDATE_MANAGER,
        OSError("provider down"),
        None,
    ]
    gate, reached = _gated(sessions, answers, clock)
    assert _request(gate, kept.id) == 200 and reached[-1] is kept  # first sight: no call
    clock[0] = 30.0
    assert _request(gate, kept.id) == 200 and len(answers) == 3  # within the minute
    clock[0] = 61.0
    assert _request(gate, kept.id) == 200
    assert reached[-1].role is SecurityRole.SOFTWARE_UPDATE_MANAGER
    assert sessions.get(kept.id).role is SecurityRole.SOFTWARE_UPDATE_MANAGER  # type: ignore[union-attr]
    clock[0] = 122.0
    assert _request(gate, kept.id) == 200 and len(answers) == 1  # asked; kept while down
    clock[0] = 183.0
    assert _request(gate, kept.id) == 303  # to /login: signed out here
    assert sessions.get(kept.id) is None and answers == []
