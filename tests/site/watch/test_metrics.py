"""`GET /metrics`: the Prometheus text format (read back by a strict parser written here) with
the values of a sync recorded by hand, and of a real top-level sync served over loopback."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from top_site import top_level_site

from updatesync.logs.status_messages import new_status_message
from updatesync.roles.serving import BackgroundServer
from updatesync.site.database.models import (
    MICROSOFT_UPDATE,
    ConfigurationItem,
    SoftwareUpdatePoint,
    SUPSyncStatus,
)
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.sync.sync_manager import SyncManager
from updatesync.site.watch.alerts import AlertType
from updatesync.site.watch.metrics import (
    CONTENT_TYPE,
    Family,
    metrics_route,
    render,
    render_metrics,
)

T = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SUP = "cs1site.contoso.com"
SECURITY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
CRITICAL = "e6cf1350-c01b-414d-a61f-263d14d133b4"
FAMILIES = {
    "updatesync_last_sync_state",
    "updatesync_last_sync_state_timestamp_seconds",
    "updatesync_last_successful_sync_timestamp_seconds",
    "updatesync_last_successful_sync_age_seconds",
    "updatesync_content_version",
    "updatesync_sync_duration_seconds",
    "updatesync_phase_duration_seconds",
    "updatesync_phase_items",
    "updatesync_sup_last_sync_state",
    "updatesync_sup_last_successful_sync_timestamp_seconds",
    "updatesync_replication_link_status",
    "updatesync_alerts_raised",
}


# -- a strict reader of the text format 0.0.4 ------------------------------------------------

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


@dataclass
class Parsed:
    help: str
    type: str | None = None
    samples: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)

    def value(self, **labels: str) -> float:
        return self.samples[tuple(sorted(labels.items()))]

    def has(self, **labels: str) -> bool:
        return tuple(sorted(labels.items())) in self.samples


def _unescape(text: str, quote: bool) -> str:
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            following = text[i + 1]
            allowed = {"\\": "\\", "n": "\n", **({'"': '"'} if quote else {})}
            assert following in allowed, f"bad escape \\{following} in {text!r}"
            out.append(allowed[following])
            i += 2
            continue
        assert char != "\n"
        out.append(char)
        i += 1
    return "".join(out)


def _labels(text: str) -> tuple[tuple[str, str], ...]:
    labels: dict[str, str] = {}
    i = 0
    while i < len(text):
        name = _LABEL_NAME.match(text, i)
        assert name is not None, f"label name expected at {text[i:]!r}"
        i = name.end()
        assert text[i : i + 2] == '="', f"'=\"' expected after {name.group()}"
        i += 2
        start = i
        while text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        value = _unescape(text[start:i], quote=True)
        i += 1
        assert name.group() not in labels, f"label {name.group()} twice"
        labels[name.group()] = value
        if i < len(text):
            assert text[i] == ",", f"',' expected at {text[i:]!r}"
            i += 1
    return tuple(sorted(labels.items()))


def parse_prometheus(text: str) -> dict[str, Parsed]:
    """Every family, with HELP and TYPE given once and before its samples, every sample a
    known family's, no series twice, values numbers."""
    assert text.endswith("\n"), "the exposition ends with a line feed"
    families: dict[str, Parsed] = {}
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            assert _NAME.fullmatch(name) and name not in families, line
            families[name] = Parsed(_unescape(help_text, quote=False))
        elif line.startswith("# TYPE "):
            name, kind = line[len("# TYPE ") :].split(" ")
            family = families[name]
            assert family.type is None and not family.samples, line
            assert kind in _TYPES, line
            family.type = kind
        elif line.startswith("#") or not line.strip():
            continue
        else:
            match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
            assert match is not None, f"not a sample line: {line!r}"
            name, labels, value = match.groups()
            family = families[name]
            assert family.type == "gauge", line
            key = _labels(labels or "")
            assert key not in family.samples, f"series twice: {line}"
            number = float(value)  # also NaN, +Inf, -Inf
            assert not math.isnan(number) or value == "NaN"
            family.samples[key] = number
    return families


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
    families = parse_prometheus(render_metrics(db, "CS1", now=T))
    assert set(families) == FAMILIES
    assert all(f.help and f.type == "gauge" for f in families.values())
    for name in (
        "updatesync_last_sync_state",
        "updatesync_last_successful_sync_timestamp_seconds",
        "updatesync_last_successful_sync_age_seconds",
        "updatesync_sync_duration_seconds",
        "updatesync_phase_items",
        "updatesync_replication_link_status",
    ):
        assert families[name].samples == {}, name
    content = families["updatesync_content_version"]
    assert content.samples == {(("site", "CS1"), ("update_source", MICROSOFT_UPDATE)): 0}
    assert {
        dict(k)["type"]: v for k, v in families["updatesync_alerts_raised"].samples.items()
    } == {kind.value: 0 for kind in AlertType}


def test_the_site_server_gives_the_update_server_phase_items(db: SiteDatabase) -> None:
    text = render_metrics(db, "CS1", now=T, phase_counts=lambda: {"update_server": 130})
    items = parse_prometheus(text)["updatesync_phase_items"].samples
    assert items == {(("phase", "update_server"), ("site", "CS1")): 130}


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

    now = T + timedelta(hours=2)
    f = parse_prometheus(render_metrics(db, "cs1", now=now))
    site = {"site": "CS1"}
    assert f["updatesync_last_sync_state"].value(**site) == 6704
    assert (
        f["updatesync_last_sync_state_timestamp_seconds"].value(**site)
        == (T + timedelta(hours=1, seconds=5)).timestamp()
    )
    assert f["updatesync_last_successful_sync_timestamp_seconds"].value(**site) == done.timestamp()
    assert f["updatesync_last_successful_sync_age_seconds"].value(**site) == 7200 - 100.5
    assert f["updatesync_content_version"].value(**site, update_source=MICROSOFT_UPDATE) == 2
    assert f["updatesync_sync_duration_seconds"].samples == {(("site", "CS1"),): 100.5}
    phases = f["updatesync_phase_duration_seconds"]
    assert phases.value(**site, phase="update_server") == 60
    assert phases.value(**site, phase="site_database") == 30.5
    assert not phases.has(**site, phase="replicas")  # its end is not known
    # The CIs the last finished sync wrote: 3 new and 1 changed (not the unchanged one, not
    # the earlier sync's).
    assert f["updatesync_phase_items"].samples == {(("phase", "site_database"), ("site", "CS1")): 4}
    sups = f["updatesync_sup_last_sync_state"]
    assert sups.value(**site, sup=SUP) == 6702
    assert sups.value(**site, sup="cs1sys.contoso.com") == 6703
    success = f["updatesync_sup_last_successful_sync_timestamp_seconds"]
    assert success.samples == {(("site", "CS1"), ("sup", SUP)): done.timestamp()}
    alerts = f["updatesync_alerts_raised"]
    assert alerts.value(**site, type="sync_failure") == 1
    assert alerts.value(**site, type="sync_overdue") == 0
    assert f["updatesync_replication_link_status"].samples == {}


def test_a_failed_sync_is_timed_to_its_6703(db: SiteDatabase) -> None:
    _message(db, 6701, T)
    _message(db, 6704, T + timedelta(seconds=3))
    _message(db, 6703, T + timedelta(seconds=45))
    f = parse_prometheus(render_metrics(db, "CS1", now=T + timedelta(minutes=1)))
    assert f["updatesync_last_sync_state"].value(site="CS1") == 6703
    assert f["updatesync_sync_duration_seconds"].value(site="CS1") == 45
    assert f["updatesync_phase_duration_seconds"].value(site="CS1", phase="update_server") == 42
    assert f["updatesync_last_successful_sync_age_seconds"].samples == {}


def test_a_child_site_shows_its_replication_link(tmp_path: Path) -> None:
    with SiteDatabase.open(tmp_path / "PS1", site_code="PS1") as ps1:
        ps1.replication.record_check("CS1", 1, "refused", at=T)
        ps1.alerts.raise_alert(AlertType.REPLICATION_LINK_DEGRADED, "CS1", at=T)
        f = parse_prometheus(render_metrics(ps1, "PS1", now=T))
        assert f["updatesync_replication_link_status"].samples == {
            (("parent", "CS1"), ("site", "PS1")): 1
        }
        assert (
            f["updatesync_alerts_raised"].value(site="PS1", type="replication_link_degraded") == 1
        )


def test_help_and_label_values_are_escaped() -> None:
    family = Family("x_total", 'back\\slash and\nline "quoted"')
    family.add(1.25, where='C:\\logs\n"x"', site="CS1")
    family.add(float("nan"), site="PS1")
    family.add(float("inf"), site="PS2")
    family.add(None, site="PS3")  # unknown: no sample
    parsed = parse_prometheus(render([family]))["x_total"]
    assert parsed.help == 'back\\slash and\nline "quoted"'
    assert parsed.value(where='C:\\logs\n"x"', site="CS1") == 1.25
    assert math.isnan(parsed.value(site="PS1"))
    assert parsed.value(site="PS2") == math.inf
    assert not parsed.has(site="PS3")


# -- a real sync, scraped over HTTP ------------------------------------------------------------


@dataclass
class TopSite:
    db: SiteDatabase
    manager: SyncManager


@pytest.fixture
def top_site(tmp_path: Path) -> Iterator[TopSite]:
    with top_level_site(tmp_path, updates=60, seed=62) as site:
        yield TopSite(site.db, site.manager)


def test_metrics_of_a_real_sync_over_http(top_site: TopSite) -> None:
    db = top_site.db
    first = top_site.manager.run("SELF")
    assert first.succeeded, first.error
    assert first.cis_changed > 0
    status = db.sync.status()
    assert status.last_successful_sync_time is not None
    scrape_time = status.last_successful_sync_time + timedelta(minutes=10)
    app = Starlette(routes=[metrics_route(db, "CS1", clock=lambda: scrape_time)])
    with BackgroundServer(app) as server:
        answer = httpx.get(f"{server.url}/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == CONTENT_TYPE
        f = parse_prometheus(answer.text)
        messages = {m.message_id: m.time for m in db.messages.find(site_code="CS1")}
        site = {"site": "CS1"}
        assert f["updatesync_last_sync_state"].value(**site) == 6702
        assert f["updatesync_last_successful_sync_age_seconds"].value(**site) == 600
        assert (
            f["updatesync_content_version"].value(**site, update_source=MICROSOFT_UPDATE)
            == db.content.version()
        )
        assert f["updatesync_sync_duration_seconds"].value(**site) == pytest.approx(
            (messages[6702] - messages[6701]).total_seconds()
        )
        assert f["updatesync_phase_duration_seconds"].value(
            **site, phase="site_database"
        ) == pytest.approx((messages[6702] - messages[6705]).total_seconds())
        # The CIs the site-database phase wrote, as the sync manager counted them.
        assert f["updatesync_phase_items"].value(**site, phase="site_database") == (
            first.cis_changed
        )
        assert f["updatesync_sup_last_sync_state"].value(**site, sup=SUP) == 6702
        assert f["updatesync_alerts_raised"].value(**site, type="sync_failure") == 0

        second = top_site.manager.run("SELF")  # nothing changed upstream
        assert second.succeeded and second.cis_changed == 0
        again = parse_prometheus(httpx.get(f"{server.url}/metrics").text)
        assert again["updatesync_phase_items"].value(**site, phase="site_database") == 0
        assert httpx.post(f"{server.url}/metrics").status_code == 405
