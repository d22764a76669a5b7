"""Cookies: issued and verified; expired, forged, tampered, wrong-purpose and garbage refused."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from updatesync.wsusss.cookies import (
    WINDOWS_COOKIE_LIFETIME,
    CookieAuthority,
    CookieError,
    CookieExpiredError,
    CookieForgedError,
    CookieMalformedError,
    CookiePurpose,
    CookiePurposeError,
    generate_server_key,
)
from updatesync.wsusss.messages import GetCookieResponse

KEY = bytes(range(32))
SERVER = uuid.UUID("059ab167-8a19-4bab-befc-daaab5b1d82b")
DSS = "6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12"
NOW = datetime(2026, 10, 4, 16, 33, 26, 654000, tzinfo=UTC)


@pytest.fixture
def authority() -> CookieAuthority:
    return CookieAuthority(KEY, SERVER)


def test_session_cookie_round_trip(authority: CookieAuthority) -> None:
    data = authority.issue(DSS, NOW, timedelta(minutes=240))
    assert len(data) == 86
    claims = authority.verify(data, NOW + timedelta(minutes=239))
    assert claims.purpose is CookiePurpose.SESSION
    assert claims.dss_id == uuid.UUID(DSS)
    assert claims.server_id == SERVER
    assert claims.issued_at == NOW
    assert claims.expires_at == NOW + WINDOWS_COOKIE_LIFETIME
    assert claims.protocol_version == "1.20"
    assert authority.verify(base64.b64encode(data).decode(), NOW) == claims


def test_cookie_message_carries_the_signed_expiry(authority: CookieAuthority) -> None:
    auth_expiry = NOW + timedelta(minutes=30)
    cookie = authority.cookie(DSS, NOW, protocol_version="1.8", not_after=auth_expiry)
    assert cookie.expiration == auth_expiry
    sent = GetCookieResponse.from_xml(GetCookieResponse(cookie).to_xml()).result
    claims = authority.verify(sent.encrypted_data, NOW)
    assert claims.expires_at == auth_expiry and claims.protocol_version == "1.8"


def test_authorization_cookie_round_trip(authority: CookieAuthority) -> None:
    cookie = authority.authorization_cookie(DSS, NOW, timedelta(hours=8))
    assert cookie.plugin_id == "DssTargeting"
    claims = authority.verify_authorization(cookie.cookie_data, NOW)
    assert claims.purpose is CookiePurpose.AUTHORIZATION
    assert claims.protocol_version is None


def test_expired(authority: CookieAuthority) -> None:
    data = authority.issue(DSS, NOW, timedelta(minutes=240))
    with pytest.raises(CookieExpiredError, match=r"expired at 2026-10-04T20:33:26\.654"):
        authority.verify(data, NOW + timedelta(minutes=240))


def test_forged_signature_and_tampered_payload(authority: CookieAuthority) -> None:
    data = bytearray(authority.issue(DSS, NOW, timedelta(minutes=240)))
    forged = bytes(data[:-1]) + bytes([data[-1] ^ 1])
    with pytest.raises(CookieForgedError, match="authentication tag does not match"):
        authority.verify(forged, NOW)
    # Push the expiry a year ahead without the key.
    tampered = bytearray(data)
    tampered[43] ^= 0x10
    with pytest.raises(CookieForgedError):
        authority.verify(bytes(tampered), NOW)
    other_key = CookieAuthority(generate_server_key(), SERVER)
    with pytest.raises(CookieForgedError):
        other_key.verify(bytes(data), NOW)


def test_same_key_other_server(authority: CookieAuthority) -> None:
    twin = CookieAuthority(KEY, uuid.uuid4())
    with pytest.raises(CookieForgedError, match="issued by server 059ab167"):
        twin.verify(authority.issue(DSS, NOW, timedelta(minutes=5)), NOW)


def test_wrong_purpose(authority: CookieAuthority) -> None:
    auth = authority.issue_authorization(DSS, NOW, timedelta(hours=1))
    with pytest.raises(CookiePurposeError, match="authorization cookie, not a session cookie"):
        authority.verify(auth, NOW)
    session = authority.issue(DSS, NOW, timedelta(hours=1))
    with pytest.raises(CookiePurposeError):
        authority.verify_authorization(session, NOW)


@pytest.mark.parametrize(
    "data",
    [
        None,
        b"",
        bytes(210),  # the sanitized captures: base64 'A' runs, all zero bytes
        "A" * 280,
        "not base64!!",
        "QUJD",
        b"\x02" + bytes(85),
        b"\x01\x07" + bytes(84),
    ],
)
def test_garbage_is_malformed(authority: CookieAuthority, data: bytes | str | None) -> None:
    with pytest.raises(CookieMalformedError) as caught:
        authority.verify(data, NOW)
    assert isinstance(caught.value, CookieError)
    assert str(caught.value).startswith("cookie: ")


def test_refusals_when_issuing() -> None:
    with pytest.raises(ValueError, match="at least 32 random bytes"):
        CookieAuthority(b"short", SERVER)
    authority = CookieAuthority(KEY, str(SERVER))
    with pytest.raises(ValueError, match="not a GUID"):
        authority.issue("machine.corp", NOW, timedelta(minutes=1))
    with pytest.raises(ValueError, match="no time zone"):
        authority.issue(DSS, datetime(2026, 1, 1), timedelta(minutes=1))
    with pytest.raises(ValueError, match="positive lifetime"):
        authority.issue(DSS, NOW, timedelta(0))
    with pytest.raises(ValueError, match=r"major\.minor"):
        authority.issue(DSS, NOW, timedelta(minutes=1), protocol_version="v1")
    assert len(generate_server_key()) == 32
