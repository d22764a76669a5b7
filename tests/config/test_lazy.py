"""config.lazy: a package's names imported from their modules when first asked for."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from updatesync.config.lazy import lazy_names


def test_a_name_is_imported_when_asked_for_and_kept() -> None:
    namespace = {"__name__": "example"}
    getattr_ = lazy_names(namespace, {"dumps": "json"})
    import json

    assert getattr_("dumps") is json.dumps
    assert namespace["dumps"] is json.dumps  # asked once: the module's globals hold it now


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    getattr_ = lazy_names({"__name__": "example"}, {"dumps": "json"})
    with pytest.raises(AttributeError, match="module 'example' has no attribute 'loads'"):
        getattr_("loads")


def test_the_packages_load_a_module_only_for_its_names() -> None:
    probe = (
        "import sys\n"
        "from updatesync.roles import parse_role\n"
        "from updatesync.config import DEFAULT_SITE_PORT\n"
        "print(*sorted(m for m in ('pydantic', 'updatesync.roles.site', 'updatesync.roles.sup',"
        " 'updatesync.roles.console') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""


@pytest.mark.parametrize("package", ["updatesync.config", "updatesync.roles"])
def test_a_lazy_package_exports_exactly_the_names_it_can_import(package: str) -> None:
    """`__all__` is written out for linters and type checkers, beside the map of where each
    name lives: the two list the same names, and each name is found in its module."""
    module = importlib.import_module(package)
    homes = module._HOMES
    assert sorted(module.__all__) == sorted(homes)
    for name, home in homes.items():
        assert getattr(module, name) is getattr(importlib.import_module(home), name), name
