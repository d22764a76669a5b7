"""What a role's process loads: a SUP's process (`serve FILE --role sup:FQDN`) loads the
update server's modules, not the site server's stack or the console's (together about 20 MiB
of every SUP process, whose peak memory has a goal of 150 MiB)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from updatesync.demo import example_hierarchy
from updatesync.roles import loopback_file

SITE_AND_CONSOLE = (
    "fastapi",
    "jinja2",
    "updatesync.console",
    "updatesync.roles.console",
    "updatesync.roles.site",
    "updatesync.site.api",
)


def test_a_sup_process_loads_no_site_server_and_no_console(tmp_path: Path) -> None:
    file = tmp_path / "hierarchy.toml"
    loopback_file(
        example_hierarchy(),
        file,
        settings={"data_dir": tmp_path / "data", "secret_file": tmp_path / "hierarchy.secret"},
    )
    probe = (
        "import sys\n"
        "from updatesync.config import load_hierarchy\n"
        "from updatesync.roles import RoleContext, start_roles\n"
        "from updatesync.security.signing import create_secret\n"
        f"hierarchy = load_hierarchy({str(file)!r})\n"
        "context = RoleContext(hierarchy, create_secret(hierarchy.secret_path))\n"
        "(sup,) = start_roles(context, ['sup:cs1site.contoso.com'])\n"
        "sup.stop()\n"
        f"print('loaded:', *sorted(m for m in {SITE_AND_CONSOLE!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "loaded:"
