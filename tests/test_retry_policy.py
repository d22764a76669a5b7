"""The retry policies: jitter within bounds, a cap, determinism with a seed, tenacity."""

from __future__ import annotations

import pytest

from updatesync.retry_policy import (
    DB_REPLICATION,
    POLICIES,
    SERVER_BUSY,
    SITE_SYNC_RETRY,
    UPSTREAM_CALL,
    WEBHOOK_DELIVERY,
    RetryPolicy,
    jitter_source,
)


def _delays(policy: RetryPolicy, seed: int | str, attempts: int = 8) -> list[float]:
    rng = jitter_source(seed)
    return [policy.next_delay(n, rng) for n in range(1, attempts + 1)]


def test_two_sups_that_fail_together_retry_apart() -> None:
    # Before jitter every SUP waited 1, 2, 4 ... s and retried at the same moments.
    first, second = _delays(UPSTREAM_CALL, "SUP1"), _delays(UPSTREAM_CALL, "SUP2")
    assert all(abs(a - b) > 1e-6 for a, b in zip(first, second, strict=True))
    sync_a = SITE_SYNC_RETRY.next_delay(1, jitter_source("CS1"))
    sync_b = [SITE_SYNC_RETRY.next_delay(1, jitter_source(f"PS{n}")) for n in range(1, 9)]
    assert any(b != sync_a for b in sync_b)


def test_the_same_seed_gives_the_same_waits() -> None:
    assert _delays(DB_REPLICATION, 7) == _delays(DB_REPLICATION, 7)
    assert _delays(DB_REPLICATION, 7) != _delays(DB_REPLICATION, 8)


@pytest.mark.parametrize("policy", list(POLICIES.values()), ids=list(POLICIES))
def test_every_wait_is_within_its_step_and_the_cap(policy: RetryPolicy) -> None:
    low, high = policy.spread
    for seed in range(20):
        for attempt, wait in enumerate(_delays(policy, seed, 40), start=1):
            step = policy.step(attempt)
            assert step <= policy.cap
            assert wait <= max(policy.cap, step * low)
            floor = step * low - (policy.granularity or 0)
            assert floor <= wait <= step * high + 1e-9


def test_full_jitter_spreads_over_the_whole_step() -> None:
    waits = [DB_REPLICATION.next_delay(3, jitter_source(seed)) for seed in range(200)]
    assert min(waits) < 0.2 and max(waits) > 0.8  # step 1 s (0.25 doubled twice)
    assert max(_delays(DB_REPLICATION, 1, 60)) <= 30.0


def test_the_site_sync_retry_keeps_the_documented_hour_in_whole_minutes() -> None:
    minutes = {SITE_SYNC_RETRY.next_delay(1, jitter_source(s)) / 60 for s in range(200)}
    assert minutes <= set(range(60, 67)) and len(minutes) > 3
    scaled = SITE_SYNC_RETRY.scaled(45 * 60)
    assert {scaled.next_delay(1, jitter_source(s)) / 60 for s in range(200)} <= set(range(45, 50))


def test_a_zero_base_never_waits() -> None:
    for policy in POLICIES.values():
        assert _delays(policy.scaled(0.0), 3) == [0.0] * 8


def test_scaled_keeps_the_caps_ratio_unless_given() -> None:
    assert WEBHOOK_DELIVERY.scaled(60.0).cap == 7200.0
    assert WEBHOOK_DELIVERY.scaled(60.0, 90.0).cap == 90.0


def test_tenacity_retries_what_the_caller_says_with_its_sleep() -> None:
    slept: list[float] = []
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("refused")
        return "done"

    retrying = UPSTREAM_CALL.retrying(
        lambda e: isinstance(e, ConnectionError), sleep=slept.append, rng=jitter_source(1)
    )
    assert retrying(flaky) == "done"
    assert len(calls) == 3 and len(slept) == 2
    assert 0 <= slept[0] <= 1.0 and 0 <= slept[1] <= 2.0


def test_tenacity_stops_after_the_attempts_and_raises_the_last_error() -> None:
    slept: list[float] = []

    def busy() -> None:
        raise TimeoutError("busy")

    retrying = SERVER_BUSY.with_attempts(3).retrying(
        lambda e: isinstance(e, TimeoutError), sleep=slept.append, rng=jitter_source(2)
    )
    with pytest.raises(TimeoutError, match="busy"):
        retrying(busy)
    assert len(slept) == 2 and 2.5 <= slept[0] <= 5.0 and 5.0 <= slept[1] <= 10.0


def test_an_error_not_worth_retrying_is_raised_at_once() -> None:
    slept: list[float] = []

    def refused() -> None:
        raise ValueError("bad request")

    with pytest.raises(ValueError):
        UPSTREAM_CALL.retrying(lambda e: False, sleep=slept.append)(refused)
    assert slept == []


def test_bad_policies_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'odd'.*spread"):
        RetryPolicy("odd", base=1.0, cap=2.0, spread=(1.0, 0.5))
    with pytest.raises(ValueError, match="attempts must be 1 or more"):
        RetryPolicy("none", base=1.0, cap=2.0, attempts=0)
    with pytest.raises(ValueError, match="durable"):
        DB_REPLICATION.retrying(lambda e: True, sleep=lambda s: None)
