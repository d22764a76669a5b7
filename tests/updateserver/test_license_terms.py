"""License terms between two update servers, over real HTTP, on SQLite and PostgreSQL: what
GetUpdateData lists for an update with license terms, the Content Download service (which
serves those files and nothing else), and a downstream's download of them: the SHA-1 check,
what stays pending, and the next sync completing it without any new revision."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from databases import Databases
from sqlalchemy import update

from updatesync.metadata.document import parse_update
from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog, license_terms
from updatesync.metadata.generator.license_terms import license_text
from updatesync.metadata.model import MU_EULA_FOLDER, UpdateRevision
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver import license_terms as terms
from updatesync.updateserver import schema as t
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync import SyncSettings, sync_from_upstream
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.content import content_path
from updatesync.wsusss.service import create_app

UPDATES = 300
SEED = 9


@dataclass
class Pair:
    upstream: UpdateStore
    downstream: UpdateStore
    url: str
    docs: list[UpdateRevision]
    data: Path

    def sync(self) -> object:
        with UpstreamClient(self.url, retries=0) as client:
            return sync_from_upstream(
                self.downstream, SyncSettings(self.url, server_name="dss.test"), client=client
            )


@pytest.fixture
def pair(tmp_path: Path, databases: Databases) -> Iterator[Pair]:
    """An upstream holding a generated catalog's metadata (not its license terms' files yet)
    served on loopback, and an empty downstream."""
    records = list(generate_catalog(UPDATES, seed=SEED))
    write_export(tmp_path / "m1.cab", records)
    upstream = UpdateStore.open(tmp_path / "A", url=databases.new().url)
    downstream = UpdateStore.open(tmp_path / "B", url=databases.new().url)
    import_export_cabinet(upstream, tmp_path / "m1.cab")
    try:
        with BackgroundServer(create_app(StoreBackend(upstream))) as server:
            yield Pair(
                upstream, downstream, server.url, [parse_update(r.xml) for r in records], tmp_path
            )
    finally:
        upstream.close()
        downstream.close()


def _with_terms(pair: Pair) -> list[UpdateRevision]:
    return [d for d in pair.docs if d.eula_files]


def test_get_update_data_lists_the_license_terms_files(pair: Pair) -> None:
    """FileDigestList carries the update's files and then its license terms' files;
    ServerSyncUrlData gives each license-term file where Microsoft Update serves it."""
    doc = next(d for d in _with_terms(pair) if d.files)
    with UpstreamClient(pair.url, retries=0) as client:
        (plug_in,) = client.get_auth_config().auth_info or ()
        service = plug_in.service_url or ""
        cookie = client.get_cookie((client.get_authorization_cookie(service, "dss.test", _GUID),))
        answer = client.get_update_data(cookie, [doc.key])
    (item,) = answer.updates or ()
    eula_digests = [f.sha1 for f in doc.eula_files]
    assert list(item.file_digest_list or ()) == [f.sha1 for f in doc.files] + sorted(
        eula_digests, key=lambda d: next(f.name for f in doc.eula_files if f.sha1 == d)
    )
    urls = {u.file_digest: u.mu_url for u in answer.file_urls or ()}
    for file in doc.eula_files:
        assert urls[file.sha1] == MU_EULA_FOLDER + file.name
    assert doc.files[0].sha1 not in urls  # no address known for the update's own file


_GUID = "5b0c7f3e-2b64-4a43-9d8e-8a86e2f6a6a1"


def test_the_content_download_service_serves_license_terms_files_only(pair: Pair) -> None:
    doc = _with_terms(pair)[0]
    file = doc.eula_files[0]
    path = content_path(file.sha1, file.name)
    with httpx.Client(base_url=pair.url) as http:
        assert http.get(path).status_code == 404  # listed, but not held yet
        assert terms.add_generated_license_files(pair.upstream) > 0
        got = http.get(path)
        assert got.status_code == 200
        assert got.content == license_text(doc.eula_id or "", file.language or "")
        assert hashlib.sha1(got.content).hexdigest().upper() in path
        assert http.get(path.lower()).status_code == 200  # paths without regard to case
        hexed = path.rsplit("/", 1)[1]
        assert http.get(f"/Content/00/{hexed}").status_code == 404  # not its folder
        assert http.get(path.replace(".txt", ".exe")).status_code == 404
        assert http.get("/Content/AB/" + "0" * 38 + "AB.txt").status_code == 404  # unknown
        content = next(d for d in pair.docs if d.files)
        own = content_path(content.files[0].sha1, content.files[0].name)
        assert http.get(own).status_code == 404  # update content is not served
        assert http.get("/Content/../ServerSyncWebService").status_code in (404, 405)


def test_a_downstream_downloads_checks_and_completes_the_license_terms(pair: Pair) -> None:
    listed = {f.sha1 for d in _with_terms(pair) for f in d.eula_files}
    with_terms = sorted({d.update_id for d in _with_terms(pair)})
    assert listed and with_terms

    # The upstream does not hold the files yet: the sync succeeds, they stay pending.
    first = pair.sync()
    assert first.license_files_downloaded == 0  # type: ignore[attr-defined]
    assert first.license_files_failed == len(listed)  # type: ignore[attr-defined]
    assert sorted(first.license_terms_pending) == with_terms  # type: ignore[attr-defined]
    assert terms.counts(pair.downstream) == (len(listed), len(listed))
    log = (pair.data / "B" / "logs" / "SoftwareDistribution.log").read_text(encoding="utf-8")
    assert "could not be downloaded" in log and "HTTP 404" in log
    assert "Traceback" not in log

    # One file comes back altered: refused by its digest, still pending.
    terms.add_generated_license_files(pair.upstream)
    tampered = sorted(listed)[0]
    with pair.upstream.engine.begin() as conn:
        conn.execute(
            update(t.eula_content)
            .where(t.eula_content.c.digest == tampered)
            .values(content=b"not the license terms")
        )
    second = pair.sync()  # no new revision: only the pending files are asked for
    assert second.new_revisions == 0  # type: ignore[attr-defined]
    assert second.license_files_downloaded == len(listed) - 1  # type: ignore[attr-defined]
    assert second.license_files_failed == 1  # type: ignore[attr-defined]
    pending = terms.pending_files(pair.downstream)
    assert [f.digest for f in pending] == [tampered]
    log = (pair.data / "B" / "logs" / "SoftwareDistribution.log").read_text(encoding="utf-8")
    assert f"the metadata lists {tampered}" in log

    # Repaired upstream: the next sync completes the license terms.
    with pair.upstream.engine.begin() as conn:
        conn.execute(t.eula_content.delete().where(t.eula_content.c.digest == tampered))
    terms.add_generated_license_files(pair.upstream)
    third = pair.sync()
    assert third.license_files_downloaded == 1  # type: ignore[attr-defined]
    assert third.license_terms_pending == ()  # type: ignore[attr-defined]
    assert terms.counts(pair.downstream) == (len(listed), 0)
    for file in license_terms(_records_of(pair)):
        held = terms.held_file(pair.downstream, file.digest)
        assert held == (file.name, file.content)


def _records_of(pair: Pair) -> list[object]:
    from updatesync.metadata.export import ExportRecord

    return [ExportRecord(d.update_id, d.revision, d.xml) for d in pair.docs]
