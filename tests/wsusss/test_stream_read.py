"""A GetRevisionIdList answer read as it arrives: the same keys and anchor however the body
is cut into chunks (mid-tag, mid-character), the anchor before or after the list, the same
refusals as a whole-body parse (faults, truncation, DTDs, HTML, caps), and the client's
streamed call over loopback HTTP (faults, a cut connection retried without listing twice)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fake_upstream as fu
import pytest

from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import RevisionKey
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import ErrorCode, WsusssFault, build_fault
from updatesync.wsusss.messages import (
    GetRevisionIdListResponse,
    RevisionIdList,
    ServerSyncFilter,
)
from updatesync.wsusss.soap import SOAP_ENV_NS, SOFTWARE_DISTRIBUTION_NS
from updatesync.wsusss.stream_read import RevisionIdListStream, read_revision_id_list

KEYS = tuple(
    RevisionKey(f"{n:08x}-0000-4000-8000-{n * 7919:012x}", 100 + n % 3) for n in range(1, 60)
)
ANCHOR = "2026-12-03 22:00:00.000 — anchor ünïcødé 𝔘"  # multi-byte characters to cut through


def _body(keys: tuple[RevisionKey, ...] = KEYS, anchor: str | None = ANCHOR) -> bytes:
    return GetRevisionIdListResponse(RevisionIdList(anchor, keys)).to_xml()


def _envelope(result: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP_ENV_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soap:Body>'
        f'<GetRevisionIdListResponse xmlns="{SOFTWARE_DISTRIBUTION_NS}">{result}'
        "</GetRevisionIdListResponse></soap:Body></soap:Envelope>"
    ).encode()


def _identity(key: RevisionKey) -> str:
    return (
        f"<UpdateIdentity><UpdateID>{key.update_id}</UpdateID>"
        f"<RevisionNumber>{key.revision}</RevisionNumber></UpdateIdentity>"
    )


def _read(chunks: Any, **caps: int) -> tuple[list[RevisionKey], str | None, int]:
    got: list[RevisionKey] = []
    listing = read_revision_id_list(chunks, got.extend, batch=7, **caps)
    return got, listing.anchor, listing.count


# --------------------------------------------------------------------------- reading


def _late_anchor_body() -> bytes:
    """The list first, then the anchor: both well past the first 4 KB (read as a whole to
    look for an HTML page), so every cut below falls in what is parsed as it comes."""
    listed = "".join(_identity(k) for k in KEYS)
    return _envelope(
        f"<GetRevisionIdListResult><NewRevisions>{listed}</NewRevisions>"
        f"<Anchor>{ANCHOR}</Anchor></GetRevisionIdListResult>"
    )


def test_every_cut_of_the_body_into_two_chunks_reads_the_same() -> None:
    body = _late_anchor_body()
    start = body.index(ANCHOR.encode()) - 200
    assert start > 4096 and "ü".encode() in body[start:]  # some cuts fall inside a character
    for cut in (*range(0, 300, 7), *range(4000, 4300), *range(start, len(body) + 1)):
        assert _read([body[:cut], body[cut:]]) == (list(KEYS), ANCHOR, len(KEYS)), cut


def test_one_byte_at_a_time_and_one_chunk_read_the_same() -> None:
    for body in (_body(), _late_anchor_body()):
        one_by_one = _read(body[n : n + 1] for n in range(len(body)))
        assert one_by_one == _read([body]) == (list(KEYS), ANCHOR, len(KEYS))


def test_the_keys_come_out_as_each_chunk_completes_them() -> None:
    keys = tuple(RevisionKey(f"{n:08x}-0000-4000-8000-000000000000", 1) for n in range(300))
    body = _body(keys)
    stream = RevisionIdListStream()
    half = len(body) // 2
    first = stream.feed(body[:half])
    rest = stream.feed(body[half:]) + stream.close()
    assert 0 < len(first) < len(keys) and first + rest == list(keys)


def test_the_anchor_may_come_after_the_list_or_be_missing_or_nil() -> None:
    listed = "".join(_identity(k) for k in KEYS[:3])
    after = _envelope(
        f"<GetRevisionIdListResult><NewRevisions>{listed}</NewRevisions>"
        "<Anchor>late</Anchor></GetRevisionIdListResult>"
    )
    assert _read([after]) == (list(KEYS[:3]), "late", 3)
    missing = _envelope(
        f"<GetRevisionIdListResult><NewRevisions>{listed}</NewRevisions></GetRevisionIdListResult>"
    )
    assert _read([missing]) == (list(KEYS[:3]), None, 3)
    nil = _envelope(
        '<GetRevisionIdListResult><Anchor xsi:nil="true" /><NewRevisions /></'
        "GetRevisionIdListResult>"
    )
    assert _read([nil]) == ([], None, 0)


def test_repeats_are_listed_as_they_come_and_unknown_elements_are_skipped() -> None:
    listed = _identity(KEYS[0]) + "<Extra><Deep>x</Deep></Extra>" + _identity(KEYS[0])
    body = _envelope(
        f"<GetRevisionIdListResult><Future>1</Future><Anchor>a</Anchor>"
        f"<NewRevisions>{listed}</NewRevisions></GetRevisionIdListResult>"
    )
    assert _read([body]) == ([KEYS[0], KEYS[0]], "a", 2)


def test_a_long_list_is_read_without_keeping_its_elements() -> None:
    keys = tuple(RevisionKey(f"{n:08x}-0000-4000-8000-000000000000", 1) for n in range(10_000))
    body = _body(keys, "a")
    stream = RevisionIdListStream()
    for start in range(0, len(body), 65_536):
        stream.feed(body[start : start + 65_536])
        # What the tree holds stays a handful of elements, however far the list runs.
        assert stream.held_elements() < 20
    stream.close()
    assert stream.count == len(keys) and stream.anchor == "a"


# --------------------------------------------------------------------------- refusing


def test_a_fault_body_raises_the_fault() -> None:
    body = build_fault(ErrorCode.SERVER_CHANGED, "rebuilt")
    for cut in (5, len(body) // 2, len(body) - 3):
        with pytest.raises(WsusssFault) as caught:
            _read([body[:cut], body[cut:]])
        assert caught.value.code is ErrorCode.SERVER_CHANGED


def test_a_fault_too_large_to_be_one_is_refused() -> None:
    body = build_fault(ErrorCode.INTERNAL_SERVER_ERROR, "x" * 2_000_000)
    chunks = [body[n : n + 65_536] for n in range(0, len(body), 65_536)]
    with pytest.raises(ProtocolError, match="a soap:Fault body over 1,048,576 bytes"):
        _read(chunks)


@pytest.mark.parametrize("fraction", [0.0001, 0.3, 0.5, 0.99])
def test_a_truncated_body_is_a_protocol_error(fraction: float) -> None:
    body = _body()
    with pytest.raises(ProtocolError, match=r"truncated or corrupt body|body is empty"):
        _read([body[: int(len(body) * fraction)]])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "body is empty"),
        (b"<html><head><title>Runtime Error</title></head></html>", "HTML page titled"),
        ("<?xml version='1.0'?><a/>".encode("utf-16"), "UTF-16"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
            "refused a body containing <!DOCTYPE",
        ),
        (
            b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>',
            "SOAP 1.2",
        ),
        (
            f'<s:Envelope xmlns:s="{SOAP_ENV_NS}"><s:Body/></s:Envelope>'.encode(),
            "soap:Body is empty",
        ),
        (_envelope(""), "<GetRevisionIdListResult> (namespace"),
        (_envelope('<GetRevisionIdListResult xsi:nil="true" />'), "nil but required"),
        (
            _envelope(
                "<GetRevisionIdListResult><NewRevisions><UpdateIdentity><UpdateID>nope"
                "</UpdateID><RevisionNumber>1</RevisionNumber></UpdateIdentity>"
                "</NewRevisions></GetRevisionIdListResult>"
            ),
            "UpdateID is missing or not a GUID: 'nope'",
        ),
        (
            _envelope(
                "<GetRevisionIdListResult><NewRevisions><UpdateIdentity><UpdateID>"
                f"{KEYS[0].update_id}</UpdateID><RevisionNumber>x</RevisionNumber>"
                "</UpdateIdentity></NewRevisions></GetRevisionIdListResult>"
            ),
            "RevisionNumber",
        ),
    ],
    ids=[
        "empty",
        "html",
        "utf16",
        "dtd",
        "soap12",
        "empty-body",
        "no-result",
        "nil",
        "guid",
        "rev",
    ],
)
def test_what_a_whole_body_parse_refuses_is_refused(body: bytes, expected: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        _read([body[: len(body) // 2], body[len(body) // 2 :]])
    assert expected in str(caught.value)


def test_a_doctype_cut_across_two_chunks_is_still_refused() -> None:
    body = b'<?xml version="1.0"?>' + b" " * 5000 + b"<!DOCTYPE x><x/>"
    cut = body.index(b"DOCTYPE") + 3
    with pytest.raises(ProtocolError, match="<!DOCTYPE"):
        _read([body[:cut], body[cut:]])


def test_the_whole_and_each_element_are_capped() -> None:
    body = _body()
    with pytest.raises(ProtocolError, match="over the limit of 1,000 bytes for a streamed"):
        _read([body], max_bytes=1000)
    huge = _envelope(
        f"<GetRevisionIdListResult><Anchor>{'a' * 200_000}</Anchor></GetRevisionIdListResult>"
    )
    chunks = [huge[n : n + 4096] for n in range(0, len(huge), 4096)]
    with pytest.raises(ProtocolError, match="without an element ending"):
        _read(chunks, max_element_bytes=50_000)
    assert _read(chunks)[1] == "a" * 200_000  # under the default cap


# --------------------------------------------------------------------------- the client


class Sink:
    def __init__(self) -> None:
        self.keys: list[RevisionKey] = []
        self.restarts = 0

    def restart(self) -> None:
        self.restarts += 1
        self.keys.clear()

    def add(self, keys: list[RevisionKey]) -> None:
        self.keys.extend(keys)


@pytest.fixture
def upstream() -> Iterator[tuple[Any, Any, str]]:
    fake = fu.FakeUpstream(fu.FakeCatalog.from_records(generate_catalog(30, 11)))
    injector = fu.FaultInjector(fake)
    with fu.serve(injector) as url:
        yield fake, injector, url


def _cookie(client: UpstreamClient) -> Any:
    config = client.get_auth_config()
    plugin = (config.auth_info or ())[0]
    assert plugin.service_url is not None
    auth = client.get_authorization_cookie(
        plugin.service_url, "dss.test.invalid", "6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12"
    )
    return client.get_cookie([auth])


def test_the_client_streams_the_same_listing_as_the_whole_body_call(upstream: Any) -> None:
    _fake, injector, url = upstream
    with UpstreamClient(url, timeout=5.0, retries=1, sleep=lambda _s: None) as client:
        cookie = _cookie(client)
        whole = client.get_revision_id_list(cookie, ServerSyncFilter(get_config=False))
        sink = Sink()
        listing = client.list_revisions_into(cookie, ServerSyncFilter(get_config=False), sink)
        assert sink.keys == list(whole.new_revisions or ()) and len(sink.keys) > 20
        assert listing.count == len(sink.keys) and listing.anchor
        # A connection cut mid-answer is retried, and the sink starts over: nothing twice.
        injector.on("GetRevisionIdList", fu.reset(0.6))
        again = Sink()
        client.list_revisions_into(cookie, ServerSyncFilter(get_config=False), again)
        assert again.keys == sink.keys and again.restarts == 2
        assert client.calls[-1].operation == "GetRevisionIdList"
        assert client.calls[-1].attempts == 2 and client.calls[-1].status == 200


def test_the_client_raises_faults_and_bad_bodies_of_a_streamed_listing(upstream: Any) -> None:
    _fake, injector, url = upstream
    with UpstreamClient(url, timeout=5.0, retries=3, sleep=lambda _s: None) as client:
        cookie = _cookie(client)
        injector.on("GetRevisionIdList", fu.fault(ErrorCode.SERVER_BUSY))
        with pytest.raises(WsusssFault) as fault:
            client.list_revisions_into(cookie, ServerSyncFilter(get_config=True), Sink())
        assert fault.value.code is ErrorCode.SERVER_BUSY
        assert fault.value.operation == "GetRevisionIdList"
        injector.on("GetRevisionIdList", fu.truncated())
        with pytest.raises(ProtocolError) as bad:
            client.list_revisions_into(cookie, ServerSyncFilter(get_config=True), Sink())
        assert "not well-formed XML" in str(bad.value) and url in str(bad.value)
        assert client.calls[-1].attempts == 1  # an intact exchange is not asked again
