"""The house rules of the source tree, as a newcomer would measure them.

- no module in `src/` over 800 lines and no class over 400 lines, except the declarative
  tables that `docs/architecture.md` names in its section "Declarative tables";
- exactly one place in `src/` constructs the site's sync manager, and one the SMS Provider app;
- no module in `src/` (migrations included) uses the `sqlite3` module: every database, SQLite
  or PostgreSQL, goes through SQLAlchemy.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "updatesync"
MAX_MODULE_LINES = 800
MAX_CLASS_LINES = 400


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def _declared_tables() -> set[str]:
    """Modules listed (as `src/updatesync/...py`) under '## Declarative tables'."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    match = re.search(r"^## Declarative tables\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if match is None:
        return set()
    return set(re.findall(r"`(src/updatesync/[\w/]+\.py)`", match.group(1)))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_no_module_over_800_lines() -> None:
    allowed = _declared_tables()
    too_long = {
        _rel(p): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
        and _rel(p) not in allowed
    }
    assert too_long == {}, f"split these modules (lines): {too_long}"


def test_no_class_over_400_lines() -> None:
    allowed = _declared_tables()
    too_long: dict[str, int] = {}
    for path in _modules():
        if _rel(path) in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    too_long[f"{_rel(path)}:{node.name}"] = lines
    assert too_long == {}, f"split these classes (lines): {too_long}"


def test_declared_tables_exist() -> None:
    missing = [m for m in _declared_tables() if not (ROOT / m).is_file()]
    assert missing == [], f"docs/architecture.md names modules that do not exist: {missing}"


def _calls_to(name: str) -> list[str]:
    places = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if called == name:
                    places.append(f"{_rel(path)}:{node.lineno}")
    return places


def test_one_place_constructs_the_sync_manager() -> None:
    places = _calls_to("SyncManager")
    assert len(places) == 1, places


def test_one_place_constructs_the_provider_app() -> None:
    places = _calls_to("create_provider_app")
    assert len(places) == 1, places


# Modules with logic whose tests live under another name, and where: a module added to src/
# gets its own tests/<package>/test_<module>.py or a line here saying where it is tested.
TESTED_ELSEWHERE = {
    "cli/log_view.py": "tests/logs/test_tracker.py (`logs track` prints every run through it)",
    "config/table.py": "tests/config/test_model.py (every table of the model is one)",
    "console/login.py": "tests/security/test_console_login.py (the sign-in pages, real roles)",
    "console/logruns.py": "tests/console/test_logs_page.py (uploads through the /logs page)",
    "metadata/generator/templates.py": "a declarative table; tests/metadata/generator/",
    "roles/console.py": "tests/roles/test_threads.py, tests/console/test_app.py",
    "roles/site.py": "tests/roles/test_threads.py, tests/site/test_*.py (sites in one process)",
}


def _mirror(module: Path) -> Path:
    rel = module.relative_to(SRC)
    return ROOT / "tests" / rel.parent / f"test_{module.stem}.py"


def test_every_module_with_logic_has_its_test_module() -> None:
    missing = []
    for path in _modules():
        if path.name in ("__init__.py", "__main__.py"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        has_logic = any(
            isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in ast.walk(tree)
        )
        rel = path.relative_to(SRC).as_posix()
        if has_logic and not _mirror(path).is_file() and rel not in TESTED_ELSEWHERE:
            missing.append(rel)
    assert missing == [], f"no tests/<package>/test_<module>.py for: {missing}"


def test_the_modules_tested_elsewhere_exist_and_have_no_mirror_yet() -> None:
    for rel in TESTED_ELSEWHERE:
        assert (SRC / rel).is_file(), rel
        assert not _mirror(SRC / rel).is_file(), f"{rel} has its own test module now"


def _imports_of(path: Path) -> set[str]:
    """The top-level names of the modules `path` imports (`import a.b`, `from a.b import c`,
    and `importlib.import_module("a")` / `__import__("a")` with a literal name)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
                names.add(str(first.value).split(".")[0])
    return names


def test_no_module_in_src_uses_sqlite3() -> None:
    users = sorted(_rel(p) for p in SRC.rglob("*.py") if "sqlite3" in _imports_of(p))
    assert users == [], f"these modules use sqlite3; go through SQLAlchemy instead: {users}"


def test_the_sqlite3_check_sees_every_way_of_importing_it(tmp_path: Path) -> None:
    for source in (
        "import sqlite3",
        "import os, sqlite3 as db",
        "from sqlite3 import connect",
        "from sqlite3.dbapi2 import connect",
        "import importlib\nimportlib.import_module('sqlite3')",
    ):
        module = tmp_path / "module.py"
        module.write_text(source + "\n", encoding="utf-8")
        assert "sqlite3" in _imports_of(module), source
