"""What the steps of one sync share: the default log and the cancellation check."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

import pytest
from databases import Database
from sqlalchemy import create_engine

from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync import SyncCancelled, SyncHooks, SyncSettings, default_log
from updatesync.updateserver.sync.context import SyncContext
from updatesync.wsusss.client import UpstreamClient


def test_the_default_log_sits_in_a_sqlite_store_s_data_folder(tmp_path: Path) -> None:
    with UpdateStore.open(tmp_path / "server") as store:
        log = default_log(store)
        assert log is not None
        assert log.path == tmp_path / "server" / "logs" / "SoftwareDistribution.log"
    assert default_log(UpdateStore(create_engine("sqlite://"))) is None


def test_the_default_log_sits_in_the_data_folder_whatever_the_database(
    tmp_path: Path, database: Database
) -> None:
    with UpdateStore.open(tmp_path / "server", url=database.url) as store:
        log = default_log(store)
        assert log is not None
        assert log.path == (tmp_path / "server").absolute() / "logs" / "SoftwareDistribution.log"


def test_a_sync_stops_at_a_boundary_only_when_cancelled(tmp_path: Path) -> None:
    cancel = threading.Event()
    with UpdateStore.open(tmp_path / "server") as store:
        context = SyncContext(
            store,
            "http://up.test",
            cast(UpstreamClient, None),
            SyncSettings("http://up.test"),
            SyncHooks(cancel=cancel),
            None,
            server_name="dss.test",
        )
        context.stop_if_cancelled()
        context.note("nothing is written without a log")
        cancel.set()
        with pytest.raises(SyncCancelled, match=r"http://up\.test was cancelled"):
            context.stop_if_cancelled()
