"""Failures as ConfigMgr and WSUS write them: one mapping from what went wrong to a .NET-style
message, a `Namespace.Class.Method` source and the HRESULT a real SUP reports.

WSyncMgr.log writes `Sync failed: <message>. Source: <source>`, the 6703 carries the source in
ISTR0, the message in ISTR1 and the HRESULT in `LE=`, SMS_SUPSyncStatus the HRESULT as
LastSyncErrorCode, and SoftwareDistribution.log the exception's type and message. Python's
own text (exception class names, `[Errno 111]`, file paths, advice for people) stays out of
those; the CLI and the admin API's `error` keep it for people.

Two places fail a sync, each with its own sources:
- the update server syncing from its upstream (`sync_failure`): ConfigMgr's WSyncMgr reports
  such a failure from `...WsusSyncAction.WSyncAction.SyncWSUS`, the message prefixed with the
  WSUS error category (`UssCommunicationError: WebException: ...`, as a real log shows);
- the site server calling its SUP's update server (`admin_failure`): the WSUS administration
  API's `Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer`.

docs/log-ledger.md marks each message, source and code Observed or Unverified.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.exc import SQLAlchemyError

from updatesync.updateserver.errors import UnsupportedLanguages
from updatesync.wsusss.client import UpstreamHttpError, UpstreamUnavailable
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import WsusssFault

# --- HRESULTs ------------------------------------------------------------------------------

GENERIC_ERROR = 0x80131500
"""COR_E_EXCEPTION: what a .NET exception carries when nothing more precise is known."""
CANNOT_CONNECT = 0x80072EFD
"""ERROR_WINHTTP_CANNOT_CONNECT: the server refused the connection or is unreachable."""
NAME_NOT_RESOLVED = 0x80072EE7
"""ERROR_WINHTTP_NAME_NOT_RESOLVED: the server's name did not resolve."""
TIMED_OUT = 0x80131505
"""COR_E_TIMEOUT: `The operation has timed out` (0x80131505 in a real log)."""
SECURE_FAILURE = 0x80072F8F
"""ERROR_WINHTTP_SECURE_FAILURE: the server's certificate was not trusted."""
WEB_EXCEPTION = 0x80131509
"""COR_E_INVALIDOPERATION, the HRESULT of System.Net.WebException: an HTTP status."""
PERMISSION_DENIED = 0x8013150A
"""COR_E_SECURITY: `Request for principal permission failed.` (a real 6703's LE)."""
INVALID_ARGUMENT = 0x80070057
"""COR_E_ARGUMENT (E_INVALIDARG), the HRESULT of System.ArgumentException: a setting the
upstream cannot honour (a subscribed language it does not offer)."""
SQL_ERROR = 0x80131904
"""The HRESULT of System.Data.SqlClient.SqlException: the database failed."""

# --- sources -------------------------------------------------------------------------------

_SUM = "Microsoft.SystemsManagementServer.SoftwareUpdatesManagement"
SYNC_WSUS = f"{_SUM}.WsusSyncAction.WSyncAction.SyncWSUS"
"""Where WSyncMgr reports the update server's failed sync from its upstream."""
ADMIN_PROXY = "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer"
"""Where WSyncMgr reports that it could not use its SUP's update server."""
GET_WEB_RESPONSE = (
    "Microsoft.UpdateServices.Internal.DatabaseAccess.ApiRemotingCompressionProxy.GetWebResponse"
)
"""Where a call to the update server's API timed out."""


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure as ConfigMgr writes it: `kind` is the .NET exception type (for
    SoftwareDistribution.log), `message` its text, `source` where, `hresult` the code."""

    kind: str
    message: str
    source: str
    hresult: int

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "source": self.source,
            "hresult": f"0x{self.hresult:08X}",
        }

    @classmethod
    def from_json(cls, value: object) -> Failure | None:
        """The failure of `to_json`, or None for anything else (an older update server)."""
        if not isinstance(value, dict):
            return None
        try:
            return cls(
                str(value["kind"]),
                str(value["message"]),
                str(value["source"]),
                int(str(value["hresult"]), 16),
            )
        except (KeyError, ValueError):
            return None


# --- network errors -----------------------------------------------------------------------


def _host(url: str | None) -> str:
    if not url:
        return "the server"
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


def network_failure(error: BaseException | None, url: str | None) -> tuple[str, str, int]:
    """(.NET type, message, HRESULT) of a network error reaching `url`."""
    text = f"{error}" if error is not None else ""
    chain = _chain(error)
    if any(isinstance(e, httpx.TimeoutException | TimeoutError) for e in chain):
        return "System.Net.WebException", "The operation has timed out", TIMED_OUT
    if any(isinstance(e, ssl.SSLError) for e in chain) or "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            "System.Net.WebException",
            "The underlying connection was closed: Could not establish trust relationship "
            "for the SSL/TLS secure channel.",
            SECURE_FAILURE,
        )
    lowered = text.lower()
    if (
        "name or service not known" in lowered
        or "name resolution" in lowered
        or ("nodename nor servname" in lowered)
    ):
        host = urlsplit(url).hostname if url else None
        return (
            "System.Net.WebException",
            f"The remote name could not be resolved: '{host or 'the server'}'",
            NAME_NOT_RESOLVED,
        )
    refused = "refused" in lowered or any(isinstance(e, ConnectionRefusedError) for e in chain)
    detail = (
        "No connection could be made because the target machine actively refused it "
        if refused
        else "A connection attempt failed because the connected party did not properly respond "
        "after a period of time "
    )
    return (
        "System.Net.WebException",
        f"Unable to connect to the remote server ---> System.Net.Sockets.SocketException: "
        f"{detail}{_host(url)}",
        CANNOT_CONNECT,
    )


def http_failure(status: int) -> tuple[str, str, int]:
    """(.NET type, message, HRESULT) of an HTTP status a server answered."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    if status in (401, 403):
        return (
            "System.Security.SecurityException",
            "Request for principal permission failed.",
            PERMISSION_DENIED,
        )
    return (
        "System.Net.WebException",
        f"The request failed with HTTP status {status}: {phrase}.",
        WEB_EXCEPTION,
    )


def _chain(error: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


# --- the update server's sync from its upstream ------------------------------------------


def sync_failure(exc: BaseException) -> Failure:
    """The failure of an update server's sync from its upstream, as WSyncMgr reports it."""
    for error in _chain(exc):
        if isinstance(error, UnsupportedLanguages):
            plural = "s" if len(error.languages) > 1 else ""
            return Failure(
                "System.ArgumentException",
                f"The upstream server does not support the update language{plural} "
                f"{', '.join(error.languages)}. Languages it supports: "
                f"{', '.join(error.offered) or 'none'}.",
                SYNC_WSUS,
                INVALID_ARGUMENT,
            )
        if isinstance(error, UpstreamUnavailable):
            if error.error is None and error.status is not None:
                kind, message, code = http_failure(error.status)
            else:
                kind, message, code = network_failure(error.error, error.url)
            return Failure(kind, f"UssCommunicationError: WebException: {message}", SYNC_WSUS, code)
        if isinstance(error, UpstreamHttpError):
            kind, message, code = http_failure(error.status)
            return Failure(kind, f"UssCommunicationError: WebException: {message}", SYNC_WSUS, code)
        if isinstance(error, WsusssFault):
            code_text = str(error.error_code) if error.error_code is not None else "no ErrorCode"
            said = f" {error.message}" if error.message else ""
            return Failure(
                "System.Web.Services.Protocols.SoapException",
                f"UssCommunicationError: SoapException: Fault occurred. ErrorCode: "
                f"{code_text}.{said}",
                SYNC_WSUS,
                GENERIC_ERROR,
            )
        if isinstance(error, ProtocolError):
            # The innermost one says what was wrong; the ones around it add advice for people.
            first = [e for e in _chain(error) if isinstance(e, ProtocolError)][-1]
            where = first.operation or error.operation or first.where or "HTTP body"
            return Failure(
                "System.InvalidOperationException",
                f"UssCommunicationError: InvalidOperationException: There is an error in XML "
                f"document ({where}). {_first_line(first.message)}",
                SYNC_WSUS,
                WEB_EXCEPTION,
            )
        if isinstance(error, SQLAlchemyError):
            return Failure(
                "System.Data.SqlClient.SqlException",
                "A database error occurred while saving the updates: "
                f"{_first_line(getattr(error, 'orig', None) or error)}",
                SYNC_WSUS,
                SQL_ERROR,
            )
        if isinstance(error, httpx.HTTPError | OSError):
            kind, message, code = network_failure(error, None)
            return Failure(kind, f"UssCommunicationError: WebException: {message}", SYNC_WSUS, code)
    return Failure("System.Exception", _first_line(exc), SYNC_WSUS, GENERIC_ERROR)


# --- the site server calling its SUP's update server -------------------------------------


def admin_failure(error: BaseException | None, url: str, status: int | None = None) -> Failure:
    """The site server could not use its SUP's update server at `url`: a network error, or
    an HTTP status it answered."""
    if status is not None and error is None:
        kind, message, code = http_failure(status)
        return Failure(kind, message, ADMIN_PROXY, code)
    kind, message, code = network_failure(error, url)
    source = GET_WEB_RESPONSE if code == TIMED_OUT else ADMIN_PROXY
    return Failure(kind, message, source, code)


def _first_line(value: object) -> str:
    text = " ".join(str(value).split()) or type(value).__name__
    return text if len(text) <= 500 else text[:497] + "..."
