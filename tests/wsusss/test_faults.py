"""Faults: built in the real WSUS shape, read back into WsusssFault, prefix-agnostic."""

from __future__ import annotations

import pytest

from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import (
    FAULT_HTTP_STATUS,
    ErrorCode,
    WsusssFault,
    build_fault,
    fault_from_element,
)
from updatesync.wsusss.messages import (
    GetRevisionIdListResponse,
    GetUpdateDataResponse,
    RevisionIdList,
)
from updatesync.wsusss.soap import parse_envelope

ACTION = '"http://www.microsoft.com/SoftwareDistribution/GetRevisionIdList"'
ACTOR = "http://127.0.0.1:8530/ServerSyncWebService/ServerSyncWebService.asmx"


def test_build_fault_has_the_real_shape() -> None:
    body = build_fault(
        ErrorCode.INVALID_PARAMETERS,
        "filter",
        method=ACTION,
        fault_id="94327110-fc7e-4c3c-878d-186ab273d9fd",
        actor=ACTOR,
    )
    assert body == (
        b'<?xml version="1.0" encoding="utf-8"?><soap:Envelope '
        b'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body><soap:Fault>'
        b"<faultcode>soap:Client</faultcode><faultstring>Fault occurred</faultstring>"
        b"<faultactor>" + ACTOR.encode() + b"</faultactor><detail>"
        b"<ErrorCode>InvalidParameters</ErrorCode><Message>filter</Message>"
        b"<ID>94327110-fc7e-4c3c-878d-186ab273d9fd</ID>"
        b"<Method>"
        + ACTION.encode()
        + b"</Method></detail></soap:Fault></soap:Body></soap:Envelope>"
    )
    assert FAULT_HTTP_STATUS == 500


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_round_trips(code: ErrorCode) -> None:
    body = build_fault(code, "detail text <&>", method=ACTION)
    with pytest.raises(WsusssFault) as caught:
        GetRevisionIdListResponse.from_xml(body)
    fault = caught.value
    assert fault.error_code is code and fault.code is code
    assert fault.message == "detail text <&>"
    assert fault.operation == "GetRevisionIdList"
    assert fault.method == ACTION
    assert fault.fault_code == (
        "Server" if code in (ErrorCode.INTERNAL_SERVER_ERROR, ErrorCode.SERVER_BUSY) else "Client"
    )
    assert fault.fault_id is not None and len(fault.fault_id) == 36
    assert code.value in str(fault)


def test_fault_ids_are_fresh() -> None:
    first = fault_from_element(parse_envelope(build_fault("InvalidCookie")))
    second = fault_from_element(parse_envelope(build_fault("InvalidCookie")))
    assert first.fault_id != second.fault_id


def test_the_message_says_what_to_do() -> None:
    fault = fault_from_element(parse_envelope(build_fault(ErrorCode.SERVER_CHANGED)))
    assert "reset the config, sync and deployment anchors" in str(fault)
    fault = fault_from_element(
        parse_envelope(build_fault(ErrorCode.INVALID_COOKIE)), operation="GetUpdateData"
    )
    assert str(fault).startswith("GetUpdateData: upstream returned InvalidCookie")
    assert "restart the protocol from authorization" in str(fault)


def test_unknown_code_missing_detail_and_other_prefixes() -> None:
    unknown = fault_from_element(parse_envelope(build_fault("SomethingNew")), operation="GetCookie")
    assert unknown.error_code == "SomethingNew" and unknown.code is None
    assert unknown.operation == "GetCookie"
    bare = (
        b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><e:Fault>'
        b"<faultcode>e:Server</faultcode><faultstring>Server was unable to process request."
        b"</faultstring></e:Fault></e:Body></e:Envelope>"
    )
    with pytest.raises(WsusssFault, match="fault without ErrorCode; stop") as caught:
        GetUpdateDataResponse.from_xml(bare)
    assert caught.value.error_code is None
    assert caught.value.fault_code == "Server"  # resolved by namespace, not by prefix
    assert caught.value.fault_string == "Server was unable to process request."
    assert caught.value.operation == "GetUpdateData"
    other = bare.replace(b"<faultcode>e:Server", b'<faultcode xmlns:x="urn:other">x:Server')
    with pytest.raises(WsusssFault) as caught:
        GetUpdateDataResponse.from_xml(other)
    assert caught.value.fault_code == "x:Server"


def test_not_a_fault() -> None:
    with pytest.raises(ProtocolError, match="expected soap:Fault"):
        fault_from_element(parse_envelope(GetRevisionIdListResponse(RevisionIdList(None)).to_xml()))
    with pytest.raises(ValueError, match="non-empty"):
        build_fault("")
