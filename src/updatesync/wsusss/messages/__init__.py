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
lists (`codec`), so what one side builds the other side reads. Where the WSDL and real traffic
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
"no deadline" value 9999-12-31T23:59:59.9999999 is kept exact

The modules: `scalars` (element text of each kind), `codec` (fields, writer, reader, the
`Message` base), one per operation group (`auth`, `sync_data`, `deployments`, `ping`;
`audit`, updatesync's own extension), and `operations` (the operation table,
`parse_request`, `parse_response`).
"""

from __future__ import annotations

from updatesync.wsusss.messages.audit import (
    GetRevisionSetDigestRequest,
    GetRevisionSetDigestResponse,
    RevisionSetDigest,
)
from updatesync.wsusss.messages.auth import (
    AuthorizationCookie,
    AuthPlugInInfo,
    Cookie,
    GetAuthConfigRequest,
    GetAuthConfigResponse,
    GetAuthorizationCookieRequest,
    GetAuthorizationCookieResponse,
    GetCookieRequest,
    GetCookieResponse,
    ServerAuthConfig,
)
from updatesync.wsusss.messages.codec import (
    Message,
)
from updatesync.wsusss.messages.deployments import (
    GetDeploymentsRequest,
    GetDeploymentsResponse,
    ServerSyncDeployment,
    ServerSyncDeploymentResult,
    ServerSyncTargetGroup,
)
from updatesync.wsusss.messages.operations import (
    OPERATIONS,
    Operation,
    UnsupportedOperationError,
    operation_for,
    parse_request,
    parse_response,
)
from updatesync.wsusss.messages.ping import (
    MonitoredServicesResponse,
    PingRequest,
    PingResponse,
)
from updatesync.wsusss.messages.scalars import (
    NO_DEADLINE,
    UpdateIdentity,
    format_datetime,
    parse_datetime,
    parse_protocol_version,
)
from updatesync.wsusss.messages.sync_data import (
    GetConfigDataRequest,
    GetConfigDataResponse,
    GetRevisionIdListRequest,
    GetRevisionIdListResponse,
    GetUpdateDataRequest,
    GetUpdateDataResponse,
    IdAndDelta,
    LanguageAndDelta,
    RevisionIdList,
    ServerSyncConfigData,
    ServerSyncFilter,
    ServerSyncLanguageData,
    ServerSyncUpdateData,
    ServerSyncUrlData,
    ServerUpdateData,
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
    "GetRevisionSetDigestRequest",
    "GetRevisionSetDigestResponse",
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
    "RevisionSetDigest",
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
