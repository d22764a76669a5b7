"""Bounded MS-WSUSSS registrations, against a running update server over real sockets.

Finding (issue 11, "Bounded USS"): 50 GetAuthorizationCookie calls, each with a 1 MB account
name and a fresh server id, were all accepted and added 52 MB to the store and to
`/api/downstream`'s answer. Now an account name must be an FQDN (at most 255 characters,
labels of at most 63), a server id a GUID, GetCookie's protocol version at most 16
characters: anything else gets the protocol's InvalidParameters fault and nothing is
stored; one source address keeps at most 32 registrations; `/api/downstream` is paged; a
registration not seen for 30 days is forgotten.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.admin_api import admin_routes
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.client import UpstreamClient, UpstreamHttpError
from updatesync.wsusss.faults import ErrorCode, WsusssFault
from updatesync.wsusss.service import create_app
from updatesync.wsusss.soap import DSS_AUTH_PATH

AUTH = DSS_AUTH_PATH.lstrip("/")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    data = tmp_path / "uss"
    with UpdateStore.open(data) as store:
        app = create_app(StoreBackend(store), extra_routes=admin_routes(store, None))
        with BackgroundServer(app) as running:
            yield data, running.url


def _store_bytes(data: Path) -> int:
    return sum(f.stat().st_size for f in data.glob("updateserver.sqlite*"))


def _downstream(url: str, **params: int) -> dict[str, object]:
    answer = httpx.get(f"{url}/api/downstream", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _refused_as_invalid(call: object, parameter: str) -> None:
    """The call gets InvalidParameters naming `parameter` (or, for a body past the
    server's size limit, a 413 before any of it is read)."""
    try:
        call()  # type: ignore[operator]
    except WsusssFault as fault:
        assert fault.error_code is ErrorCode.INVALID_PARAMETERS
        assert parameter in fault.message
    except UpstreamHttpError as refused:
        assert refused.status == 413
    else:
        pytest.fail(f"a request with a bad {parameter} was accepted")


def test_fifty_one_megabyte_account_names_are_refused_and_nothing_is_stored(server) -> None:
    """The finding as reported: 50 x a 1 MB account name with a fresh server id."""
    data, url = server
    before = _store_bytes(data)
    huge = "a" * 1_000_000
    with UpstreamClient(url, retries=0) as client:
        for _ in range(50):
            _refused_as_invalid(
                lambda: client.get_authorization_cookie(AUTH, huge, str(uuid.uuid4())),
                "accountName",
            )
    assert _downstream(url)["total"] == 0
    assert _store_bytes(data) - before < 1_000_000


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        (".".join(["a" * 63] * 4)[:255], True),  # 255 characters, labels of 63
        ("a" * 256, False),  # longer than an FQDN may be (RFC 1035 2.3.4)
        ("a" * 64 + ".contoso.com", False),  # a label longer than 63
        ("ps1 site.contoso.com", False),  # a space is no FQDN character
        ("ps1<site>.contoso.com", False),
        ("ps1site..contoso.com", False),  # an empty label
        ("ps1site.contoso.com.", True),  # the root's dot
        ("PS1_SITE.contoso.com", True),  # an underscore, as host names carry them
    ],
)
def test_an_account_name_must_be_an_fqdn(server, name: str, accepted: bool) -> None:
    _data, url = server
    with UpstreamClient(url, retries=0) as client:
        call = lambda: client.get_authorization_cookie(AUTH, name, str(uuid.uuid4()))  # noqa: E731
        if accepted:
            assert call().cookie_data
        else:
            _refused_as_invalid(call, "accountName")
    assert _downstream(url)["total"] == (1 if accepted else 0)


@pytest.mark.parametrize(
    "guid",
    [
        "0" * 100_000,
        "6f1c2f6e3f0b4d3a9b1e0d2f6a1c5e12",  # no hyphens: not the 2.2.5.1 pattern
        "urn:uuid:6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12",
        "6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12-and-more",
    ],
)
def test_a_server_id_must_be_a_guid(server, guid: str) -> None:
    _data, url = server
    with UpstreamClient(url, retries=0) as client:
        _refused_as_invalid(
            lambda: client.get_authorization_cookie(AUTH, "dss.contoso.com", guid),
            "accountGuid",
        )
    assert _downstream(url)["total"] == 0


def test_get_cookie_refuses_a_protocol_version_past_its_size(server) -> None:
    _data, url = server
    with UpstreamClient(url, retries=0) as client:
        auth = client.get_authorization_cookie(AUTH, "dss.contoso.com", str(uuid.uuid4()))
        _refused_as_invalid(
            lambda: client.get_cookie([auth], protocol_version="1." + "0" * 1000),
            "protocolVersion",
        )
        assert client.get_cookie([auth], protocol_version="1.20").encrypted_data
    (registered,) = _downstream(url)["items"]
    assert registered["protocol_version"] == "1.20"


def test_one_address_keeps_at_most_32_registrations_the_latest(server) -> None:
    _data, url = server
    guids = [str(uuid.uuid4()) for _ in range(50)]
    with UpstreamClient(url, retries=0) as client:
        for n, guid in enumerate(guids):
            client.get_authorization_cookie(AUTH, f"dss{n}.contoso.com", guid)
        listed = _downstream(url, limit=1000)
        assert listed["total"] == 32
        assert {d["account_guid"] for d in listed["items"]} == set(guids[18:])
        # A forgotten server registers again at its next sync, and works.
        auth = client.get_authorization_cookie(AUTH, "dss0.contoso.com", guids[0])
        assert client.get_cookie([auth]).encrypted_data
    assert guids[0] in {d["account_guid"] for d in _downstream(url, limit=1000)["items"]}


def test_the_downstream_list_is_paged(server) -> None:
    _data, url = server
    with UpstreamClient(url, retries=0) as client:
        for n in range(5):
            client.get_authorization_cookie(AUTH, f"dss{n}.contoso.com", str(uuid.uuid4()))
    first = _downstream(url, limit=2)
    assert (first["total"], first["limit"], first["next_offset"], len(first["items"])) == (
        5,
        2,
        2,
        2,
    )
    names = [d["account_name"] for d in first["items"]]
    offset = first["next_offset"]
    while offset is not None:
        page = _downstream(url, limit=2, offset=offset)
        names += [d["account_name"] for d in page["items"]]
        offset = page["next_offset"]
    assert names == [f"dss{n}.contoso.com" for n in range(5)]
    assert _downstream(url)["limit"] == 100  # the default page
    assert _downstream(url, limit=100_000)["limit"] == 1000  # the largest page
    bad = httpx.get(f"{url}/api/downstream", params={"limit": "-1"})
    assert bad.status_code == 400 and "limit must be a whole number" in bad.json()["error"]


def test_a_registration_not_seen_for_long_is_forgotten(tmp_path: Path) -> None:
    """Item 6 ("limited and expiring"): a downstream server not seen for 30 days is no
    longer listed or counted by `/api/downstream`, and the next registration forgets it in
    the store (it takes no place among its address's 32); one that comes back after that is
    registered anew. The server's clock is moved on instead of waiting."""
    start = datetime.now(UTC)
    now = [start]
    data = tmp_path / "uss"
    with UpdateStore.open(data) as store:
        app = create_app(
            StoreBackend(store, clock=lambda: now[0]),
            extra_routes=admin_routes(store, None, clock=lambda: now[0]),
        )
        with BackgroundServer(app) as running, UpstreamClient(running.url, retries=0) as client:
            url = running.url
            guids = [str(uuid.uuid4()) for _ in range(32)]
            for n, guid in enumerate(guids):
                now[0] = start + timedelta(seconds=n)
                client.get_authorization_cookie(AUTH, f"dss{n}.contoso.com", guid)
            assert _downstream(url, limit=1000)["total"] == 32  # the address's 32 places

            now[0] = start + timedelta(days=29)  # not yet: all still listed
            assert _downstream(url, limit=1000)["total"] == 32
            client.get_authorization_cookie(AUTH, "dss0.contoso.com", guids[0])  # dss0 syncs

            now[0] = start + timedelta(days=31)  # the 31 others were last seen 31 days ago
            listed = _downstream(url, limit=1000)
            assert (listed["total"], [d["account_guid"] for d in listed["items"]]) == (
                1,
                [guids[0]],
            )

            fresh = str(uuid.uuid4())
            client.get_authorization_cookie(AUTH, "new.contoso.com", fresh)
            client.get_authorization_cookie(AUTH, "dss5.contoso.com", guids[5])  # back again
            listed = _downstream(url, limit=1000)
            first_seen = {d["account_guid"]: d["first_seen"] for d in listed["items"]}
            assert first_seen == {
                guids[0]: start.isoformat(),  # seen within 30 days: kept all along
                fresh: now[0].isoformat(),
                guids[5]: now[0].isoformat(),  # forgotten, so registered anew
            }
        with store.engine.connect() as conn:  # forgotten, not only hidden
            held = conn.execute(text("SELECT account_guid FROM downstream_server")).scalars()
            assert sorted(held) == sorted(first_seen)
