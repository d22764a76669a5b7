"""Loading the hierarchy file: TOML in, a validated `Hierarchy` out, or one `HierarchyError`
listing every problem found, each naming its key path (`sites[2].sups[0].port`) and, where it
can be found, its line in the file. Unknown keys are problems too, with the closest known key
as a hint, so that a misspelt key is never silently ignored."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from updatesync.config.hierarchy import Hierarchy
from updatesync.config.lines import key_lines, line_of
from updatesync.config.model import HierarchyFile
from updatesync.config.values import ALSO, Loc, format_path

__all__ = ["HierarchyError", "Problem", "load_hierarchy", "parse_hierarchy"]

_TOML_LINE: Final = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a hierarchy file: where (key path, line when known) and what."""

    path: str
    """Key path such as `sites[2].sups[0].port`; empty for the file as a whole."""
    message: str
    """What is wrong and what to do about it."""
    line: int | None = None

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.path:
            where.append(self.path)
        return f"{', '.join(where)}: {self.message}" if where else self.message


class HierarchyError(ValueError):
    """A hierarchy file that cannot be used; `problems` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"{source}: {count} {noun} in the hierarchy file:"]
        lines.extend(f"  {problem}" for problem in self.problems)
        super().__init__("\n".join(lines))


def load_hierarchy(path: str | Path) -> Hierarchy:
    """Read and validate a hierarchy file; relative paths in it resolve against its folder."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise HierarchyError(
            str(file),
            [Problem("", f"cannot read the file: {reason}; check the path and its permissions")],
        ) from exc
    return parse_hierarchy(text, source=str(file), base_dir=file.absolute().parent)


def parse_hierarchy(
    text: str, *, source: str = "<string>", base_dir: str | Path | None = None
) -> Hierarchy:
    """Parse and validate hierarchy TOML; `base_dir` (default: the current folder) anchors a
    relative `data_dir`. Raises `HierarchyError` listing every problem found."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_LINE.search(message)
        line = int(match.group(1)) if match else None
        message = _TOML_LINE.sub("", message).strip()
        raise HierarchyError(
            source, [Problem("", f"not valid TOML: {message}; fix the syntax", line)]
        ) from None
    try:
        file = HierarchyFile.model_validate(document)
    except ValidationError as exc:
        raise HierarchyError(source, _problems(exc, text)) from None
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    return file.hierarchy_of(source, base.absolute())


def _problems(error: ValidationError, text: str) -> list[Problem]:
    """The model's errors as problems with their lines, in file order."""
    lines = key_lines(text)
    problems = [
        Problem(format_path(item["loc"]), _message(item), line_of(item["loc"], lines))
        for item in error.errors()
    ]
    problems.sort(key=lambda problem: problem.line or 0)  # stable: the model's order kept
    return problems


def _message(error: Any) -> str:
    loc: Loc = error["loc"]
    context = error.get("ctx") or {}
    if error["type"] == "extra_forbidden":
        return _unknown_key(loc)
    if error["type"] == "missing":
        field = HierarchyFile.table_at(loc[:-1]).model_fields[str(loc[-1])]
        extra = field.json_schema_extra
        missing = extra.get("missing") if isinstance(extra, dict) else None
        return str(missing or f'missing; add {loc[-1]} = "..."')
    message = str(error["msg"])
    if "also_item" in context:
        message = message.replace(ALSO, format_path((*loc[:-1], context["also_item"])))
    return message


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    allowed = list(HierarchyFile.table_at(loc[:-1]).model_fields)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
    return f"unknown key {key!r}; {hint}"
