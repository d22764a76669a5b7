"""The sync's session with its upstream: authorization and the handling of faults.

Authorization is GetAuthConfig, GetAuthorizationCookie at the service URL it names (this
server's name and its server id as account), GetCookie ([MS-WSUSSS] 3.2.4.1). Every call
of the sync goes through `UpstreamSession.call`, which handles the faults of 2.2.9.3:

- InvalidCookie: a new cookie (GetCookie with the authorization cookie; if that is refused
  too, authorization from the start), then the call again;
- InvalidAuthorizationCookie: authorization from the start, then the call again;
- ServerChanged: raised as `ServerChanged` for the run to drop its anchors and start over;
- ServerBusy: wait (exponential back-off with jitter, bounded), then the call again;
- anything else: raised as is.

Cookie renewals per call, authorizations per run and ServerBusy waits per call are bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Final, TypeVar

from updatesync.retry_policy import SERVER_BUSY
from updatesync.updateserver.errors import UpdateServerError
from updatesync.updateserver.peers import server_id
from updatesync.updateserver.sync.context import SyncContext
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import ErrorCode, WsusssFault
from updatesync.wsusss.messages import AuthorizationCookie, Cookie

__all__ = ["ServerChanged", "UpstreamSession"]

_COOKIE_RENEWALS_PER_CALL: Final = 2
_COOKIE_MARGIN: Final = timedelta(seconds=60)
_AUTH_PLUGIN: Final = "DssTargeting"

_T = TypeVar("_T")


class ServerChanged(Exception):
    """The upstream answered ServerChanged: its anchors mean nothing any more."""

    def __init__(self, fault: WsusssFault) -> None:
        super().__init__(str(fault))
        self.fault = fault


class UpstreamSession:
    """The cookies of one sync and the calls made with them."""

    def __init__(self, context: SyncContext) -> None:
        self.context = context
        self.auth_cookie: AuthorizationCookie | None = None
        self.cookie: Cookie | None = None

    def authorize(self) -> None:
        """GetAuthConfig, GetAuthorizationCookie, GetCookie (3.2.4.1), from the start."""
        ctx = self.context
        settings = ctx.settings
        ctx.tally.authorizations += 1
        if ctx.tally.authorizations > settings.max_authorizations:
            raise UpdateServerError(
                f"the upstream {ctx.url} kept refusing this server's cookies: authorized "
                f"{settings.max_authorizations} times in one sync; check the upstream's logs "
                "and clock"
            )
        client = ctx.client
        config = self.busy(client.get_auth_config)
        plugins = [p for p in config.auth_info or () if p.service_url]
        plugin = next((p for p in plugins if p.plugin_id == _AUTH_PLUGIN), None)
        if plugin is None and plugins:
            plugin = plugins[0]
        if plugin is None or plugin.service_url is None:
            raise ProtocolError(
                "GetAuthConfig named no authorization plug-in with a ServiceUrl; the upstream "
                "does not offer DSS authorization",
                where=f"GetAuthConfigResult/AuthInfo from {ctx.url}",
                operation="GetAuthConfig",
            )
        service_url = plugin.service_url
        guid = server_id(ctx.store)
        self.auth_cookie = self.busy(
            lambda: client.get_authorization_cookie(service_url, ctx.server_name, guid)
        )
        auth = self.auth_cookie
        self.cookie = self.busy(lambda: client.get_cookie([auth]))

    def renew_cookie(self) -> None:
        """A new session cookie from the authorization cookie; authorize again if refused."""
        auth = self.auth_cookie
        if auth is None:
            self.authorize()
            return
        try:
            self.cookie = self.busy(lambda: self.context.client.get_cookie([auth]))
        except WsusssFault as fault:
            if fault.code not in (ErrorCode.INVALID_COOKIE, ErrorCode.INVALID_AUTHORIZATION_COOKIE):
                raise
            self.authorize()

    def busy(self, call: Callable[[], _T]) -> _T:
        """`call()`, waiting and calling again while the upstream answers ServerBusy (the
        `SERVER_BUSY` policy of `retry_policy`, with the settings' waits, through tenacity)."""
        settings = self.context.settings
        policy = SERVER_BUSY.scaled(settings.busy_backoff, settings.max_busy_backoff)
        retrying = policy.with_attempts(settings.busy_retries + 1).retrying(
            _server_busy, sleep=self.context.hooks.sleep, rng=self.context.hooks.rng
        )
        return retrying(call)

    def call(self, call: Callable[[Cookie], _T]) -> _T:
        """`call(cookie)` with the fault handling of 2.2.9.3 (module docstring)."""
        ctx = self.context
        renewals = 0
        while True:
            if self.cookie is None:
                self.authorize()
            elif _expires_soon(self.cookie, ctx.hooks.now()):
                self.renew_cookie()
            cookie = self.cookie
            assert cookie is not None
            try:
                return self.busy(partial(call, cookie))
            except WsusssFault as fault:
                code = fault.code
                if code is ErrorCode.SERVER_CHANGED:
                    raise ServerChanged(fault) from fault
                if code is ErrorCode.INVALID_AUTHORIZATION_COOKIE:
                    ctx.note("upstream refused the authorization cookie; authorizing again")
                    self.authorize()
                    continue
                if code is ErrorCode.INVALID_COOKIE and renewals < _COOKIE_RENEWALS_PER_CALL:
                    renewals += 1
                    ctx.note("upstream refused the cookie; getting a new one")
                    if renewals == 1:
                        self.renew_cookie()
                    else:
                        self.authorize()
                    continue
                raise


def _expires_soon(cookie: Cookie, now: datetime) -> bool:
    expiration = cookie.expiration
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return expiration - _COOKIE_MARGIN <= now


def _server_busy(error: BaseException) -> bool:
    return isinstance(error, WsusssFault) and error.code is ErrorCode.SERVER_BUSY
