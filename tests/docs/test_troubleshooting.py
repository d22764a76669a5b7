"""The troubleshooting guide (`docs/troubleshooting.md`) is keyed by the failures updatesync
really writes: each message the failure mapping makes (its fixed words), each 6703 source
(ISTR0), each HRESULT, each MS-WSUSSS ErrorCode and each alert's name has its entry. A new
failure, or a reworded one, fails here until the guide says what it means."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from updatesync.site.watch.alerts import AlertType, alert_text
from updatesync.updateserver import failures
from updatesync.updateserver.errors import UnsupportedLanguages
from updatesync.vocabulary import (
    CATALOGUE,
    CONTENT_OUT_OF_SYNC,
    LICENSE_TERMS_SOURCE,
    NOT_CONFIGURED,
    NOT_CONFIGURED_SOURCE,
    REPLICA_FAILURE,
    SOURCE_READ_SUPS,
    SOURCE_STARTUP,
    SOURCE_WAIT_FOR_REPLICATION,
    SYNC_DONE_PENDING_LICENSES,
)
from updatesync.wsusss.client import UpstreamHttpError, UpstreamUnavailable
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import ErrorCode, WsusssFault

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"
UPSTREAM = "https://cs1site.contoso.com:8531/ServerSyncWebService/ServerSyncWebService.asmx"
PREFIX = "UssCommunicationError: "


def guide() -> str:
    """The guide's text with Markdown's code marks and table pipes left in (entries quote the
    lines between backticks)."""
    return GUIDE.read_text(encoding="utf-8")


def unavailable(error: BaseException) -> UpstreamUnavailable:
    return UpstreamUnavailable(UPSTREAM, "GetCookie", 3, str(error), error=error)


# (what went wrong, the fixed words the message starts with after the WSUS category prefix)
SYNC_FAILURES = [
    (
        unavailable(ConnectionRefusedError(111, "Connection refused")),
        "WebException: Unable to connect to the remote server ---> "
        "System.Net.Sockets.SocketException: No connection could be made because the target "
        "machine actively refused it ",
    ),
    (
        unavailable(OSError(113, "No route to host")),
        "WebException: Unable to connect to the remote server ---> "
        "System.Net.Sockets.SocketException: A connection attempt failed because the "
        "connected party did not properly respond after a period of time ",
    ),
    (
        unavailable(OSError(-2, "Name or service not known")),
        "WebException: The remote name could not be resolved: '",
    ),
    (unavailable(httpx.ReadTimeout("timed out")), "WebException: The operation has timed out"),
    (
        unavailable(ssl.SSLError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")),
        "WebException: The underlying connection was closed: Could not establish trust "
        "relationship for the SSL/TLS secure channel.",
    ),
    (
        UpstreamHttpError(UPSTREAM, "GetCookie", 403, "Forbidden"),
        "WebException: Request for principal permission failed.",
    ),
    (
        UpstreamHttpError(UPSTREAM, "GetCookie", 404, "Not Found"),
        "WebException: The request failed with HTTP status ",
    ),
    (
        WsusssFault(ErrorCode.SERVER_BUSY, "busy", operation="GetRevisionIdList"),
        "SoapException: Fault occurred. ErrorCode: ",
    ),
    (
        ProtocolError("no Body", operation="GetCookie"),
        "InvalidOperationException: There is an error in XML document (",
    ),
]

OTHER_FAILURES = [
    (
        UnsupportedLanguages(UPSTREAM, ["xx"], ["en", "ja"]),
        "The upstream server does not support the update language",
    ),
    (
        OperationalError("INSERT", {}, Exception("disk I/O error")),
        "A database error occurred while saving the updates: ",
    ),
]


@pytest.mark.parametrize(("error", "fixed"), SYNC_FAILURES, ids=lambda v: type(v).__name__)
def test_each_upstream_failure_of_a_sync_is_in_the_guide(error: BaseException, fixed: str) -> None:
    failure = failures.sync_failure(error)
    assert failure.source == failures.SYNC_WSUS
    assert failure.message.startswith(PREFIX + fixed), failure.message
    assert fixed in guide(), f"the guide has no entry for {fixed!r}"
    assert f"0x{failure.hresult:08X}" in guide()


@pytest.mark.parametrize(("error", "fixed"), OTHER_FAILURES, ids=lambda v: type(v).__name__)
def test_each_other_failure_of_a_sync_is_in_the_guide(error: BaseException, fixed: str) -> None:
    failure = failures.sync_failure(error)
    assert failure.message.startswith(fixed), failure.message
    assert fixed in guide(), f"the guide has no entry for {fixed!r}"
    assert f"0x{failure.hresult:08X}" in guide()


def test_the_site_servers_failures_to_call_its_sup_are_in_the_guide() -> None:
    refused = failures.admin_failure(ConnectionRefusedError("refused"), UPSTREAM)
    timed_out = failures.admin_failure(httpx.ReadTimeout("timed out"), UPSTREAM)
    assert refused.source == failures.ADMIN_PROXY
    assert timed_out.source == failures.GET_WEB_RESPONSE
    assert timed_out.message in guide()
    assert refused.message.startswith("Unable to connect to the remote server")


@pytest.mark.parametrize(
    "source",
    [
        failures.SYNC_WSUS,
        failures.ADMIN_PROXY,
        failures.GET_WEB_RESPONSE,
        NOT_CONFIGURED_SOURCE,
        SOURCE_STARTUP,
        SOURCE_READ_SUPS,
        SOURCE_WAIT_FOR_REPLICATION,
        LICENSE_TERMS_SOURCE,
    ],
)
def test_each_failure_source_has_an_entry(source: str) -> None:
    assert source in guide(), f"the guide has no entry for the 6703 source {source}"


def test_the_not_configured_failure_and_the_replica_failure_are_explained() -> None:
    assert NOT_CONFIGURED in guide()
    assert f"`{REPLICA_FAILURE}<fqdn>: `" in guide()


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_each_wsusss_error_code_is_explained(code: ErrorCode) -> None:
    assert f"`{code.value}`" in guide()


@pytest.mark.parametrize("alert", list(AlertType), ids=str)
def test_each_alert_is_named_as_the_console_names_it(alert: AlertType) -> None:
    name = alert_text(alert, "INSTANCE")
    pattern = re.escape(name).replace("INSTANCE", "<[^>]+>")
    assert re.search(pattern, guide()), f"the guide does not name the alert {name!r}"
    assert f"(`{alert.value}`)" in guide()


def test_the_warnings_that_end_a_sync_are_explained() -> None:
    for message_id in (CONTENT_OUT_OF_SYNC, SYNC_DONE_PENDING_LICENSES):
        assert f"**{message_id}**" in guide()
        assert CATALOGUE[message_id].text.split("%")[0].strip() in guide()
