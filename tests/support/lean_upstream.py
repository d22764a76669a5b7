"""An upstream of N small generated detectoids that holds no catalog: for a downstream sync
of 100,000 revisions that costs seconds to serve, not a 100k import.

`LeanUpstream(n)` is a `fake_upstream.FakeUpstream` (the same cookies, faults and config
data) whose GetConfig listing names `n` revisions (`key(i)`) and whose GetUpdateData makes
each document from one real-shaped detectoid template as it is asked for; the updates
listing is empty. Serve it with `fake_upstream.serve`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fake_upstream import FakeCatalog, FakeUpstream, _Fault

from updatesync.metadata.model import RevisionKey
from updatesync.wsusss.anchors import Anchor
from updatesync.wsusss.faults import ErrorCode
from updatesync.wsusss.messages import (
    GetRevisionIdListRequest,
    GetRevisionIdListResponse,
    GetUpdateDataRequest,
    GetUpdateDataResponse,
    RevisionIdList,
    ServerSyncUpdateData,
    ServerUpdateData,
)

TEMPLATE = (
    '<upd:Update xmlns:bar="http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules" '
    'xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update"><upd:UpdateIdentity '
    'UpdateID="{uid}" RevisionNumber="1" /><upd:Properties DefaultPropertiesLanguage="en" '
    'UpdateType="Detectoid" ExplicitlyDeployable="false" PerUser="false" IsPublic="false" '
    'DetectoidType="Architecture" PublicationState="Published" '
    'CreationDate="2008-11-24T09:34:42.823Z" PublisherID="bccf8ca0-2819-4598-8d15-c1506e363e92">'
    "</upd:Properties><upd:LocalizedPropertiesCollection><upd:LocalizedProperties>"
    "<upd:Language>en</upd:Language><upd:Title>Detectoid {n}</upd:Title><upd:Description>"
    "Generated detectoid {n}</upd:Description></upd:LocalizedProperties>"
    "</upd:LocalizedPropertiesCollection><upd:ApplicabilityRules><upd:IsInstalled>"
    '<bar:Processor Architecture="9" /></upd:IsInstalled></upd:ApplicabilityRules></upd:Update>'
)


def key(n: int) -> RevisionKey:
    """The nth revision of a lean catalog."""
    return RevisionKey(f"{n:08x}-0000-4000-8000-{n:012x}", 1)


class LeanUpstream(FakeUpstream):
    """See the module docstring."""

    def __init__(self, size: int, max_per_request: int = 100) -> None:
        super().__init__(FakeCatalog(), max_per_request=max_per_request)
        self.size = size

    def _anchor(self) -> str:
        return str(Anchor.issue(self.size, datetime.now(UTC)))

    def _revision_ids(self, request: GetRevisionIdListRequest) -> GetRevisionIdListResponse:
        if request.filter is None:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "filter")
        listed = tuple(key(n) for n in range(self.size)) if request.filter.get_config else ()
        return GetRevisionIdListResponse(RevisionIdList(self._anchor(), listed))

    def _update_data(self, request: GetUpdateDataRequest) -> GetUpdateDataResponse:
        ids = request.update_ids or ()
        if len(ids) > self.max_per_request:
            raise _Fault(ErrorCode.INVALID_PARAMETERS, "updateIds")
        items = tuple(
            ServerSyncUpdateData(k, TEMPLATE.format(uid=k.update_id, n=int(k.update_id[:8], 16)))
            for k in ids
        )
        return GetUpdateDataResponse(ServerUpdateData(items, ()))
