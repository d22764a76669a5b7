"""Shared pytest setup: the `fixtures_dir` fixture (real published data), the `slow` marker,
and the database fixtures (`database_kind`, `databases`, `database`: SQLite and PostgreSQL;
`module_databases` for a slow scenario a module's tests share)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from databases import Database, Databases

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes longer than about 20 seconds")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line at the end saying how many tests did not run on PostgreSQL, and why."""
    from databases import SKIP_REASON

    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and SKIP_REASON in str(report.longrepr[-1])
    ]
    if skipped:
        terminalreporter.write_line(
            f"PostgreSQL: {len(skipped)} tests skipped: {SKIP_REASON}", yellow=True, bold=True
        )


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """`../shared/fixtures` beside the project root; skips the test when it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(
            f"real-data fixtures not found at {SHARED_FIXTURES}: they live in ../shared/fixtures "
            "beside the project (present in CI, absent in a plain clone)"
        )
    return SHARED_FIXTURES


@pytest.fixture(params=["sqlite", "postgresql"])
def database_kind(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL (skipped, with the reason, when no
    test server is given: see tests/support/databases.py)."""
    if request.param == "postgresql":
        from databases import require_server

        require_server()
    return str(request.param)


@pytest.fixture
def databases(database_kind: str, tmp_path: Path) -> Iterator[Databases]:
    """Fresh databases of the test's kind (`databases.new()`), dropped when the test ends."""
    from databases import Databases

    made = Databases(database_kind, tmp_path / "databases")
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def database(databases: Databases) -> Database:
    """One fresh database of the test's kind (SQLite file or PostgreSQL database)."""
    return databases.new()


@pytest.fixture(scope="module")
def module_databases(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], Databases]]:
    """Databases a module's tests share, for a slow scenario set up once per kind whatever
    order the tests run in: `module_databases(database_kind).new()`; all dropped when the
    module's tests are done."""
    from databases import Databases

    made: dict[str, Databases] = {}

    def of_kind(kind: str) -> Databases:
        if kind not in made:
            made[kind] = Databases(kind, tmp_path_factory.mktemp(f"databases-{kind}"))
        return made[kind]

    try:
        yield of_kind
    finally:
        for each in made.values():
            each.close()
