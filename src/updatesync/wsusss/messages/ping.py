"""Ping (3.1.4.12, "not used"; the IMonitorable namespace on both services)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from updatesync.wsusss.messages.codec import Field, Message
from updatesync.wsusss.soap import (
    IMONITORABLE_NS,
)

# --- Ping (3.1.4.12: "not used"; IMonitorable namespace on both services) --------------


@dataclass(frozen=True, slots=True)
class PingRequest(Message):
    ping_level: int = 0
    OPERATION: ClassVar = "Ping"
    NAMESPACE: ClassVar = IMONITORABLE_NS
    _FIELDS: ClassVar = (Field("pingLevel", "ping_level", "int", required=True),)


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
        Field("SuccessFlag", "success_flag", "bool", required=True),
        Field("ServicesTime", "services_time", "datetime", required=True),
        Field("ServicesName", "services_name", "str"),
        Field("ServicesMachine", "services_machine", "str"),
        Field("IsHttps", "is_https", "bool", required=True),
        Field("RequestContentType", "request_content_type", "str"),
        Field("ConfigFilePath", "config_file_path", "str"),
        Field("ConfigFileProjectName", "config_file_project_name", "str"),
        Field("ConfigFileEnvironmentName", "config_file_environment_name", "str"),
        Field(
            "ConfigFileLastModifiedTime",
            "config_file_last_modified_time",
            "datetime",
            required=True,
        ),
        Field("ConfigFileVersion", "config_file_version", "str"),
        Field(
            "ConfigFileNextExpirationTime",
            "config_file_next_expiration_time",
            "datetime",
            required=True,
        ),
        Field(
            "ConfigFileExpirationModuloInMinutes",
            "config_file_expiration_modulo_in_minutes",
            "int",
            required=True,
        ),
        Field("DatabaseInfo", "database_info", "str"),
        Field("CustomInfo", "custom_info", "str"),
    )


@dataclass(frozen=True, slots=True)
class PingResponse(Message):
    result: MonitoredServicesResponse | None
    OPERATION: ClassVar = "Ping"
    NAMESPACE: ClassVar = IMONITORABLE_NS
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (Field("PingResult", "result", MonitoredServicesResponse),)
