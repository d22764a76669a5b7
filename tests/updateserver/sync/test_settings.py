"""What a sync is asked to do and how it reports: plain, hashable settings and hooks."""

from __future__ import annotations

import dataclasses

import pytest

from updatesync.updateserver.sync import (
    DEFAULT_BUSY_BACKOFF,
    DEFAULT_BUSY_RETRIES,
    DEFAULT_MAX_AUTHORIZATIONS,
    DEFAULT_MAX_BUSY_BACKOFF,
    SyncHooks,
    SyncSettings,
)


def test_settings_are_frozen_with_the_documented_defaults() -> None:
    settings = SyncSettings("http://up.test", products=["p"], languages=("en",))  # type: ignore[arg-type]
    assert settings.products == ("p",) and settings.classifications == ()
    assert (settings.full, settings.replica, settings.server_name) == (False, False, None)
    assert (settings.busy_retries, settings.busy_backoff) == (
        DEFAULT_BUSY_RETRIES,
        DEFAULT_BUSY_BACKOFF,
    )
    assert settings.max_busy_backoff == DEFAULT_MAX_BUSY_BACKOFF
    assert settings.max_authorizations == DEFAULT_MAX_AUTHORIZATIONS
    assert hash(settings) == hash(SyncSettings("http://up.test", ("p",), languages=("en",)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.full = True  # type: ignore[misc]


def test_hooks_default_to_nothing_but_a_clock_and_a_sleep() -> None:
    hooks = SyncHooks()
    assert (hooks.progress, hooks.phase_progress, hooks.cancel) == (None, None, None)
    assert hooks.now().tzinfo is not None and callable(hooks.sleep)
