"""Records and helpers shared by the site database tests: a time, category ids, a sample
configuration item, and threads racing for one call."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from updatesync.site.database.models import ConfigurationItem

T0 = datetime(2014, 1, 16, 18, 53, 52, 608000, tzinfo=UTC)
PRODUCT = "11111111-0000-4000-8000-000000000001"
CLASSIFICATION = "11111111-0000-4000-8000-000000000002"
T = TypeVar("T")


def sample_ci(n: int, title: str | None = None, **changes: object) -> ConfigurationItem:
    """Configuration item number `n` (a definition update), with `changes`."""
    values: dict[str, object] = {
        "update_id": f"af5eb87e-cdd6-40bf-984f-{n:012x}",
        "revision": 100,
        "title": title or f"Definition Update for Microsoft Endpoint Protection - KB{2461484 + n}",
        "xml_sha256": f"{n:064x}",
        "kb_article": str(2461484 + n),
        "severity": "Critical",
        "creation_date": "2014-01-16T00:00:00Z",
        "products": (PRODUCT,),
        "classifications": (CLASSIFICATION,),
    }
    values.update(changes)
    return ConfigurationItem(**values)  # type: ignore[arg-type]


def race(callers: int, call: Callable[[], T]) -> list[T]:
    """What `call` returned in each of `callers` threads started at the same moment."""
    start = threading.Barrier(callers)
    results: list[T] = []

    def run() -> None:
        start.wait()
        results.append(call())

    threads = [threading.Thread(target=run) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == callers, "a racing thread failed"
    return results
