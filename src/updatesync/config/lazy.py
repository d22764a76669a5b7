"""A package whose names are imported from their modules when first asked for (PEP 562).

    __getattr__ = lazy_names(globals(), {"Hierarchy": "updatesync.config.hierarchy", ...})

`updatesync.config` and `updatesync.roles` export their names this way, so that importing one
submodule of them, or one name, does not load every other (pydantic for a default; the site
server's and the console's stacks for a SUP's process)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(namespace: dict[str, Any], homes: Mapping[str, str]) -> Callable[[str], Any]:
    """The module `__getattr__` of the package whose globals are `namespace`: a name of
    `homes` is imported from the module it maps to, and kept in `namespace` (asked once)."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        namespace[name] = value
        return value

    return __getattr__
