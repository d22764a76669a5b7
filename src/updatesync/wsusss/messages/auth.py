"""The authorization messages: the cookies (2.2.4.7, 2.2.4.8), GetAuthConfig (3.1.4.1),
GetAuthorizationCookie (3.1.4.2, DSS Authorization Web Service) and GetCookie (3.1.4.3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from updatesync.wsusss.messages.codec import Field, Message
from updatesync.wsusss.soap import (
    DSS_AUTH_NS,
)

# --- shared types (2.2.4) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorizationCookie:
    """2.2.4.7: issued by GetAuthorizationCookie, presented to GetCookie."""

    plugin_id: str | None = "DssTargeting"
    cookie_data: bytes | None = None
    _FIELDS: ClassVar = (
        Field("PlugInId", "plugin_id", "str"),
        Field("CookieData", "cookie_data", "base64"),
    )


@dataclass(frozen=True, slots=True)
class Cookie:
    """2.2.4.8: the session cookie every later call carries. `encrypted_data` is opaque."""

    expiration: datetime
    encrypted_data: bytes | None = None
    _FIELDS: ClassVar = (
        Field("Expiration", "expiration", "datetime", required=True),
        Field("EncryptedData", "encrypted_data", "base64"),
    )


# --- GetAuthConfig (3.1.4.1) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthPlugInInfo:
    plugin_id: str | None = "DssTargeting"
    service_url: str | None = "DssAuthWebService/DssAuthWebService.asmx"
    parameter: str | None = ""
    _FIELDS: ClassVar = (
        Field("PlugInID", "plugin_id", "str"),
        Field("ServiceUrl", "service_url", "str"),
        Field("Parameter", "parameter", "str"),
    )


@dataclass(frozen=True, slots=True)
class ServerAuthConfig:
    last_change: datetime
    auth_info: tuple[AuthPlugInInfo, ...] | None = (AuthPlugInInfo(),)
    allowed_event_ids: tuple[int, ...] | None = None
    _FIELDS: ClassVar = (
        Field("LastChange", "last_change", "datetime", required=True),
        Field("AuthInfo", "auth_info", AuthPlugInInfo, item="AuthPlugInInfo"),
        Field("AllowedEventIds", "allowed_event_ids", "int", item="int"),
    )


@dataclass(frozen=True, slots=True)
class GetAuthConfigRequest(Message):
    OPERATION: ClassVar = "GetAuthConfig"
    _FIELDS: ClassVar = ()


@dataclass(frozen=True, slots=True)
class GetAuthConfigResponse(Message):
    result: ServerAuthConfig
    OPERATION: ClassVar = "GetAuthConfig"
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (Field("GetAuthConfigResult", "result", ServerAuthConfig, required=True),)


# --- GetAuthorizationCookie (3.1.4.2, DSS Authorization Web Service) ------------------


@dataclass(frozen=True, slots=True)
class GetAuthorizationCookieRequest(Message):
    """`account_name` is the downstream server's FQDN, `account_guid` its GUID (a string
    on the wire, validated by the service). `program_keys` is reserved; leave it None."""

    account_name: str | None
    account_guid: str | None
    program_keys: tuple[str, ...] | None = None
    OPERATION: ClassVar = "GetAuthorizationCookie"
    NAMESPACE: ClassVar = DSS_AUTH_NS
    _FIELDS: ClassVar = (
        Field("accountName", "account_name", "str"),
        Field("accountGuid", "account_guid", "str"),
        Field("programKeys", "program_keys", "guid", item="guid"),
    )


@dataclass(frozen=True, slots=True)
class GetAuthorizationCookieResponse(Message):
    result: AuthorizationCookie
    OPERATION: ClassVar = "GetAuthorizationCookie"
    NAMESPACE: ClassVar = DSS_AUTH_NS
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (
        Field("GetAuthorizationCookieResult", "result", AuthorizationCookie, required=True),
    )


# --- GetCookie (3.1.4.3) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetCookieRequest(Message):
    auth_cookies: tuple[AuthorizationCookie, ...] | None
    old_cookie: Cookie | None = None
    protocol_version: str | None = "1.20"
    OPERATION: ClassVar = "GetCookie"
    _FIELDS: ClassVar = (
        Field("authCookies", "auth_cookies", AuthorizationCookie, item="AuthorizationCookie"),
        Field("oldCookie", "old_cookie", Cookie),
        Field("protocolVersion", "protocol_version", "str"),
    )


@dataclass(frozen=True, slots=True)
class GetCookieResponse(Message):
    result: Cookie
    OPERATION: ClassVar = "GetCookie"
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (Field("GetCookieResult", "result", Cookie, required=True),)
