"""The 19 real MS-WSUSSS exchanges (Windows Server 2025 upstream) against `updatesync.wsusss`.

Every captured request and response is read with the parser of its operation (taken from
the SOAPAction in meta.json) and built again from the parsed message. A rebuilt body must
have the same shape as the real one: the same (namespace, local name) at every position,
the same child order, the same text (the sanitizer's redacted cookie values included).
Responses are expected back byte for byte, since they come from a real WSUS and the
builder writes its shape; requests come from a Python probe, so only their shape counts.
The documents the GetUpdateData answers carry must decode to the files in docs/.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from updatesync.wsusss.anchors import Anchor
from updatesync.wsusss.faults import ErrorCode, WsusssFault, build_fault
from updatesync.wsusss.messages import (
    GetAuthConfigResponse,
    GetAuthorizationCookieResponse,
    GetConfigDataResponse,
    GetCookieRequest,
    GetCookieResponse,
    GetRevisionIdListRequest,
    GetRevisionIdListResponse,
    GetUpdateDataResponse,
    Message,
    operation_for,
    parse_datetime,
    parse_request,
    parse_response,
)
from updatesync.wsusss.soap import (
    SOAP_ENV_NS,
    SOFTWARE_DISTRIBUTION_NS,
    parse_soap_action,
    service_for_path,
)

EXCHANGE_NUMBERS = [f"{n:06d}" for n in range(1, 20)]
FAULTS = {
    "000017": (ErrorCode.INTERNAL_SERVER_ERROR, "", "Server", "GetUpdateData"),
    "000018": (ErrorCode.INVALID_PARAMETERS, "filter", "Client", "GetRevisionIdList"),
    "000019": (ErrorCode.INVALID_COOKIE, "", "Client", "GetRevisionIdList"),
}
REDACTED = {"EncryptedData", "CookieData"}


@pytest.fixture(scope="module")
def wsusss_dir(fixtures_dir: Path) -> Path:
    path = fixtures_dir / "wsusss"
    if not path.is_dir():
        pytest.skip(f"MS-WSUSSS captures not found at {path}")
    return path


class Exchange:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        self.request = (folder / "request.body").read_bytes()
        self.response = (folder / "response.body").read_bytes()
        self.soap_action = '"' + self.meta["soap_action"] + '"'
        self.operation = parse_soap_action(self.soap_action)[1]

    def header(self, name: str) -> str:
        for line in (self.folder / "request.headers").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        raise AssertionError(f"{self.folder.name}: no {name} header")


@pytest.fixture(params=EXCHANGE_NUMBERS)
def exchange(request: pytest.FixtureRequest, wsusss_dir: Path) -> Exchange:
    return Exchange(wsusss_dir / "exchanges" / request.param)


def _walk(element: etree._Element, path: str = "") -> list[tuple[str, str, str, str | None]]:
    """(path, namespace, local name, text) of every element, depth first, in order."""
    qname = etree.QName(element)
    here = f"{path}/{qname.localname}"
    text = (element.text or "").strip() or None
    rows = [(here, qname.namespace or "", qname.localname, text)]
    for child in element:
        rows.extend(_walk(child, here))
    return rows


def assert_same_shape(original: bytes, rebuilt: bytes) -> None:
    ours = _walk(etree.fromstring(rebuilt))
    theirs = _walk(etree.fromstring(original))
    assert [row[:3] for row in ours] == [row[:3] for row in theirs]
    for (path, _, name, text), (_, _, _, expected) in zip(ours, theirs, strict=True):
        if name in REDACTED and expected and set(expected) <= {"A", "="}:
            continue  # sanitized value: any text of the same kind is fine
        assert text == expected, path


# --------------------------------------------------------------------------- requests


def test_the_request_headers_carry_the_quoted_soap_action(exchange: Exchange) -> None:
    assert exchange.header("SOAPAction") == exchange.soap_action
    assert exchange.header("Content-Type") == "text/xml; charset=utf-8"
    assert operation_for(exchange.operation).soap_action == exchange.soap_action


def test_every_request_parses_and_rebuilds_to_the_same_shape(exchange: Exchange) -> None:
    service = service_for_path(exchange.meta["path"])
    assert service is not None
    message = parse_request(exchange.request, soap_action=exchange.soap_action, service=service)
    assert isinstance(message, operation_for(exchange.operation).request)
    assert_same_shape(exchange.request, message.to_xml())
    assert type(message).from_xml(message.to_xml()) == message


# --------------------------------------------------------------------------- responses


def test_every_response_parses_or_raises_its_fault(exchange: Exchange) -> None:
    if exchange.folder.name in FAULTS:
        code, message, fault_code, operation = FAULTS[exchange.folder.name]
        assert exchange.meta["status"] == 500
        with pytest.raises(WsusssFault) as caught:
            parse_response(exchange.response, exchange.operation)
        fault = caught.value
        assert fault.error_code is code
        assert fault.message == message
        assert fault.operation == operation
        assert fault.fault_code == fault_code
        assert fault.method == exchange.soap_action
        assert fault.fault_string == "Fault occurred"
        assert fault.fault_id and len(fault.fault_id) == 36
        return
    assert exchange.meta["status"] == 200
    message = parse_response(exchange.response, exchange.operation)
    assert isinstance(message, operation_for(exchange.operation).response)


def test_every_response_rebuilds_byte_for_byte(exchange: Exchange) -> None:
    if exchange.folder.name in FAULTS:
        with pytest.raises(WsusssFault) as caught:
            parse_response(exchange.response, exchange.operation)
        fault = caught.value
        assert fault.error_code is not None
        rebuilt = build_fault(
            fault.error_code,
            fault.message,
            method=fault.method,
            fault_id=fault.fault_id,
            actor=fault.fault_actor,
        )
    else:
        rebuilt = parse_response(exchange.response, exchange.operation).to_xml()
    assert_same_shape(exchange.response, rebuilt)
    assert rebuilt == exchange.response


def test_parsing_does_not_depend_on_prefixes(wsusss_dir: Path) -> None:
    """The same answer with other prefixes (and no default namespace) reads the same."""
    body = (wsusss_dir / "exchanges" / "000014" / "response.body").read_bytes()
    nsmap = {"S": SOAP_ENV_NS, "sd": SOFTWARE_DISTRIBUTION_NS}

    def copy(element: etree._Element) -> etree._Element:
        clone = etree.Element(element.tag, nsmap=nsmap)
        clone.text = element.text
        clone.extend(copy(child) for child in element)
        return clone

    renamed = etree.tostring(copy(etree.fromstring(body)), xml_declaration=True, encoding="utf-8")
    assert b"<S:Envelope" in renamed and b"<sd:GetUpdateDataResponse" in renamed
    assert GetUpdateDataResponse.from_xml(renamed) == GetUpdateDataResponse.from_xml(body)


# --------------------------------------------------------------------------- facts


def _ex(wsusss_dir: Path, number: str) -> Exchange:
    return Exchange(wsusss_dir / "exchanges" / number)


def test_authorization_handshake_facts(wsusss_dir: Path) -> None:
    config = GetAuthConfigResponse.from_xml(_ex(wsusss_dir, "000001").response).result
    assert config.auth_info is not None and len(config.auth_info) == 1
    plugin = config.auth_info[0]
    assert plugin.plugin_id == "DssTargeting"
    assert plugin.service_url == "DssAuthWebService/DssAuthWebService.asmx"
    assert plugin.parameter == ""  # present and empty, though 3.1.4.1 says not included

    auth = GetAuthorizationCookieResponse.from_xml(_ex(wsusss_dir, "000002").response).result
    assert auth.plugin_id == "DssTargeting"
    assert auth.cookie_data == bytes(len(auth.cookie_data or b""))  # redacted to zero bytes

    exchange = _ex(wsusss_dir, "000003")
    request = GetCookieRequest.from_xml(exchange.request)
    assert request.protocol_version == "1.20"
    assert request.auth_cookies is not None and len(request.auth_cookies) == 1
    cookie = GetCookieResponse.from_xml(exchange.response).result
    issued = parse_datetime(exchange.meta["timestamp"].replace("+00:00", "Z"))
    assert abs(cookie.expiration - issued - timedelta(minutes=240)) < timedelta(seconds=1)


def test_config_data_facts(wsusss_dir: Path) -> None:
    full = GetConfigDataResponse.from_xml(_ex(wsusss_dir, "000005").response).result
    assert full.max_number_of_updates_per_request == 100
    assert full.lazy_sync is True and full.catalog_only_sync is False
    assert full.protocol_version == "1.20"
    assert full.language_update_list is not None
    assert full.language_update_list[0].language_id == 0
    assert full.language_update_list[0].short_language == "all"
    assert full.new_config_anchor is not None
    assert Anchor.parse(full.new_config_anchor).change_number == 9438
    short = GetConfigDataResponse.from_xml(_ex(wsusss_dir, "000004").response).result
    assert short.language_update_list == ()


def test_revision_list_facts(wsusss_dir: Path) -> None:
    categories = GetRevisionIdListResponse.from_xml(_ex(wsusss_dir, "000006").response).result
    assert categories.new_revisions is not None and len(categories.new_revisions) == 30
    trimmed = GetRevisionIdListResponse.from_xml(_ex(wsusss_dir, "000009").response).result
    assert trimmed.new_revisions is not None and len(trimmed.new_revisions) == 30
    for number in ("000007", "000008", "000011", "000012"):
        empty = GetRevisionIdListResponse.from_xml(_ex(wsusss_dir, number).response).result
        assert empty.new_revisions == (), number
    with_delta = GetRevisionIdListRequest.from_xml(_ex(wsusss_dir, "000011").request)
    assert with_delta.filter is not None and with_delta.filter.anchor is not None
    assert Anchor.parse(with_delta.filter.anchor).change_number == 9438
    assert with_delta.filter.get_63_language_only is None  # the probe left it out
    assert with_delta.filter.categories is not None
    assert all(item.delta for item in with_delta.filter.categories)
    bad = GetRevisionIdListRequest.from_xml(_ex(wsusss_dir, "000018").request)
    assert bad.filter is not None and bad.filter.anchor == "garbage"
    no_cookie = GetRevisionIdListRequest.from_xml(_ex(wsusss_dir, "000019").request)
    assert no_cookie.cookie is None


def test_update_data_documents_decode_to_the_published_documents(wsusss_dir: Path) -> None:
    docs = wsusss_dir / "docs"
    kinds: dict[str, str] = {}
    for number in ("000013", "000014", "000015", "000016"):
        answer = GetUpdateDataResponse.from_xml(_ex(wsusss_dir, number).response).result
        assert answer.updates is not None and len(answer.updates) == 1
        update = answer.updates[0]
        expected = docs / f"{update.id.update_id}-r{update.id.revision}.xml"
        assert update.document() == expected.read_text(encoding="utf-8"), number
        kinds[number] = "plain" if update.xml_update_blob is not None else "compressed"
    assert kinds == {
        "000013": "compressed",
        "000014": "compressed",
        "000015": "plain",
        "000016": "compressed",
    }


def test_update_data_file_urls(wsusss_dir: Path) -> None:
    answer = GetUpdateDataResponse.from_xml(_ex(wsusss_dir, "000014").response).result
    assert answer.updates is not None and answer.file_urls is not None
    digests = answer.updates[0].file_digest_list
    assert digests == ("h/W9BGlYUAaqXTp30cZi/SiV3c0=",)
    (url,) = answer.file_urls
    assert url.file_digest == digests[0]
    assert url.mu_url is not None and url.mu_url.startswith("http://download.windowsupdate.com/")
    assert url.uss_url == ""  # present and empty on the wire


def test_message_types_cover_every_captured_operation(wsusss_dir: Path) -> None:
    seen = {_ex(wsusss_dir, n).operation for n in EXCHANGE_NUMBERS}
    assert seen == {
        "GetAuthConfig",
        "GetAuthorizationCookie",
        "GetCookie",
        "GetConfigData",
        "GetRevisionIdList",
        "GetUpdateData",
    }
    for name in seen:
        assert issubclass(operation_for(name).response, Message)
