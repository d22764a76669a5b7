"""Failures as ConfigMgr writes them (`updateserver/failures.py`): each cause to its .NET-style
message, `Namespace.Class.Method` source and HRESULT, with no Python text in them; and a sync
from an upstream that is down, as the update server's admin API and SoftwareDistribution.log
report it."""

from __future__ import annotations

import re
import socket
import ssl
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from updatesync.logs.softwaredistribution import read_softwaredistribution
from updatesync.updateserver.admin_api import upstream_runner
from updatesync.updateserver.failures import (
    ADMIN_PROXY,
    CANNOT_CONNECT,
    GENERIC_ERROR,
    GET_WEB_RESPONSE,
    NAME_NOT_RESOLVED,
    PERMISSION_DENIED,
    SECURE_FAILURE,
    SQL_ERROR,
    SYNC_WSUS,
    TIMED_OUT,
    WEB_EXCEPTION,
    Failure,
    admin_failure,
    sync_failure,
)
from updatesync.updateserver.store import UpdateStore
from updatesync.wsusss.client import UpstreamHttpError, UpstreamUnavailable
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import ErrorCode, WsusssFault

PYTHON_TEXT = re.compile(
    r"\[Errno|\bError:|\.py\b|Traceback|httpx|ConnectError|sqlalchemy|OperationalError|check that"
)
"""What Python's own error text would show (exception classes, errno, files, our advice)."""
URL = "http://wsus.contoso.com:8530"


def _down(error: BaseException | None, status: int | None = None) -> UpstreamUnavailable:
    return UpstreamUnavailable(URL, "GetAuthConfig", 3, "whatever", error=error, status=status)


@pytest.mark.parametrize(
    ("cause", "message", "code"),
    [
        (
            _down(httpx.ConnectError("[Errno 111] Connection refused")),
            "UssCommunicationError: WebException: Unable to connect to the remote server ---> "
            "System.Net.Sockets.SocketException: No connection could be made because the target "
            "machine actively refused it wsus.contoso.com:8530",
            CANNOT_CONNECT,
        ),
        (
            _down(httpx.ConnectError("[Errno -2] Name or service not known")),
            "UssCommunicationError: WebException: The remote name could not be resolved: "
            "'wsus.contoso.com'",
            NAME_NOT_RESOLVED,
        ),
        (
            _down(httpx.ReadTimeout("timed out")),
            "UssCommunicationError: WebException: The operation has timed out",
            TIMED_OUT,
        ),
        (
            _down(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")),
            "UssCommunicationError: WebException: The underlying connection was closed: Could "
            "not establish trust relationship for the SSL/TLS secure channel.",
            SECURE_FAILURE,
        ),
        (
            _down(None, status=503),
            "UssCommunicationError: WebException: The request failed with HTTP status 503: "
            "Service Unavailable.",
            WEB_EXCEPTION,
        ),
        (
            UpstreamHttpError(URL, "GetCookie", 401, "Unauthorized"),
            "UssCommunicationError: WebException: Request for principal permission failed.",
            PERMISSION_DENIED,
        ),
        (
            WsusssFault(ErrorCode.INVALID_COOKIE, "The cookie has expired", operation="GetCookie"),
            "UssCommunicationError: SoapException: Fault occurred. ErrorCode: InvalidCookie. "
            "The cookie has expired",
            GENERIC_ERROR,
        ),
        (
            ProtocolError("not XML at line 1", where="HTTP body"),
            "UssCommunicationError: InvalidOperationException: There is an error in XML "
            "document (HTTP body). not XML at line 1",
            WEB_EXCEPTION,
        ),
        (
            OperationalError("INSERT", {}, Exception("database is locked")),
            "A database error occurred while saving the updates: database is locked",
            SQL_ERROR,
        ),
    ],
)
def test_each_cause_of_a_failed_upstream_sync_reads_as_configmgr_writes_it(
    cause: BaseException, message: str, code: int
) -> None:
    failure = sync_failure(cause)
    assert (failure.message, failure.source, failure.hresult) == (message, SYNC_WSUS, code)
    assert not PYTHON_TEXT.search(failure.message)
    assert Failure.from_json(failure.to_json()) == failure


def test_the_cause_is_found_inside_the_error_that_wraps_it() -> None:
    try:
        try:
            raise _down(httpx.ConnectError("[Errno 111] Connection refused"))
        except UpstreamUnavailable as inner:
            raise RuntimeError("sync from x failed") from inner
    except RuntimeError as outer:
        assert sync_failure(outer).hresult == CANNOT_CONNECT
    odd = sync_failure(ValueError("something odd"))
    assert (odd.message, odd.source, odd.hresult) == ("something odd", SYNC_WSUS, GENERIC_ERROR)
    assert Failure.from_json({"message": "no kind"}) is None
    assert Failure.from_json(None) is None


def test_the_site_server_not_reaching_its_sup_reads_as_the_admin_api_s_failure() -> None:
    url = "https://cs1site.contoso.com:8531"
    refused = admin_failure(httpx.ConnectError("[Errno 111] Connection refused"), url)
    assert (refused.source, refused.hresult) == (ADMIN_PROXY, CANNOT_CONNECT)
    assert refused.message.startswith("Unable to connect to the remote server")
    assert refused.message.endswith("cs1site.contoso.com:8531")
    slow = admin_failure(httpx.ReadTimeout("timed out"), url)
    assert (slow.message, slow.source, slow.hresult) == (
        "The operation has timed out",
        GET_WEB_RESPONSE,
        TIMED_OUT,
    )
    busy = admin_failure(None, url, 503)
    assert (busy.message, busy.source) == (
        "The request failed with HTTP status 503: Service Unavailable.",
        ADMIN_PROXY,
    )
    untrusted = admin_failure(ssl.SSLCertVerificationError("CERTIFICATE_VERIFY_FAILED"), url)
    assert untrusted.hresult == SECURE_FAILURE


def test_a_sync_from_an_upstream_that_is_down_is_reported_without_python_text(
    tmp_path: Path,
) -> None:
    """The admin API's `last_failure` and SoftwareDistribution.log's error entry and event
    386 carry the .NET form; `last_error` keeps the words for people."""
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = UpdateStore.open(tmp_path / "sup")
    try:
        runner = upstream_runner(store, f"http://127.0.0.1:{port}")
        assert runner.start()
        runner.wait(60)
        state = runner.state.to_json()
    finally:
        store.close()
    assert state["last_error"] and "check that the upstream is running" in state["last_error"]
    failure = state["last_failure"]
    assert failure["source"] == SYNC_WSUS and failure["hresult"] == "0x80072EFD"
    assert failure["message"].startswith("UssCommunicationError: WebException: Unable to connect")
    entries = list(
        read_softwaredistribution(tmp_path / "sup" / "logs" / "SoftwareDistribution.log")
    )
    error = next(e for e in entries if e.level.value == "Error")
    assert error.message == f"System.Net.WebException: {failure['message']}"
    assert error.continuation == ()
    (event,) = [e for e in entries if e.event_id == 386]
    assert event.text.endswith(f"Reason: {failure['message']}.")
    text = (tmp_path / "sup" / "logs" / "SoftwareDistribution.log").read_text(encoding="utf-8")
    assert not PYTHON_TEXT.search(text.replace("updatesync", ""))
