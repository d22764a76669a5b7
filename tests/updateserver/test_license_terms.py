"""License terms between two update servers, over real HTTP, on SQLite and PostgreSQL: what
GetUpdateData lists for an update with license terms, and the Content Download service
(which serves those files and nothing else; a downstream's download of them is
tests/updateserver/sync/test_license_files.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from databases import Databases
from license_pair import Pair, license_pair

from updatesync.metadata.generator.license_terms import license_text
from updatesync.metadata.model import MU_EULA_FOLDER
from updatesync.updateserver import license_terms as terms
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.content import content_path


@pytest.fixture
def pair(tmp_path: Path, databases: Databases) -> Iterator[Pair]:
    with license_pair(tmp_path, databases) as made:
        yield made


def test_get_update_data_lists_the_license_terms_files(pair: Pair) -> None:
    """FileDigestList carries the update's files and then its license terms' files;
    ServerSyncUrlData gives each license-term file where Microsoft Update serves it."""
    doc = next(d for d in pair.with_terms() if d.files)
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
    doc = pair.with_terms()[0]
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
