"""SOAP layer: constants, service paths, SOAPAction, escaping, and hostile bodies refused."""

from __future__ import annotations

import pytest

from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.messages import GetAuthConfigResponse, GetCookieRequest, parse_request
from updatesync.wsusss.soap import (
    DSS_AUTH_PATH,
    SERVER_SYNC_PATH,
    SOAP_ENV_NS,
    Service,
    build_envelope,
    escape_text,
    normalize_path,
    parse_envelope,
    parse_soap_action,
    service_for_path,
    soap_action,
)

HEAD = b'<?xml version="1.0" encoding="utf-8"?>'
ENVELOPE = (
    HEAD + b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    b'<GetAuthConfig xmlns="http://www.microsoft.com/SoftwareDistribution"/>'
    b"</soap:Body></soap:Envelope>"
)


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/ServerSyncWebService/ServerSyncWebService.asmx", Service.SERVER_SYNC),
        ("/serversyncwebservice/SERVERSYNCWEBSERVICE.ASMX", Service.SERVER_SYNC),
        ("//ServerSyncWebService//ServerSyncWebService.asmx", Service.SERVER_SYNC),
        ("/ServerSyncWebService/ServerSyncWebService.asmx?wsdl", Service.SERVER_SYNC),
        ("/DssAuthWebService/DssAuthWebService.asmx", Service.DSS_AUTH),
        ("//dssauthwebservice/dssauthwebservice.asmx", Service.DSS_AUTH),
        ("DssAuthWebService/DssAuthWebService.asmx", Service.DSS_AUTH),
        ("/ClientWebService/client.asmx", None),
        ("/", None),
        ("", None),
    ],
)
def test_service_for_path(path: str, service: Service | None) -> None:
    assert service_for_path(path) is service


def test_paths_and_normalization() -> None:
    assert Service.SERVER_SYNC.path == SERVER_SYNC_PATH
    assert Service.DSS_AUTH.path == DSS_AUTH_PATH
    assert normalize_path("//A//b///C?x=1#f") == "/a/b/c"


def test_soap_action_is_quoted_and_parses_back() -> None:
    action = soap_action("http://www.microsoft.com/SoftwareDistribution", "GetCookie")
    assert action == '"http://www.microsoft.com/SoftwareDistribution/GetCookie"'
    assert parse_soap_action(action) == (
        "http://www.microsoft.com/SoftwareDistribution",
        "GetCookie",
    )
    assert parse_soap_action(" http://x/y/Op ") == ("http://x/y", "Op")
    for bad in ("", '""', "NoSlash", '"http://x/"'):
        with pytest.raises(ProtocolError, match="SOAPAction"):
            parse_soap_action(bad)


def test_escape_text() -> None:
    assert escape_text('a<b>&"c"\r\n') == 'a&lt;b&gt;&amp;"c"&#xD;\n'
    with pytest.raises(ValueError, match=r"<Title>: character U\+0001 at offset 1"):
        escape_text("a\x01", element="Title")
    with pytest.raises(ValueError, match="U\\+D800"):
        escape_text("\ud800")


@pytest.mark.parametrize("around", ["plain ascii ", "日本語のタイトル ", "astral \U0001f600 "])
@pytest.mark.parametrize(
    "bad", [chr(c) for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)] + ["\ufffe", "\uffff"]
)
def test_every_character_xml_cannot_carry_is_refused_whatever_the_text_around_it(
    around: str, bad: str
) -> None:
    # The quick pre-check must not let one through: in ASCII text, in text beyond Latin-1,
    # in text holding astral characters (each its own internal width).
    text = around * 50 + bad + around
    with pytest.raises(
        ValueError, match=f"character U\\+{ord(bad):04X} at offset {len(around) * 50}"
    ):
        escape_text(text, element="XmlUpdateBlob")


@pytest.mark.parametrize("surrogate", ["\ud800", "\udbff", "\udc00", "\udfff"])
def test_a_lone_surrogate_is_refused_in_text_of_any_width(surrogate: str) -> None:
    for around in ("ascii ", "日本語 ", "\U0001f600 "):
        with pytest.raises(ValueError, match=f"U\\+{ord(surrogate):04X}"):
            escape_text(around * 20 + surrogate, element="Title")


def test_text_of_every_width_with_only_xml_characters_is_escaped_not_refused() -> None:
    text = "tab\there\nline\r\nend <b> & 日本語 \ud7ff \ue000 \ufffd \U0001f600 \U0010ffff"
    assert escape_text(text) == text.replace("&", "&amp;").replace("<", "&lt;").replace(
        ">", "&gt;"
    ).replace("\r", "&#xD;")


def test_envelopes_have_the_windows_shape() -> None:
    response = build_envelope("<X />", response=True)
    assert response == (
        b'<?xml version="1.0" encoding="utf-8"?><soap:Envelope '
        b'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xmlns:xsd="http://www.w3.org/2001/XMLSchema"><soap:Body><X /></soap:Body></soap:Envelope>'
    )
    request = build_envelope("<X />", response=False)
    assert request.startswith(HEAD + b'<soap:Envelope xmlns:soap="' + SOAP_ENV_NS.encode() + b'">')


def test_parse_envelope_returns_the_body_element_and_skips_a_header() -> None:
    assert (
        parse_envelope(ENVELOPE).tag
        == "{http://www.microsoft.com/SoftwareDistribution}GetAuthConfig"
    )
    with_header = ENVELOPE.replace(b"<soap:Body>", b"<soap:Header/><soap:Body>")
    assert parse_envelope(with_header).tag.endswith("GetAuthConfig")
    with_comment = ENVELOPE.replace(b"<soap:Body>", b"<soap:Body><!-- hi -->")
    assert parse_envelope(with_comment).tag.endswith("GetAuthConfig")


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    b'<GetCookie xmlns="http://www.microsoft.com/SoftwareDistribution">'
    b"<protocolVersion>&lol3;</protocolVersion></GetCookie></soap:Body></soap:Envelope>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
    b'<GetCookie xmlns="http://www.microsoft.com/SoftwareDistribution">'
    b"<protocolVersion>&xxe;</protocolVersion></GetCookie></soap:Body></soap:Envelope>"
)
HTML_500 = (
    b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n<html xmlns="http://www.w3.org/1999/xhtml">'
    b"<head><title>500 - Internal server error.</title></head>"
    b"<body><h1>Server Error</h1></body></html>"
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (BILLION_LAUGHS, "<!DOCTYPE"),
        (EXTERNAL_ENTITY, "<!DOCTYPE"),
        (ENVELOPE.replace(HEAD, HEAD + b"<!DOCTYPE soap:Envelope>"), "<!DOCTYPE"),
        (ENVELOPE[: len(ENVELOPE) // 2], "not well-formed XML"),
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (HTML_500, "HTML page titled '500 - Internal server error.'"),
        (b"<html><body>Service Unavailable</body></html>", "HTML page"),
        (b"Service Unavailable", "not well-formed XML"),
        (b"\x00\x01\x02garbage", "UTF-16|not well-formed"),
        (ENVELOPE.decode().encode("utf-16"), "UTF-16"),
        (b'<x:Envelope xmlns:x="http://www.w3.org/2003/05/soap-envelope"/>', "SOAP 1.2"),
        (b"<Envelope/>", "not a SOAP 1.1 Envelope"),
        (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>', "no soap:Body"),
        (
            b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>',
            "soap:Body is empty",
        ),
        (ENVELOPE.replace(b"<soap:Body>", b"<x>&undefined;</x><soap:Body>"), "well-formed"),
    ],
)
def test_hostile_or_broken_bodies_raise_protocol_error(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        parse_envelope(body)


def test_entities_never_reach_a_message() -> None:
    for body in (BILLION_LAUGHS, EXTERNAL_ENTITY):
        with pytest.raises(ProtocolError):
            parse_request(body)
        with pytest.raises(ProtocolError):
            GetCookieRequest.from_xml(body)


def test_size_limit() -> None:
    with pytest.raises(ProtocolError, match="over the limit of 100"):
        parse_envelope(ENVELOPE, max_bytes=100)
    big = ENVELOPE.replace(
        b"<soap:Body>", b"<soap:Header>" + b"x" * 5_000_000 + b"</soap:Header><soap:Body>"
    )
    with pytest.raises(ProtocolError, match="over the limit"):
        parse_request(big)  # requests default to 4 MiB


def test_a_response_error_names_the_operation_and_where() -> None:
    with pytest.raises(ProtocolError) as caught:
        GetAuthConfigResponse.from_xml(HTML_500)
    assert caught.value.operation == "GetAuthConfig"
    assert caught.value.where == "HTTP body"
    assert str(caught.value).startswith("GetAuthConfig HTTP body: got an HTML page")
