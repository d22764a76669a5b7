"""The nonces a callee has seen, each remembered as long as its request could still be
accepted, so that a signed request is accepted once only.

A signed request names a random nonce and the time it was signed; the callee accepts it
within `MAX_SKEW` seconds of that time (`signing.py`). `NonceCache.remember` keeps each nonce
until that window has passed for its request, then forgets it: memory is bounded by the
number of requests in one window, and by `cap`. When the cap is reached and nothing has
expired yet, `ReplayCacheFull` is raised: the request is refused rather than accepted
without being remembered.
"""

from __future__ import annotations

import heapq
import threading

DEFAULT_CAP = 50_000
"""Nonces held at most: about 80 signed requests a second for a 600 s window, several MB."""


class ReplayCacheFull(Exception):
    """The cache holds `cap` nonces none of which has expired yet."""


class NonceCache:
    """Nonces seen, each until its expiry time (seconds since the epoch). Thread-safe."""

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        if cap <= 0:
            raise ValueError("the nonce cache's cap must be positive")
        self.cap = cap
        self._until: dict[str, float] = {}
        self._expiring: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._until)

    def _forget_expired(self, now: float) -> None:
        while self._expiring and self._expiring[0][0] < now:
            until, nonce = heapq.heappop(self._expiring)
            if self._until.get(nonce) == until:
                del self._until[nonce]

    def remember(self, nonce: str, until: float, now: float) -> bool:
        """Remember `nonce` until `until`; False when it is remembered already (a replay).
        `ReplayCacheFull` when `cap` nonces are held and none has expired."""
        with self._lock:
            self._forget_expired(now)
            if nonce in self._until:
                return False
            if len(self._until) >= self.cap:
                raise ReplayCacheFull(
                    f"{len(self._until)} signed requests in the last window, the most this "
                    "server remembers"
                )
            self._until[nonce] = until
            heapq.heappush(self._expiring, (until, nonce))
            return True
