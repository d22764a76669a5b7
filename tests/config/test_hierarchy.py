"""A loaded hierarchy (the shipped example): its sites, their nesting and SUPs, the
settings of the top-level site, folders, and where each SUP syncs from."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hierarchy_text import (
    CRITICAL_UPDATES,
    DEFINITION_UPDATES,
    EXAMPLE,
    SECURITY_UPDATES,
    WINDOWS_10,
)

from updatesync.config import (
    MICROSOFT_UPDATE_URL,
    Hierarchy,
    IntervalSchedule,
    load_hierarchy,
)


@pytest.fixture(scope="module")
def example() -> Hierarchy:
    return load_hierarchy(EXAMPLE)


def test_example_structure(example: Hierarchy) -> None:
    assert example.name == "Contoso"
    assert example.source == str(EXAMPLE)
    assert example.data_dir == EXAMPLE.parent / "data"
    assert [s.code for s in example.sites] == ["CS1", "PS1", "PS2", "SS1"]
    assert example.top.code == "CS1"
    assert example.top.type == "cas"
    assert example.site("ps1").type == "primary"
    assert example.site("SS1").type == "secondary"
    assert [s.code for s in example.children("CS1")] == ["PS1", "PS2"]
    assert [s.code for s in example.children("PS1")] == ["SS1"]
    assert example.children("SS1") == ()
    assert example.parent("CS1") is None
    assert example.parent("SS1") == example.site("PS1")
    assert [s.code for s in example.walk()] == ["CS1", "PS1", "PS2", "SS1"]
    assert [sup.fqdn for sup in example.site("PS1").sups] == [
        "ps1site.contoso.com",
        "ps1sys.contoso.com",
    ]
    default = example.default_sup("PS1")
    assert default is not None and default.fqdn == "ps1site.contoso.com"
    assert [sup.fqdn for sup in example.replicas("PS1")] == ["ps1sys.contoso.com"]
    assert example.replicas("CS1") == ()
    assert all(sup.port == 8530 and not sup.https for s in example.sites for sup in s.sups)
    assert len(example.site("SS1").sups) == 1


def test_example_settings(example: Hierarchy) -> None:
    assert example.upstream.kind == "microsoft-update"
    assert example.upstream.url == MICROSOFT_UPDATE_URL
    assert set(example.criteria.classifications) == {
        SECURITY_UPDATES,
        CRITICAL_UPDATES,
        DEFINITION_UPDATES,
    }
    assert WINDOWS_10 in example.criteria.products
    assert example.criteria.languages == ("en",)
    assert isinstance(example.schedule, IntervalSchedule)
    assert example.schedule.interval == timedelta(days=1)
    assert example.schedule.next_run(datetime(2014, 1, 16, 18, 53)) == datetime(2014, 1, 17, 2)
    assert example.retry_interval == timedelta(minutes=60)
    assert example.logs.max_bytes == 5 * 1024 * 1024
    assert example.logs.tz_bias == "local"


def test_example_folders(example: Hierarchy) -> None:
    data = EXAMPLE.parent / "data"
    assert example.log_dir("cs1") == data / "CS1" / "logs"
    assert example.log_dir("SS1") == data / "SS1" / "logs"
    assert example.update_server_dir("PS1SYS.CONTOSO.COM") == data / "ps1sys.contoso.com"
    with pytest.raises(KeyError, match="no software update point"):
        example.update_server_dir("nowhere.contoso.com")
    with pytest.raises(KeyError, match=r"no site 'XX1'.*CS1, PS1, PS2, SS1"):
        example.site("XX1")


@pytest.mark.parametrize(
    ("site", "sup", "upstream"),
    [
        ("CS1", "cs1site.contoso.com", MICROSOFT_UPDATE_URL),
        ("PS1", "ps1site.contoso.com", "http://cs1site.contoso.com:8530"),
        ("PS1", "ps1sys.contoso.com", "http://ps1site.contoso.com:8530"),
        ("PS2", "ps2site.contoso.com", "http://cs1site.contoso.com:8530"),
        ("SS1", "ss1site.contoso.com", "http://ps1site.contoso.com:8530"),
    ],
)
def test_example_sup_upstream(example: Hierarchy, site: str, sup: str, upstream: str) -> None:
    assert example.sup_upstream(site, sup) == upstream
    # Objects and any case work as well as codes and names.
    found_site, found_sup = example.find_sup(sup.upper())
    assert found_site.code == site
    assert example.sup_upstream(found_site, found_sup) == upstream


def test_every_example_sup_has_an_upstream(example: Hierarchy) -> None:
    for site in example.walk():
        for sup in site.sups:
            assert example.sup_upstream(site, sup)


def test_sup_upstream_of_a_sup_elsewhere_is_refused(example: Hierarchy) -> None:
    with pytest.raises(KeyError, match="site PS2 has no software update point"):
        example.sup_upstream("PS2", "ps1sys.contoso.com")


def test_example_alert_settings(example: Hierarchy) -> None:
    assert example.alerts.overdue_after == timedelta(days=2)
    assert example.alerts.webhooks == ()
