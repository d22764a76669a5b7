"""Users, security roles and tokens on every admin surface, against real running roles.

The hostile test of issue 11 found that anyone who can reach the SMS Provider's port can
start a sync of the whole hierarchy (`POST /api/sites/CS1/sync`, no credential), and that a
standalone `updateserver serve`'s `POST /api/sync` takes any body as JSON whatever its
Content-Type (a page in a local browser could replace the subscription: CSRF). Each test
here names the finding or the delivered item it holds.

The article's hierarchy runs in this process (`InProcessHierarchy`: CS1 → PS1 → SS1, PS2),
every role on its own loopback port; the first start of CS1 wrote the Full Administrator's
token to its data folder.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from hierarchy_inprocess import InProcessHierarchy
from scrape import Scrape
from typer.testing import CliRunner

from updatesync.cli import app
from updatesync.config import Hierarchy, SecuritySettings
from updatesync.logs.cmtrace import read_cmtrace
from updatesync.roles.supervisor import updatesync_command
from updatesync.security.access import (
    Permission,
    SecurityRole,
    TokenFileError,
    TokenVerifier,
    hash_password,
    load_or_create_token_file,
    needed_role,
    new_token,
    parse_role,
    read_token_file,
    split_token,
    verify_password,
)
from updatesync.security.signing import HmacAuth, create_secret
from updatesync.site.api.provider import SYNC_NOW_LOG_LINE
from updatesync.updateserver.store import UpdateStore


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHierarchy]:
    # The token checks over plain HTTP (TLS has tests of its own; the every-role-its-own-
    # process hierarchy runs with both).
    with InProcessHierarchy(tmp_path_factory.mktemp("access"), updates=60, tls=False) as running:
        yield running


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _sync_now_lines(h: InProcessHierarchy) -> int:
    log = h.site("CS1").log_dir / "SMSProv.log"
    if not log.exists():
        return 0
    return sum(e.message == SYNC_NOW_LOG_LINE for e in read_cmtrace(log))


def _user_with_token(h: InProcessHierarchy, name: str, role: str) -> str:
    """Add the user at CS1 (as the Full Administrator) and make it a token."""
    url = h.url("CS1")
    added = httpx.post(
        f"{url}/api/users", json={"name": name, "role": role}, headers=h.admin(), timeout=30
    )
    assert added.status_code in (201, 409), added.text
    issued = httpx.post(f"{url}/api/tokens", json={"user": name}, headers=h.admin(), timeout=30)
    assert issued.status_code == 201, issued.text
    return str(issued.json()["token"])


def _replicate(h: InProcessHierarchy, *codes: str) -> None:
    """Bring each child's copy of the global data up to its parent's, in order."""
    for code in codes:
        replicator = h.site(code).replicator
        assert replicator is not None
        replicator.catch_up(30)


# -- the finding: a sync of the whole hierarchy by anyone ---------------------------------------


def test_an_unauthenticated_sync_request_is_refused_and_no_sync_starts(
    h: InProcessHierarchy,
) -> None:
    """Finding "unauthenticated writes": `POST /api/sites/CS1/sync` without a token
    started a full sync of the hierarchy. Now 401, nothing reaches SyncNow."""
    before = _sync_now_lines(h)
    url = f"{h.url('CS1')}/api/sites/CS1/sync"

    bare = httpx.post(url, json={"full": True}, timeout=30)
    forged = httpx.post(url, json={"full": True}, headers=_bearer("ust_0000"), timeout=30)
    unknown = httpx.post(
        url, json={"full": True}, headers=_bearer("ust_" + "0" * 16 + "_" + "x" * 43), timeout=30
    )

    for answer in (bare, forged, unknown):
        assert answer.status_code == 401, answer.text
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer <token>" in answer.json()["detail"]
    assert "no token" in bare.json()["detail"]
    assert _sync_now_lines(h) == before


def test_every_read_route_needs_a_token_too(h: InProcessHierarchy) -> None:
    for path in (
        "/api/sites/CS1/sync-status",
        "/api/sites/CS1/syncs",
        "/api/sites/CS1/sup-sync-status",
        "/api/status-messages",
        "/api/alerts",
        "/api/sites/CS1/cis",
        "/api/sites/CS1/content-version",
        "/api/users",
        "/api/tokens",
        "/api/whoami",
    ):
        assert httpx.get(h.url("CS1") + path, timeout=30).status_code == 401, path
    # The API's documentation stays open: it holds no data.
    assert httpx.get(h.url("CS1") + "/openapi.json", timeout=30).status_code == 200


def _sync_ends(h: InProcessHierarchy, done_before: int) -> None:
    """The sync a test asked for ends (succeeded) in that test, and the sites it notified are
    idle: none is left running into the next test or the module's teardown."""
    h.wait("CS1", done_before + 1)
    assert h.site("CS1").results[-1].succeeded
    h.wait_idle()


def test_the_full_administrators_token_starts_a_sync(h: InProcessHierarchy) -> None:
    before = _sync_now_lines(h)
    done = len(h.site("CS1").results)
    answer = httpx.post(
        f"{h.url('CS1')}/api/sites/CS1/sync", json={"full": False}, headers=h.admin(), timeout=30
    )

    assert answer.status_code == 202, answer.text
    assert _sync_now_lines(h) == before + 1
    _sync_ends(h, done)
    who = httpx.get(f"{h.url('CS1')}/api/whoami", headers=h.admin(), timeout=30).json()
    assert who == {"user": "admin", "role": "Full Administrator"}


def test_a_read_only_analyst_reads_but_cannot_sync(h: InProcessHierarchy) -> None:
    token = _user_with_token(h, "analyst", "read-only analyst")
    url = h.url("CS1")

    sync = httpx.post(
        f"{url}/api/sites/CS1/sync", json={"full": False}, headers=_bearer(token), timeout=30
    )
    status = httpx.get(f"{url}/api/sites/CS1/sync-status", headers=_bearer(token), timeout=30)
    messages = httpx.get(f"{url}/api/status-messages", headers=_bearer(token), timeout=30)

    assert sync.status_code == 403
    assert "Software Update Manager" in sync.json()["detail"]
    assert "Read-only Analyst" in sync.json()["detail"]
    assert status.status_code == 200 and status.json()["SiteCode"] == "CS1"
    assert messages.status_code == 200


def test_a_software_update_manager_syncs_but_cannot_add_users(h: InProcessHierarchy) -> None:
    token = _user_with_token(h, "patcher", "Software Update Manager")
    url = h.url("CS1")
    done = len(h.site("CS1").results)

    sync = httpx.post(
        f"{url}/api/sites/CS1/sync", json={"full": False}, headers=_bearer(token), timeout=30
    )
    add = httpx.post(
        f"{url}/api/users",
        json={"name": "intruder", "role": "Full Administrator"},
        headers=_bearer(token),
        timeout=30,
    )
    issue = httpx.post(
        f"{url}/api/tokens", json={"user": "admin"}, headers=_bearer(token), timeout=30
    )

    assert sync.status_code == 202, sync.text
    assert add.status_code == 403 and "Full Administrator" in add.json()["detail"]
    assert issue.status_code == 403
    assert h.db("CS1").users.get("intruder") is None
    _sync_ends(h, done)


# -- global data: one token at every site ---------------------------------------------------------


def test_a_token_made_at_cs1_works_at_every_site_after_database_replication(
    h: InProcessHierarchy,
) -> None:
    token = _user_with_token(h, "roamer", "Read-only Analyst")
    _replicate(h, "PS1", "SS1", "PS2")

    for code in ("PS1", "SS1", "PS2"):
        answer = httpx.get(
            f"{h.url(code)}/api/sites/{code}/sync-status", headers=_bearer(token), timeout=30
        )
        assert answer.status_code == 200, (code, answer.text)
        who = httpx.get(f"{h.url(code)}/api/whoami", headers=_bearer(token), timeout=30).json()
        assert who == {"user": "roamer", "role": "Read-only Analyst"}


def test_users_are_written_at_the_top_level_site_only(h: InProcessHierarchy) -> None:
    _replicate(h, "PS1")  # the admin user is known at PS1
    answer = httpx.post(
        f"{h.url('PS1')}/api/users",
        json={"name": "local", "role": "Read-only Analyst"},
        headers=h.admin(),
        timeout=30,
    )

    assert answer.status_code == 409
    assert "top-level site" in answer.json()["detail"]


def test_a_revoked_token_is_refused_here_at_once_and_at_a_child_after_replication(
    h: InProcessHierarchy,
) -> None:
    token = _user_with_token(h, "leaver", "Read-only Analyst")
    _replicate(h, "PS1")
    token_id = token.split("_")[1]
    path = "/api/sites/{0}/sync-status"
    assert httpx.get(h.url("PS1") + path.format("PS1"), headers=_bearer(token)).status_code == 200

    revoked = httpx.delete(f"{h.url('CS1')}/api/tokens/{token_id}", headers=h.admin())
    at_top = httpx.get(h.url("CS1") + path.format("CS1"), headers=_bearer(token))
    _replicate(h, "PS1")
    at_child = httpx.get(h.url("PS1") + path.format("PS1"), headers=_bearer(token))

    assert revoked.status_code == 200 and revoked.json()["id"] == token_id
    for answer in (at_top, at_child):
        assert answer.status_code == 401
        assert "revoked" in answer.json()["detail"]


def test_a_removed_users_tokens_stop_working(h: InProcessHierarchy) -> None:
    token = _user_with_token(h, "gone", "Software Update Manager")
    url = h.url("CS1")

    removed = httpx.delete(f"{url}/api/users/gone", headers=h.admin(), timeout=30)
    answer = httpx.get(f"{url}/api/whoami", headers=_bearer(token), timeout=30)
    last_admin = httpx.delete(f"{url}/api/users/admin", headers=h.admin(), timeout=30)

    assert removed.status_code == 200
    assert answer.status_code == 401
    assert last_admin.status_code == 409 and "last Full Administrator" in last_admin.text


# -- the Full Administrator of a new hierarchy ----------------------------------------------------


def test_the_admin_token_file_is_private_and_not_rewritten_on_restart(
    h: InProcessHierarchy,
) -> None:
    path = h.site("CS1").admin_token_file
    assert path == h.hierarchy.data_dir / "CS1" / "admin.token"
    first = path.read_text(encoding="utf-8")
    created = path.stat().st_mtime_ns

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert re.fullmatch(r"ust_[0-9a-f]{16}_[A-Za-z0-9_-]+\n", first)
    provider_log = [e.message for e in read_cmtrace(h.site("CS1").log_dir / "SMSProv.log")]
    assert any(str(path) in line and "Full Administrator" in line for line in provider_log)
    # No child site writes one: users are created at the top-level site.
    assert not (h.hierarchy.data_dir / "PS1" / "admin.token").exists()

    restarted = h.restart_role("site:CS1")

    assert isinstance(restarted, type(h.site("CS1")))
    assert restarted.admin_token_created is None
    assert path.read_text(encoding="utf-8") == first
    assert path.stat().st_mtime_ns == created
    again = httpx.get(f"{h.url('CS1')}/api/whoami", headers=h.admin(), timeout=30)
    assert again.status_code == 200
    assert len(h.db("CS1").users.tokens("admin")) == 1


# -- the hierarchy's own roles -------------------------------------------------------------------


def test_a_call_signed_with_the_hierarchys_secret_counts_as_the_system(
    h: InProcessHierarchy,
) -> None:
    """The console and the demo call the providers as roles of the hierarchy (signed)."""
    url = f"{h.url('PS1')}/api/sites/PS1/sync-status"
    signed = httpx.get(url, auth=h.signed("console"), timeout=30)
    forged = httpx.get(url, auth=HmacAuth(b"x" * 64, "console"), timeout=30)

    assert signed.status_code == 200
    assert forged.status_code == 401


def test_a_signed_call_to_the_provider_must_name_a_caller_of_the_hierarchy_and_this_host(
    h: InProcessHierarchy,
) -> None:
    """A signature proves only that the caller holds the secret: the provider also refuses a
    caller name the hierarchy does not know, and a call addressed to another server (as the
    site-to-site routes do)."""
    url = f"{h.url('PS1')}/api/sites/PS1/sync-status"
    stranger = httpx.get(url, auth=h.signed("intruder"), timeout=30)
    elsewhere = httpx.get(url, auth=h.signed("CS1"), headers={"host": "other.example"}, timeout=30)

    assert stranger.status_code == 401 and "intruder" in stranger.text
    assert elsewhere.status_code == 401 and "other.example" in elsewhere.text


def test_metrics_and_the_client_policy_are_open_by_default(h: InProcessHierarchy) -> None:
    assert httpx.get(f"{h.url('PS1')}/metrics", timeout=30).status_code == 200
    assert httpx.get(f"{h.url('PS1')}/policy/v1/software-update-points").status_code != 401


def test_the_file_can_ask_a_token_for_metrics_and_the_policy(tmp_path: Path) -> None:
    def locked(hierarchy: Hierarchy) -> Hierarchy:
        return replace(hierarchy, security=SecuritySettings(True, True))

    with InProcessHierarchy(tmp_path, updates=20, adjust=locked, tls=False) as locked_h:
        url = locked_h.url("CS1")
        policy = f"{locked_h.url('PS1')}/policy/v1/software-update-points"
        sup = locked_h.hierarchy.default_sup("CS1")
        assert sup is not None

        bare = httpx.get(f"{url}/metrics", timeout=30)
        with_token = httpx.get(f"{url}/metrics", headers=locked_h.admin(), timeout=30)
        bare_policy = httpx.get(policy, timeout=30)
        signed_policy = httpx.get(policy, auth=locked_h.signed("CS1"), timeout=30)
        # The SUP holds no tokens: it asks its site server whether it knows the one sent.
        sup_bare = httpx.get(f"{sup.url}/metrics", timeout=30)
        sup_forged = httpx.get(f"{sup.url}/metrics", headers=_bearer("usa_x_y"), timeout=30)
        # A sync of the hierarchy: CS1 counts it, CS1's SUP served PS1's SUP (downstream).
        locked_h.sync_now("CS1")
        locked_h.wait("CS1", 1)
        locked_h.wait("PS1", 1)
        site_after = Scrape(httpx.get(f"{url}/metrics", headers=locked_h.admin(), timeout=30).text)
        sup_after = httpx.get(f"{sup.url}/metrics", headers=locked_h.admin(), timeout=30)
        sup_docs = httpx.get(f"{sup.url}/openapi.json", timeout=30)

    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    assert with_token.status_code == 200 and "updatesync_" in with_token.text
    assert bare_policy.status_code == 401
    assert signed_policy.status_code != 401
    assert sup_bare.status_code == 401 and sup_bare.headers["www-authenticate"] == "Bearer"
    assert sup_forged.status_code == 401 and "does not know this token" in sup_forged.text
    assert site_after.value("updatesync_syncs_total", site="CS1", result="success") == 1
    assert site_after.value("updatesync_syncs_total", site="CS1", result="failed") == 0
    assert site_after.value("updatesync_sync_state", site="CS1", state="6702", name="done") == 1
    assert (
        site_after.value(
            "updatesync_sync_duration_seconds_count", site="CS1", phase="site_database"
        )
        == 1
    )
    assert sup_after.status_code == 200, sup_after.text
    served = Scrape(sup_after.text)
    for operation in ("GetCookie", "GetRevisionIdList", "GetUpdateData"):
        assert served.value("updatesync_wsusss_requests_total", operation=operation, fault="none")
    assert served.value("updatesync_update_server_downstream_servers", server=sup.fqdn) >= 1
    assert served.value("updatesync_update_server_syncs_total", server=sup.fqdn, result="success")
    assert sup_docs.status_code == 200 and "/api/sync" in sup_docs.json()["paths"]


# -- sessions (what the console signs in with) ---------------------------------------------------


def test_signing_in_gives_a_session_that_signing_out_ends(
    h: InProcessHierarchy, tmp_path: Path
) -> None:
    url = h.url("CS1")
    added = httpx.post(
        f"{url}/api/users",
        json={"name": "operator", "role": "Software Update Manager", "password": "correct horse"},
        headers=h.admin(),
        timeout=30,
    )
    assert added.status_code == 201, added.text

    wrong = httpx.post(f"{url}/api/sessions", json={"user": "operator", "password": "nope"})
    nobody = httpx.post(f"{url}/api/sessions", json={"user": "nobody", "password": "nope"})
    session = httpx.post(
        f"{url}/api/sessions", json={"user": "operator", "password": "correct horse"}
    )

    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json() == {"detail": "wrong user name or password"}
    assert session.status_code == 201
    body = session.json()
    assert body["user"] == "operator" and body["role"] == "Software Update Manager"
    token = body["token"]
    assert httpx.get(f"{url}/api/whoami", headers=_bearer(token)).json()["user"] == "operator"
    assert httpx.delete(f"{url}/api/sessions/current", headers=_bearer(token)).status_code == 204
    assert httpx.get(f"{url}/api/whoami", headers=_bearer(token)).status_code == 401


# -- the CLI -------------------------------------------------------------------------------------


def test_the_cli_manages_users_and_tokens_through_the_provider(
    h: InProcessHierarchy, tmp_path: Path
) -> None:
    provider = h.url("CS1")
    admin_file = str(h.site("CS1").admin_token_file)
    password = tmp_path / "password"
    password.write_text("a long enough password\n")
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args), env=env)
        return result.exit_code, result.stdout, result.stderr

    added = run(
        "user", "add", "Olga", "--role", "software-update-manager", "--password-file",
        str(password), "--provider", provider, "--token-file", admin_file,
    )  # fmt: skip
    listed = run("user", "list", "--provider", provider, env={"UPDATESYNC_TOKEN_FILE": admin_file})
    made = run("token", "new", "olga", "--provider", provider, "--token-file", admin_file)
    assert added[0] == 0, added
    assert "added user olga (Software Update Manager)" in added[1]
    assert listed[0] == 0 and "olga" in listed[1] and "Software Update Manager" in listed[1]
    assert made[0] == 0, made
    token = made[1].strip().splitlines()[-1]
    token_id = token.split("_")[1]
    assert f"API token {token_id} of user olga" in made[2]

    token_file = tmp_path / "olga.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o644)  # as `echo $TOKEN > FILE` leaves it: refused, saying what to do
    loose = run(
        "sync-now", "--site", "CS1", "--provider", provider, "--token-file", str(token_file)
    )
    assert loose[0] == 1 and f"chmod 600 {token_file}" in " ".join(loose[2].split()), loose
    token_file.chmod(0o600)
    synced = run(
        "sync-now", "--site", "CS1", "--provider", provider, "--token-file", str(token_file)
    )
    refused = run(
        "user", "add", "eve", "--role", "Full Administrator", "--password-file",
        str(password), "--provider", provider, "--token-file", str(token_file),
    )  # fmt: skip
    tokenless = run(
        "sync-now", "--site", "CS1", "--provider", provider, env={"HOME": str(tmp_path)}
    )
    assert synced[0] == 0 and "sync requested at CS1" in synced[1], synced
    assert refused[0] == 1 and "HTTP 403" in refused[2] and "Full Administrator" in refused[2]
    assert tokenless[0] == 1 and "HTTP 401" in tokenless[2] and "--token-file" in tokenless[2]

    revoked = run("token", "revoke", token_id, "--provider", provider, "--token-file", admin_file)
    after = run(
        "sync-now", "--site", "CS1", "--provider", provider, "--token-file", str(token_file)
    )
    removed = run("user", "remove", "olga", "--provider", provider, "--token-file", admin_file)
    bad_role = run("user", "add", "x", "--role", "superuser", "--provider", provider)
    assert revoked[0] == 0 and f"revoked token {token_id}" in revoked[1]
    assert after[0] == 1 and "revoked" in after[2]
    assert removed[0] == 0 and "removed user olga" in removed[1]
    assert bad_role[0] == 1 and "not a security role" in bad_role[2] and "Read-only" in bad_role[2]


# -- the standalone update server's admin API ----------------------------------------------------


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """`updatesync updateserver serve` in its own process: (url, data folder, output)."""
    with _standalone(tmp_path) as served:
        yield served


@contextmanager
def _standalone(tmp_path: Path, *options: str) -> Iterator[tuple[str, Path, str]]:
    data = tmp_path / "server"
    UpdateStore.open(data).close()
    process = subprocess.Popen(
        [
            *updatesync_command(),
            *("updateserver", "serve", "--data", str(data), "--port", "0", *options),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "admin API's token" in line:
                break
        found = re.search(r"listening on (http://\S+):", "".join(lines))
        assert found, "".join(lines)
        yield found.group(1), data, "".join(lines)
    finally:
        process.terminate()
        process.wait(30)


def test_the_standalone_admin_api_needs_the_token_of_its_file(
    standalone: tuple[str, Path, str],
) -> None:
    """Finding: the standalone server's admin API answered anyone."""
    url, data, output = standalone
    token_file = data / "admin.token"
    token = token_file.read_text().strip()

    bare = httpx.get(f"{url}/api/status", timeout=30)
    wrong = httpx.get(f"{url}/api/status", headers=_bearer("not-it"), timeout=30)
    right = httpx.get(f"{url}/api/status", headers=_bearer(token), timeout=30)

    assert f"the admin API's token is in {token_file} (created now" in output
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert bare.status_code == wrong.status_code == 401
    assert "--admin-token-file" in bare.json()["error"]
    assert right.status_code == 200 and "revisions" in right.json()


def test_the_standalone_metrics_are_open_unless_asked_and_then_need_the_admin_token(
    tmp_path: Path,
) -> None:
    """The standalone server's own admin auth (its token file) is what `--metrics-need-token`
    asks of a scraper; its OpenAPI document stays open, as the SMS Provider's."""
    with _standalone(tmp_path / "open") as (open_url, _, output):
        open_metrics = httpx.get(f"{open_url}/metrics", timeout=30)
    with _standalone(tmp_path / "locked", "--metrics-need-token") as (url, data, _):
        token = (data / "admin.token").read_text().strip()
        bare = httpx.get(f"{url}/metrics", timeout=30)
        right = httpx.get(f"{url}/metrics", headers=_bearer(token), timeout=30)
        document = httpx.get(f"{url}/openapi.json", timeout=30)

    assert f"metrics at {open_url}/metrics" in output
    assert f"described at {open_url}/openapi.json" in output
    assert open_metrics.status_code == 200 and "updatesync_build_info{" in open_metrics.text
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200 and "updatesync_update_server_revisions{" in right.text
    assert document.status_code == 200 and "/api/status" in document.json()["paths"]


def test_the_standalone_sync_takes_json_only(standalone: tuple[str, Path, str]) -> None:
    """Finding (CSRF): `POST /api/sync` read any body as JSON whatever its Content-Type,
    so a web page's form could replace the subscription."""
    url, data, _ = standalone
    token = (data / "admin.token").read_text().strip()
    headers = _bearer(token)

    plain = httpx.post(
        f"{url}/api/sync",
        content=b'{"products": ["x"]}',
        headers={**headers, "content-type": "text/plain"},
        timeout=30,
    )
    form = httpx.post(f"{url}/api/sync", data={"full": "true"}, headers=headers, timeout=30)
    as_json = httpx.post(f"{url}/api/sync", json={"full": False}, headers=headers, timeout=30)

    assert plain.status_code == form.status_code == 415
    assert "application/json" in plain.json()["error"]
    assert as_json.status_code == 409  # taken as a request: this server has no upstream


# -- the module's pieces -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("Full Administrator", SecurityRole.FULL_ADMINISTRATOR),
        ("full-administrator", SecurityRole.FULL_ADMINISTRATOR),
        ("SOFTWARE_UPDATE_MANAGER", SecurityRole.SOFTWARE_UPDATE_MANAGER),
        ("  read-only  analyst ", SecurityRole.READ_ONLY_ANALYST),
        ("Read-only Analyst", SecurityRole.READ_ONLY_ANALYST),
    ],
)
def test_roles_are_named_as_configmgr_names_them_in_any_case(text: str, role: SecurityRole) -> None:
    assert parse_role(text) is role


def test_an_unknown_role_is_refused_with_the_list() -> None:
    with pytest.raises(ValueError, match='"Full Administrator", "Software Update Manager"'):
        parse_role("root")


def test_each_role_has_what_configmgr_gives_it() -> None:
    admin, manager, analyst = (
        SecurityRole.FULL_ADMINISTRATOR,
        SecurityRole.SOFTWARE_UPDATE_MANAGER,
        SecurityRole.READ_ONLY_ANALYST,
    )
    assert admin.permissions == set(Permission)
    assert manager.permissions == {Permission.READ, Permission.SYNC}
    assert analyst.permissions == {Permission.READ}
    assert needed_role(Permission.READ) is analyst
    assert needed_role(Permission.SYNC) is manager
    assert needed_role(Permission.ADMINISTER) is admin


def test_passwords_and_tokens_are_kept_as_salted_argon2_hashes() -> None:
    first, second = hash_password("same password"), hash_password("same password")
    token = new_token()

    assert first.startswith("$argon2id$") and first != second  # salted
    assert verify_password(first, "same password")
    assert not verify_password(first, "other password")
    assert not verify_password(None, "anything")
    assert token.secret_hash.startswith("$argon2id$")
    assert token.text not in token.secret_hash
    prefix, token_id, _ = split_token(token.text) or ("", "", "")
    assert (prefix, token_id) == ("ust", token.token_id)
    assert split_token("Bearer nonsense") is None


def test_a_verified_token_is_remembered_but_a_wrong_secret_never_passes() -> None:
    token = new_token()
    _, token_id, secret = split_token(token.text) or ("", "", "")
    verifier = TokenVerifier()

    assert verifier.verify(token_id, token.secret_hash, secret)
    assert verifier.verify(token_id, token.secret_hash, secret)  # from memory
    altered = secret[:-1] + ("B" if secret.endswith("A") else "A")
    assert not verifier.verify(token_id, token.secret_hash, altered)
    assert not verifier.verify(token_id, "not a hash", secret)


def test_a_token_file_is_created_private_once_and_then_read(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    token, created = load_or_create_token_file(path)
    again, created_again = load_or_create_token_file(path)

    assert created and not created_again and token == again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("")
    with pytest.raises(TokenFileError, match="is empty"):
        read_token_file(path)
    with pytest.raises(TokenFileError, match="does not exist"):
        read_token_file(tmp_path / "missing")
    path.write_text("ust_x_y\n")
    path.chmod(0o640)
    with pytest.raises(TokenFileError, match=r"has mode 0640: group or others may read"):
        read_token_file(path)


SERVED_SITE = """
[hierarchy]
name = "Served"
data_dir = "data"
upstream = {{ kind = "microsoft-update" }}

[[sites]]
code = "CS1"
fqdn = "cs1.example.com"
type = "cas"
address = "127.0.0.1"
port = {port}
"""


def _serve_until_running(file: Path) -> str:
    """Run `updatesync serve FILE --role site:CS1` until it says it runs; its output."""
    process = subprocess.Popen(
        [*updatesync_command(), "serve", str(file), "--role", "site:CS1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if "role(s) running" in line:
                break
    finally:
        process.terminate()
        process.wait(30)
    return "".join(lines)


def test_serve_says_where_it_wrote_the_admin_token_and_never_writes_it_again(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    file = tmp_path / "hierarchy.toml"
    file.write_text(SERVED_SITE.format(port=port))
    create_secret(tmp_path / "data" / "hierarchy.secret")
    token_file = tmp_path / "data" / "CS1" / "admin.token"

    first = _serve_until_running(file)
    written = token_file.read_text()
    second = _serve_until_running(file)

    assert f"created the Full Administrator user admin; its API token is in {token_file}" in first
    assert "Full Administrator" not in second
    assert token_file.read_text() == written
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
