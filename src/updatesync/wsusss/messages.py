"""Typed requests and responses of MS-WSUSSS, each able to write and read its own XML.

Covered: GetAuthConfig, GetAuthorizationCookie (DSS Authorization Web Service), GetCookie,
GetConfigData, GetRevisionIdList, GetUpdateData, GetDeployments and Ping. Every message is
a frozen dataclass with `to_xml()` (the whole SOAP envelope as bytes) and
`from_xml(bytes)`; a response's `from_xml` raises `WsusssFault` when the body is a fault.
`parse_request` finds the operation of an incoming body, `parse_response` reads the answer
to a given operation, and `OPERATIONS` describes each operation (namespace, SOAPAction,
service, message types).

Element names, nesting and order follow the WSDL of MS-WSUSSS section 6, which agrees with
the captured exchanges (sections 3.1.4.x disagree in places, see below). Each message class
lists its elements in `_FIELDS`, in wire order, and one writer and one reader walk those
lists, so what one side builds the other side reads. Where the WSDL and real traffic
differ, traffic wins:

- `ServerSyncConfigData` orders its four limits ComputerIds, DriverSets, PnpHardwareIds,
  Updates, as the section 6 WSDL and exchange 000005 do (3.1.4.4.3.1 lists another order).
- `AuthPlugInInfo/Parameter` is present and empty on the wire (000001) although 3.1.4.1
  says it MUST NOT be included: an empty string writes `<Parameter />`, None omits it.
- `ServerSyncUrlData/UssUrl` is present and empty (000014), although note 39 says Windows
  leaves it out; handled the same way.
- `ServerSyncFilter/Get63LanguageOnly` (minOccurs 1) and `ServerSyncTargetGroup/
  ParentGroupId` (minOccurs 1) are absent in real or example messages, so both are
  optional here.

A value of None leaves an element out; an empty string or empty tuple writes an empty
element (`<X />`, as ASP.NET writes it). Parsing matches elements by namespace and local
name, ignores unknown elements (newer servers add some), and raises `ProtocolError` naming
the element path and the top-level parameter for anything missing or malformed. Values
that the spec calls opaque (anchors, cookie data) stay as received: anchors are strings
(see `anchors.Anchor` for our own), cookie data is bytes.

Times are `datetime`: aware (UTC) when the wire value ends in `Z` or an offset, naive when
it has no zone (the example deadline `9999-12-31T23:59:59.9999999`). They are written the
way .NET writes them: seconds, then the fraction without trailing zeros, then `Z` for UTC.
.NET carries 7 fraction digits, Python 6, so a seventh digit is cut, except that the
"no deadline" value 9999-12-31T23:59:59.9999999 is kept exactly.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, Final, Self

from lxml import etree

from updatesync.metadata.model import RevisionKey
from updatesync.wsusss.blobs import DEFAULT_MAX_BLOB_BYTES, decode_b64, decode_compressed_blob
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import fault_from_element, is_fault
from updatesync.wsusss.soap import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DSS_AUTH_NS,
    IMONITORABLE_NS,
    SOFTWARE_DISTRIBUTION_NS,
    XSI_NS,
    Service,
    build_envelope,
    escape_text,
    local_name,
    parse_envelope,
    parse_soap_action,
    soap_action,
)

__all__ = [
    "NO_DEADLINE",
    "OPERATIONS",
    "AuthPlugInInfo",
    "AuthorizationCookie",
    "Cookie",
    "GetAuthConfigRequest",
    "GetAuthConfigResponse",
    "GetAuthorizationCookieRequest",
    "GetAuthorizationCookieResponse",
    "GetConfigDataRequest",
    "GetConfigDataResponse",
    "GetCookieRequest",
    "GetCookieResponse",
    "GetDeploymentsRequest",
    "GetDeploymentsResponse",
    "GetRevisionIdListRequest",
    "GetRevisionIdListResponse",
    "GetUpdateDataRequest",
    "GetUpdateDataResponse",
    "IdAndDelta",
    "LanguageAndDelta",
    "Message",
    "MonitoredServicesResponse",
    "Operation",
    "PingRequest",
    "PingResponse",
    "RevisionIdList",
    "ServerAuthConfig",
    "ServerSyncConfigData",
    "ServerSyncDeployment",
    "ServerSyncDeploymentResult",
    "ServerSyncFilter",
    "ServerSyncLanguageData",
    "ServerSyncTargetGroup",
    "ServerSyncUpdateData",
    "ServerSyncUrlData",
    "ServerUpdateData",
    "UnsupportedOperationError",
    "UpdateIdentity",
    "format_datetime",
    "operation_for",
    "parse_datetime",
    "parse_protocol_version",
    "parse_request",
    "parse_response",
]

UpdateIdentity = RevisionKey
"""`UpdateIdentity` (2.2.4.9) is `metadata.model.RevisionKey`: lower-case GUID, revision."""

NO_DEADLINE: Final = datetime(9999, 12, 31, 23, 59, 59, 999999)
"""The deadline of a deployment without one (3.1.4.10.3.5), as far as Python can hold it."""

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_GUID_RE: Final = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")
_INT_RE: Final = re.compile(r"[+-]?[0-9]{1,11}")
_DATETIME_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,7}))?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_VERSION_RE: Final = re.compile(r"([0-9]{1,5})\.([0-9]{1,5})")
_XSI_NIL: Final = "{" + XSI_NS + "}nil"


class UnsupportedOperationError(ProtocolError):
    """A well-formed request for an operation updatesync does not implement."""


# --------------------------------------------------------------------------- scalars


def parse_datetime(text: str) -> datetime:
    """An `xsd:dateTime` as .NET writes it; see the module docstring. Raises ValueError."""
    match = _DATETIME_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an xsd:dateTime (yyyy-MM-ddTHH:mm:ss[.f][Z])")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    digits = match.group(7) or ""
    micro = 999999 if digits == "9999999" else int(digits.ljust(6, "0")[:6])
    zone = match.group(8)
    tz: timezone | None = None
    if zone == "Z":
        tz = UTC
    elif zone:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    value = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    return value.astimezone(UTC) if tz is not None and tz is not UTC else value


def format_datetime(value: datetime) -> str:
    """A datetime as .NET writes an `xsd:dateTime`; aware values are written in UTC + `Z`."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, not {type(value).__name__}")
    suffix = ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
        suffix = "Z"
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.replace(tzinfo=None) == NO_DEADLINE:
        fraction = "9999999"
    else:
        fraction = f"{value.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}{suffix}" if fraction else text + suffix


def parse_protocol_version(text: str) -> tuple[int, int]:
    """(major, minor) of a protocol version "x.y" (1.7: 1.1, 1.2, ... 1.20).

    Raises ValueError when `text` is not two dot-separated numbers (the service answers
    InvalidParameters; a major other than 1 is IncompatibleProtocolVersion, 3.1.4.3).
    """
    match = _VERSION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"protocol version {text!r} is not of the form 'major.minor'")
    return int(match.group(1)), int(match.group(2))


def _parse_int(text: str) -> int:
    stripped = text.strip()
    if _INT_RE.fullmatch(stripped) is None:
        raise ValueError(f"{text!r} is not an integer")
    value = int(stripped)
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise ValueError(f"{value} is outside the 32-bit range of xsd:int")
    return value


def _parse_ubyte(text: str) -> int:
    value = _parse_int(text)
    if not 0 <= value <= 255:
        raise ValueError(f"{value} is outside 0..255 (xsd:unsignedByte)")
    return value


def _parse_bool(text: str) -> bool:
    value = {"true": True, "1": True, "false": False, "0": False}.get(text.strip())
    if value is None:
        raise ValueError(f"{text!r} is not an xsd:boolean (true/false)")
    return value


def _parse_guid(text: str) -> str:
    stripped = text.strip()
    if _GUID_RE.fullmatch(stripped) is None:
        raise ValueError(f"{text!r} is not a GUID")
    return stripped.lower()


def _parse_b64(text: str) -> bytes:
    try:
        return decode_b64(text)
    except ProtocolError as err:
        raise ValueError(err.message) from err


def _parse_digest(text: str) -> str:
    compact = "".join(text.split())
    _parse_b64(compact)
    return compact


def _format_int(value: int, low: int = _INT32_MIN, high: int = _INT32_MAX) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{value} is outside {low}..{high}")
    return str(value)


def _format_bool(value: bool) -> str:
    if not isinstance(value, bool):
        raise TypeError(f"expected a bool, not {value!r}")
    return "true" if value else "false"


def _format_guid(value: str) -> str:
    if not isinstance(value, str) or _GUID_RE.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a GUID")
    return value


def _format_str(value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a str, not {type(value).__name__}")
    return value


def _format_b64(value: bytes) -> str:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, not {type(value).__name__}")
    return base64.b64encode(value).decode("ascii")


def _format_digest(value: str) -> str:
    _parse_b64(_format_str(value))
    return value


# kind -> (parse text, format value, needs escaping)
_SCALARS: Final[dict[str, tuple[Callable[[str], Any], Callable[[Any], str], bool]]] = {
    "str": (lambda text: text, _format_str, True),
    "int": (_parse_int, _format_int, False),
    "ubyte": (_parse_ubyte, lambda value: _format_int(value, 0, 255), False),
    "bool": (_parse_bool, _format_bool, False),
    "datetime": (parse_datetime, format_datetime, False),
    "guid": (_parse_guid, _format_guid, False),
    "base64": (_parse_b64, _format_b64, False),
    "digest": (_parse_digest, _format_digest, False),
}
_IDENTITY: Final = "identity"


@dataclass(frozen=True, slots=True)
class _Field:
    """One child element: its XML name, the attribute holding it and its kind.

    `kind` is a scalar kind (a key of `_SCALARS`), "identity" (an `UpdateIdentity`), or a
    class with its own `_FIELDS`. With `item` set the element is an array whose children
    are `item` elements of that kind.
    """

    xml: str
    attr: str
    kind: str | type
    item: str | None = None
    required: bool = False


# --------------------------------------------------------------------------- writing


def _write_value(out: list[str], name: str, kind: str | type, value: Any) -> None:
    if kind == _IDENTITY:
        if not isinstance(value, RevisionKey):
            raise TypeError(f"<{name}> expects an UpdateIdentity (RevisionKey), not {value!r}")
        out.append(
            f"<{name}><UpdateID>{_format_guid(value.update_id)}</UpdateID>"
            f"<RevisionNumber>{_format_int(value.revision)}</RevisionNumber></{name}>"
        )
    elif isinstance(kind, type):
        if not isinstance(value, kind):
            raise TypeError(f"<{name}> expects {kind.__name__}, not {type(value).__name__}")
        out.append(f"<{name}>")
        mark = len(out)
        _write_fields(out, value)
        if len(out) == mark:
            out[-1] = f"<{name} />"
        else:
            out.append(f"</{name}>")
    else:
        _, formatter, needs_escaping = _SCALARS[kind]
        try:
            text = formatter(value)
        except (TypeError, ValueError) as err:
            raise type(err)(f"<{name}>: {err}") from err
        if needs_escaping:
            text = escape_text(text, element=name)
        out.append(f"<{name}>{text}</{name}>" if text else f"<{name} />")


def _write_fields(out: list[str], obj: Any) -> None:
    for spec in obj._FIELDS:
        value = getattr(obj, spec.attr)
        if value is None:
            if spec.required:
                raise ValueError(
                    f"{type(obj).__name__}.{spec.attr} (<{spec.xml}>) is required; give a value"
                )
            continue
        if spec.item is None:
            _write_value(out, spec.xml, spec.kind, value)
            continue
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            raise TypeError(f"<{spec.xml}> expects a sequence of values, not {value!r}")
        items = tuple(value)
        if not items:
            out.append(f"<{spec.xml} />")
            continue
        out.append(f"<{spec.xml}>")
        for item in items:
            _write_value(out, spec.item, spec.kind, item)
        out.append(f"</{spec.xml}>")


# --------------------------------------------------------------------------- reading


def _locate(element: etree._Element) -> tuple[str, str | None, str | None]:
    """(path from the operation element, operation, top-level parameter) of `element`."""
    names: list[str] = []
    node: etree._Element | None = element
    while node is not None and local_name(node.tag) != "Body":
        names.append(local_name(node.tag))
        node = node.getparent()
    names.reverse()
    return "/".join(names), names[0] if names else None, names[1] if len(names) > 1 else None


def _bad(element: etree._Element, message: str) -> ProtocolError:
    path, operation, parameter = _locate(element)
    return ProtocolError(message, where=path, operation=operation, element=parameter)


_TAG_CACHE: dict[tuple[type, str], dict[str, _Field]] = {}


def _tags(cls: type, namespace: str) -> dict[str, _Field]:
    key = (cls, namespace)
    tags = _TAG_CACHE.get(key)
    if tags is None:
        tags = {"{" + namespace + "}" + spec.xml: spec for spec in cls._FIELDS}
        _TAG_CACHE[key] = tags
    return tags


def _read_identity(element: etree._Element, namespace: str) -> RevisionKey:
    uid_tag = "{" + namespace + "}UpdateID"
    rev_tag = "{" + namespace + "}RevisionNumber"
    uid = rev = None
    for child in element:  # the first of each counts, as for every other element
        if child.tag == uid_tag and uid is None:
            uid = child.text or ""
        elif child.tag == rev_tag and rev is None:
            rev = child.text or ""
    if uid is None or _GUID_RE.fullmatch(uid.strip()) is None:
        raise _bad(element, f"UpdateID is missing or not a GUID: {uid!r}")
    if rev is None:
        raise _bad(element, "RevisionNumber is missing")
    try:
        revision = _parse_int(rev)
    except ValueError as err:
        raise _bad(element, f"RevisionNumber: {err}") from err
    return RevisionKey(uid.strip().lower(), revision)


@dataclass(frozen=True, slots=True)
class _IdentityPaths:
    total: etree.XPath
    well_formed: etree.XPath
    update_ids: etree.XPath
    revisions: etree.XPath


_IDENTITY_PATHS: dict[tuple[str, str], _IdentityPaths] = {}


def _identity_paths(namespace: str, item: str) -> _IdentityPaths:
    paths = _IDENTITY_PATHS.get((namespace, item))
    if paths is None:
        ns = {"x": namespace}
        paths = _IdentityPaths(
            etree.XPath(f"count(x:{item})", namespaces=ns),
            etree.XPath(
                f"count(x:{item}[count(x:UpdateID) = 1 and count(x:RevisionNumber) = 1])",
                namespaces=ns,
            ),
            etree.XPath(f"x:{item}/x:UpdateID/text()", namespaces=ns, smart_strings=False),
            etree.XPath(f"x:{item}/x:RevisionNumber/text()", namespaces=ns, smart_strings=False),
        )
        _IDENTITY_PATHS[(namespace, item)] = paths
    return paths


def _read_identities(array: etree._Element, namespace: str, item: str) -> tuple[RevisionKey, ...]:
    """An ArrayOfUpdateIdentity. A `GetRevisionIdList` answer holds tens of thousands, so
    the texts are collected by compiled XPath (no Python object per element); anything
    irregular falls back to the element walk, which reports the exact faulty item."""
    paths = _identity_paths(namespace, item)
    total = int(paths.total(array))
    if total == int(paths.well_formed(array)):
        uids = paths.update_ids(array)
        revisions = paths.revisions(array)
        if len(uids) == len(revisions) == total:
            keys: list[RevisionKey] = []
            for uid, rev in zip(uids, revisions, strict=True):
                uid = uid.strip()
                rev = rev.strip()
                if (
                    _GUID_RE.fullmatch(uid) is None
                    or not rev.isascii()
                    or not rev.isdigit()
                    or int(rev) > _INT32_MAX
                ):
                    break
                keys.append(RevisionKey(uid.lower(), int(rev)))
            else:
                return tuple(keys)
    item_tag = "{" + namespace + "}" + item
    return tuple(_read_identity(i, namespace) for i in array if i.tag == item_tag)


def _read_value(element: etree._Element, kind: str | type, namespace: str) -> Any:
    if element.get(_XSI_NIL) in ("true", "1"):
        return None
    if kind == _IDENTITY:
        return _read_identity(element, namespace)
    if isinstance(kind, type):
        return _read_struct(kind, element, namespace)
    parser = _SCALARS[kind][0]
    try:
        return parser(element.text or "")
    except ValueError as err:
        raise _bad(element, str(err)) from err


def _read_struct(cls: type, element: etree._Element, namespace: str) -> Any:
    tags = _tags(cls, namespace)
    values: dict[str, Any] = {}
    for child in element:
        spec = tags.get(child.tag)
        if spec is None or spec.attr in values:
            continue  # unknown (newer) element, or a repeat of a single one
        if spec.item is None:
            value = _read_value(child, spec.kind, namespace)
        else:
            item_tag = "{" + namespace + "}" + spec.item
            if spec.kind == _IDENTITY:
                value = _read_identities(child, namespace, spec.item)
            else:
                items = (_read_value(i, spec.kind, namespace) for i in child if i.tag == item_tag)
                value = tuple(v for v in items if v is not None)
        if value is None and spec.required:
            raise _bad(child, f"<{spec.xml}> is nil but required")
        values[spec.attr] = value
    for spec in cls._FIELDS:
        if spec.attr not in values:
            if spec.required:
                raise _bad(
                    element,
                    f"required element <{spec.xml}> (namespace {namespace}) is missing",
                )
            values[spec.attr] = None  # absent on the wire, whatever the builder's default
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise _bad(element, str(err)) from err


# --------------------------------------------------------------------------- messages


class Message:
    """Base of every request and response: the SOAP body element and its fields."""

    __slots__ = ()
    OPERATION: ClassVar[str]
    NAMESPACE: ClassVar[str] = SOFTWARE_DISTRIBUTION_NS
    IS_RESPONSE: ClassVar[bool] = False
    _FIELDS: ClassVar[tuple[_Field, ...]] = ()

    @classmethod
    def element_name(cls) -> str:
        """Local name of the body element: the operation, or `<operation>Response`."""
        return cls.OPERATION + "Response" if cls.IS_RESPONSE else cls.OPERATION

    def to_payload(self) -> str:
        """The body element as serialized XML text (without the envelope)."""
        name = self.element_name()
        out: list[str] = []
        _write_fields(out, self)
        if not out:
            return f'<{name} xmlns="{self.NAMESPACE}" />'
        return f'<{name} xmlns="{self.NAMESPACE}">{"".join(out)}</{name}>'

    def to_xml(self) -> bytes:
        """The whole SOAP 1.1 envelope, UTF-8 bytes, ready to send."""
        return build_envelope(self.to_payload(), response=self.IS_RESPONSE)

    @classmethod
    def from_element(cls, element: etree._Element) -> Self:
        """Read the message from its body element (as `soap.parse_envelope` returns it)."""
        expected = "{" + cls.NAMESPACE + "}" + cls.element_name()
        if element.tag != expected:
            raise ProtocolError(
                f"expected {expected} in soap:Body, found {element.tag}",
                where="soap:Body",
                operation=cls.OPERATION,
            )
        return _read_struct(cls, element, cls.NAMESPACE)

    @classmethod
    def from_xml(cls, data: bytes, *, max_bytes: int | None = None) -> Self:
        """Read the message from a whole SOAP body.

        For a response, a fault body raises `WsusssFault`. Anything unreadable raises
        `ProtocolError`. `max_bytes` defaults to `DEFAULT_MAX_RESPONSE_BYTES` for
        responses and `DEFAULT_MAX_REQUEST_BYTES` for requests.
        """
        if max_bytes is None:
            max_bytes = DEFAULT_MAX_RESPONSE_BYTES if cls.IS_RESPONSE else DEFAULT_MAX_REQUEST_BYTES
        element = parse_envelope(data, max_bytes=max_bytes, operation=cls.OPERATION)
        if is_fault(element):
            if cls.IS_RESPONSE:
                raise fault_from_element(element, operation=cls.OPERATION)
            raise ProtocolError(
                "a request body holds a soap:Fault", where="soap:Body", operation=cls.OPERATION
            )
        return cls.from_element(element)


# --- shared types (2.2.4) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorizationCookie:
    """2.2.4.7: issued by GetAuthorizationCookie, presented to GetCookie."""

    plugin_id: str | None = "DssTargeting"
    cookie_data: bytes | None = None
    _FIELDS: ClassVar = (
        _Field("PlugInId", "plugin_id", "str"),
        _Field("CookieData", "cookie_data", "base64"),
    )


@dataclass(frozen=True, slots=True)
class Cookie:
    """2.2.4.8: the session cookie every later call carries. `encrypted_data` is opaque."""

    expiration: datetime
    encrypted_data: bytes | None = None
    _FIELDS: ClassVar = (
        _Field("Expiration", "expiration", "datetime", required=True),
        _Field("EncryptedData", "encrypted_data", "base64"),
    )


# --- GetAuthConfig (3.1.4.1) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthPlugInInfo:
    plugin_id: str | None = "DssTargeting"
    service_url: str | None = "DssAuthWebService/DssAuthWebService.asmx"
    parameter: str | None = ""
    _FIELDS: ClassVar = (
        _Field("PlugInID", "plugin_id", "str"),
        _Field("ServiceUrl", "service_url", "str"),
        _Field("Parameter", "parameter", "str"),
    )


@dataclass(frozen=True, slots=True)
class ServerAuthConfig:
    last_change: datetime
    auth_info: tuple[AuthPlugInInfo, ...] | None = (AuthPlugInInfo(),)
    allowed_event_ids: tuple[int, ...] | None = None
    _FIELDS: ClassVar = (
        _Field("LastChange", "last_change", "datetime", required=True),
        _Field("AuthInfo", "auth_info", AuthPlugInInfo, item="AuthPlugInInfo"),
        _Field("AllowedEventIds", "allowed_event_ids", "int", item="int"),
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
    _FIELDS: ClassVar = (_Field("GetAuthConfigResult", "result", ServerAuthConfig, required=True),)


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
        _Field("accountName", "account_name", "str"),
        _Field("accountGuid", "account_guid", "str"),
        _Field("programKeys", "program_keys", "guid", item="guid"),
    )


@dataclass(frozen=True, slots=True)
class GetAuthorizationCookieResponse(Message):
    result: AuthorizationCookie
    OPERATION: ClassVar = "GetAuthorizationCookie"
    NAMESPACE: ClassVar = DSS_AUTH_NS
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (
        _Field("GetAuthorizationCookieResult", "result", AuthorizationCookie, required=True),
    )


# --- GetCookie (3.1.4.3) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetCookieRequest(Message):
    auth_cookies: tuple[AuthorizationCookie, ...] | None
    old_cookie: Cookie | None = None
    protocol_version: str | None = "1.20"
    OPERATION: ClassVar = "GetCookie"
    _FIELDS: ClassVar = (
        _Field("authCookies", "auth_cookies", AuthorizationCookie, item="AuthorizationCookie"),
        _Field("oldCookie", "old_cookie", Cookie),
        _Field("protocolVersion", "protocol_version", "str"),
    )


@dataclass(frozen=True, slots=True)
class GetCookieResponse(Message):
    result: Cookie
    OPERATION: ClassVar = "GetCookie"
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (_Field("GetCookieResult", "result", Cookie, required=True),)


# --- GetConfigData (3.1.4.4) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetConfigDataRequest(Message):
    cookie: Cookie | None
    config_anchor: str | None = None
    OPERATION: ClassVar = "GetConfigData"
    _FIELDS: ClassVar = (
        _Field("cookie", "cookie", Cookie),
        _Field("configAnchor", "config_anchor", "str"),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncLanguageData:
    language_id: int
    short_language: str | None
    long_language: str | None
    enabled: bool
    _FIELDS: ClassVar = (
        _Field("LanguageID", "language_id", "int", required=True),
        _Field("ShortLanguage", "short_language", "str"),
        _Field("LongLanguage", "long_language", "str"),
        _Field("Enabled", "enabled", "bool", required=True),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncConfigData:
    """3.1.4.4.3.1, in the element order of the section 6 WSDL and of real servers."""

    catalog_only_sync: bool
    lazy_sync: bool
    server_hosts_psf_files: bool
    max_number_of_computer_ids_in_request: int
    max_number_of_driver_sets_per_request: int
    max_number_of_pnp_hardware_ids_in_request: int
    max_number_of_updates_per_request: int
    new_config_anchor: str | None
    protocol_version: str | None = "1.20"
    language_update_list: tuple[ServerSyncLanguageData, ...] | None = ()
    max_updates_per_request_in_get_update_decryption_data: int | None = None
    _FIELDS: ClassVar = (
        _Field("CatalogOnlySync", "catalog_only_sync", "bool", required=True),
        _Field("LazySync", "lazy_sync", "bool", required=True),
        _Field("ServerHostsPsfFiles", "server_hosts_psf_files", "bool", required=True),
        _Field(
            "MaxNumberOfComputerIdsInRequest",
            "max_number_of_computer_ids_in_request",
            "int",
            required=True,
        ),
        _Field(
            "MaxNumberOfDriverSetsPerRequest",
            "max_number_of_driver_sets_per_request",
            "int",
            required=True,
        ),
        _Field(
            "MaxNumberOfPnpHardwareIdsInRequest",
            "max_number_of_pnp_hardware_ids_in_request",
            "int",
            required=True,
        ),
        _Field(
            "MaxNumberOfUpdatesPerRequest",
            "max_number_of_updates_per_request",
            "int",
            required=True,
        ),
        _Field("NewConfigAnchor", "new_config_anchor", "str"),
        _Field("ProtocolVersion", "protocol_version", "str"),
        _Field(
            "LanguageUpdateList",
            "language_update_list",
            ServerSyncLanguageData,
            item="ServerSyncLanguageData",
        ),
        # minOccurs 1, but absent before Windows Server 2012 (note 33).
        _Field(
            "MaxUpdatesPerRequestInGetUpdateDecryptionData",
            "max_updates_per_request_in_get_update_decryption_data",
            "int",
        ),
    )


@dataclass(frozen=True, slots=True)
class GetConfigDataResponse(Message):
    result: ServerSyncConfigData
    OPERATION: ClassVar = "GetConfigData"
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (
        _Field("GetConfigDataResult", "result", ServerSyncConfigData, required=True),
    )


# --- GetRevisionIdList (3.1.4.5) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdAndDelta:
    """A category or classification id; `delta` true asks only for what changed since the
    anchor (with an anchor, Windows needs it true or sends everything again: 000010/11)."""

    id: str
    delta: bool
    _FIELDS: ClassVar = (
        _Field("Id", "id", "guid", required=True),
        _Field("Delta", "delta", "bool", required=True),
    )


@dataclass(frozen=True, slots=True)
class LanguageAndDelta:
    id: int
    delta: bool
    _FIELDS: ClassVar = (
        _Field("Id", "id", "int", required=True),
        _Field("Delta", "delta", "bool", required=True),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncFilter:
    """3.1.4.5.3.1. `DssProtocolVersion` is reserved ("MUST NOT be sent") and not modeled."""

    get_config: bool
    anchor: str | None = None
    get_63_language_only: bool | None = None
    categories: tuple[IdAndDelta, ...] | None = None
    classifications: tuple[IdAndDelta, ...] | None = None
    languages: tuple[LanguageAndDelta, ...] | None = None
    _FIELDS: ClassVar = (
        _Field("Anchor", "anchor", "str"),
        _Field("GetConfig", "get_config", "bool", required=True),
        _Field("Get63LanguageOnly", "get_63_language_only", "bool"),
        _Field("Categories", "categories", IdAndDelta, item="IdAndDelta"),
        _Field("Classifications", "classifications", IdAndDelta, item="IdAndDelta"),
        _Field("Languages", "languages", LanguageAndDelta, item="LanguageAndDelta"),
    )


@dataclass(frozen=True, slots=True)
class GetRevisionIdListRequest(Message):
    cookie: Cookie | None
    filter: ServerSyncFilter | None
    OPERATION: ClassVar = "GetRevisionIdList"
    _FIELDS: ClassVar = (
        _Field("cookie", "cookie", Cookie),
        _Field("filter", "filter", ServerSyncFilter),
    )


@dataclass(frozen=True, slots=True)
class RevisionIdList:
    anchor: str | None
    new_revisions: tuple[RevisionKey, ...] | None = ()
    _FIELDS: ClassVar = (
        _Field("Anchor", "anchor", "str"),
        _Field("NewRevisions", "new_revisions", _IDENTITY, item="UpdateIdentity"),
    )


@dataclass(frozen=True, slots=True)
class GetRevisionIdListResponse(Message):
    result: RevisionIdList
    OPERATION: ClassVar = "GetRevisionIdList"
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (
        _Field("GetRevisionIdListResult", "result", RevisionIdList, required=True),
    )


# --- GetUpdateData (3.1.4.6) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetUpdateDataRequest(Message):
    cookie: Cookie | None
    update_ids: tuple[RevisionKey, ...] | None
    OPERATION: ClassVar = "GetUpdateData"
    _FIELDS: ClassVar = (
        _Field("cookie", "cookie", Cookie),
        _Field("updateIds", "update_ids", _IDENTITY, item="UpdateIdentity"),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncUpdateData:
    """One revision's document: exactly one of `xml_update_blob` (the text) and
    `xml_update_blob_compressed` (a cabinet, see `blobs`). `file_digest_list` holds the
    SHA-1 of each content file, base64 as on the wire (like `UpdateFile.sha1`)."""

    id: RevisionKey
    xml_update_blob: str | None = None
    file_digest_list: tuple[str, ...] | None = None
    xml_update_blob_compressed: bytes | None = None
    _FIELDS: ClassVar = (
        _Field("Id", "id", _IDENTITY, required=True),
        _Field("XmlUpdateBlob", "xml_update_blob", "str"),
        _Field("FileDigestList", "file_digest_list", "digest", item="base64Binary"),
        _Field("XmlUpdateBlobCompressed", "xml_update_blob_compressed", "base64"),
    )

    def __post_init__(self) -> None:
        if (self.xml_update_blob is None) == (self.xml_update_blob_compressed is None):
            raise ValueError(
                f"update {self.id}: exactly one of XmlUpdateBlob and XmlUpdateBlobCompressed "
                "must be present (3.1.4.6.3.3)"
            )

    def document(self, *, max_size: int = DEFAULT_MAX_BLOB_BYTES) -> str:
        """The update document as text, decompressing `xml_update_blob_compressed`.

        Raises `blobs.BlobError` for a compressed blob that does not decode.
        """
        if self.xml_update_blob is not None:
            return self.xml_update_blob
        assert self.xml_update_blob_compressed is not None
        return decode_compressed_blob(
            self.xml_update_blob_compressed,
            max_size=max_size,
            where=f"XmlUpdateBlobCompressed of update {self.id}",
        )


@dataclass(frozen=True, slots=True)
class ServerSyncUrlData:
    """Where a content file can be fetched. `uss_url` is sent empty by Windows (000014)."""

    file_digest: str | None
    mu_url: str | None = None
    uss_url: str | None = ""
    decryption_key: bytes | None = None
    _FIELDS: ClassVar = (
        _Field("FileDigest", "file_digest", "digest"),
        _Field("MUUrl", "mu_url", "str"),
        _Field("UssUrl", "uss_url", "str"),
        _Field("DecryptionKey", "decryption_key", "base64"),
    )


@dataclass(frozen=True, slots=True)
class ServerUpdateData:
    updates: tuple[ServerSyncUpdateData, ...] | None = ()
    file_urls: tuple[ServerSyncUrlData, ...] | None = ()
    _FIELDS: ClassVar = (
        _Field("updates", "updates", ServerSyncUpdateData, item="ServerSyncUpdateData"),
        _Field("fileUrls", "file_urls", ServerSyncUrlData, item="ServerSyncUrlData"),
    )


@dataclass(frozen=True, slots=True)
class GetUpdateDataResponse(Message):
    result: ServerUpdateData
    OPERATION: ClassVar = "GetUpdateData"
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (_Field("GetUpdateDataResult", "result", ServerUpdateData, required=True),)


# --- GetDeployments (3.1.4.10) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetDeploymentsRequest(Message):
    cookie: Cookie | None
    deployment_anchor: str | None = None
    sync_anchor: str | None = None
    OPERATION: ClassVar = "GetDeployments"
    _FIELDS: ClassVar = (
        _Field("cookie", "cookie", Cookie),
        _Field("deploymentAnchor", "deployment_anchor", "str"),
        _Field("syncAnchor", "sync_anchor", "str"),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncTargetGroup:
    target_group_id: str
    parent_group_id: str | None
    name: str | None
    is_builtin: bool
    _FIELDS: ClassVar = (
        _Field("TargetGroupID", "target_group_id", "guid", required=True),
        _Field("ParentGroupId", "parent_group_id", "guid"),
        _Field("Name", "name", "str"),
        _Field("IsBuiltin", "is_builtin", "bool", required=True),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncDeployment:
    """3.1.4.10.3.5. `action`: 0 install, 1 uninstall, 2 scan, 3 block. `deadline` is
    `NO_DEADLINE` when there is none. `download_priority` 1 (low) to 3 (high)."""

    update_id: str
    revision_number: int
    action: int
    admin_name: str | None
    deadline: datetime
    is_assigned: bool
    go_live_time: datetime
    deployment_guid: str
    target_group_id: str
    download_priority: int
    _FIELDS: ClassVar = (
        _Field("UpdateId", "update_id", "guid", required=True),
        _Field("RevisionNumber", "revision_number", "int", required=True),
        _Field("Action", "action", "int", required=True),
        _Field("AdminName", "admin_name", "str"),
        _Field("Deadline", "deadline", "datetime", required=True),
        _Field("IsAssigned", "is_assigned", "bool", required=True),
        _Field("GoLiveTime", "go_live_time", "datetime", required=True),
        _Field("DeploymentGuid", "deployment_guid", "guid", required=True),
        _Field("TargetGroupId", "target_group_id", "guid", required=True),
        _Field("DownloadPriority", "download_priority", "ubyte", required=True),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncDeploymentResult:
    anchor: str | None
    groups: tuple[ServerSyncTargetGroup, ...] | None = ()
    deployments: tuple[ServerSyncDeployment, ...] | None = ()
    dead_deployments: tuple[str, ...] | None = ()
    hidden_updates: tuple[str, ...] | None = ()
    accepted_eulas: tuple[str, ...] | None = ()
    _FIELDS: ClassVar = (
        _Field("Anchor", "anchor", "str"),
        _Field("Groups", "groups", ServerSyncTargetGroup, item="ServerSyncTargetGroup"),
        _Field("Deployments", "deployments", ServerSyncDeployment, item="ServerSyncDeployment"),
        _Field("DeadDeployments", "dead_deployments", "guid", item="guid"),
        _Field("HiddenUpdates", "hidden_updates", "guid", item="guid"),
        _Field("AcceptedEulas", "accepted_eulas", "guid", item="guid"),
    )


@dataclass(frozen=True, slots=True)
class GetDeploymentsResponse(Message):
    result: ServerSyncDeploymentResult
    OPERATION: ClassVar = "GetDeployments"
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (
        _Field("GetDeploymentsResult", "result", ServerSyncDeploymentResult, required=True),
    )


# --- Ping (3.1.4.12: "not used"; IMonitorable namespace on both services) --------------


@dataclass(frozen=True, slots=True)
class PingRequest(Message):
    ping_level: int = 0
    OPERATION: ClassVar = "Ping"
    NAMESPACE: ClassVar = IMONITORABLE_NS
    _FIELDS: ClassVar = (_Field("pingLevel", "ping_level", "int", required=True),)


@dataclass(frozen=True, slots=True)
class MonitoredServicesResponse:
    success_flag: bool
    services_time: datetime
    is_https: bool
    config_file_last_modified_time: datetime
    config_file_next_expiration_time: datetime
    config_file_expiration_modulo_in_minutes: int
    services_name: str | None = None
    services_machine: str | None = None
    request_content_type: str | None = None
    config_file_path: str | None = None
    config_file_project_name: str | None = None
    config_file_environment_name: str | None = None
    config_file_version: str | None = None
    database_info: str | None = None
    custom_info: str | None = None
    _FIELDS: ClassVar = (
        _Field("SuccessFlag", "success_flag", "bool", required=True),
        _Field("ServicesTime", "services_time", "datetime", required=True),
        _Field("ServicesName", "services_name", "str"),
        _Field("ServicesMachine", "services_machine", "str"),
        _Field("IsHttps", "is_https", "bool", required=True),
        _Field("RequestContentType", "request_content_type", "str"),
        _Field("ConfigFilePath", "config_file_path", "str"),
        _Field("ConfigFileProjectName", "config_file_project_name", "str"),
        _Field("ConfigFileEnvironmentName", "config_file_environment_name", "str"),
        _Field(
            "ConfigFileLastModifiedTime",
            "config_file_last_modified_time",
            "datetime",
            required=True,
        ),
        _Field("ConfigFileVersion", "config_file_version", "str"),
        _Field(
            "ConfigFileNextExpirationTime",
            "config_file_next_expiration_time",
            "datetime",
            required=True,
        ),
        _Field(
            "ConfigFileExpirationModuloInMinutes",
            "config_file_expiration_modulo_in_minutes",
            "int",
            required=True,
        ),
        _Field("DatabaseInfo", "database_info", "str"),
        _Field("CustomInfo", "custom_info", "str"),
    )


@dataclass(frozen=True, slots=True)
class PingResponse(Message):
    result: MonitoredServicesResponse | None
    OPERATION: ClassVar = "Ping"
    NAMESPACE: ClassVar = IMONITORABLE_NS
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (_Field("PingResult", "result", MonitoredServicesResponse),)


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation: its name, body namespace, services, and message types."""

    name: str
    namespace: str
    services: frozenset[Service]
    request: type[Message]
    response: type[Message]

    @property
    def soap_action(self) -> str:
        """The quoted SOAPAction header value."""
        return soap_action(self.namespace, self.name)


_SYNC = frozenset({Service.SERVER_SYNC})
OPERATIONS: Final[dict[str, Operation]] = {
    op.name: op
    for op in (
        Operation(
            "GetAuthConfig",
            SOFTWARE_DISTRIBUTION_NS,
            _SYNC,
            GetAuthConfigRequest,
            GetAuthConfigResponse,
        ),
        Operation(
            "GetAuthorizationCookie",
            DSS_AUTH_NS,
            frozenset({Service.DSS_AUTH}),
            GetAuthorizationCookieRequest,
            GetAuthorizationCookieResponse,
        ),
        Operation(
            "GetCookie", SOFTWARE_DISTRIBUTION_NS, _SYNC, GetCookieRequest, GetCookieResponse
        ),
        Operation(
            "GetConfigData",
            SOFTWARE_DISTRIBUTION_NS,
            _SYNC,
            GetConfigDataRequest,
            GetConfigDataResponse,
        ),
        Operation(
            "GetRevisionIdList",
            SOFTWARE_DISTRIBUTION_NS,
            _SYNC,
            GetRevisionIdListRequest,
            GetRevisionIdListResponse,
        ),
        Operation(
            "GetUpdateData",
            SOFTWARE_DISTRIBUTION_NS,
            _SYNC,
            GetUpdateDataRequest,
            GetUpdateDataResponse,
        ),
        Operation(
            "GetDeployments",
            SOFTWARE_DISTRIBUTION_NS,
            _SYNC,
            GetDeploymentsRequest,
            GetDeploymentsResponse,
        ),
        Operation("Ping", IMONITORABLE_NS, frozenset(Service), PingRequest, PingResponse),
    )
}
_BY_REQUEST_TAG: Final = {"{" + op.namespace + "}" + op.name: op for op in OPERATIONS.values()}


def operation_for(which: str | type[Message] | Message) -> Operation:
    """The `Operation` of an operation name, a message class or a message."""
    name = which if isinstance(which, str) else which.OPERATION
    try:
        return OPERATIONS[name]
    except KeyError:
        raise UnsupportedOperationError(
            f"updatesync does not implement the operation {name!r}; known: "
            + ", ".join(OPERATIONS),
            operation=name,
        ) from None


def parse_request(
    data: bytes,
    *,
    soap_action: str | None = None,
    service: Service | None = None,
    max_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> Message:
    """Read an incoming request body into its request message.

    The body element decides the operation (3.1.4). When given, `soap_action` (the header
    value) and `service` (from `soap.service_for_path`) must agree with it. Raises
    UnsupportedOperationError for an operation updatesync does not implement, and
    ProtocolError for anything unreadable.
    """
    element = parse_envelope(data, max_bytes=max_bytes, where="request body")
    if is_fault(element):
        raise ProtocolError("a request body holds a soap:Fault", where="soap:Body")
    op = _BY_REQUEST_TAG.get(element.tag)
    if op is None:
        name = local_name(element.tag)
        raise UnsupportedOperationError(
            f"the body holds {element.tag}, which is not an operation updatesync implements "
            f"(known: {', '.join(OPERATIONS)})",
            where="soap:Body",
            operation=name,
        )
    if soap_action is not None:
        namespace, name = parse_soap_action(soap_action)
        if (namespace, name) != (op.namespace, op.name):
            raise ProtocolError(
                f"SOAPAction {soap_action} does not match the body, which holds "
                f"{op.name}; send {op.soap_action}",
                where="SOAPAction header",
                operation=op.name,
            )
    if service is not None and service not in op.services:
        raise ProtocolError(
            f"{op.name} is not an operation of {service.path}; send it to "
            + " or ".join(s.path for s in sorted(op.services)),
            where="request path",
            operation=op.name,
        )
    return op.request.from_element(element)


def parse_response(
    data: bytes,
    operation: str | type[Message] | Message,
    *,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> Message:
    """Read the response to `operation` (a name, a message class or the request sent).

    Raises `WsusssFault` for a fault, `ProtocolError` for anything unreadable.
    """
    return operation_for(operation).response.from_xml(data, max_bytes=max_bytes)
