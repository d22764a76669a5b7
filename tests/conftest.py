"""Shared pytest setup: the `fixtures_dir` fixture (real published data) and the `slow` marker."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes longer than about 20 seconds")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """`../shared/fixtures` beside the project root; skips the test when it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(
            f"real-data fixtures not found at {SHARED_FIXTURES}: they live in ../shared/fixtures "
            "beside the project (present in CI, absent in a plain clone)"
        )
    return SHARED_FIXTURES
