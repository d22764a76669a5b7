"""Every request and response: build -> bytes -> parse gives the same message back, with
realistic values; malformed messages raise ProtocolError saying where."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from updatesync.metadata.model import RevisionKey
from updatesync.wsusss.blobs import encode_compressed_blob
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.messages import (
    NO_DEADLINE,
    OPERATIONS,
    AuthorizationCookie,
    AuthPlugInInfo,
    Cookie,
    GetAuthConfigRequest,
    GetAuthConfigResponse,
    GetAuthorizationCookieRequest,
    GetAuthorizationCookieResponse,
    GetConfigDataRequest,
    GetConfigDataResponse,
    GetCookieRequest,
    GetCookieResponse,
    GetDeploymentsRequest,
    GetDeploymentsResponse,
    GetRevisionIdListRequest,
    GetRevisionIdListResponse,
    GetRevisionSetDigestRequest,
    GetRevisionSetDigestResponse,
    GetUpdateDataRequest,
    GetUpdateDataResponse,
    IdAndDelta,
    LanguageAndDelta,
    Message,
    MonitoredServicesResponse,
    PingRequest,
    PingResponse,
    RevisionIdList,
    RevisionSetDigest,
    ServerAuthConfig,
    ServerSyncConfigData,
    ServerSyncDeployment,
    ServerSyncDeploymentResult,
    ServerSyncFilter,
    ServerSyncLanguageData,
    ServerSyncTargetGroup,
    ServerSyncUpdateData,
    ServerSyncUrlData,
    ServerUpdateData,
    parse_request,
    parse_response,
)

NOW = datetime(2026, 10, 4, 16, 33, 26, 654550, tzinfo=UTC)
COOKIE = Cookie(NOW + timedelta(minutes=240), bytes(range(256)) * 2)
DSS = "6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12"
PRODUCT = "8c3fcc84-7410-4a95-8b89-a166a0190486"
CLASSIFICATION = "e0789628-ce08-4437-be74-2495b842f43b"
DOC = (
    '<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update">'
    '<upd:UpdateIdentity UpdateID="a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe" RevisionNumber="200" />'
    '<upd:Properties UpdateType="Software" /><upd:LocalizedPropertiesCollection>'
    "<upd:LocalizedProperties><upd:Language>en</upd:Language><upd:Title>Définitions &amp; "
    "KB2267602 — 1.2</upd:Title></upd:LocalizedProperties></upd:LocalizedPropertiesCollection>"
    "</upd:Update>"
)
KEY = RevisionKey("a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe", 200)

REQUESTS: list[Message] = [
    GetAuthConfigRequest(),
    GetAuthorizationCookieRequest("dss.corp.example", DSS),
    GetAuthorizationCookieRequest("dss.corp.example", DSS, program_keys=()),
    GetCookieRequest((AuthorizationCookie("DssTargeting", b"\x01" * 160),), None, "1.20"),
    GetCookieRequest((AuthorizationCookie("DssTargeting", b"\x02" * 16),), COOKIE, "1.8"),
    GetConfigDataRequest(COOKIE),
    GetConfigDataRequest(COOKIE, "9438,2026-10-04 16:09:27.167"),
    GetRevisionIdListRequest(COOKIE, ServerSyncFilter(get_config=True)),
    GetRevisionIdListRequest(
        COOKIE,
        ServerSyncFilter(
            get_config=False,
            anchor="9438,2026-10-04 16:09:27.371",
            get_63_language_only=False,
            categories=(IdAndDelta(PRODUCT, True),),
            classifications=(IdAndDelta(CLASSIFICATION, True),),
            languages=(LanguageAndDelta(1033, True), LanguageAndDelta(1036, False)),
        ),
    ),
    GetRevisionIdListRequest(None, ServerSyncFilter(get_config=False, categories=())),
    GetUpdateDataRequest(
        COOKIE, tuple(RevisionKey(str(uuid.UUID(int=i)), 100 + i) for i in range(100))
    ),
    GetDeploymentsRequest(COOKIE, None, "4742,2006-05-26 18:59:26.192"),
    GetDeploymentsRequest(COOKIE, "4742,2006-05-26 18:59:26.192", "4743,2006-05-27 18:59:26.192"),
    GetRevisionSetDigestRequest(
        COOKIE,
        "4742,2006-05-26 18:59:26.192",
        "4743,2006-05-27 18:59:26.192",
        (IdAndDelta(str(uuid.UUID(int=1)), True),),
        (IdAndDelta(str(uuid.UUID(int=2)), True),),
        (LanguageAndDelta(1031, True),),
    ),
    PingRequest(1),
]

RESPONSES: list[Message] = [
    GetAuthConfigResponse(ServerAuthConfig(NOW)),
    GetAuthConfigResponse(
        ServerAuthConfig(NOW, (AuthPlugInInfo(parameter=None),), allowed_event_ids=(1, 2, 3))
    ),
    GetAuthorizationCookieResponse(AuthorizationCookie("DssTargeting", b"\xff" * 432)),
    GetCookieResponse(COOKIE),
    GetConfigDataResponse(
        ServerSyncConfigData(
            catalog_only_sync=False,
            lazy_sync=True,
            server_hosts_psf_files=False,
            max_number_of_computer_ids_in_request=0,
            max_number_of_driver_sets_per_request=0,
            max_number_of_pnp_hardware_ids_in_request=0,
            max_number_of_updates_per_request=100,
            new_config_anchor="9438,2026-10-04 16:33:26.670",
            protocol_version="1.20",
            language_update_list=(
                ServerSyncLanguageData(0, "all", "all", False),
                ServerSyncLanguageData(1033, "en", "English", True),
                ServerSyncLanguageData(2052, "zh-cn", "Chinese (Simplified)", False),
            ),
            max_updates_per_request_in_get_update_decryption_data=100,
        )
    ),
    GetRevisionIdListResponse(RevisionIdList("9438,2026-10-04 16:33:26.734")),
    GetRevisionIdListResponse(
        RevisionIdList(
            "9438,2026-10-04 16:33:26.750",
            (KEY, RevisionKey("e6cf1350-c01b-414d-a61f-263d14d133b4", 1)),
        )
    ),
    GetUpdateDataResponse(
        ServerUpdateData(
            (
                ServerSyncUpdateData(
                    KEY,
                    file_digest_list=("h/W9BGlYUAaqXTp30cZi/SiV3c0=",),
                    xml_update_blob_compressed=encode_compressed_blob(DOC),
                ),
                ServerSyncUpdateData(RevisionKey("ccb78947-6453-4ecc-9de8-bc0305c98f2d", 200), DOC),
            ),
            (
                ServerSyncUrlData(
                    "h/W9BGlYUAaqXTp30cZi/SiV3c0=",
                    "http://download.windowsupdate.com/c/msdownload/update/am_delta.exe",
                ),
            ),
        )
    ),
    GetUpdateDataResponse(ServerUpdateData()),
    GetDeploymentsResponse(
        ServerSyncDeploymentResult(
            "4742,2006-05-26 18:59:26.192",
            (
                ServerSyncTargetGroup(
                    "a0a08746-4dbe-4a37-9adf-9e7652c0b421",
                    "00000000-0000-0000-0000-000000000000",
                    "All Computers",
                    True,
                ),
                ServerSyncTargetGroup(
                    "b73ca6ed-5727-47f3-84de-015e03f6a88a", None, "Unassigned Computers", True
                ),
            ),
            (
                ServerSyncDeployment(
                    "4b62aa32-52f6-4c15-b739-1c8e696eb33e",
                    100,
                    0,
                    "WUS Server",
                    NO_DEADLINE,
                    True,
                    datetime(2006, 5, 24, 15, 37, 8, 887000),
                    "c2f2ca62-5413-419a-bdee-275a23087758",
                    "b73ca6ed-5727-47f3-84de-015e03f6a88a",
                    1,
                ),
            ),
            (),
            ("9a9bafe2-fbfc-4b0b-8479-49a2bb08cd5a", "6c9d9217-0e1d-434a-a938-d9918703c361"),
            (),
        )
    ),
    PingResponse(
        MonitoredServicesResponse(
            success_flag=True,
            services_time=NOW,
            is_https=False,
            config_file_last_modified_time=NOW - timedelta(days=3),
            config_file_next_expiration_time=NOW + timedelta(hours=1),
            config_file_expiration_modulo_in_minutes=60,
            services_name="ServerSyncWebService",
            request_content_type="text/xml; charset=utf-8",
        )
    ),
    PingResponse(None),
    GetRevisionSetDigestResponse(RevisionSetDigest("0" * 63 + "f", 42, "filter")),
]


@pytest.mark.parametrize("message", REQUESTS, ids=lambda m: type(m).__name__)
def test_request_round_trip(message: Message) -> None:
    data = message.to_xml()
    assert type(message).from_xml(data) == message
    op = OPERATIONS[message.OPERATION]
    service = next(iter(op.services))
    assert parse_request(data, soap_action=op.soap_action, service=service) == message


@pytest.mark.parametrize("message", RESPONSES, ids=lambda m: type(m).__name__)
def test_response_round_trip(message: Message) -> None:
    data = message.to_xml()
    assert type(message).from_xml(data) == message
    assert parse_response(data, message.OPERATION) == message
    assert b"xmlns:xsi=" in data  # the response envelope shape


def test_every_operation_has_a_round_tripped_request_and_response() -> None:
    assert {m.OPERATION for m in REQUESTS} == set(OPERATIONS)
    assert {m.OPERATION for m in RESPONSES} == set(OPERATIONS)


def test_documents_come_out_of_both_blob_kinds() -> None:
    answer = GetUpdateDataResponse.from_xml(RESPONSES[7].to_xml()).result
    assert answer.updates is not None
    assert [update.document() for update in answer.updates] == [DOC, DOC]


def test_empty_and_absent_elements() -> None:
    body = GetRevisionIdListResponse(RevisionIdList("1,2026-10-04 16:33:26.734")).to_xml()
    assert b"<NewRevisions />" in body
    body = GetAuthConfigResponse(ServerAuthConfig(NOW)).to_xml()
    assert b"<Parameter />" in body and b"AllowedEventIds" not in body
    body = GetRevisionIdListRequest(COOKIE, ServerSyncFilter(get_config=True)).to_xml()
    assert b"Get63LanguageOnly" not in body and b"<Anchor" not in body
    assert (
        GetAuthConfigRequest()
        .to_xml()
        .endswith(
            b'<GetAuthConfig xmlns="http://www.microsoft.com/SoftwareDistribution" />'
            b"</soap:Body></soap:Envelope>"
        )
    )


def test_text_is_escaped_and_comes_back_exactly() -> None:
    tricky = "a < b && c > d \"q\" 'r' \r\n\t é 𝄞"
    message = GetAuthorizationCookieRequest(tricky, DSS)
    assert GetAuthorizationCookieRequest.from_xml(message.to_xml()) == message


def test_unknown_elements_are_ignored_and_xsi_nil_is_none() -> None:
    body = GetConfigDataRequest(COOKIE, "1,2026-10-04 16:33:26.734").to_xml()
    extended = body.replace(b"<configAnchor>", b"<Future>x</Future><configAnchor>")
    assert GetConfigDataRequest.from_xml(extended) == GetConfigDataRequest(
        COOKIE, "1,2026-10-04 16:33:26.734"
    )
    nil = body.replace(
        b"<configAnchor>1,2026-10-04 16:33:26.734</configAnchor>",
        b'<configAnchor xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true" />',
    )
    assert GetConfigDataRequest.from_xml(nil).config_anchor is None


def _broken(message: Message, old: bytes, new: bytes) -> bytes:
    data = message.to_xml()
    assert old in data
    return data.replace(old, new, 1)


@pytest.mark.parametrize(
    ("data", "where", "element", "text"),
    [
        (
            _broken(REQUESTS[7], b"<GetConfig>true</GetConfig>", b"<GetConfig>yes</GetConfig>"),
            "GetRevisionIdList/filter/GetConfig",
            "filter",
            "not an xsd:boolean",
        ),
        (
            _broken(REQUESTS[7], b"<GetConfig>true</GetConfig>", b""),
            "GetRevisionIdList/filter",
            "filter",
            "required element <GetConfig>",
        ),
        (
            _broken(REQUESTS[5], b"<EncryptedData>AAEC", b"<EncryptedData>!!"),
            "GetConfigData/cookie/EncryptedData",
            "cookie",
            "not valid base64",
        ),
        (
            _broken(REQUESTS[5], b"<Expiration>2026", b"<Expiration>Tuesday 2026"),
            "GetConfigData/cookie/Expiration",
            "cookie",
            "not an xsd:dateTime",
        ),
        (
            _broken(
                REQUESTS[10],
                b"<RevisionNumber>100</RevisionNumber>",
                b"<RevisionNumber>x</RevisionNumber>",
            ),
            "GetUpdateData/updateIds/UpdateIdentity",
            "updateIds",
            "RevisionNumber",
        ),
        (
            _broken(REQUESTS[10], b"<UpdateID>00000000", b"<UpdateID>zz000000"),
            "GetUpdateData/updateIds/UpdateIdentity",
            "updateIds",
            "not a GUID",
        ),
        (
            _broken(
                REQUESTS[10],
                b"<RevisionNumber>100</RevisionNumber>",
                b"<RevisionNumber>99999999999</RevisionNumber>",
            ),
            "GetUpdateData/updateIds/UpdateIdentity",
            "updateIds",
            "32-bit",
        ),
    ],
)
def test_malformed_requests_say_where(data: bytes, where: str, element: str, text: str) -> None:
    with pytest.raises(ProtocolError, match=text) as caught:
        parse_request(data)
    assert caught.value.where == where
    assert caught.value.element == element


def test_update_data_needs_exactly_one_blob() -> None:
    with pytest.raises(ValueError, match="exactly one of XmlUpdateBlob"):
        ServerSyncUpdateData(KEY)
    with pytest.raises(ValueError, match="exactly one"):
        ServerSyncUpdateData(KEY, DOC, xml_update_blob_compressed=b"x")
    data = _broken(
        RESPONSES[7],
        b"<XmlUpdateBlob>",
        b"<XmlUpdateBlobCompressed>AAAA</XmlUpdateBlobCompressed><XmlUpdateBlob>",
    )
    with pytest.raises(ProtocolError, match="exactly one") as caught:
        GetUpdateDataResponse.from_xml(data)
    assert (
        caught.value.where
        == "GetUpdateDataResponse/GetUpdateDataResult/updates/ServerSyncUpdateData"
    )


def test_building_refuses_wrong_values() -> None:
    with pytest.raises(ValueError, match="required"):
        GetCookieResponse(None).to_xml()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="<Id>: 'nope' is not a GUID"):
        GetRevisionIdListRequest(
            COOKIE, ServerSyncFilter(False, categories=(IdAndDelta("nope", True),))
        ).to_xml()
    with pytest.raises(TypeError, match="<pingLevel>"):
        PingRequest("1").to_xml()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outside"):
        PingRequest(2**31).to_xml()
    with pytest.raises(ValueError, match="U\\+0000"):
        GetAuthorizationCookieRequest("a\x00b", DSS).to_xml()


def test_a_large_revision_list_parses() -> None:
    ids = tuple(RevisionKey(str(uuid.uuid4()), 200 + i % 3) for i in range(25_000))
    message = GetRevisionIdListResponse(RevisionIdList("9438,2026-10-04 16:33:26.750", ids))
    data = message.to_xml()
    assert len(data) > 3_000_000
    parsed = GetRevisionIdListResponse.from_xml(data)
    assert parsed == message


def test_irregular_identity_lists_fall_back_to_the_exact_error() -> None:
    message = GetRevisionIdListResponse(RevisionIdList("1,2026-10-04 16:33:26.750", (KEY, KEY)))
    doubled = message.to_xml().replace(
        b"<RevisionNumber>200</RevisionNumber>",
        b"<RevisionNumber>200</RevisionNumber><RevisionNumber>1</RevisionNumber>",
        1,
    )
    assert GetRevisionIdListResponse.from_xml(doubled).result.new_revisions == (KEY, KEY)
    missing = message.to_xml().replace(b"<RevisionNumber>200</RevisionNumber>", b"", 1)
    with pytest.raises(ProtocolError, match="RevisionNumber is missing"):
        GetRevisionIdListResponse.from_xml(missing)
