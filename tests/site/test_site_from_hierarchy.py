"""A top-level site run from a hierarchy file, through the roles: its SUP, upstream,
criteria, schedule, retry and logs are the file's."""

from __future__ import annotations

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
