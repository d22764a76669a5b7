"""Log writers and readers every role uses: rollover files, ConfigMgr component logs (CMTrace
and simple site-server formats, and CMTrace's copied form) and the update server's
SoftwareDistribution.log."""

from updatesync.logs.cmtrace import (
    CMTraceLog,
    LogEntry,
    Severity,
    parse_cmtrace,
    parse_rendered,
    read_cmtrace,
)
from updatesync.logs.component import (
    ComponentLog,
    LogFormat,
    detect_format,
    parse_component_log,
    read_component_log,
)
from updatesync.logs.rollover import (
    DEFAULT_MAX_BYTES,
    LogReadError,
    LogWriteError,
    RolloverLog,
    decode_log_bytes,
    read_rolled_lines,
    rolled_path,
)
from updatesync.logs.simple import SimpleLog, parse_simple, read_simple
from updatesync.logs.softwaredistribution import (
    EVENT_CONTENT_SYNC_STARTED,
    EVENT_MANUAL_SYNC_STARTED,
    EVENT_SCHEDULED_SYNC_STARTED,
    EVENT_SYNC_FAILED,
    EVENT_SYNC_SUCCEEDED,
    SdEntry,
    SdEvent,
    SdLevel,
    SoftwareDistributionLog,
    parse_event,
    parse_softwaredistribution,
    read_softwaredistribution,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EVENT_CONTENT_SYNC_STARTED",
    "EVENT_MANUAL_SYNC_STARTED",
    "EVENT_SCHEDULED_SYNC_STARTED",
    "EVENT_SYNC_FAILED",
    "EVENT_SYNC_SUCCEEDED",
    "CMTraceLog",
    "ComponentLog",
    "LogEntry",
    "LogFormat",
    "LogReadError",
    "LogWriteError",
    "RolloverLog",
    "SdEntry",
    "SdEvent",
    "SdLevel",
    "Severity",
    "SimpleLog",
    "SoftwareDistributionLog",
    "decode_log_bytes",
    "detect_format",
    "parse_cmtrace",
    "parse_component_log",
    "parse_event",
    "parse_rendered",
    "parse_simple",
    "parse_softwaredistribution",
    "read_cmtrace",
    "read_component_log",
    "read_rolled_lines",
    "read_simple",
    "read_softwaredistribution",
    "rolled_path",
]
