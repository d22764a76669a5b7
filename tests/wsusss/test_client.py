"""The MS-WSUSSS client against a test upstream on loopback HTTP: the calls, and what it does
with refused connections, 5xx pages, time-outs, cut connections, bad bodies and faults."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import fake_upstream as fu
import pytest

from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import RevisionKey, UpdateType
from updatesync.retry_policy import UPSTREAM_CALL, jitter_source
from updatesync.wsusss.client import (
    UpstreamClient,
    UpstreamHttpError,
    UpstreamUnavailable,
)
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import ErrorCode, WsusssFault
from updatesync.wsusss.messages import Cookie, ServerSyncFilter
from updatesync.wsusss.soap import CONTENT_TYPE, DSS_AUTH_PATH, SERVER_SYNC_PATH


class Upstream:
    """A running fake upstream behind a fault injector."""

    def __init__(self, fake: Any, injector: Any, url: str) -> None:
        self.fake = fake
        self.injector = injector
        self.url = url


@pytest.fixture(scope="module")
def catalog() -> Any:
    return fu.FakeCatalog.from_records(generate_catalog(30, 11))


@pytest.fixture
def upstream(catalog: Any) -> Iterator[Upstream]:
    fake = fu.FakeUpstream(catalog, max_per_request=20)
    injector = fu.FaultInjector(fake)
    with fu.serve(injector) as url:
        yield Upstream(fake, injector, url)


class Sleeps:
    """Records the back-off waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _client(url: str, **options: object) -> UpstreamClient:
    options.setdefault("timeout", 5.0)
    options.setdefault("sleep", Sleeps())
    return UpstreamClient(url, **options)  # type: ignore[arg-type]


def _authorize(client: UpstreamClient) -> Cookie:
    config = client.get_auth_config()
    plugin = (config.auth_info or ())[0]
    assert plugin.service_url is not None
    auth = client.get_authorization_cookie(
        plugin.service_url, "dss.test.invalid", "6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12"
    )
    return client.get_cookie([auth])


# --------------------------------------------------------------------------- the calls


def test_a_whole_metadata_exchange_reads_what_the_upstream_holds(upstream: Upstream) -> None:
    with _client(upstream.url) as client:
        cookie = _authorize(client)
        config = client.get_config_data(cookie, None)
        listing = client.get_revision_id_list(cookie, ServerSyncFilter(get_config=True))
        ids = list(listing.new_revisions or ())
        data = client.get_update_data(cookie, ids[:5])
        client.get_update_data(cookie, ids[5:8])

    assert config.max_number_of_updates_per_request == 20
    config_keys = {
        d.key
        for d in upstream.fake.catalog.revisions
        if d.update_type in (UpdateType.CATEGORY, UpdateType.DETECTOID)
    }
    assert set(ids) == config_keys
    assert listing.anchor
    assert [item.id for item in data.updates or ()] == ids[:5]
    assert all("<upd:Update" in item.document() for item in data.updates or ())
    # what a benchmark or acceptance test counts
    assert client.update_ids_requested == 8
    assert [c.ids for c in client.calls if c.operation == "GetUpdateData"] == [5, 3]


def test_each_operation_goes_to_its_service_with_the_soap_headers(upstream: Upstream) -> None:
    with _client(upstream.url) as client:
        _authorize(client)
    seen = upstream.injector.requests
    assert [(r.operation, r.path) for r in seen] == [
        ("GetAuthConfig", SERVER_SYNC_PATH),
        ("GetAuthorizationCookie", DSS_AUTH_PATH),
        ("GetCookie", SERVER_SYNC_PATH),
    ]
    assert {r.content_type for r in seen} == {CONTENT_TYPE}
    assert seen[0].soap_action == '"http://www.microsoft.com/SoftwareDistribution/GetAuthConfig"'
    assert seen[1].soap_action == (
        '"http://www.microsoft.com/SoftwareDistribution/Server/DssAuthWebService/'
        'GetAuthorizationCookie"'
    )


# --------------------------------------------------------------------------- retried


def test_a_refused_connection_is_retried_with_growing_waits_then_reported() -> None:
    url = fu.free_port_url()
    sleeps = Sleeps()
    with (
        _client(
            url, retries=3, backoff=0.5, max_backoff=1.5, sleep=sleeps, rng=jitter_source(3)
        ) as client,
        pytest.raises(UpstreamUnavailable) as caught,
    ):
        client.get_auth_config()
    message = str(caught.value)
    assert url + SERVER_SYNC_PATH in message
    assert "4 attempts" in message
    assert "network error" in message and "ConnectError" in message
    # Full jitter: each wait drawn below its step (0.5, 1.0, then the cap 1.5).
    assert len(sleeps.waits) == 3
    assert all(0 <= w <= step for w, step in zip(sleeps.waits, [0.5, 1.0, 1.5], strict=True))
    assert client.calls[-1].attempts == 4


def test_5xx_pages_without_a_fault_are_retried_until_an_answer_comes(upstream: Upstream) -> None:
    upstream.injector.on("GetAuthConfig", fu.status_page(503, b""), times=1)
    upstream.injector.on("GetAuthConfig", fu.status_page(502, b"Bad Gateway", "text/plain"))
    sleeps = Sleeps()
    with _client(upstream.url, retries=2, backoff=0.25, sleep=sleeps) as client:
        config = client.get_auth_config()
    assert config.auth_info
    assert client.calls[-1].attempts == 3
    assert len(sleeps.waits) == 2
    assert 0 <= sleeps.waits[0] <= 0.25 and 0 <= sleeps.waits[1] <= 0.5


def test_two_clients_that_fail_together_wait_apart_and_a_seed_repeats_the_waits() -> None:
    # Two SUPs whose upstream is down: without jitter both waited 0.5, 1.0, 1.5 s.
    url = fu.free_port_url()
    waits = []
    for seed in ("SUP1", "SUP2", "SUP1"):
        sleeps = Sleeps()
        with (
            _client(
                url, retries=3, backoff=0.5, max_backoff=1.5, sleep=sleeps, rng=jitter_source(seed)
            ) as client,
            pytest.raises(UpstreamUnavailable),
        ):
            client.get_auth_config()
        waits.append(sleeps.waits)
    assert waits[0] == waits[2] and waits[0] != waits[1]


def test_a_transient_503_is_retried_through_the_policy_then_succeeds(upstream: Upstream) -> None:
    upstream.injector.on("GetAuthConfig", fu.status_page(503, b"Service Unavailable"), times=1)
    sleeps = Sleeps()
    with _client(upstream.url, sleep=sleeps, rng=jitter_source(5)) as client:
        assert client.get_auth_config().auth_info
    # The default policy (UPSTREAM_CALL): one wait, below its first step of 1 s.
    assert client.calls[-1].attempts == 2 and client.calls[-1].status == 200
    assert sleeps.waits == [UPSTREAM_CALL.next_delay(1, jitter_source(5))]


def test_an_html_500_page_that_persists_ends_in_a_clear_error(upstream: Upstream) -> None:
    upstream.injector.on(None, fu.status_page(500, fu.HTML_500), times=10)
    with (
        _client(upstream.url, retries=2) as client,
        pytest.raises(UpstreamUnavailable) as caught,
    ):
        client.get_auth_config()
    message = str(caught.value)
    assert "HTTP 500" in message and "Runtime Error" in message
    assert "3 attempts" in message and upstream.url in message
    assert upstream.injector.operations == ["GetAuthConfig"] * 3


def test_a_time_out_is_retried(upstream: Upstream) -> None:
    upstream.injector.on("GetAuthConfig", fu.hang())
    with _client(upstream.url, retries=1, timeout=0.5) as client:
        config = client.get_auth_config()
    assert config.auth_info
    assert client.calls[-1].attempts == 2


def test_an_upstream_that_never_answers_is_reported_as_timed_out(upstream: Upstream) -> None:
    upstream.injector.on("GetAuthConfig", fu.hang(), times=2)
    with (
        _client(upstream.url, retries=1, timeout=0.3) as client,
        pytest.raises(UpstreamUnavailable, match="timed out"),
    ):
        client.get_auth_config()


def test_a_connection_cut_mid_answer_is_retried(upstream: Upstream) -> None:
    with _client(upstream.url, retries=1) as client:
        cookie = _authorize(client)
        upstream.injector.on("GetConfigData", fu.reset())
        config = client.get_config_data(cookie, None)
    assert config.max_number_of_updates_per_request == 20
    assert client.calls[-1].attempts == 2


def test_a_connection_cut_without_retries_left_names_the_cause(upstream: Upstream) -> None:
    with _client(upstream.url, retries=0) as client:
        cookie = _authorize(client)
        upstream.injector.on("GetConfigData", fu.reset())
        with pytest.raises(UpstreamUnavailable) as caught:
            client.get_config_data(cookie, None)
    assert "1 attempt:" in str(caught.value)
    assert "RemoteProtocolError" in str(caught.value)


# --------------------------------------------------------------------------- not retried


@pytest.mark.parametrize(
    ("mischief", "expected"),
    [
        (fu.truncated(), "not well-formed XML"),
        (fu.garbage(), "Start tag expected"),
        (fu.status_page(200, fu.HTML_500), "HTML page titled 'Runtime Error'"),
    ],
    ids=["truncated", "garbage", "html-200"],
)
def test_a_body_that_is_not_soap_is_a_protocol_error(
    upstream: Upstream, mischief: Any, expected: str
) -> None:
    upstream.injector.on("GetAuthConfig", mischief)
    with (
        _client(upstream.url, retries=3) as client,
        pytest.raises(ProtocolError) as caught,
    ):
        client.get_auth_config()
    assert expected in str(caught.value)
    assert upstream.url in str(caught.value)
    assert client.calls[-1].attempts == 1


def test_a_soap_fault_is_raised_as_such_and_not_retried(upstream: Upstream) -> None:
    upstream.injector.on("GetAuthConfig", fu.fault(ErrorCode.SERVER_BUSY))
    with (
        _client(upstream.url, retries=3) as client,
        pytest.raises(WsusssFault) as caught,
    ):
        client.get_auth_config()
    assert caught.value.code is ErrorCode.SERVER_BUSY
    assert caught.value.operation == "GetAuthConfig"
    assert client.calls[-1].attempts == 1


def test_the_upstreams_own_faults_come_back_with_their_codes(upstream: Upstream) -> None:
    forged = Cookie(expiration=datetime(2030, 1, 1, tzinfo=UTC), encrypted_data=b"forged")
    with _client(upstream.url) as client:
        with pytest.raises(WsusssFault) as bad_cookie:
            client.get_config_data(forged, None)
        cookie = _authorize(client)
        too_many = [RevisionKey(f"00000000-0000-4000-8000-{n:012d}", 1) for n in range(21)]
        with pytest.raises(WsusssFault) as bad_ids:
            client.get_update_data(cookie, too_many)
        with pytest.raises(WsusssFault) as unknown:
            client.get_update_data(cookie, too_many[:1])
    assert bad_cookie.value.code is ErrorCode.INVALID_COOKIE
    assert bad_ids.value.code is ErrorCode.INVALID_PARAMETERS
    assert unknown.value.code is ErrorCode.INTERNAL_SERVER_ERROR
    assert client.update_ids_requested == 22


def test_a_404_is_not_retried_and_says_to_check_the_address(upstream: Upstream) -> None:
    upstream.injector.on("GetAuthConfig", fu.status_page(404, b"<html>Not Found</html>"))
    with (
        _client(upstream.url, retries=3) as client,
        pytest.raises(UpstreamHttpError, match="HTTP 404") as caught,
    ):
        client.get_auth_config()
    assert "check the upstream URL" in str(caught.value)
    assert client.calls[-1].attempts == 1


def test_an_address_that_is_not_http_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        UpstreamClient("ftp://wsus.example")


def test_an_address_that_cannot_be_parsed_is_a_value_error() -> None:
    """Not httpx's InvalidURL: the callers turn a ValueError into their one-line error."""
    with pytest.raises(ValueError, match=r"^upstream URL 'http://\[::1' is not a valid address"):
        UpstreamClient("http://[::1")
