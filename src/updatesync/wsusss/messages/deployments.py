"""GetDeployments (3.1.4.10): target groups, deployments, dead deployments and hidden
updates for a replica."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from updatesync.wsusss.messages.auth import Cookie
from updatesync.wsusss.messages.codec import Field, Message

# --- GetDeployments (3.1.4.10) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetDeploymentsRequest(Message):
    cookie: Cookie | None
    deployment_anchor: str | None = None
    sync_anchor: str | None = None
    OPERATION: ClassVar = "GetDeployments"
    _FIELDS: ClassVar = (
        Field("cookie", "cookie", Cookie),
        Field("deploymentAnchor", "deployment_anchor", "str"),
        Field("syncAnchor", "sync_anchor", "str"),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncTargetGroup:
    target_group_id: str
    parent_group_id: str | None
    name: str | None
    is_builtin: bool
    _FIELDS: ClassVar = (
        Field("TargetGroupID", "target_group_id", "guid", required=True),
        Field("ParentGroupId", "parent_group_id", "guid"),
        Field("Name", "name", "str"),
        Field("IsBuiltin", "is_builtin", "bool", required=True),
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
        Field("UpdateId", "update_id", "guid", required=True),
        Field("RevisionNumber", "revision_number", "int", required=True),
        Field("Action", "action", "int", required=True),
        Field("AdminName", "admin_name", "str"),
        Field("Deadline", "deadline", "datetime", required=True),
        Field("IsAssigned", "is_assigned", "bool", required=True),
        Field("GoLiveTime", "go_live_time", "datetime", required=True),
        Field("DeploymentGuid", "deployment_guid", "guid", required=True),
        Field("TargetGroupId", "target_group_id", "guid", required=True),
        Field("DownloadPriority", "download_priority", "ubyte", required=True),
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
        Field("Anchor", "anchor", "str"),
        Field("Groups", "groups", ServerSyncTargetGroup, item="ServerSyncTargetGroup"),
        Field("Deployments", "deployments", ServerSyncDeployment, item="ServerSyncDeployment"),
        Field("DeadDeployments", "dead_deployments", "guid", item="guid"),
        Field("HiddenUpdates", "hidden_updates", "guid", item="guid"),
        Field("AcceptedEulas", "accepted_eulas", "guid", item="guid"),
    )


@dataclass(frozen=True, slots=True)
class GetDeploymentsResponse(Message):
    result: ServerSyncDeploymentResult
    OPERATION: ClassVar = "GetDeployments"
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (
        Field("GetDeploymentsResult", "result", ServerSyncDeploymentResult, required=True),
    )
