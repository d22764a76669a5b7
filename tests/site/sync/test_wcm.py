"""The WSUS configuration manager (WCM.log) of a top-level site whose SUP's update server runs
on loopback: the subscription set through the update server's admin API with the lines of
the reference's success sequence, a category the update server does not hold failing the
configuration and then the sync with WSyncMgr's real `WSUS server not configured` line, the
database monitor's `.CSB` drop that wakes it, and the hourly wait.

Expected lines are the reference's text (`../shared/reference/configmgr-log-lines.md`, WCM.log
1.2 and 1.3, WSyncMgr.log 2.5)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from top_site import (
    CRITICAL,
    SECURITY,
    SUP,
    TopLevelSite,
    configuration_manager,
    configured_sync_manager,
    top_level_site,
)

from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.logs.status_messages import parse_statmsg
from updatesync.logs.tracker import track_paths
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.wsus_config import ConfigState
from updatesync.site.sync.db_monitor import DatabaseMonitor
from updatesync.site.sync.inbox import Inbox
from updatesync.site.sync.sup_client import UpdateServerApi
from updatesync.site.sync.wcm import WcmInbox, WcmSettings, WsusConfigurationManager

UNKNOWN_PRODUCT = "00000000-0000-0000-0000-00000000beef"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[TopLevelSite]:
    with top_level_site(tmp_path, updates=120, seed=61) as top:
        yield top


def _lines(root: Path, skip: int = 0) -> list[str]:
    return [e.message for e in read_cmtrace(root / "CS1" / "logs" / "WCM.log")][skip:]


def _in_order(lines: list[str], wanted: list[str]) -> None:
    """Each wanted line (a prefix for the categories' XML) appears, in this order."""
    at = 0
    for line in wanted:
        while at < len(lines) and not lines[at].startswith(line):
            at += 1
        assert at < len(lines), f"missing, in order: {line!r}\nlog: {lines}"
        at += 1


def _sup_configuration(site: TopLevelSite) -> dict[str, object]:
    with UpdateServerApi(f"http://127.0.0.1:{site.sup_server.port}") as api:
        return api.configuration()


def _subscribe(site: TopLevelSite, *products: str) -> int:
    return site.db.wsus.set_subscription(
        products or site.products, (SECURITY, CRITICAL), ("en",)
    ).version


def test_a_subscription_change_is_set_on_the_sup_as_wcm_log_shows_it(
    site: TopLevelSite, tmp_path: Path
) -> None:
    """The reference's success sequence (MS-WCM, 1.2): the file trigger, state 4, the
    connection, the subscribed categories, the success line and state 2; the update server
    then holds the subscription, and the SUP's state is stored."""
    version = _subscribe(site)
    assert configuration_manager(site, tmp_path).run_cycle("file")
    _in_order(
        _lines(tmp_path),
        [
            "File notification triggered WCM Inbox.",
            "Setting new configuration state to 4 (WSUS_CONFIG_SUBSCRIPTION_PENDING)",
            f"Attempting connection to WSUS server: {SUP.upper()}, port: "
            f"{site.sup_server.port}, useSSL: False",
            f"Successfully connected to server: {SUP.upper()}, port: {site.sup_server.port}, "
            "useSSL: False",
            'Subscribed Update Categories <?xml version="1.0" ?>~~<Categories>~~ <Category Id="'
            f'Product:{site.products[0]}">',
            "Configuration successful. Will wait for 1 minute for any subscription or proxy "
            "changes",
            "Setting new configuration state to 2 (WSUS_CONFIG_SUCCESS)",
        ],
    )
    held = _sup_configuration(site)
    assert sorted(held["products"]) == sorted(p.lower() for p in site.products)  # type: ignore[arg-type]
    assert sorted(held["classifications"]) == sorted([SECURITY, CRITICAL])  # type: ignore[arg-type]
    assert held["languages"] == ["en"]
    state = site.db.wsus.state(SUP)
    assert state is not None and state.state is ConfigState.WSUS_CONFIG_SUCCESS
    assert state.subscription_version == version


def test_an_unchanged_sup_is_left_as_it_is(site: TopLevelSite, tmp_path: Path) -> None:
    _subscribe(site)
    wcm = configuration_manager(site, tmp_path)
    assert wcm.run_cycle("start")
    seen = len(_lines(tmp_path))
    assert wcm.run_cycle("timeout")
    again = _lines(tmp_path, seen)
    assert again[0] == "Timed Out..."
    assert "Successfully refreshed categories from WSUS server" in again
    assert not any(line.startswith("Setting new configuration state") for line in again)


def test_an_unknown_category_fails_the_configuration_and_then_the_sync(
    site: TopLevelSite, tmp_path: Path
) -> None:
    """Once the update server holds its categories, a product it does not know is refused:
    WSUS_CONFIG_FAILED with the reason, the SUP keeps its subscription, and the next sync
    fails with WSyncMgr's real line (double dot included) and 6703; once the subscription is
    right again, the configuration and the sync succeed."""
    wcm = configuration_manager(site, tmp_path)
    manager = configured_sync_manager(site, wcm)
    _subscribe(site)
    assert wcm.run_cycle("start")
    assert manager.run("SELF").succeeded
    before = _sup_configuration(site)

    _subscribe(site, site.products[0], UNKNOWN_PRODUCT)
    seen = len(_lines(tmp_path))
    assert not wcm.run_cycle("file")
    failed = _lines(tmp_path, seen)
    _in_order(
        failed,
        [
            "File notification triggered WCM Inbox.",
            "Setting new configuration state to 4 (WSUS_CONFIG_SUBSCRIPTION_PENDING)",
            "Failed to set Subscriptions on WSUS Server. "
            f"{UNKNOWN_PRODUCT} cannot be a subscribed product: it is not a category this "
            "server holds.",
            "Setting new configuration state to 3 (WSUS_CONFIG_FAILED)",
        ],
    )
    assert not any(line.startswith("Configuration successful") for line in failed)
    state = site.db.wsus.state(SUP)
    assert state is not None and state.state is ConfigState.WSUS_CONFIG_FAILED
    assert state.last_error is not None and UNKNOWN_PRODUCT in state.last_error
    assert _sup_configuration(site)["products"] == before["products"]

    sync_lines = len(list(read_cmtrace(site.log_path)))
    result = manager.run("SELF")
    assert not result.succeeded
    said = [e.message for e in read_cmtrace(site.log_path)][sync_lines:]
    _in_order(
        said,
        [
            "Sync failed: WSUS server not configured. Please refer to WCM.log for "
            "configuration error details.. Source: CWSyncMgr::DoSync",
            "STATMSG: ID=6703 SEV=E",
            "Sync failed. Will retry in ",
        ],
    )
    assert result.retry_in is not None
    assert f"Sync failed. Will retry in {int(result.retry_in // 60)} minutes" in said
    message = parse_statmsg(next(line for line in said if line.startswith("STATMSG: ID=6703")))
    assert message.strings[:2] == (
        "CWSyncMgr::DoSync",
        "WSUS server not configured. Please refer to WCM.log for configuration error details.",
    )

    _subscribe(site)
    assert wcm.run_cycle("file")
    assert manager.run("SELF").succeeded


def test_a_new_update_server_takes_the_subscription_its_first_sync_checks(
    site: TopLevelSite, tmp_path: Path
) -> None:
    """An update server that holds no category yet cannot check the ids: it keeps them, and
    its first sync fails on one it then does not hold, naming it."""
    _subscribe(site, site.products[0], UNKNOWN_PRODUCT)
    wcm = configuration_manager(site, tmp_path)
    assert wcm.run_cycle("start")
    assert UNKNOWN_PRODUCT in _sup_configuration(site)["products"]  # type: ignore[operator]
    manager = configured_sync_manager(site, wcm)
    result = manager.run("SELF")
    assert not result.succeeded
    assert result.error is not None and UNKNOWN_PRODUCT in result.error


def test_the_database_monitor_drops_a_csb_file_that_wakes_the_manager(
    site: TopLevelSite, tmp_path: Path
) -> None:
    """A new subscription version: SMSDBMON's two lines, `<version>.CSB` in WSUSMgr.box, the
    manager woken (its thread takes the file and runs a file-triggered cycle); the same
    version again drops nothing."""
    wcm = configuration_manager(site, tmp_path, interval_seconds=3600.0)
    log = CMTraceLog(tmp_path / "CS1" / "logs" / "SMSDBMON.log", component="SMSDBMON")
    monitor = DatabaseMonitor(site.db, Inbox(tmp_path / "CS1" / "inboxes" / "WSyncMgr.box"), log)
    woken = threading.Event()

    def dropped() -> None:
        woken.set()
        wcm.files_dropped()

    monitor.watch_subscription(wcm.inbox, dropped)
    version = _subscribe(site)
    wcm.start()
    try:
        assert wcm.wait_cycles(1, timeout=30)  # its start
        monitor.check()
        assert woken.is_set()
        assert wcm.wait_cycles(2, timeout=30)  # the file's
        lines = [e.message for e in read_cmtrace(tmp_path / "CS1" / "logs" / "SMSDBMON.log")]
        assert lines[0].startswith(
            f"RCV: UPDATE on CI_UpdateCategorySubscription for SubNotify_iu_WCM [{version}]["
        )
        assert lines[1].startswith("SND: Dropped ") and lines[1].endswith(
            f"WSUSMgr.box{Path('/')}{version}.CSB [{lines[0].rsplit('[', 1)[1]}"
        )
        assert wcm.ensure_configured(SoftwareUpdatePoint(SUP, port=site.sup_server.port))
        assert "File notification triggered WCM Inbox." in _lines(tmp_path)
        woken.clear()
        monitor.check()
        assert not woken.is_set()
    finally:
        wcm.stop()
    assert not list(wcm.inbox.path.glob("*.CSB"))


def test_the_admin_api_refuses_what_it_cannot_subscribe(site: TopLevelSite) -> None:
    """`PUT /api/configuration`: JSON only (415), lists of strings (400), and, once the
    server holds categories, a category it does not hold is 422 and changes nothing."""
    base = f"http://127.0.0.1:{site.sup_server.port}"
    with httpx.Client(base_url=base) as http:
        assert http.put("/api/configuration", content=b"products=x").status_code == 415
        bad = http.put("/api/configuration", json={"products": "not a list"})
        assert bad.status_code == 400 and "products" in bad.json()["error"]
        first = http.put("/api/configuration", json={"products": [UNKNOWN_PRODUCT]})
        assert first.status_code == 200 and first.json()["categories_checked"] is False
    assert site.manager.run("SELF").succeeded  # brings the categories (and its subscription)
    with httpx.Client(base_url=base) as http:
        held = http.get("/api/configuration").json()
        refused = http.put("/api/configuration", json={"products": [UNKNOWN_PRODUCT]})
        assert refused.status_code == 422 and UNKNOWN_PRODUCT in refused.json()["error"]
        assert http.get("/api/configuration").json() == held
        assert held["categories_held"] > 0
        assert set(held["titles"]) == {p.lower() for p in held["products"]} | set(
            held["classifications"]
        )


def test_a_sync_gets_a_new_configuration_of_a_sup_that_was_down(
    site: TopLevelSite, tmp_path: Path
) -> None:
    """A SUP that did not answer the start's cycle fails its configuration (WCM.log says why,
    in .NET's words); once it answers, the next sync's `ensure_configured` runs a cycle at
    once (no waiting for the retry) and the SUP is configured."""
    _subscribe(site)
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    site.db.sups.replace([SoftwareUpdatePoint(SUP, port=dead)])
    wcm = configuration_manager(site, tmp_path, retry_seconds=3600.0)
    wcm.start()
    try:
        assert wcm.wait_cycles(1, timeout=30)
        # The failed cycle's retry: the hour asked for plus up to a tenth (WCM_CYCLE_RETRY).
        assert wcm.next_wait is not None and 3600.0 <= wcm.next_wait <= 3960.0
        state = site.db.wsus.state(SUP)
        assert state is not None and state.state is ConfigState.WSUS_CONFIG_FAILED
        assert state.last_error_code == 0x80072EFD
        assert (
            "System.Net.WebException: Unable to connect to the remote server ---> "
            "System.Net.Sockets.SocketException: No connection could be made because the "
            f"target machine actively refused it 127.0.0.1:{dead}"
        ) in _lines(tmp_path)
        (up,) = site.db.sups.replace([SoftwareUpdatePoint(SUP, port=site.sup_server.port)])
        assert wcm.ensure_configured(up)
    finally:
        wcm.stop()
    # the cycle says who asked for it, and the tracker names that trigger
    _in_order(
        _lines(tmp_path),
        [
            "Configuration requested by SMS_WSUS_SYNC_MANAGER.",
            "Checking for supported version of WSUS (min WSUS 3.0 SP2 + KB2720211 + KB2734608)",
            "Setting new configuration state to 2 (WSUS_CONFIG_SUCCESS)",
        ],
    )
    runs = [r for r in track_paths([tmp_path / "CS1" / "logs" / "WCM.log"])]
    assert [(r.trigger, r.result) for r in runs][-1] == ("sync", "success")


def test_a_site_control_change_configures_as_wcm_log_shows_it(
    site: TopLevelSite, tmp_path: Path
) -> None:
    """The first cycle after the site control file changed (a new site, a SUP added or
    moved) follows the reference's SCF sequence (MS-SSL, 1.5): the trigger, the SCF read,
    state 1, the connection, state 2."""
    _subscribe(site)
    wcm = WsusConfigurationManager(
        site.db,
        WcmSettings("CS1", upstream_of=lambda _sup: None),
        CMTraceLog(
            tmp_path / "CS1" / "logs" / "WCM.log", component="SMS_WSUS_CONFIGURATION_MANAGER"
        ),
        lambda sup: UpdateServerApi(f"http://127.0.0.1:{sup.port}", timeout=30),
        WcmInbox(tmp_path / "CS1" / "inboxes" / "WSUSMgr.box"),
        first="scf",
    )
    wcm.start()
    try:
        assert wcm.wait_cycles(1, timeout=30)
    finally:
        wcm.stop()
    lines = _lines(tmp_path)
    assert lines[:2] == ["SCF change notification triggered.", "Populating config from SCF"]
    _in_order(
        lines,
        [
            "Setting new configuration state to 1 (WSUS_CONFIG_PENDING)",
            f"Attempting connection to WSUS server: {SUP.upper()}",
            f"Successfully connected to server: {SUP.upper()}",
            "Setting new configuration state to 2 (WSUS_CONFIG_SUCCESS)",
        ],
    )
