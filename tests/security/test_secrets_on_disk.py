"""Secrets on disk: data folders 0700, databases 0600, the cookie key in its own 0600 file.

Findings (issue 11, "Secrets on disk"): the MS-WSUSSS cookie-signing key sat in
`updateserver.sqlite`, created 0644, so a local user could read it and mint a ten-year
session cookie; data folders were created 0755. Now every folder the roles create is 0700
and every database file 0600 (whatever the umask), the key lives in `<data>/cookie.key`
(0600), an existing key is moved there out of the database, and a key file group or
others may read is refused with a message naming it, its mode and `chmod 600`.
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from hierarchy_inprocess import InProcessHierarchy
from sqlalchemy import inspect, text

from updatesync.roles.hierarchy import free_port
from updatesync.roles.serving import BackgroundServer
from updatesync.security.access import new_token
from updatesync.security.pki import create_ca, issue_certificate
from updatesync.security.signing import create_secret
from updatesync.updateserver.database import MIGRATIONS, create_store_engine, sqlite_url
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.cookies import CookieAuthority
from updatesync.wsusss.service import create_app
from updatesync.wsusss.soap import DSS_AUTH_PATH


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessHierarchy]:
    """Every role of the example hierarchy, after one sync: what they leave on disk."""
    with InProcessHierarchy(tmp_path_factory.mktemp("secrets"), updates=20) as h:
        h.sync_now("CS1")
        h.wait_all(1)
        h.wait_idle()
        yield h


def test_every_folder_of_the_hierarchy_is_0700(hierarchy: InProcessHierarchy) -> None:
    data = hierarchy.hierarchy.data_dir
    folders = [data, *(p for p in data.rglob("*") if p.is_dir())]
    assert any(p.name == "logs" for p in folders) and any(p.name == "inboxes" for p in folders)
    assert {
        str(p.relative_to(data.parent)): oct(_mode(p)) for p in folders if _mode(p) != 0o700
    } == {}


def test_every_database_and_key_of_the_hierarchy_is_0600(hierarchy: InProcessHierarchy) -> None:
    data = hierarchy.hierarchy.data_dir
    files = [p for p in data.rglob("*") if p.is_file()]
    private = [p for p in files if ".sqlite" in p.name or p.name.endswith((".key", ".secret"))]
    names = {p.name for p in private}
    assert {"site.sqlite", "updateserver.sqlite", "cookie.key"} <= names
    assert {str(p.relative_to(data)): oct(_mode(p)) for p in private if _mode(p) != 0o600} == {}


def test_the_cookie_key_is_not_in_the_database(tmp_path: Path) -> None:
    data = tmp_path / "uss"
    with UpdateStore.open(data) as store:
        key = StoreBackend(store).identity().cookie_key
        with store.engine.connect() as conn:
            assert "cookie_key" not in {
                c["name"] for c in inspect(conn).get_columns("server_identity")
            }
    assert _mode(data) == 0o700 and _mode(data / "updateserver.sqlite") == 0o600
    assert _mode(data / "cookie.key") == 0o600
    assert base64.b64decode((data / "cookie.key").read_bytes()) == key


def test_an_existing_key_moves_out_of_the_database_into_its_file(tmp_path: Path) -> None:
    """A store of the schema before (0003), its key in `server_identity`, 0644 files."""
    data = tmp_path / "old"
    data.mkdir()
    engine = create_store_engine(sqlite_url(data))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    old_key = os.urandom(32)
    encoded = base64.b64encode(old_key).decode("ascii")
    server = "6f1c2f6e-3f0b-4d3a-9b1e-0d2f6a1c5e12"
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(
            text("INSERT INTO server_identity VALUES (1, :s, :k, :t)"),
            {"s": server, "k": encoded, "t": datetime.now(UTC)},
        )
    engine.dispose()
    (data / "updateserver.sqlite").chmod(0o644)

    with UpdateStore.open(data) as store:
        app = create_app(StoreBackend(store))
        with BackgroundServer(app) as running, UpstreamClient(running.url, retries=0) as client:
            auth = client.get_authorization_cookie(
                DSS_AUTH_PATH.lstrip("/"), "dss.contoso.com", server
            )
    # The same key signs the cookies (downstream servers keep their cookies) ...
    assert CookieAuthority(old_key, server).verify_authorization(
        auth.cookie_data, datetime.now(UTC)
    )
    assert base64.b64decode((data / "cookie.key").read_bytes()) == old_key
    assert _mode(data / "cookie.key") == 0o600
    # ... and the database, now 0600, no longer holds it anywhere, not even in a free page.
    assert _mode(data / "updateserver.sqlite") == 0o600
    stored = b"".join(p.read_bytes() for p in data.glob("updateserver.sqlite*"))
    assert encoded.encode("ascii") not in stored


def test_a_key_file_others_may_read_is_refused_by_the_server(tmp_path: Path) -> None:
    data = tmp_path / "uss"
    with UpdateStore.open(data) as store:
        StoreBackend(store)
    key_file = data / "cookie.key"
    key_file.chmod(0o644)
    done = subprocess.run(
        [sys.executable, "-m", "updatesync", "updateserver", "serve", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "500"},
    )
    said = " ".join(done.stderr.split())
    assert done.returncode != 0
    assert f"{key_file} has mode 0644" in said and f"chmod 600 {key_file}" in said
    assert "Traceback" not in said


def test_folders_and_databases_are_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        with UpdateStore.open(tmp_path / "a" / "b" / "uss") as store:
            StoreBackend(store)
    finally:
        os.umask(previous)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "uss"):
        assert _mode(folder) == 0o700
    for file in (tmp_path / "a" / "b" / "uss").iterdir():
        if file.is_file():
            assert _mode(file) == 0o600, file


# -- TLS keys, the CA's key and the admin token: refused when others may read them ----------
#
# Finding (issue 11, item 7, audit): a TLS private key and the hierarchy CA's key were used
# whatever their mode (a 0644 key served HTTPS, a role started with one, `pki issue` signed
# with a 0644 `ca.key`), and a new top-level site adopted a 0644 `admin.token`. Each is now
# read as every secret file is: refused, one line naming the file and `chmod 600`, exit 1.

SUP = "cs1site.contoso.com"


def _updatesync(*args: str) -> list[str]:
    return [sys.executable, "-m", "updatesync", *args]


def _first_words(command: list[str], ready: str) -> tuple[int | None, str]:
    """Run `command` until it prints a line containing `ready` (it serves: stopped then,
    return code None) or ends (its return code); what it printed."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "500"},
    )
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if ready in line:
                return None, "".join(lines)
        return process.wait(60), "".join(lines)
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(60)
        process.stdout.close()


def _refused(code: int | None, output: str, path: Path) -> str:
    """The one line of a command refused for `path`'s mode (exit 1, no traceback)."""
    assert code == 1, output
    assert output.strip().count("\n") == 0 and output.startswith("error: "), output
    assert f" {path} " in output and "has mode 0644" in output, output
    assert f"run `chmod 600 {path}`" in output, output
    assert "Traceback" not in output
    return output.strip()


def test_a_ca_key_others_may_read_is_refused_by_pki_issue(tmp_path: Path) -> None:
    create_ca(tmp_path / "pki")
    ca_key = tmp_path / "pki" / "ca.key"
    ca_key.chmod(0o644)
    done = subprocess.run(
        _updatesync("pki", "issue", str(tmp_path / "pki"), "--host", "other.local"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "500"},
    )
    said = _refused(done.returncode, done.stdout + done.stderr, ca_key)
    assert said.startswith(f"error: the CA's key {ca_key} has mode 0644")
    assert not (tmp_path / "pki" / "other.local.pem").exists()
    assert not (tmp_path / "pki" / "other.local.key").exists()


def test_a_tls_key_others_may_read_is_refused_by_updateserver_serve(tmp_path: Path) -> None:
    create_ca(tmp_path / "pki")
    cert, key = issue_certificate(tmp_path / "pki", "localhost", ["127.0.0.1"])
    key.chmod(0o644)
    cert.chmod(0o644)  # a certificate is public: only the key matters
    command = _updatesync("updateserver", "serve", "--data", str(tmp_path / "uss"), "--port", "0")
    code, output = _first_words([*command, "--cert", str(cert), "--key", str(key)], "listening on")
    said = _refused(code, output, key)
    assert said.startswith(f"error: the key {key} (--cert/--key) has mode 0644")

    key.chmod(0o600)  # the same files, the key private: it serves HTTPS
    code, said = _first_words([*command, "--cert", str(cert), "--key", str(key)], "listening on")
    assert code is None and "listening on https://127.0.0.1:" in said, said


def _tls_hierarchy(root: Path) -> Path:
    create_ca(root / "pki")
    issue_certificate(root / "pki", SUP, ["127.0.0.1"])
    file = root / "hierarchy.toml"
    file.write_text(
        f"""
[hierarchy]
name = "Keys"
data_dir = "data"
schedule = "36500d"

[hierarchy.upstream]
kind = "none"

[hierarchy.tls]
ca = "pki/ca.pem"
dir = "pki"

[[sites]]
code = "CS1"
fqdn = "{SUP}"
type = "cas"
address = "127.0.0.1"
port = {free_port()}

[[sites.sups]]
fqdn = "{SUP}"
address = "127.0.0.1"
port = {free_port()}
""",
        encoding="utf-8",
    )
    create_secret(root / "data" / "hierarchy.secret")
    return file


def test_a_sup_key_others_may_read_is_refused_by_its_role(tmp_path: Path) -> None:
    """Item 7 with item 1: a role of a hierarchy with TLS does not start with a key file
    group or others may read; the same role starts once the key is 0600."""
    file = _tls_hierarchy(tmp_path)
    key = tmp_path / "pki" / f"{SUP}.key"
    key.chmod(0o644)
    command = _updatesync("serve", str(file), "--role", f"sup:{SUP}")
    code, output = _first_words(command, "running")
    said = _refused(code, output, key)
    assert said.startswith(f"error: sup:{SUP}: the key ")
    assert "[hierarchy.tls] dir" in said  # where the file names it

    key.chmod(0o600)
    code, said = _first_words(command, "running")
    assert code is None and f"role sup:{SUP} at https://127.0.0.1:" in said, said


def test_an_admin_token_others_may_read_is_not_adopted_by_a_new_site(tmp_path: Path) -> None:
    """A new top-level site database beside an existing `admin.token` adopts its token as
    the Full Administrator's; a token file group or others may read is refused instead."""
    file = _tls_hierarchy(tmp_path)
    token_file = tmp_path / "data" / "CS1" / "admin.token"
    token_file.parent.mkdir(mode=0o700)
    token_file.write_text(new_token().text + "\n", encoding="utf-8")
    token_file.chmod(0o644)
    command = _updatesync("serve", str(file), "--role", "site:CS1")
    code, output = _first_words(command, "running")
    said = _refused(code, output, token_file)
    assert said.startswith("error: site:CS1: the admin token file ")

    token_file.chmod(0o600)
    code, said = _first_words(command, "running")
    assert code is None and "role site:CS1 at https://127.0.0.1:" in said, said
