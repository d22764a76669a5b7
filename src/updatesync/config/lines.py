"""Where each key of a TOML file is written, so that a problem can name its line.

`tomllib` keeps no positions, so `key_lines` scans the text the way TOML nests it: table
headers (`[a.b]`), array-of-tables headers (`[[sites]]`, counted per array), `key = value`
lines (dotted keys too) and the items of a multi-line array of plain values. Multi-line
strings are skipped; inline tables and nested arrays are not followed, and `line_of` then
gives the line of the nearest enclosing key that was found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

__all__ = ["Path", "key_lines", "line_of"]

Path = tuple[str | int, ...]
"""A key path such as `("sites", 2, "sups", 0, "port")`."""

_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_ARRAY_HEADER = re.compile(rf"\s*\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"\s*\[\s*({_DOTTED})\s*\]")
_KEY_VALUE = re.compile(rf"\s*({_DOTTED})\s*=")
_ONE_KEY = re.compile(_KEY)


def key_lines(text: str) -> dict[Path, int]:
    """The line (from 1) of each table, key and multi-line array item written in `text`."""
    finder = _Finder()
    for number, line in enumerate(text.splitlines(), start=1):
        finder.read(line, number)
    return finder.found


def line_of(path: Path, lines: Mapping[Path, int]) -> int | None:
    """The line of `path`, else of the nearest enclosing table or key that was found."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


class _Finder:
    """Reads a TOML text line by line, noting where each key path is first written."""

    def __init__(self) -> None:
        self.found: dict[Path, int] = {}
        self.counts: dict[Path, int] = {}
        """How many tables each array of tables has so far."""
        self.table: Path = ()
        self.open_string: str | None = None
        """The delimiter of a multi-line string being skipped."""
        self.open_array: Path | None = None
        """The key of a multi-line array whose items are being counted."""
        self.item = 0

    def read(self, line: str, number: int) -> None:
        if self.open_string is not None:
            if line.count(self.open_string) % 2 == 1:
                self.open_string = None
            return
        if self.open_array is not None:
            self.array_items(_strip_comment(line), number)
            return
        if match := _ARRAY_HEADER.match(line):
            keys = _split_keys(match.group(1))
            array = (*self.resolve(keys[:-1]), keys[-1])
            self.counts[array] = self.counts.get(array, 0) + 1
            self.table = (*array, self.counts[array] - 1)
            self.note(array, number)
            self.note(self.table, number)
        elif match := _TABLE_HEADER.match(line):
            self.table = self.resolve(_split_keys(match.group(1)))
            self.note(self.table, number)
        elif match := _KEY_VALUE.match(line):
            path = self.table
            for key in _split_keys(match.group(1)):
                path = (*path, key)
                self.note(path, number)
            value = _strip_comment(line[match.end() :]).strip()
            if value.startswith("[") and "]" not in value:
                self.open_array, self.item = path, 0
                self.array_items(value[1:], number)
                return
        for delimiter in ('"""', "'''"):
            if line.count(delimiter) % 2 == 1:
                self.open_string = delimiter
                return

    def note(self, path: Path, number: int) -> None:
        self.found.setdefault(path, number)

    def resolve(self, keys: Sequence[str]) -> Path:
        """A dotted header's path: a key naming an array of tables means its last table."""
        path: Path = ()
        for key in keys:
            path = (*path, key)
            if path in self.counts:
                path = (*path, self.counts[path] - 1)
        return path

    def array_items(self, body: str, number: int) -> None:
        """Note the items of the open array found in `body`; close it at `]`."""
        assert self.open_array is not None
        if "[" in body or "{" in body:  # nested arrays or tables: too complex to follow
            self.open_array = None
            return
        for piece in body.split("]", 1)[0].split(","):
            if piece.strip():
                self.note((*self.open_array, self.item), number)
                self.item += 1
        if "]" in body:
            self.open_array = None


def _split_keys(dotted: str) -> list[str]:
    keys = []
    for token in _ONE_KEY.findall(dotted):
        if token.startswith('"'):
            try:
                keys.append(json.loads(token))
            except ValueError:
                keys.append(token[1:-1])
        elif token.startswith("'"):
            keys.append(token[1:-1])
        else:
            keys.append(token)
    return keys


def _strip_comment(text: str) -> str:
    """`text` without a trailing `# comment` (a `#` inside a quoted string is kept)."""
    quote: str | None = None
    escaped = False
    for index, char in enumerate(text):
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            return text[:index]
    return text
