"""One entry point for a ConfigMgr component log in either format: `ComponentLog` writes the
CMTrace or the simple site-server format, and `read_component_log` / `parse_component_log`
recognise which one a log holds.

Recognition: a text holding `<![LOG[` is CMTrace; otherwise it is read as the simple format.
A log is in one format throughout (a component writes one format).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from updatesync.logs.cmtrace import (
    OPEN,
    CMTraceLog,
    GarbageHandler,
    LogEntry,
    ThreadSource,
    parse_cmtrace,
    utc_now,
)
from updatesync.logs.rollover import DEFAULT_MAX_BYTES, read_rolled_lines
from updatesync.logs.simple import SimpleLog, parse_simple


class LogFormat(StrEnum):
    """The line format of a ConfigMgr component log."""

    CMTRACE = "cmtrace"
    SIMPLE = "simple"


class ComponentLog:
    """Writes a component's log in `format`; see `CMTraceLog` and `SimpleLog` for the
    parameters (`file_hint` and `context` apply to the CMTrace format only)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        component: str,
        format: LogFormat = LogFormat.CMTRACE,
        max_bytes: int = DEFAULT_MAX_BYTES,
        bias_minutes: int | None = None,
        now: Callable[[], datetime] = utc_now,
        thread: ThreadSource = None,
        file_hint: str | None = None,
        context: str = "",
    ) -> None:
        self.format = LogFormat(format)
        self._log: CMTraceLog | SimpleLog
        if self.format is LogFormat.CMTRACE:
            self._log = CMTraceLog(
                path,
                component=component,
                max_bytes=max_bytes,
                bias_minutes=bias_minutes,
                now=now,
                thread=thread,
                file_hint=file_hint,
                context=context,
            )
        else:
            if file_hint or context:
                raise ValueError(
                    f"log {path}: file_hint and context exist in the CMTrace format only"
                )
            self._log = SimpleLog(
                path,
                component=component,
                max_bytes=max_bytes,
                bias_minutes=bias_minutes,
                now=now,
                thread=thread,
            )

    @property
    def path(self) -> Path:
        return self._log.path

    @property
    def component(self) -> str:
        return self._log.component

    def info(self, message: str, *, thread: int | None = None) -> LogEntry:
        return self._log.info(message, thread=thread)

    def warning(self, message: str, *, thread: int | None = None) -> LogEntry:
        return self._log.warning(message, thread=thread)

    def error(self, message: str, *, thread: int | None = None) -> LogEntry:
        return self._log.error(message, thread=thread)


def detect_format(text: str) -> LogFormat:
    """CMTrace when the text holds an entry opener, else simple."""
    return LogFormat.CMTRACE if OPEN in text else LogFormat.SIMPLE


def parse_component_log(
    lines_or_text: str | Iterable[str],
    *,
    on_garbage: GarbageHandler | None = None,
) -> Iterator[LogEntry]:
    """Parse a component log in whichever format it is in (see the module notes)."""
    text = (
        lines_or_text
        if isinstance(lines_or_text, str)
        else "\n".join(line.rstrip("\r\n") for line in lines_or_text)
    )
    if detect_format(text) is LogFormat.CMTRACE:
        return parse_cmtrace(text, on_garbage=on_garbage)
    return parse_simple(text, on_garbage=on_garbage)


def read_component_log(
    path: str | os.PathLike[str],
    *,
    on_garbage: GarbageHandler | None = None,
) -> Iterator[LogEntry]:
    """Read a component log with its `.lo_` (older entries first), in whichever format."""
    return parse_component_log(list(read_rolled_lines(path)), on_garbage=on_garbage)
