"""`GET /metrics` of a site: read back with prometheus_client's own parser, the values of
syncs recorded by hand (status messages, as the sync manager writes them) and of real
top-level syncs, a failed one and its retry, served over loopback."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from scrape import Scrape
from starlette.applications import Starlette
from top_site import TopLevelSite, top_level_site

from updatesync import __version__
from updatesync.logs.status_messages import new_status_message
from updatesync.roles.serving import BackgroundServer
from updatesync.site.database.models import (
    MICROSOFT_UPDATE,
    ConfigurationItem,
    SoftwareUpdatePoint,
    SUPSyncStatus,
)
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alerts import AlertType
from updatesync.site.watch.metrics import DURATION_BUCKETS, STATE_NAMES, SiteMetrics

T = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SUP = "cs1site.contoso.com"
FAMILIES = {
    "updatesync_build_info": "gauge",
    "updatesync_syncs": "counter",
    "updatesync_sync_duration_seconds": "histogram",
    "updatesync_sync_state": "gauge",
    "updatesync_last_sync_state_timestamp_seconds": "gauge",
    "updatesync_last_successful_sync_timestamp_seconds": "gauge",
    "updatesync_last_successful_sync_age_seconds": "gauge",
    "updatesync_content_version": "gauge",
    "updatesync_last_sync_duration_seconds": "gauge",
    "updatesync_phase_duration_seconds": "gauge",
    "updatesync_phase_items": "gauge",
    "updatesync_sup_sync_state": "gauge",
    "updatesync_sup_last_successful_sync_timestamp_seconds": "gauge",
    "updatesync_replication_link_status": "gauge",
    "updatesync_alerts_raised": "gauge",
}
PHASES = ("update_server", "site_database", "replicas")


def scrape(db: SiteDatabase, site: str = "CS1", *, now: datetime = T, **kwargs: object) -> Scrape:
    metrics = SiteMetrics(db, site, clock=lambda: now, **kwargs)  # type: ignore[arg-type]
    return Scrape(metrics.text())


def state_of(f: Scrape, metric: str = "updatesync_sync_state", /, **labels: str) -> int:
    """The state whose sample is 1, checking every other state's is 0."""
    samples = f.where(metric, **labels)
    on = [dict(k)["state"] for k, v in samples.items() if v == 1]
    assert len(on) == 1 and all(v in (0, 1) for v in samples.values()), samples
    assert {dict(k)["state"] for k in samples} >= {str(s) for s in STATE_NAMES}
    for key in samples:
        labels_of = dict(key)
        assert labels_of["name"] == STATE_NAMES.get(int(labels_of["state"]), labels_of["state"])
    return int(on[0])


# -- a sync recorded by hand -------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SiteDatabase]:
    with SiteDatabase.open(tmp_path / "CS1", site_code="CS1") as site_db:
        yield site_db


def _ci(n: int, revision: int = 100) -> ConfigurationItem:
    return ConfigurationItem(
        update_id=f"af5eb87e-cdd6-40bf-984f-{n:012x}",
        revision=revision,
        title=f"Security Update KB{5000000 + n}",
        xml_sha256=f"{n:060x}{revision:04x}",
    )


def _message(db: SiteDatabase, message_id: int, at: datetime, *, state: bool = True) -> None:
    db.messages.add(
        new_status_message(message_id, site_code="CS1", system="CS1SITE.CONTOSO.COM", time=at)
    )
    if state:
        db.sync.record_state(message_id, at=at)


def test_a_site_that_never_synced(db: SiteDatabase) -> None:
    f = scrape(db)
    assert {k: v for k, v in f.types.items() if not k.endswith("_created")} == FAMILIES
    assert all(f.helps[name] for name in FAMILIES)
    for name in (
        "updatesync_sync_state",
        "updatesync_last_successful_sync_timestamp_seconds",
        "updatesync_last_successful_sync_age_seconds",
        "updatesync_last_sync_duration_seconds",
        "updatesync_phase_items",
        "updatesync_replication_link_status",
    ):
        assert f.series(name) == {}, name
    assert f.value("updatesync_build_info", version=__version__, python=platform.python_version())
    # The counters and the histogram are there from the start, at 0, for every result and
    # phase (a first failure is then a rise, which rate() and increase() see).
    assert f.value("updatesync_syncs_total", site="CS1", result="success") == 0
    assert f.value("updatesync_syncs_total", site="CS1", result="failed") == 0
    for phase in PHASES:
        assert f.value("updatesync_sync_duration_seconds_count", site="CS1", phase=phase) == 0
    content = f.series("updatesync_content_version")
    assert content == {(("site", "CS1"), ("update_source", MICROSOFT_UPDATE)): 0}
    assert {dict(k)["type"]: v for k, v in f.series("updatesync_alerts_raised").items()} == {
        kind.value: 0 for kind in AlertType
    }


def test_each_site_server_has_its_own_registry(tmp_path: Path) -> None:
    """Several roles in one process (the demo, `serve --role all`): each its own registry,
    none in prometheus_client's global one, so none clashes with another."""
    with (
        SiteDatabase.open(tmp_path / "PS1", site_code="PS1") as ps1,
        SiteDatabase.open(tmp_path / "PS2", site_code="PS2") as ps2,
    ):
        first, second = SiteMetrics(ps1, "PS1"), SiteMetrics(ps2, "PS2")
        again = SiteMetrics(ps1, "PS1")  # a restarted role in the same process
        first.sync_ended(False)
        assert Scrape(first.text()).value("updatesync_syncs_total", site="PS1", result="failed")
        assert not Scrape(again.text()).value("updatesync_syncs_total", site="PS1", result="failed")
        assert not Scrape(second.text()).has("updatesync_syncs_total", site="PS1", result="failed")
    assert not any(name.startswith("updatesync_") for name in REGISTRY._names_to_collectors)


def test_the_site_server_gives_the_update_server_phase_items(db: SiteDatabase) -> None:
    f = scrape(db, phase_counts=lambda: {"update_server": 130})
    items = f.series("updatesync_phase_items")
    assert items == {(("phase", "update_server"), ("site", "CS1")): 130}


def test_a_failure_and_its_retry_between_two_scrapes_both_show(db: SiteDatabase) -> None:
    """Finding: a failure followed by a successful retry between two scrapes never showed
    (every metric a gauge of the last state). Each phase of each sync is observed once."""
    metrics = SiteMetrics(db, "CS1", clock=lambda: T + timedelta(hours=2))
    before = Scrape(metrics.text())
    _message(db, 6701, T)
    _message(db, 6704, T + timedelta(seconds=2))
    _message(db, 6703, T + timedelta(seconds=40))  # the update server phase failed
    metrics.sync_ended(False)
    retry = T + timedelta(hours=1)
    _message(db, 6701, retry)
    _message(db, 6704, retry + timedelta(seconds=1))
    _message(db, 6705, retry + timedelta(seconds=400))
    _message(db, 6702, retry + timedelta(seconds=410))
    metrics.sync_ended(True)
    metrics.sync_ended(True)  # told twice of the same sync: its phases are not observed again
    after = Scrape(metrics.text())

    for f, failed, success in ((before, 0, 0), (after, 1, 2)):
        assert f.value("updatesync_syncs_total", site="CS1", result="failed") == failed
        assert f.value("updatesync_syncs_total", site="CS1", result="success") == success
    assert state_of(after) == 6702
    assert after.value("updatesync_sync_state", site="CS1", state="6703", name="failed") == 0
    wsus = {"site": "CS1", "phase": "update_server"}
    sitedb = {"site": "CS1", "phase": "site_database"}
    assert after.value("updatesync_sync_duration_seconds_count", **wsus) == 2
    assert after.value("updatesync_sync_duration_seconds_sum", **wsus) == 38 + 399
    assert after.value("updatesync_sync_duration_seconds_count", **sitedb) == 1
    assert after.value("updatesync_sync_duration_seconds_sum", **sitedb) == 10
    buckets = {
        float(dict(k)["le"]): v
        for k, v in after.where("updatesync_sync_duration_seconds_bucket", **wsus).items()
    }
    assert sorted(buckets) == [*map(float, DURATION_BUCKETS), float("inf")]
    assert buckets[30] == 0 and buckets[60] == 1 and buckets[300] == 1 and buckets[600] == 2
    assert after.value("updatesync_sync_duration_seconds_bucket", **sitedb, le="5.0") == 0
    assert after.value("updatesync_sync_duration_seconds_bucket", **sitedb, le="15.0") == 1
    assert after.value("updatesync_sync_duration_seconds_count", site="CS1", phase="replicas") == 0
    assert after.value("updatesync_last_sync_duration_seconds", site="CS1") == 410


def test_the_values_of_a_recorded_sync(db: SiteDatabase) -> None:
    db.sups.replace([SoftwareUpdatePoint(SUP), SoftwareUpdatePoint("cs1sys.contoso.com")])
    db.content.apply_ci_batch([_ci(1), _ci(2)], at=T - timedelta(days=1))  # an earlier sync's CIs
    _message(db, 6701, T)
    _message(db, 6704, T + timedelta(seconds=10))
    _message(db, 6705, T + timedelta(seconds=70))
    change = db.content.apply_ci_batch(
        [_ci(1), _ci(2, revision=101), _ci(3), _ci(4), _ci(5)], at=T + timedelta(seconds=80)
    )
    assert (change.inserted, change.updated, change.unchanged) == (3, 1, 1)
    done = T + timedelta(seconds=100, milliseconds=500)
    _message(db, 6702, done)
    _message(db, 6706, done + timedelta(seconds=1), state=False)  # replicas after 6702 (top)
    db.sups.set_sync_status(
        SUPSyncStatus(
            "CS1",
            SUP,
            "Microsoft Update",
            last_sync_state=6702,
            last_sync_state_time=done,
            last_successful_sync_time=done,
        )
    )
    db.sups.set_sync_status(SUPSyncStatus("CS1", "cs1sys.contoso.com", SUP, last_sync_state=6703))
    db.alerts.raise_alert(AlertType.SYNC_FAILURE, "cs1sys.contoso.com", at=done)
    # The next sync has started and is in its first phase.
    _message(db, 6701, T + timedelta(hours=1))
    _message(db, 6704, T + timedelta(hours=1, seconds=5))

    f = scrape(db, "cs1", now=T + timedelta(hours=2))
    site = {"site": "CS1"}
    assert state_of(f) == 6704
    assert f.value("updatesync_sync_state", **site, state="6704", name="update server") == 1
    assert (
        f.value("updatesync_last_sync_state_timestamp_seconds", **site)
        == (T + timedelta(hours=1, seconds=5)).timestamp()
    )
    assert f.value("updatesync_last_successful_sync_timestamp_seconds", **site) == done.timestamp()
    assert f.value("updatesync_last_successful_sync_age_seconds", **site) == 7200 - 100.5
    assert f.value("updatesync_content_version", **site, update_source=MICROSOFT_UPDATE) == 2
    assert f.series("updatesync_last_sync_duration_seconds") == {(("site", "CS1"),): 100.5}
    assert f.value("updatesync_phase_duration_seconds", **site, phase="update_server") == 60
    assert f.value("updatesync_phase_duration_seconds", **site, phase="site_database") == 30.5
    # The replicas' end is not known.
    assert not f.has("updatesync_phase_duration_seconds", **site, phase="replicas")
    # The CIs the last finished sync wrote: 3 new and 1 changed (not the unchanged one, not
    # the earlier sync's).
    assert f.series("updatesync_phase_items") == {(("phase", "site_database"), ("site", "CS1")): 4}
    assert state_of(f, "updatesync_sup_sync_state", **site, sup=SUP) == 6702
    assert state_of(f, "updatesync_sup_sync_state", **site, sup="cs1sys.contoso.com") == 6703
    success = f.series("updatesync_sup_last_successful_sync_timestamp_seconds")
    assert success == {(("site", "CS1"), ("sup", SUP)): done.timestamp()}
    assert f.value("updatesync_alerts_raised", **site, type="sync_failure") == 1
    assert f.value("updatesync_alerts_raised", **site, type="sync_overdue") == 0
    assert f.series("updatesync_replication_link_status") == {}


def test_a_failed_sync_is_timed_to_its_6703(db: SiteDatabase) -> None:
    _message(db, 6701, T)
    _message(db, 6704, T + timedelta(seconds=3))
    _message(db, 6703, T + timedelta(seconds=45))
    f = scrape(db, now=T + timedelta(minutes=1))
    assert state_of(f) == 6703
    assert f.value("updatesync_sync_state", site="CS1", state="6703", name="failed") == 1
    assert f.value("updatesync_last_sync_duration_seconds", site="CS1") == 45
    assert f.value("updatesync_phase_duration_seconds", site="CS1", phase="update_server") == 42
    assert f.series("updatesync_last_successful_sync_age_seconds") == {}


def test_a_child_site_shows_its_replication_link(tmp_path: Path) -> None:
    with SiteDatabase.open(tmp_path / "PS1", site_code="PS1") as ps1:
        ps1.replication.record_check("CS1", 1, "refused", at=T)
        ps1.alerts.raise_alert(AlertType.REPLICATION_LINK_DEGRADED, "CS1", at=T)
        f = scrape(ps1, "PS1")
        assert f.series("updatesync_replication_link_status") == {
            (("parent", "CS1"), ("site", "PS1")): 1
        }
        assert f.value("updatesync_alerts_raised", site="PS1", type="replication_link_degraded")


# -- a real sync, scraped over HTTP ------------------------------------------------------------


@pytest.fixture
def top_site(tmp_path: Path) -> Iterator[TopLevelSite]:
    with top_level_site(tmp_path, updates=60, seed=62) as site:
        yield site


def test_a_real_failed_sync_and_its_retry_over_http(top_site: TopLevelSite) -> None:
    """A real top-level sync that fails (its SUP does not answer), then its retry; the site
    server tells the metrics as each sync ends, as `roles/site.py` does."""
    db = top_site.db
    clock = {"now": T}
    metrics = SiteMetrics(db, "CS1", clock=lambda: clock["now"])
    top_site.redirect("http://127.0.0.1:9")  # nothing listens there
    failed = top_site.manager.run("SELF")
    assert not failed.succeeded
    metrics.sync_ended(failed.succeeded)
    top_site.redirect(None)
    first = top_site.manager.run("SELF", retry=True)
    assert first.succeeded, first.error
    metrics.sync_ended(first.succeeded)
    assert first.cis_changed > 0
    status = db.sync.status()
    assert status.last_successful_sync_time is not None
    clock["now"] = status.last_successful_sync_time + timedelta(minutes=10)
    app = Starlette(routes=[metrics.route()])
    with BackgroundServer(app) as server:
        answer = httpx.get(f"{server.url}/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        f = Scrape(answer.text)
        messages: dict[int, datetime] = {}
        for m in db.messages.find(site_code="CS1"):  # the newest first: the retry's
            messages.setdefault(m.message_id, m.time)
        site = {"site": "CS1"}
        assert f.value("updatesync_syncs_total", **site, result="failed") == 1
        assert f.value("updatesync_syncs_total", **site, result="success") == 1
        assert state_of(f) == 6702
        assert f.value("updatesync_sync_state", **site, state="6702", name="done") == 1
        assert f.value("updatesync_last_successful_sync_age_seconds", **site) == 600
        assert (
            f.value("updatesync_content_version", **site, update_source=MICROSOFT_UPDATE)
            == db.content.version()
        )
        assert f.value("updatesync_last_sync_duration_seconds", **site) == pytest.approx(
            (messages[6702] - messages[6701]).total_seconds()
        )
        site_database = (messages[6702] - messages[6705]).total_seconds()
        assert f.value(
            "updatesync_phase_duration_seconds", **site, phase="site_database"
        ) == pytest.approx(site_database)
        # Both syncs reached the update server phase; only the retry the site database's.
        wsus = {"site": "CS1", "phase": "update_server"}
        assert f.value("updatesync_sync_duration_seconds_count", **wsus) == 2
        sitedb = {"site": "CS1", "phase": "site_database"}
        assert f.value("updatesync_sync_duration_seconds_count", **sitedb) == 1
        assert f.value("updatesync_sync_duration_seconds_sum", **sitedb) == pytest.approx(
            site_database
        )
        # The CIs the site-database phase wrote, as the sync manager counted them.
        assert f.value("updatesync_phase_items", **site, phase="site_database") == (
            first.cis_changed
        )
        assert state_of(f, "updatesync_sup_sync_state", **site, sup=SUP) == 6702
        assert f.value("updatesync_alerts_raised", **site, type="sync_failure") == 0

        second = top_site.manager.run("SELF")  # nothing changed upstream
        assert second.succeeded and second.cis_changed == 0
        metrics.sync_ended(second.succeeded)
        again = Scrape(httpx.get(f"{server.url}/metrics").text)
        assert again.value("updatesync_phase_items", **site, phase="site_database") == 0
        assert again.value("updatesync_syncs_total", **site, result="success") == 2
        assert again.value("updatesync_sync_duration_seconds_count", **sitedb) == 2
        openmetrics = httpx.get(
            f"{server.url}/metrics", headers={"accept": "application/openmetrics-text"}
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.endswith("# EOF\n")
        assert httpx.post(f"{server.url}/metrics").status_code == 405
