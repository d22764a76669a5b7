"""The sync's session with its upstream: authorization, cookie renewal, ServerBusy back-off
and ServerChanged, against a scripted client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from databases import Database

from updatesync.retry_policy import jitter_source
from updatesync.updateserver.errors import UpdateServerError
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync import SyncHooks, SyncSettings
from updatesync.updateserver.sync.context import SyncContext
from updatesync.updateserver.sync.session import ServerChanged, UpstreamSession
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import ErrorCode, WsusssFault
from updatesync.wsusss.messages import AuthorizationCookie, AuthPlugInInfo, Cookie, ServerAuthConfig

NOW = datetime(2026, 10, 4, 12, 0, tzinfo=UTC)


class ScriptedClient:
    """The authorization calls of an upstream; `refuse_cookie` faults GetCookie that often."""

    def __init__(self, *, plugins: tuple[AuthPlugInInfo, ...] = (AuthPlugInInfo(),)) -> None:
        self.plugins = plugins
        self.calls: list[str] = []
        self.cookies = 0

    def get_auth_config(self) -> ServerAuthConfig:
        self.calls.append("GetAuthConfig")
        return ServerAuthConfig(NOW, self.plugins)

    def get_authorization_cookie(self, url: str, name: str, guid: str) -> AuthorizationCookie:
        self.calls.append(f"GetAuthorizationCookie {url} {name}")
        return AuthorizationCookie("DssTargeting", guid.encode())

    def get_cookie(self, auth: list[AuthorizationCookie]) -> Cookie:
        self.calls.append("GetCookie")
        self.cookies += 1
        return Cookie(NOW + timedelta(hours=4), str(self.cookies).encode())


@pytest.fixture
def store(tmp_path: Path, database: Database) -> Iterator[UpdateStore]:
    with UpdateStore.open(tmp_path / "down", url=database.url) as opened:
        yield opened


def _session(
    store: UpdateStore, client: ScriptedClient, sleeps: list[float] | None = None, **settings: Any
) -> UpstreamSession:
    hooks = SyncHooks(
        now=lambda: NOW,
        sleep=(sleeps if sleeps is not None else []).append,
        cancel=None,
        rng=jitter_source(11),
    )
    context = SyncContext(
        store,
        "http://up.test",
        cast(UpstreamClient, client),
        SyncSettings("http://up.test", **settings),
        hooks,
        None,
        server_name="dss.test",
    )
    return UpstreamSession(context)


def test_authorization_is_the_three_calls_and_is_bounded(store: UpdateStore) -> None:
    client = ScriptedClient()
    session = _session(store, client, max_authorizations=2)
    session.authorize()
    assert client.calls == [
        "GetAuthConfig",
        "GetAuthorizationCookie DssAuthWebService/DssAuthWebService.asmx dss.test",
        "GetCookie",
    ]
    assert session.cookie is not None and session.auth_cookie is not None
    session.authorize()
    with pytest.raises(UpdateServerError, match="authorized 2 times in one sync"):
        session.authorize()


def test_no_plugin_with_a_service_url_is_a_protocol_error(store: UpdateStore) -> None:
    client = ScriptedClient(plugins=(AuthPlugInInfo(service_url=None),))
    with pytest.raises(ProtocolError, match="no authorization plug-in"):
        _session(store, client).authorize()


def test_server_busy_backs_off_doubling_up_to_the_bound_with_jitter(store: UpdateStore) -> None:
    sleeps: list[float] = []
    session = _session(
        store, ScriptedClient(), sleeps, busy_retries=4, busy_backoff=2.0, max_busy_backoff=5.0
    )
    answers = iter([*[WsusssFault(ErrorCode.SERVER_BUSY)] * 3, "done"])

    def call() -> str:
        answer = next(answers)
        if isinstance(answer, WsusssFault):
            raise answer
        return answer

    assert session.busy(call) == "done"
    # Steps 2, 4, then the bound 5; each wait half to all of its step (`SERVER_BUSY`).
    assert len(sleeps) == 3
    assert all(s / 2 <= w <= s for w, s in zip(sleeps, [2.0, 4.0, 5.0], strict=True))
    assert len(set(sleeps)) == 3

    def always_busy() -> str:
        raise WsusssFault(ErrorCode.SERVER_BUSY)

    with pytest.raises(WsusssFault):
        session.busy(always_busy)
    assert len(sleeps) == 3 + 4


def test_call_renews_a_cookie_about_to_expire_and_raises_server_changed(
    store: UpdateStore,
) -> None:
    client = ScriptedClient()
    session = _session(store, client)
    assert session.call(lambda cookie: cookie.encrypted_data) == b"1"  # authorized first
    session.cookie = Cookie(NOW + timedelta(seconds=30), b"old")
    assert session.call(lambda cookie: cookie.encrypted_data) == b"2"  # renewed
    assert client.calls.count("GetAuthConfig") == 1

    refusals = iter([WsusssFault(ErrorCode.INVALID_COOKIE)])

    def refused_once(cookie: Cookie) -> bytes | None:
        fault = next(refusals, None)
        if fault is not None:
            raise fault
        return cookie.encrypted_data

    assert session.call(refused_once) == b"3"

    def changed(_cookie: Cookie) -> None:
        raise WsusssFault(ErrorCode.SERVER_CHANGED)

    with pytest.raises(ServerChanged):
        session.call(changed)
