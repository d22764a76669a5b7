"""The nonce memory of a callee: once only, forgotten after the window, bounded
(`updatesync.security.replay`)."""

from __future__ import annotations

import pytest

from updatesync.security.replay import NonceCache, ReplayCacheFull


def test_a_nonce_is_accepted_once_while_it_is_remembered() -> None:
    cache = NonceCache()
    assert cache.remember("n1", until=1300.0, now=1000.0)
    assert not cache.remember("n1", until=1300.0, now=1200.0)


def test_an_expired_nonce_is_forgotten() -> None:
    cache = NonceCache()
    cache.remember("n1", until=1300.0, now=1000.0)
    cache.remember("n2", until=1900.0, now=1000.0)
    assert cache.remember("n3", until=2000.0, now=1301.0)
    assert len(cache) == 2  # n1 went


def test_a_full_cache_refuses_rather_than_forgets_a_live_nonce() -> None:
    cache = NonceCache(cap=2)
    cache.remember("a", until=1300.0, now=1000.0)
    cache.remember("b", until=1300.0, now=1000.0)
    with pytest.raises(ReplayCacheFull):
        cache.remember("c", until=1300.0, now=1000.0)
    assert cache.remember("c", until=1700.0, now=1301.0)
