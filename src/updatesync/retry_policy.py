"""Every retry of updatesync, decided in one place: each policy by name, with its jitter.

A policy is a first wait (`base`), a growth (doubling per attempt), a longest wait (`cap`),
how many calls in all (`attempts`, for the retries inside one call; None for the durable
loops, which go on until they succeed or stop) and the jitter: each wait is the exponential
step `min(base * 2**(attempt-1), cap)` times a factor drawn uniformly from `spread`, capped
again, and for the site's sync retry floored to whole minutes (`granularity`, when the wait
is longer than one), the unit its log line states. Without jitter every SUP of a hierarchy
that failed at the same moment (the upstream down for all of them) retried in lockstep.

- In-call retries (a SOAP call to an upstream, the ServerBusy back-off) go through tenacity:
  `policy.retrying(...)` is a `tenacity.Retrying` whose waits are `next_delay`, slept by the
  caller's own `sleep` (tests pass one that records instead of sleeping).
- Durable loops (database replication pulls, file replication delivery, webhook delivery,
  the site's retry of a failed sync, WCM's retry of a failed cycle) ask `next_delay(attempt)`
  and wait on their own Event or clock, so a stop or a poke still ends the wait at once.

A caller with configured times keeps them: `policy.scaled(base, cap)` is the same policy
with that base and cap (a zero base still means no waiting at all). The random source is a
`random.Random`: `jitter_source(seed)` gives one seeded for tests, or one seeded from the
system's entropy (each process its own) when `seed` is None.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

import tenacity

__all__ = [
    "DB_REPLICATION",
    "FILE_REPLICATION",
    "POLICIES",
    "SERVER_BUSY",
    "SITE_DATA",
    "SITE_SYNC_RETRY",
    "UPSTREAM_CALL",
    "WCM_CYCLE_RETRY",
    "WEBHOOK_DELIVERY",
    "RetryPolicy",
    "jitter_source",
]

_MAX_DOUBLINGS: Final = 60
"""Beyond this many doublings every step is the cap anyway (and 2**n stays a float)."""


def jitter_source(seed: int | str | None = None) -> random.Random:
    """The random source of one retrying thing: seeded (tests; the same seed, the same waits)
    or, when `seed` is None, from the system's entropy, so two processes draw apart."""
    return random.Random(seed)


_SHARED: Final = jitter_source()
"""The source of callers that bring none (one per process)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """One kind of retry (module docstring). `spread` is the range of the factor drawn for
    each wait: (0, 1) is full jitter, (0.5, 1) keeps at least half the step, (1, 1.1) never
    waits less than the step (the documented interval) and at most a tenth more."""

    name: str
    base: float
    cap: float
    attempts: int | None = None
    spread: tuple[float, float] = (0.0, 1.0)
    granularity: float = 0.0

    def __post_init__(self) -> None:
        low, high = self.spread
        if self.base < 0 or self.cap < 0 or not 0 <= low <= high or self.granularity < 0:
            raise ValueError(
                f"retry policy {self.name!r}: need base >= 0, cap >= 0, 0 <= spread low <= "
                f"high and granularity >= 0, got base={self.base}, cap={self.cap}, "
                f"spread={self.spread}, granularity={self.granularity}"
            )
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"retry policy {self.name!r}: attempts must be 1 or more")

    def scaled(self, base: float, cap: float | None = None) -> RetryPolicy:
        """This policy with a caller's configured `base` and `cap` (None: the cap keeps its
        ratio to the base, e.g. the site's retry interval of 45 minutes caps at 49.5)."""
        if cap is None:
            cap = self.cap * base / self.base if self.base else base
        return replace(self, base=base, cap=cap)

    def with_attempts(self, attempts: int) -> RetryPolicy:
        """This policy with `attempts` calls in all (the first one included)."""
        return replace(self, attempts=attempts)

    def step(self, attempt: int) -> float:
        """The exponential step before attempt `attempt + 1` (no jitter), at most the cap."""
        return min(self.base * 2.0 ** min(max(attempt - 1, 0), _MAX_DOUBLINGS), self.cap)

    def next_delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 for the first failure):
        the step times a factor drawn from `spread`, capped, floored to `granularity`."""
        step = self.step(attempt)
        if step <= 0:
            return 0.0
        low, high = self.spread
        wait = min(step * (rng or _SHARED).uniform(low, high), max(self.cap, step * low))
        if self.granularity > 0 and wait >= self.granularity:
            wait = math.floor(wait / self.granularity) * self.granularity
        return wait

    def retrying(
        self,
        retry_on: Callable[[BaseException], bool],
        *,
        sleep: Callable[[float], None],
        rng: random.Random | None = None,
    ) -> tenacity.Retrying:
        """A tenacity `Retrying` for one call: up to `attempts` calls while `retry_on(error)`
        says the failure is worth another one, waiting `next_delay` with `sleep` between;
        the last error is raised as it is."""
        if self.attempts is None:
            raise ValueError(f"retry policy {self.name!r} is durable: it has no attempt limit")
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=lambda state: self.next_delay(state.attempt_number, rng),
            retry=tenacity.retry_if_exception(retry_on),
            sleep=sleep,
            reraise=True,
        )


UPSTREAM_CALL: Final = RetryPolicy("upstream call", base=1.0, cap=30.0, attempts=4)
"""A SOAP call to an upstream update server (network error, time-out, 5xx without a fault):
3 retries after the first call, full jitter ([MS-WSUSSS] leaves retries to the client)."""

SERVER_BUSY: Final = RetryPolicy("server busy", base=5.0, cap=120.0, attempts=6, spread=(0.5, 1.0))
"""An upstream's ServerBusy fault: 5 waits per call, at least half the step each."""

DB_REPLICATION: Final = RetryPolicy("database replication", base=0.25, cap=30.0)
"""A child's pull of its parent's changes after a failed pull (durable)."""

SITE_DATA: Final = RetryPolicy("site data replication", base=1.0, cap=60.0)
"""A parent's pull of a child's site data after a failed pull (durable; the cap is the
pull interval when that is shorter)."""

FILE_REPLICATION: Final = RetryPolicy("file replication", base=1.0, cap=60.0)
"""Delivering a replicated file to a site that is down, busy or refused it (durable)."""

WEBHOOK_DELIVERY: Final = RetryPolicy("webhook delivery", base=30.0, cap=3600.0, spread=(0.5, 1.0))
"""An alert event a webhook did not accept (durable, the times kept in the site database)."""

SITE_SYNC_RETRY: Final = RetryPolicy(
    "site sync retry", base=3600.0, cap=3960.0, spread=(1.0, 1.1), granularity=60.0
)
"""A failed site sync, retried after the documented 60 minutes ("Sync failed. Will retry in
60 minutes") plus 0 to 6 whole minutes, never sooner; the line states the minutes used."""

WCM_CYCLE_RETRY: Final = RetryPolicy("WCM cycle retry", base=60.0, cap=66.0, spread=(1.0, 1.1))
"""A failed WSUS configuration cycle, tried again after a minute and up to 6 s more."""

POLICIES: Final = {
    p.name: p
    for p in (
        UPSTREAM_CALL,
        SERVER_BUSY,
        DB_REPLICATION,
        SITE_DATA,
        FILE_REPLICATION,
        WEBHOOK_DELIVERY,
        SITE_SYNC_RETRY,
        WCM_CYCLE_RETRY,
    )
}
"""Every policy by name (docs/architecture.md, "Retries", says where each applies)."""
