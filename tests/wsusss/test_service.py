"""The upstream service's own checks, over real HTTP: cookies, limits, anchors, paths."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import RevisionKey
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.deployments import ALL_COMPUTERS, UNASSIGNED_COMPUTERS
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.peers import downstream_servers
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.anchors import Anchor
from updatesync.wsusss.faults import ErrorCode, WsusssFault
from updatesync.wsusss.messages import (
    AuthorizationCookie,
    Cookie,
    GetAuthConfigRequest,
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
    GetUpdateDataRequest,
    GetUpdateDataResponse,
    Message,
    ServerSyncFilter,
    operation_for,
)
from updatesync.wsusss.service import (
    UpstreamService,
    create_app,
    is_account_name,
    parse_account_guid,
)
from updatesync.wsusss.soap import CONTENT_TYPE, DSS_AUTH_PATH, SERVER_SYNC_PATH

ACCOUNT = "5b0c7f3e-2b64-4a43-9d8e-8a86e2f6a6a1"


@dataclass
class Upstream:
    http: httpx.Client
    store: UpdateStore
    clock: list[datetime]
    service: UpstreamService

    def call(self, request: Message, path: str = SERVER_SYNC_PATH) -> httpx.Response:
        # An absolute URL, so that a path beginning with // reaches the server as sent.
        return self.http.post(
            str(self.http.base_url).rstrip("/") + path,
            content=request.to_xml(),
            headers={
                "Content-Type": CONTENT_TYPE,
                "SOAPAction": operation_for(request).soap_action,
            },
        )

    def cookie(self) -> Cookie:
        auth = GetAuthorizationCookieResponse.from_xml(
            self.call(
                GetAuthorizationCookieRequest("ps1.contoso.com", ACCOUNT), DSS_AUTH_PATH
            ).content
        ).result
        return GetCookieResponse.from_xml(self.call(GetCookieRequest((auth,))).content).result


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    write_export(tmp_path / "m1.cab", generate_catalog(300, seed=9))
    store = UpdateStore.open(tmp_path / "A")
    import_export_cabinet(store, tmp_path / "m1.cab")
    clock = [datetime(2026, 11, 25, 12, 0, tzinfo=UTC)]
    app = create_app(StoreBackend(store))
    service: UpstreamService = app.state.service
    service.clock = lambda: clock[0]
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as http:
        yield Upstream(http, store, clock, service)
    store.close()


def _fault(answer: httpx.Response, message_type: type[Message]) -> WsusssFault:
    assert answer.status_code == 500
    with pytest.raises(WsusssFault) as caught:
        message_type.from_xml(answer.content)
    return caught.value


def test_an_expired_or_forged_cookie_gets_invalid_cookie(upstream: Upstream) -> None:
    cookie = upstream.cookie()
    ok = upstream.call(GetConfigDataRequest(cookie))
    assert (
        GetConfigDataResponse.from_xml(ok.content).result.max_number_of_updates_per_request == 100
    )
    forged = Cookie(cookie.expiration, bytes(len(cookie.encrypted_data or b"")))
    fault = _fault(upstream.call(GetConfigDataRequest(forged)), GetConfigDataResponse)
    assert fault.code is ErrorCode.INVALID_COOKIE
    upstream.clock[0] += timedelta(minutes=241)
    fault = _fault(upstream.call(GetConfigDataRequest(cookie)), GetConfigDataResponse)
    assert fault.code is ErrorCode.INVALID_COOKIE


def test_a_session_cookie_is_not_an_authorization_cookie(upstream: Upstream) -> None:
    cookie = upstream.cookie()
    wrong = AuthorizationCookie("DssTargeting", cookie.encrypted_data)
    fault = _fault(upstream.call(GetCookieRequest((wrong,))), GetCookieResponse)
    assert fault.code is ErrorCode.INVALID_AUTHORIZATION_COOKIE


def test_a_protocol_version_2_is_incompatible(upstream: Upstream) -> None:
    auth = GetAuthorizationCookieResponse.from_xml(
        upstream.call(GetAuthorizationCookieRequest("ps1", ACCOUNT), DSS_AUTH_PATH).content
    ).result
    answer = upstream.call(GetCookieRequest((auth,), protocol_version="2.0"))
    assert _fault(answer, GetCookieResponse).code is ErrorCode.INCOMPATIBLE_PROTOCOL_VERSION


def test_more_than_100_ids_is_refused_and_an_unknown_id_faults_the_call(upstream: Upstream) -> None:
    cookie = upstream.cookie()
    keys = sorted(upstream.store.revision_keys())
    too_many = upstream.call(GetUpdateDataRequest(cookie, tuple(keys[:101])))
    fault = _fault(too_many, GetUpdateDataResponse)
    assert (fault.code, fault.message) == (ErrorCode.INVALID_PARAMETERS, "updateIds")
    unknown = (*keys[:5], RevisionKey("00000000-0000-4000-8000-000000000000", 1))
    fault = _fault(upstream.call(GetUpdateDataRequest(cookie, unknown)), GetUpdateDataResponse)
    assert fault.code is ErrorCode.INTERNAL_SERVER_ERROR
    exact = GetUpdateDataResponse.from_xml(
        upstream.call(GetUpdateDataRequest(cookie, tuple(keys[:100]))).content
    )
    assert [u.id for u in exact.result.updates or ()] == keys[:100]


def test_an_answer_stays_under_the_2mb_cap(upstream: Upstream) -> None:
    cookie = upstream.cookie()
    keys = sorted(upstream.store.revision_keys())[:100]
    sizes = {d.key: len(d.xml) for d in upstream.store.documents(keys)}
    upstream.service.response_budget = sum(sizes.values()) // 3
    answer = upstream.call(GetUpdateDataRequest(cookie, tuple(keys)))
    assert len(answer.content) < sum(sizes.values()) // 3 * 1.6
    delivered = [u.id for u in GetUpdateDataResponse.from_xml(answer.content).result.updates or ()]
    assert 0 < len(delivered) < len(keys)
    assert delivered == keys[: len(delivered)]


def test_an_anchor_from_a_bigger_store_means_server_changed(upstream: Upstream) -> None:
    cookie = upstream.cookie()
    ahead = Anchor.issue(upstream.store.change_counter() + 1, upstream.clock[0]).format()
    answer = upstream.call(GetRevisionIdListRequest(cookie, ServerSyncFilter(False, anchor=ahead)))
    assert _fault(answer, GetRevisionIdListResponse).code is ErrorCode.SERVER_CHANGED
    now = Anchor.issue(upstream.store.change_counter(), upstream.clock[0]).format()
    answer = upstream.call(GetRevisionIdListRequest(cookie, ServerSyncFilter(False, anchor=now)))
    assert GetRevisionIdListResponse.from_xml(answer.content).result.new_revisions == ()


@pytest.mark.parametrize(
    "path",
    [
        "/serversyncwebservice/serversyncwebservice.asmx",
        "//ServerSyncWebService/ServerSyncWebService.asmx",
        "/SERVERSYNCWEBSERVICE//SERVERSYNCWEBSERVICE.ASMX",
    ],
)
def test_paths_are_matched_without_case_and_with_doubled_slashes(
    upstream: Upstream, path: str
) -> None:
    answer = upstream.call(GetConfigDataRequest(upstream.cookie()), path)
    assert answer.status_code == 200
    assert GetConfigDataResponse.from_xml(answer.content).result.protocol_version == "1.20"


def test_a_get_or_an_unknown_path_is_answered_clearly(upstream: Upstream) -> None:
    page = upstream.http.get(SERVER_SYNC_PATH)
    assert page.status_code == 405
    assert "POST a SOAP 1.1 request" in page.text
    wrong = upstream.call(GetConfigDataRequest(upstream.cookie()), "/ClientWebService/client.asmx")
    assert _fault(wrong, GetConfigDataResponse).code is ErrorCode.INVALID_PARAMETERS


def test_get_deployments_checks_the_cookie_and_both_anchors(upstream: Upstream) -> None:
    cookie = upstream.cookie()
    synced = Anchor.issue(upstream.store.change_counter(), upstream.clock[0]).format()
    no_cookie = upstream.call(GetDeploymentsRequest(None, None, synced))
    assert _fault(no_cookie, GetDeploymentsResponse).code is ErrorCode.INVALID_COOKIE
    for deployment_anchor, sync_anchor, parameter in (
        ("last tuesday", synced, "deploymentAnchor"),
        (None, None, "syncAnchor"),
        (None, "", "syncAnchor"),
        (None, "9438", "syncAnchor"),
    ):
        answer = upstream.call(GetDeploymentsRequest(cookie, deployment_anchor, sync_anchor))
        fault = _fault(answer, GetDeploymentsResponse)
        assert (fault.code, fault.message) == (ErrorCode.INVALID_PARAMETERS, parameter)
    ahead = Anchor.issue(upstream.store.deployment_counter() + 1, upstream.clock[0]).format()
    answer = upstream.call(GetDeploymentsRequest(cookie, ahead, synced))
    assert _fault(answer, GetDeploymentsResponse).code is ErrorCode.SERVER_CHANGED
    assert not downstream_servers(upstream.store)[0].is_replica


def test_get_deployments_serves_groups_and_the_deployments_after_the_anchor(
    upstream: Upstream,
) -> None:
    store = upstream.store
    key = sorted(store.revision_keys())[0]
    first = store.approve(key.update_id, key.revision, UNASSIGNED_COMPUTERS, 0, "WUS Server")
    cookie = upstream.cookie()
    synced = Anchor.issue(store.change_counter(), upstream.clock[0]).format()

    raw = upstream.call(GetDeploymentsRequest(cookie, None, synced))
    answer = GetDeploymentsResponse.from_xml(raw.content).result

    # The top group's parent is the all-zero GUID; "no deadline" keeps its 7 digits.
    assert b"<ParentGroupId>00000000-0000-0000-0000-000000000000</ParentGroupId>" in raw.content
    assert b"<Deadline>9999-12-31T23:59:59.9999999</Deadline>" in raw.content
    assert [(g.target_group_id, g.name, g.is_builtin) for g in answer.groups or ()] == [
        (ALL_COMPUTERS, "All Computers", True),
        (UNASSIGNED_COMPUTERS, "Unassigned Computers", True),
    ]
    assert (answer.groups or ())[1].parent_group_id == ALL_COMPUTERS
    (sent,) = answer.deployments or ()
    assert (sent.deployment_guid, sent.update_id, sent.revision_number) == (
        first.deployment_id,
        key.update_id,
        key.revision,
    )
    assert (sent.action, sent.admin_name, sent.target_group_id) == (
        0,
        "WUS Server",
        UNASSIGNED_COMPUTERS,
    )
    assert answer.anchor == Anchor.issue(1, upstream.clock[0]).format()
    assert (answer.dead_deployments, answer.hidden_updates, answer.accepted_eulas) == ((), (), ())
    assert downstream_servers(store)[0].is_replica

    second = store.approve(key.update_id, key.revision, ALL_COMPUTERS, 2, "WUS Server")
    store.remove_deployment(first.deployment_id)
    store.set_hidden(key.update_id)
    delta = GetDeploymentsResponse.from_xml(
        upstream.call(GetDeploymentsRequest(cookie, answer.anchor, synced)).content
    ).result
    assert [d.deployment_guid for d in delta.deployments or ()] == [second.deployment_id]
    assert delta.dead_deployments == (first.deployment_id,)
    assert delta.hidden_updates == (key.update_id,)
    assert len(delta.groups or ()) == 2  # every group, every time
    assert Anchor.parse(delta.anchor or "").change_number == store.deployment_counter() == 3


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("ps1site.contoso.com", True),
        ("ps1site.contoso.com.", True),
        ("10.0.0.2", True),
        ("a" * 63 + "." + "b" * 63, True),
        ("a" * 64, False),
        ("a." * 127 + "bc", False),  # 256 characters
        ("", False),
        (".", False),
        ("a..b", False),
        ("dss\u00e9.contoso.com", False),
        ("dss:8530", False),
    ],
)
def test_an_account_name_is_an_fqdn_of_bounded_size(name: str, valid: bool) -> None:
    assert is_account_name(name) is valid


def test_an_account_guid_follows_the_guid_pattern() -> None:
    guid = "6F1C2F6E-3F0B-4D3A-9B1E-0D2F6A1C5E12"
    assert str(parse_account_guid(guid)) == guid.lower()
    assert str(parse_account_guid("{" + guid + "}")) == guid.lower()
    for bad in (None, "", guid.replace("-", ""), guid + "0", "x" * 36):
        assert parse_account_guid(bad) is None


def test_each_request_answered_is_told_once_with_its_operation_and_fault(
    upstream: Upstream,
) -> None:
    """What an update server's /metrics counts (`on_answer`): a streamed answer once its last
    chunk is written, a fault with its ErrorCode, an operation not served as `unsupported`."""
    told: list[tuple[str | None, str | None]] = []
    upstream.service.on_answer = lambda operation, fault: told.append((operation, fault))
    upstream.service.stream_threshold = 4096  # GetUpdateData below is streamed
    cookie = upstream.cookie()
    forged = Cookie(cookie.expiration, bytes(len(cookie.encrypted_data or b"")))
    _fault(upstream.call(GetConfigDataRequest(forged)), GetConfigDataResponse)
    keys = tuple(sorted(upstream.store.revision_keys())[:50])
    streamed = upstream.call(GetUpdateDataRequest(cookie, keys))
    assert "content-length" not in streamed.headers  # sent in chunks
    assert len(GetUpdateDataResponse.from_xml(streamed.content).result.updates or ()) == 50
    unsupported = GetAuthConfigRequest().to_xml().replace(b"GetAuthConfig", b"GetDriverIdList")
    refused = upstream.http.post(
        DSS_AUTH_PATH, content=unsupported, headers={"Content-Type": CONTENT_TYPE}
    )
    assert refused.status_code == 500

    assert told == [
        ("GetAuthorizationCookie", None),
        ("GetCookie", None),
        ("GetConfigData", "InvalidCookie"),
        ("GetUpdateData", None),
        ("unsupported", "InvalidParameters"),
    ]
