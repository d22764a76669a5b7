"""A top-level site run from a hierarchy file, through the roles: its SUP, upstream,
criteria, schedule, retry and logs are the file's."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.config import load_hierarchy
from updatesync.logs.cmtrace import read_cmtrace
from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.roles import RoleContext, SiteRole, SupRole, on_loopback, parse_role, start_roles
from updatesync.roles.serving import BackgroundServer
from updatesync.security.access import read_token_file
from updatesync.security.signing import create_secret
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.service import create_app

HIERARCHY = """
[hierarchy]
name = "Test"
data_dir = "data"
retry_interval = "45m"
schedule = "1d"

[hierarchy.logs]
max_size = "1MB"
tz_bias = 480

[hierarchy.upstream]
kind = "wsus"
url = "{upstream}"

[hierarchy.criteria]
classifications = ["0fa1201d-4330-4fa8-8ae9-b877473b6441"]
products = [{products}]
languages = ["en"]

[[sites]]
code = "CS1"
fqdn = "cs1site.contoso.com"
type = "cas"

[[sites.sups]]
fqdn = "cs1site.contoso.com"
"""


def test_the_top_site_of_a_hierarchy_file_syncs_as_the_file_says(tmp_path: Path) -> None:
    write_export(tmp_path / "m1.cab", generate_catalog(400, seed=81))
    mu = UpdateStore.open(tmp_path / "mu")
    import_export_cabinet(mu, tmp_path / "m1.cab")
    product_ids = tuple(c.update_id for c in mu.categories("Product"))
    products = ", ".join(f'"{p}"' for p in product_ids)
    with BackgroundServer(create_app(StoreBackend(mu))) as up:
        path = tmp_path / "hierarchy.toml"
        path.write_text(HIERARCHY.format(upstream=up.url, products=products))
        hierarchy, socks = on_loopback(load_hierarchy(path))
        assert hierarchy.data_dir == tmp_path / "data"
        context = RoleContext(hierarchy, create_secret(hierarchy.secret_path))
        roles = start_roles(context, parse_role(hierarchy, "all"), socks=socks)
        try:
            (sup,) = [r for r in roles if isinstance(r, SupRole)]
            (site,) = [r for r in roles if isinstance(r, SiteRole)]
            assert sup.upstream() == up.url
            assert sup.data == tmp_path / "data" / "cs1site.contoso.com"
            assert site.server.next_scheduled is not None
            assert site.server.retry == timedelta(minutes=45)
            settings = site.server.manager.settings
            assert settings.retry_minutes == 45
            assert settings.products == product_ids
            assert settings.classifications == ("0fa1201d-4330-4fa8-8ae9-b877473b6441",)
            assert settings.languages == ("en",)
            assert site.server.manager.log.file.max_bytes == 1 << 20
            token = read_token_file(site.admin_token_file)
            answer = httpx.post(
                f"{site.url}/api/sites/CS1/sync",
                json={"full": False},
                headers={"authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 202, answer.text
            assert site.wait_for_sync(1, 60)
            assert site.results[-1].succeeded, site.results[-1].error
            assert site.db.content.ci_count() > 0
            entries = list(read_cmtrace(tmp_path / "data" / "CS1" / "logs" / "WSyncMgr.log"))
            assert {e.bias_minutes for e in entries} == {480}
        finally:
            for role in reversed(roles):
                role.stop()
    mu.close()


def test_serve_refuses_a_bad_file_with_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "hierarchy.toml"
    path.write_text(
        HIERARCHY.format(upstream="http://127.0.0.1:1", products="").replace(
            'code = "CS1"', 'code = "CS1X"'
        )
    )
    result = CliRunner().invoke(app, ["serve", str(path), "--role", "site:CS1"])
    assert result.exit_code == 1
    assert "sites[0].code" in result.output


CHILD = """
[[sites]]
code = "PS1"
fqdn = "ps1site.contoso.com"
type = "primary"
parent = "CS1"

[[sites.sups]]
fqdn = "ps1site.contoso.com"
"""


def test_a_child_raises_its_link_alert_as_soon_as_its_parent_cannot_be_reached(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hierarchy.toml"
    windows_10 = '"a3c2375d-0c8a-42f9-bce0-28333e198407"'
    path.write_text(HIERARCHY.format(upstream="http://127.0.0.1:1", products=windows_10) + CHILD)
    hierarchy, socks = on_loopback(load_hierarchy(path))
    context = RoleContext(hierarchy, create_secret(hierarchy.secret_path))
    cs1, ps1 = start_roles(context, ["site:CS1", "site:PS1"], socks=socks)
    try:
        assert isinstance(ps1, SiteRole) and ps1.replicator is not None
        ps1.replicator.catch_up(timeout=60)  # the link is healthy, the watcher's first round done
        cs1.stop()
        ps1.replicator.poke()
        # The alert watcher looks every 60 s on its own; the link's new status wakes it now.
        deadline = time.monotonic() + 20
        while not _link_alerts(ps1) and time.monotonic() < deadline:
            threading.Event().wait(0.1)  # the watcher's thread writes it: nothing to await
        alerts = _link_alerts(ps1)
        assert len(alerts) == 1, f"PS1's link alerts 20 s after its parent went: {alerts}"
        alert = alerts[0]
        assert alert.state.value == "raised" and alert.instance == "CS1"
        assert "degraded" in alert.text
    finally:
        ps1.stop()
        cs1.stop()


def _link_alerts(site: SiteRole) -> list:
    return [
        a
        for a in site.db.alerts.find(site_code="PS1")
        if a.alert_type.value == "replication_link_degraded"
    ]
