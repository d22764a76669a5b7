"""The configuration reference, generated from the model of the hierarchy file: every table
with every key's type, default and meaning, as Markdown.

`docs/configuration.md` is this module's output; after changing `updatesync.config.model`,
regenerate it with::

    python -m updatesync.config.reference > docs/configuration.md
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Final

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from updatesync.config.model import HierarchyFile, table_in

__all__ = ["REGENERATE", "markdown", "tables"]

REGENERATE: Final = "python -m updatesync.config.reference > docs/configuration.md"

_INTRO: Final = f"""\
# The hierarchy file

<!-- Generated from updatesync.config.model; do not edit. Regenerate with:
     {REGENERATE} -->

The hierarchy file (TOML) names the sites of a hierarchy, how they nest, the software update
points (SUPs) of each one, and what the top-level site syncs from, when and with which
criteria. `updatesync demo` runs the annotated example `src/updatesync/examples/hierarchy.toml`;
`updatesync serve` runs one role of a hierarchy from such a file.

Every problem in a file is reported at once, each with its key path (`sites[2].sups[0].port`)
and line. Unknown keys are problems too, with the closest known key as a hint, so a misspelt
key is never silently ignored.

`schedule`, `schedule_start`, `upstream` and `criteria` belong to the top-level site. They
are written under `[hierarchy]` or in the top-level site's own `[[sites]]` table (not both);
every other site inherits them and may not set them.
"""


def tables() -> Iterator[tuple[str, type[BaseModel]]]:
    """Each table of the file once, as (TOML header, model), in the order of the file."""
    seen: set[type[BaseModel]] = {HierarchyFile}

    def walk(prefix: str, model: type[BaseModel]) -> Iterator[tuple[str, type[BaseModel]]]:
        for name, field in model.model_fields.items():
            inner, many = table_in(field.annotation)
            if inner is None or inner in seen:
                continue
            seen.add(inner)
            path = f"{prefix}.{name}" if prefix else name
            yield (f"[[{path}]]" if many else f"[{path}]"), inner
            yield from walk(path, inner)

    yield from walk("", HierarchyFile)


def markdown() -> str:
    """The reference of every table and key."""
    out = [_INTRO]
    for header, model in tables():
        out.append(f"\n## `{header}`\n\n{_about(model)}\n\n")
        out.append("| Key | Type | Default | Meaning |\n|---|---|---|---|\n")
        for name, field in model.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            cells = (f"`{name}`", str(extra["toml"]), _default(field), field.description or "")
            out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |\n")
    return "".join(out)


def _about(model: type[BaseModel]) -> str:
    """The model's docstring as one paragraph, without its leading "`[table]`: "."""
    text = " ".join(inspect.cleandoc(model.__doc__ or "").split())
    text = re.sub(r"^`\[\[?[\w.]+\]\]?`: ", "", text)
    return text[:1].upper() + text[1:]


def _default(field: FieldInfo) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if "shown" in extra:
        return str(extra["shown"])
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "(table)"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, tuple):
        return "`[]`" if not value else "`[" + ", ".join(f'"{v}"' for v in value) + "]`"
    if isinstance(value, timedelta):
        return f"`{int(value.total_seconds() // 60)}` (minutes)"
    return f"`{value}`"


if __name__ == "__main__":
    sys.stdout.write(markdown())
