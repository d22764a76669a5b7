"""Log writers and readers every role uses: rollover files and the update server's
SoftwareDistribution.log."""

from updatesync.logs.rollover import (
    DEFAULT_MAX_BYTES,
    LogReadError,
    LogWriteError,
    RolloverLog,
    decode_log_bytes,
    read_rolled_lines,
    rolled_path,
)
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
    "LogReadError",
    "LogWriteError",
    "RolloverLog",
    "SdEntry",
    "SdEvent",
    "SdLevel",
    "SoftwareDistributionLog",
    "decode_log_bytes",
    "parse_event",
    "parse_softwaredistribution",
    "read_rolled_lines",
    "read_softwaredistribution",
    "rolled_path",
]
