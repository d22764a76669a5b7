"""The operation table and the dispatch of incoming requests and answers: a body, its
SOAPAction and its service must agree; unknown operations and faults are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import WsusssFault, build_fault
from updatesync.wsusss.messages import (
    OPERATIONS,
    GetAuthConfigRequest,
    GetAuthConfigResponse,
    GetCookieResponse,
    ServerAuthConfig,
    UnsupportedOperationError,
    operation_for,
    parse_request,
    parse_response,
)
from updatesync.wsusss.soap import Service

AUTH_CONFIG = GetAuthConfigResponse(ServerAuthConfig(datetime(2026, 10, 4, tzinfo=UTC)))


def test_wrong_operation_service_or_action() -> None:
    body = GetAuthConfigRequest().to_xml()
    with pytest.raises(ProtocolError, match="does not match the body"):
        parse_request(body, soap_action=OPERATIONS["GetCookie"].soap_action)
    with pytest.raises(ProtocolError, match="not an operation of /DssAuthWebService"):
        parse_request(body, service=Service.DSS_AUTH)
    unknown = body.replace(b"GetAuthConfig", b"GetDriverIdList")
    with pytest.raises(UnsupportedOperationError, match="GetDriverIdList"):
        parse_request(unknown)
    with pytest.raises(ProtocolError, match=r"expected .*GetCookieResponse"):
        GetCookieResponse.from_xml(AUTH_CONFIG.to_xml())
    with pytest.raises(ProtocolError, match="request body holds a soap:Fault"):
        parse_request(build_fault("InternalServerError"))
    with pytest.raises(UnsupportedOperationError):
        parse_response(AUTH_CONFIG.to_xml(), "DownloadFiles")


def test_a_response_that_is_a_fault_raises_it() -> None:
    with pytest.raises(WsusssFault) as caught:
        GetCookieResponse.from_xml(build_fault("InvalidAuthorizationCookie"))
    assert caught.value.operation == "GetCookie"


def test_operation_for_a_name_a_class_or_a_message() -> None:
    op = OPERATIONS["GetAuthConfig"]
    assert operation_for("GetAuthConfig") is op
    assert operation_for(GetAuthConfigRequest) is op
    assert operation_for(AUTH_CONFIG) is op
    assert op.soap_action.endswith('/GetAuthConfig"')
    with pytest.raises(UnsupportedOperationError, match="known: GetAuthConfig"):
        operation_for("DownloadFiles")
