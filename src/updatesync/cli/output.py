"""What the command line prints, printed as written: never read as Rich markup.

Paths, names from the hierarchy file, error texts and log lines may hold square brackets
(`[[sites]]`, `x[/x]`, `[bold]`); Rich would read them as markup, drop them or fail with a
`MarkupError` traceback. Every console here has markup off, so a `str` is printed as it is;
deliberate styling is a `rich.text.Text` (`error()` and `warning()` build theirs).

    from updatesync.cli.output import console, error

    console.print(f"wrote {path}")           # brackets in `path` print as brackets
    error(f"{path}: not a hierarchy file")    # `error: ...` on stderr, the prefix in red

`last_resort(run)` runs the command: an exception nothing else caught becomes one line,
`internal error: ... (please report; details in FILE)`, with the traceback in FILE (a new
file readable by this user only) rather than on the terminal, and exit status 1.

`quiet_tracebacks()` does the same, while the command runs, for a request that fails in a
server it runs (uvicorn would print the traceback) and for a thread that ends with an
exception.

`port_in_range` checks a port option (`typer.Option(callback=port_in_range)`): out of range
is a usage error naming the option and the range, not an `OverflowError` at bind time.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

console = Console(markup=False, highlight=False)
"""Standard output: markup off, no automatic highlighting."""

err_console = Console(stderr=True, markup=False, highlight=False)
"""Standard error: markup off, no automatic highlighting."""

ERROR_STYLE = "bold red"
WARNING_STYLE = "yellow"
REPORT_PREFIX = "updatesync-error-"
MAX_PORT = 65535


def port_in_range(value: int) -> int:
    """A port option's value, or a usage error (exit status 2) saying the valid range."""
    if not 0 <= value <= MAX_PORT:
        raise typer.BadParameter(f"{value} is not a port: give one from 0 to {MAX_PORT}")
    return value


def labelled(label: str, style: str, message: str) -> Text:
    """`label message`, the label styled, the message exactly as given."""
    return Text.assemble((label, style), " ", message)


def error(message: str, *, out: Console | None = None) -> None:
    """Print `error: message` on standard error (the message as written, one line per line
    of it: not wrapped at the terminal's width, so a path stays whole)."""
    (out or err_console).print(labelled("error:", ERROR_STYLE, message), soft_wrap=True)


def warning(message: str, *, out: Console | None = None) -> None:
    """Print `warning: message` (on standard output unless `out` says otherwise)."""
    (out or console).print(labelled("warning:", WARNING_STYLE, message), soft_wrap=True)


def say(message: str, *, out: Console | None = None) -> None:
    """Print a line as written, not wrapped (standard output unless `out` says otherwise)."""
    (out or console).print(message, markup=False, highlight=False, soft_wrap=True)


def os_error_text(exc: OSError) -> str:
    """An OSError in words: `path: reason` (for a rename, the target), a file where a
    folder is needed said so; an OSError raised with a message of its own, that message."""
    path = exc.filename2 or exc.filename
    if not exc.strerror or path is None:
        return str(exc)
    if exc.errno == errno.EEXIST and Path(path).exists() and not Path(path).is_dir():
        return f"{path}: is a file, where a folder is needed"
    return f"{path}: {exc.strerror}"


def user_error_text(exc: BaseException) -> str:
    """The line an error a user can act on is shown as (`os_error_text` for an OSError)."""
    return os_error_text(exc) if isinstance(exc, OSError) else str(exc)


def write_report(
    exc: BaseException, argv: list[str] | None = None, *, append_to: Path | None = None
) -> Path:
    """Write the traceback of `exc`, with the command line, to a new file readable by this
    user only (in the temporary folder), or at the end of `append_to`; its path."""
    if append_to is not None and append_to.is_file():
        handle, name = os.open(append_to, os.O_WRONLY | os.O_APPEND), str(append_to)
    else:
        handle, name = tempfile.mkstemp(prefix=REPORT_PREFIX, suffix=".txt")
    with os.fdopen(handle, "a", encoding="utf-8", errors="replace") as report:
        report.write(f"updatesync internal error at {datetime.now(UTC).isoformat()}\n")
        report.write(f"command: {' '.join(argv if argv is not None else sys.argv)}\n")
        report.write(f"python: {sys.version.split()[0]}\n\n")
        report.write("".join(traceback.format_exception(exc)) + "\n")
    return Path(name)


def summary(exc: BaseException) -> str:
    """`Type: first line of the message`."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _kept(exc: BaseException, append_to: Path | None = None) -> tuple[str, Path | None]:
    """Where the traceback of `exc` was written, in words, and the file (None if it could
    not be written)."""
    try:
        report = write_report(exc, append_to=append_to)
    except OSError as failed:
        return f"the details could not be written: {failed}", None
    return f"details in {report}", report


def internal_error(exc: BaseException) -> int:
    """Report an unexpected exception in one line (the traceback to a file); exit status."""
    where, _ = _kept(exc)
    err_console.print(
        labelled("internal error:", ERROR_STYLE, f"{summary(exc)} (please report it; {where})"),
        soft_wrap=True,
    )
    return 1


class OneLineErrors(logging.Filter):
    """On a server's error logger (uvicorn's): a record carrying a traceback (a request
    that failed) is logged as one line; the tracebacks go to one report file per process."""

    def __init__(self) -> None:
        super().__init__()
        self.report: Path | None = None

    def keep(self, exc: BaseException) -> str:
        where, self.report = _kept(exc, self.report)
        return where

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            said = record.getMessage().strip()
            record.msg = f"{said}: {summary(exc)} (please report it; {self.keep(exc)})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


SERVER_LOGGER = "uvicorn.error"


def quiet_tracebacks() -> Callable[[], None]:
    """While a command runs: a failed request of a server it runs, and an exception that
    ends one of its threads, print one line each, their tracebacks in a report file (see
    `OneLineErrors`). Returns what undoes it."""
    keeper = OneLineErrors()
    logger = logging.getLogger(SERVER_LOGGER)
    logger.addFilter(keeper)
    previous = threading.excepthook

    def thread_failed(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        exc = args.exc_value if args.exc_value is not None else args.exc_type()
        name = args.thread.name if args.thread is not None else "a thread"
        err_console.print(
            labelled(
                "internal error:",
                ERROR_STYLE,
                f"{name}: {summary(exc)} (please report it; {keeper.keep(exc)})",
            ),
            soft_wrap=True,
        )

    threading.excepthook = thread_failed

    def undo() -> None:
        logger.removeFilter(keeper)
        threading.excepthook = previous

    return undo


def last_resort(run: Callable[[], object]) -> None:
    """Run the command `run`; an exception it lets through becomes one line and status 1."""
    try:
        run()
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # the last resort: whatever else got here is a bug
        sys.exit(internal_error(exc))


def jsonable(value: object) -> object:
    """`value` as JSON can carry it: dataclasses as objects of their fields, tuples and sets
    as arrays, times in ISO 8601, paths and anything else as text."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def print_json(value: object) -> None:
    """Print `value` as JSON on standard output (`jsonable`), for `--json`."""
    import json

    console.print_json(json.dumps(jsonable(value)))
