"""SOAP faults of MS-WSUSSS: the error codes, building a fault body, reading one back.

The shape is the one a real WSUS returns (captured exchanges 000017 to 000019, HTTP 500):
`soap:Fault` with unqualified `faultcode` (`soap:Client` or `soap:Server`), `faultstring`
("Fault occurred"), `faultactor` (the service URL) and `detail` holding unqualified
`ErrorCode`, `Message`, `ID` (a fresh GUID per fault) and `Method` (the request's
SOAPAction, quotes included). MS-WSUSSS 2.2.9.1 requires ErrorCode, Message and ID; `Method`
is what Windows adds.

A fault read back becomes a `WsusssFault` exception carrying the error code, the message
and the operation, with what the downstream server has to do about it (2.2.9.3).
"""

from __future__ import annotations

import contextlib
import uuid
from enum import StrEnum
from typing import Final

from lxml import etree

from updatesync.wsusss.errors import ProtocolError, WsusssError
from updatesync.wsusss.soap import (
    SOAP_ENV_NS,
    build_envelope,
    escape_text,
    local_name,
    namespace_of,
    parse_soap_action,
)

__all__ = [
    "DEFAULT_FAULT_STRING",
    "FAULT_HTTP_STATUS",
    "ErrorCode",
    "WsusssFault",
    "build_fault",
    "fault_from_element",
    "is_fault",
]

FAULT_HTTP_STATUS: Final = 500
"""HTTP status of a fault response (SOAP 1.1 over HTTP; observed 000017 to 000019)."""
DEFAULT_FAULT_STRING: Final = "Fault occurred"
"""The `faultstring` real WSUS sends with every application fault (observed)."""


class ErrorCode(StrEnum):
    """`detail/ErrorCode` values (MS-WSUSSS 2.2.9.3; case-sensitive on the wire)."""

    INVALID_PARAMETERS = "InvalidParameters"
    INVALID_COOKIE = "InvalidCookie"
    INTERNAL_SERVER_ERROR = "InternalServerError"
    INCOMPATIBLE_PROTOCOL_VERSION = "IncompatibleProtocolVersion"
    INVALID_AUTHORIZATION_COOKIE = "InvalidAuthorizationCookie"
    FILE_DIGESTS_MISSING = "FileDigestsMissing"
    SERVER_CHANGED = "ServerChanged"
    SERVER_BUSY = "ServerBusy"


_BY_VALUE: Final = {code.value: code for code in ErrorCode}

# What the downstream server must do, per 2.2.9.3 (and SPEC.md section 7).
_ADVICE: Final = {
    ErrorCode.INVALID_PARAMETERS: "a parameter was refused; fix it or stop the synchronization",
    ErrorCode.INVALID_COOKIE: "restart the protocol from authorization (GetAuthConfig)",
    ErrorCode.INTERNAL_SERVER_ERROR: "stop the synchronization and check the upstream's logs",
    ErrorCode.INCOMPATIBLE_PROTOCOL_VERSION: "stop: the upstream speaks another protocol version",
    ErrorCode.INVALID_AUTHORIZATION_COOKIE: "restart the protocol from authorization",
    ErrorCode.FILE_DIGESTS_MISSING: "the upstream no longer knows some requested files",
    ErrorCode.SERVER_CHANGED: "reset the config, sync and deployment anchors and continue",
    ErrorCode.SERVER_BUSY: "back off and retry later, or stop",
}

# Observed: InternalServerError is soap:Server, InvalidParameters and InvalidCookie are
# soap:Client. ServerBusy as soap:Server is our reading of SOAP 1.1 4.4.1 (unverified).
_SERVER_SIDE: Final = frozenset({ErrorCode.INTERNAL_SERVER_ERROR, ErrorCode.SERVER_BUSY})


class WsusssFault(WsusssError):
    """An application fault returned by the upstream server.

    `error_code` is an `ErrorCode` when the value is one the spec lists, the raw string for
    an unknown one, None when the fault has no `detail/ErrorCode` (the downstream server
    must then stop, 3.1.4.x). `operation` is the operation that failed, from the fault's
    `Method` or from the call. `fault_code` is the local part of `faultcode` ("Client",
    "Server").
    """

    def __init__(
        self,
        error_code: ErrorCode | str | None,
        message: str = "",
        *,
        operation: str | None = None,
        fault_id: str | None = None,
        method: str | None = None,
        fault_code: str | None = None,
        fault_string: str | None = None,
        fault_actor: str | None = None,
    ) -> None:
        self.error_code = error_code
        self.message = message
        self.operation = operation
        self.fault_id = fault_id
        self.method = method
        self.fault_code = fault_code
        self.fault_string = fault_string
        self.fault_actor = fault_actor
        code = error_code if error_code is not None else "fault without ErrorCode"
        detail = f" ({message})" if message else ""
        advice = (
            _ADVICE[error_code] if isinstance(error_code, ErrorCode) else "stop the synchronization"
        )
        where = f"{operation}: " if operation else ""
        ident = f" [fault ID {fault_id}]" if fault_id else ""
        super().__init__(f"{where}upstream returned {code}{detail}{ident}; {advice}")

    @property
    def code(self) -> ErrorCode | None:
        """The error code when it is one MS-WSUSSS defines, else None."""
        return self.error_code if isinstance(self.error_code, ErrorCode) else None


def build_fault(
    error_code: ErrorCode | str,
    message: str = "",
    *,
    method: str | None = None,
    fault_id: str | None = None,
    actor: str | None = None,
    fault_code: str | None = None,
    fault_string: str = DEFAULT_FAULT_STRING,
) -> bytes:
    """The body of a fault response (send it with HTTP status `FAULT_HTTP_STATUS`).

    `message` is the parameter name for InvalidParameters (2.2.9.3), else usually empty.
    `method` is the request's SOAPAction header as received (quoted) and is omitted when
    None; `fault_id` defaults to a fresh GUID; `actor` (the service URL) is omitted when
    None; `fault_code` defaults to "Server" for InternalServerError and ServerBusy, else
    "Client".
    """
    code = str(error_code)
    if not code:
        raise ValueError("a fault needs a non-empty ErrorCode")
    if fault_code is None:
        fault_code = "Server" if code in _SERVER_SIDE else "Client"
    fault_id = str(uuid.uuid4()) if fault_id is None else fault_id
    parts = [
        "<soap:Fault>",
        f"<faultcode>soap:{escape_text(fault_code, element='faultcode')}</faultcode>",
        f"<faultstring>{escape_text(fault_string, element='faultstring')}</faultstring>",
    ]
    if actor is not None:
        parts.append(f"<faultactor>{escape_text(actor, element='faultactor')}</faultactor>")
    parts += [
        "<detail>",
        f"<ErrorCode>{escape_text(code, element='ErrorCode')}</ErrorCode>",
        f"<Message>{escape_text(message, element='Message')}</Message>",
        f"<ID>{escape_text(fault_id, element='ID')}</ID>",
    ]
    if method is not None:
        parts.append(f"<Method>{escape_text(method, element='Method')}</Method>")
    parts.append("</detail></soap:Fault>")
    return build_envelope("".join(parts), response=True)


_FAULT: Final = "{" + SOAP_ENV_NS + "}Fault"
_FAULT_CHILD_NS: Final = frozenset({"", SOAP_ENV_NS})


def is_fault(element: etree._Element) -> bool:
    """Whether the first element of a SOAP body is `soap:Fault`."""
    return element.tag == _FAULT


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip()


def _fault_code(element: etree._Element | None) -> str | None:
    """The local part of the `faultcode` QName, resolved by namespace (not by prefix)."""
    text = _text(element)
    if element is None or not text:
        return text
    prefix, _, name = text.rpartition(":")
    namespace = element.nsmap.get(prefix or None)
    return name if namespace == SOAP_ENV_NS else text


def fault_from_element(fault: etree._Element, *, operation: str | None = None) -> WsusssFault:
    """The `WsusssFault` a `soap:Fault` element describes.

    `operation` names the call that failed when the fault's `Method` does not say.
    Raises ProtocolError when `fault` is not a `soap:Fault`.
    """
    if fault.tag != _FAULT:
        raise ProtocolError(
            f"expected soap:Fault, found {fault.tag!r}", where="soap:Body", operation=operation
        )
    children: dict[str, etree._Element] = {}
    for child in fault:
        if namespace_of(child.tag) in _FAULT_CHILD_NS:
            children.setdefault(local_name(child.tag), child)
    detail: dict[str, etree._Element] = {}
    detail_element = children.get("detail")
    if detail_element is not None:
        for child in detail_element:
            # 2.2.9.1: unqualified; a qualified one is accepted by its local name.
            detail.setdefault(local_name(child.tag), child)
    raw_code = _text(detail.get("ErrorCode")) or None
    error_code: ErrorCode | str | None = _BY_VALUE.get(raw_code, raw_code) if raw_code else None
    method = _text(detail.get("Method")) or None
    if method is not None:
        with contextlib.suppress(ProtocolError):
            operation = parse_soap_action(method)[1]
    return WsusssFault(
        error_code,
        _text(detail.get("Message")) or "",
        operation=operation,
        fault_id=_text(detail.get("ID")) or None,
        method=method,
        fault_code=_fault_code(children.get("faultcode")),
        fault_string=_text(children.get("faultstring")),
        fault_actor=_text(children.get("faultactor")),
    )
