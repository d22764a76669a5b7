"""The operations of MS-WSUSSS (`OPERATIONS`: namespace, SOAPAction, services, message
types), and reading an incoming request or the answer to an operation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import is_fault
from updatesync.wsusss.messages.audit import (
    GetRevisionSetDigestRequest,
    GetRevisionSetDigestResponse,
)
from updatesync.wsusss.messages.auth import (
    GetAuthConfigRequest,
    GetAuthConfigResponse,
    GetAuthorizationCookieRequest,
    GetAuthorizationCookieResponse,
    GetCookieRequest,
    GetCookieResponse,
)
from updatesync.wsusss.messages.codec import Message
from updatesync.wsusss.messages.deployments import GetDeploymentsRequest, GetDeploymentsResponse
from updatesync.wsusss.messages.ping import PingRequest, PingResponse
from updatesync.wsusss.messages.sync_data import (
    GetConfigDataRequest,
    GetConfigDataResponse,
    GetRevisionIdListRequest,
    GetRevisionIdListResponse,
    GetUpdateDataRequest,
    GetUpdateDataResponse,
)
from updatesync.wsusss.soap import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DSS_AUTH_NS,
    IMONITORABLE_NS,
    SOFTWARE_DISTRIBUTION_NS,
    UPDATESYNC_NS,
    Service,
    local_name,
    parse_envelope,
    parse_soap_action,
    soap_action,
)


class UnsupportedOperationError(ProtocolError):
    """A well-formed request for an operation updatesync does not implement."""


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
        Operation(  # updatesync's extension (messages/audit.py), not MS-WSUSSS
            "GetRevisionSetDigest",
            UPDATESYNC_NS,
            _SYNC,
            GetRevisionSetDigestRequest,
            GetRevisionSetDigestResponse,
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
