"""Cookies an updatesync upstream issues: the authorization cookie and the session cookie.

MS-WSUSSS leaves both opaque to the downstream server (2.2.4.7 `CookieData`, 2.2.4.8
`EncryptedData`); the upstream must be able to read back from them the downstream
server's GUID, the expiry, and for the session cookie the protocol version and the
upstream's own identity. Windows encrypts them with TripleDES (notes 7 and 8). Nothing in
them is secret (the downstream server knows its own GUID), so updatesync authenticates
instead of encrypting: a compact binary payload followed by an HMAC-SHA256 tag.

Payload (big-endian, 54 bytes): format version (1 byte, 1), purpose (1 byte: 1
authorization, 2 session), upstream server GUID (16), downstream server GUID (16), issue
time and expiry (8 + 8, milliseconds since the Unix epoch, UTC), protocol version major
and minor (2 + 2; 0.0 in an authorization cookie). The tag is computed with a key derived
from the server key and the purpose, so an authorization cookie cannot pass as a session
cookie or the reverse, and is checked in constant time.

`verify*` return the claims, or raise a `CookieError` subclass saying what is wrong:
malformed (not base64, wrong length, unknown format), forged (the tag does not match, or
another server's identity), wrong purpose, expired. The service answers InvalidCookie for a
session cookie and InvalidAuthorizationCookie for an authorization cookie.

The server key is given by the caller (the update server keeps it in its data folder);
`generate_server_key` makes one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Final

from updatesync.wsusss.blobs import decode_b64
from updatesync.wsusss.errors import ProtocolError, WsusssError
from updatesync.wsusss.messages import AuthorizationCookie, Cookie, parse_protocol_version

__all__ = [
    "MIN_KEY_BYTES",
    "WINDOWS_COOKIE_LIFETIME",
    "CookieAuthority",
    "CookieClaims",
    "CookieError",
    "CookieExpiredError",
    "CookieForgedError",
    "CookieMalformedError",
    "CookiePurpose",
    "CookiePurposeError",
    "generate_server_key",
]

MIN_KEY_BYTES: Final = 32
WINDOWS_COOKIE_LIFETIME: Final = timedelta(minutes=240)
"""Lifetime of a Windows session cookie (note 29; observed 000003)."""

_FORMAT_VERSION: Final = 1
_PAYLOAD: Final = struct.Struct(">BB16s16sqqHH")
_TAG_BYTES: Final = 32
_TOTAL_BYTES: Final = _PAYLOAD.size + _TAG_BYTES
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class CookiePurpose(IntEnum):
    """What a cookie is for; part of the signed payload and of the key derivation."""

    AUTHORIZATION = 1
    SESSION = 2


class CookieError(WsusssError):
    """A cookie that cannot be accepted. `purpose` is the kind of cookie expected."""

    def __init__(self, message: str, *, purpose: CookiePurpose) -> None:
        self.purpose = purpose
        kind = "authorization cookie" if purpose is CookiePurpose.AUTHORIZATION else "cookie"
        super().__init__(f"{kind}: {message}")


class CookieMalformedError(CookieError):
    """Not base64, not the right length, or an unknown format."""


class CookieForgedError(CookieError):
    """The authentication tag does not match, or the cookie names another server."""


class CookiePurposeError(CookieError):
    """A genuine cookie of the other kind (authorization presented as session, or back)."""


class CookieExpiredError(CookieError):
    """A genuine cookie past its expiry."""


@dataclass(frozen=True, slots=True)
class CookieClaims:
    """What a verified cookie says."""

    purpose: CookiePurpose
    server_id: uuid.UUID
    dss_id: uuid.UUID
    issued_at: datetime
    expires_at: datetime
    protocol_version: str | None
    """"major.minor" for a session cookie, None for an authorization cookie."""


def generate_server_key() -> bytes:
    """A fresh random server key (32 bytes)."""
    return secrets.token_bytes(MIN_KEY_BYTES)


def _millis(moment: datetime, what: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} {moment.isoformat()} has no time zone; pass an aware datetime")
    delta = moment - _EPOCH
    return delta // timedelta(milliseconds=1)


def _from_millis(value: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=value)


def _as_uuid(value: uuid.UUID | str, what: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{what} {value!r} is not a GUID") from err


class CookieAuthority:
    """Issues and verifies the cookies of one upstream server.

    `server_key` is at least 32 random bytes kept by the server; `server_id` the
    server's GUID. Two servers must not share a key, but if they do, a cookie of one is
    still refused by the other (it names the wrong server).
    """

    __slots__ = ("_keys", "server_id")

    def __init__(self, server_key: bytes, server_id: uuid.UUID | str) -> None:
        if not isinstance(server_key, bytes) or len(server_key) < MIN_KEY_BYTES:
            raise ValueError(
                f"the server key must be at least {MIN_KEY_BYTES} random bytes; create one "
                "with generate_server_key() and keep it in the server's data folder"
            )
        self.server_id = _as_uuid(server_id, "server_id")
        self._keys = {
            purpose: hmac.digest(
                server_key, b"updatesync wsusss cookie key/" + purpose.name.encode(), "sha256"
            )
            for purpose in CookiePurpose
        }

    # --- issuing -------------------------------------------------------------------

    def _issue(
        self,
        purpose: CookiePurpose,
        dss_id: uuid.UUID | str,
        now: datetime,
        expires_at: datetime,
        version: tuple[int, int],
    ) -> bytes:
        issued_ms = _millis(now, "now")
        expires_ms = _millis(expires_at, "expiry")
        if expires_ms <= issued_ms:
            raise ValueError(
                "the cookie would expire before it is issued; give a positive lifetime"
            )
        payload = _PAYLOAD.pack(
            _FORMAT_VERSION,
            purpose,
            self.server_id.bytes,
            _as_uuid(dss_id, "dss_id").bytes,
            issued_ms,
            expires_ms,
            *version,
        )
        return payload + hmac.digest(self._keys[purpose], payload, hashlib.sha256)

    def issue_authorization(
        self, dss_id: uuid.UUID | str, now: datetime, lifetime: timedelta
    ) -> bytes:
        """`CookieData` of the authorization cookie for downstream server `dss_id`."""
        return self._issue(CookiePurpose.AUTHORIZATION, dss_id, now, now + lifetime, (0, 0))

    def authorization_cookie(
        self, dss_id: uuid.UUID | str, now: datetime, lifetime: timedelta
    ) -> AuthorizationCookie:
        """The `AuthorizationCookie` a GetAuthorizationCookie answer carries."""
        return AuthorizationCookie("DssTargeting", self.issue_authorization(dss_id, now, lifetime))

    def issue(
        self,
        dss_id: uuid.UUID | str,
        now: datetime,
        lifetime: timedelta = WINDOWS_COOKIE_LIFETIME,
        *,
        protocol_version: str = "1.20",
        not_after: datetime | None = None,
    ) -> bytes:
        """`EncryptedData` of a session cookie; it expires at `now + lifetime`, or at
        `not_after` (the authorization cookie's expiry, as Windows does) if earlier.

        Raises ValueError for a `protocol_version` that is not "major.minor".
        """
        expires_at = now + lifetime
        if not_after is not None and not_after < expires_at:
            expires_at = not_after
        version = parse_protocol_version(protocol_version)
        return self._issue(CookiePurpose.SESSION, dss_id, now, expires_at, version)

    def cookie(
        self,
        dss_id: uuid.UUID | str,
        now: datetime,
        lifetime: timedelta = WINDOWS_COOKIE_LIFETIME,
        *,
        protocol_version: str = "1.20",
        not_after: datetime | None = None,
    ) -> Cookie:
        """The `Cookie` a GetCookie answer carries (`Expiration` matches the signed expiry)."""
        data = self.issue(
            dss_id, now, lifetime, protocol_version=protocol_version, not_after=not_after
        )
        expires_ms = _PAYLOAD.unpack_from(data)[5]
        return Cookie(_from_millis(expires_ms), data)

    # --- verifying -----------------------------------------------------------------

    def _verify(
        self, data: bytes | str | None, now: datetime, expected: CookiePurpose
    ) -> CookieClaims:
        if data is None:
            raise CookieMalformedError(
                "missing; send the cookie the upstream issued", purpose=expected
            )
        if isinstance(data, str):
            try:
                data = decode_b64(data)
            except ProtocolError as err:
                raise CookieMalformedError(err.message, purpose=expected) from err
        data = bytes(data)
        if len(data) != _TOTAL_BYTES:
            raise CookieMalformedError(
                f"{len(data)} bytes where an updatesync cookie has {_TOTAL_BYTES}; it was not "
                "issued by this server, start again from authorization",
                purpose=expected,
            )
        payload, tag = data[: _PAYLOAD.size], data[_PAYLOAD.size :]
        version, purpose_byte, server, dss, issued_ms, expires_ms, major, minor = _PAYLOAD.unpack(
            payload
        )
        if version != _FORMAT_VERSION:
            raise CookieMalformedError(f"unknown cookie format {version}", purpose=expected)
        try:
            purpose = CookiePurpose(purpose_byte)
        except ValueError:
            raise CookieMalformedError(
                f"unknown cookie purpose {purpose_byte}", purpose=expected
            ) from None
        wanted = hmac.digest(self._keys[purpose], payload, hashlib.sha256)
        if not hmac.compare_digest(wanted, tag):
            raise CookieForgedError(
                "the authentication tag does not match: the cookie was altered or issued with "
                "another key; start again from authorization",
                purpose=expected,
            )
        if purpose is not expected:
            raise CookiePurposeError(
                f"this is a {purpose.name.lower()} cookie, not a {expected.name.lower()} cookie",
                purpose=expected,
            )
        server_id = uuid.UUID(bytes=server)
        if server_id != self.server_id:
            raise CookieForgedError(
                f"issued by server {server_id}, not by this server ({self.server_id})",
                purpose=expected,
            )
        expires_at = _from_millis(expires_ms)
        if _millis(now, "now") >= expires_ms:
            raise CookieExpiredError(
                f"expired at {expires_at.isoformat()}; get a new one", purpose=expected
            )
        return CookieClaims(
            purpose=purpose,
            server_id=server_id,
            dss_id=uuid.UUID(bytes=dss),
            issued_at=_from_millis(issued_ms),
            expires_at=expires_at,
            protocol_version=f"{major}.{minor}" if purpose is CookiePurpose.SESSION else None,
        )

    def verify_authorization(self, data: bytes | str | None, now: datetime) -> CookieClaims:
        """The claims of an authorization cookie's `CookieData` (bytes or base64 text)."""
        return self._verify(data, now, CookiePurpose.AUTHORIZATION)

    def verify(self, data: bytes | str | None, now: datetime) -> CookieClaims:
        """The claims of a session cookie's `EncryptedData` (bytes or base64 text)."""
        return self._verify(data, now, CookiePurpose.SESSION)
