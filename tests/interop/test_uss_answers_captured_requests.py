"""Our upstream service answers every captured request with a response of the real shape.

The requests recorded against a Windows Server 2025 WSUS are replayed against updatesync's
USS, loaded with the same content (the 2024 export's categories, the nine captured update
documents and the download addresses the real answers gave). Cookies and anchors are
tokens a server issues to its own downstreams, so the recorded (sanitized, Windows-issued)
ones are replaced by ours; everything else is sent as recorded. Our answer must have the
element names, namespaces and order of the real one. Two differences are allowed and
checked: a list may hold another number of items, and a document may come as
`XmlUpdateBlob` (in its WSDL place, before `FileDigestList`) where Windows compressed it (the
spec allows either; no Python LZX compressor exists).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from lxml import etree

from updatesync.metadata.export import ExportRecord, read_export, write_export
from updatesync.roles.serving import BackgroundServer
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.wsusss.messages import GetUpdateDataResponse
from updatesync.wsusss.service import create_app

SD = "http://www.microsoft.com/SoftwareDistribution"
ALTERNATIVES = {"XmlUpdateBlobCompressed": "XmlUpdateBlob"}


def _shape(element: etree._Element) -> tuple[str, str, tuple[object, ...]]:
    """(namespace, name, children) where a run of same-named siblings counts once."""
    qname = etree.QName(element)
    name = ALTERNATIVES.get(qname.localname, qname.localname)
    children: list[tuple[str, str, tuple[object, ...]]] = []
    for child in element:
        shape = _shape(child)
        if children and children[-1][:2] == shape[:2]:
            continue
        children.append(shape)
    if name == "ServerSyncUpdateData":
        # The WSDL places XmlUpdateBlob before FileDigestList, XmlUpdateBlobCompressed after.
        children.sort(key=lambda child: child[1] == "XmlUpdateBlob")
    return (qname.namespace or "", name, tuple(children))


@pytest.fixture(scope="module")
def wsusss_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "wsusss"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path, wsusss_dir: Path):  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("uss")
    docs = []
    for path in sorted((wsusss_dir / "docs").glob("*.xml")):
        uid, rev = path.stem.rsplit("-r", 1)
        docs.append(ExportRecord(uid, int(rev), path.read_text(encoding="utf-8")))
    with read_export(fixtures_dir / "wsus-exports" / "wsus-export-2024-06.cab") as real:
        categories = [r for r in real.records() if 'UpdateType="Category"' in r.xml]
    held = {r.key for r in categories}
    write_export(work / "content.cab", [*categories, *(d for d in docs if d.key not in held)])
    store = UpdateStore.open(work / "sup")
    import_export_cabinet(store, work / "content.cab")
    urls: dict[str, str] = {}
    for number in ("000013", "000014", "000015", "000016"):
        answer = GetUpdateDataResponse.from_xml(
            (wsusss_dir / "exchanges" / number / "response.body").read_bytes()
        )
        urls.update({u.file_digest: u.mu_url for u in answer.result.file_urls or () if u.mu_url})
    store.save_file_urls(urls)
    with (
        BackgroundServer(create_app(StoreBackend(store))) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        yield http
    store.close()


def _post(client: httpx.Client, path: str, action: str, body: bytes):  # type: ignore[no-untyped-def]
    return client.post(
        path,
        content=body,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": action},
    )


def _exchange(wsusss_dir: Path, number: str) -> tuple[dict, bytes, bytes]:
    folder = wsusss_dir / "exchanges" / number
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    return meta, (folder / "request.body").read_bytes(), (folder / "response.body").read_bytes()


def _tokens(client: httpx.Client, wsusss_dir: Path) -> dict[str, str]:
    """Our own authorization cookie, session cookie and anchor, by replaying 2, 3 and 5."""
    meta, body, _ = _exchange(wsusss_dir, "000002")
    auth = etree.fromstring(
        _post(client, meta["path"], '"' + meta["soap_action"] + '"', body).content
    )
    cookie_data = auth.findtext(".//{*}CookieData")
    meta, body, _ = _exchange(wsusss_dir, "000003")
    body = re.sub(
        rb"<CookieData>[^<]*</CookieData>",
        b"<CookieData>" + cookie_data.encode() + b"</CookieData>",
        body,
    )
    session = etree.fromstring(
        _post(client, meta["path"], '"' + meta["soap_action"] + '"', body).content
    )
    encrypted = session.findtext(".//{*}EncryptedData")
    expiration = session.findtext(".//{*}Expiration")
    meta, body, _ = _exchange(wsusss_dir, "000005")
    body = _with_cookie(body, expiration, encrypted)
    config = etree.fromstring(
        _post(client, meta["path"], '"' + meta["soap_action"] + '"', body).content
    )
    return {
        "CookieData": cookie_data,
        "EncryptedData": encrypted,
        "Expiration": expiration,
        "Anchor": config.findtext(".//{*}NewConfigAnchor"),
    }


def _with_cookie(body: bytes, expiration: str, encrypted: str) -> bytes:
    body = re.sub(
        rb"<Expiration>[^<]*</Expiration>",
        b"<Expiration>" + expiration.encode() + b"</Expiration>",
        body,
    )
    return re.sub(
        rb"<EncryptedData>[^<]*</EncryptedData>",
        b"<EncryptedData>" + encrypted.encode() + b"</EncryptedData>",
        body,
    )


@pytest.mark.parametrize("number", [f"{n:06d}" for n in range(1, 20)])
def test_our_answer_has_the_shape_of_the_real_one(
    client: httpx.Client, wsusss_dir: Path, number: str
) -> None:
    tokens = _tokens(client, wsusss_dir)
    meta, body, real = _exchange(wsusss_dir, number)
    body = _with_cookie(body, tokens["Expiration"], tokens["EncryptedData"])
    body = re.sub(
        rb"<CookieData>[^<]*</CookieData>",
        b"<CookieData>" + tokens["CookieData"].encode() + b"</CookieData>",
        body,
    )
    # A well-formed Windows anchor stands for "what I had then": give ours instead. The
    # garbage anchor of 000018 is sent as recorded.
    body = re.sub(
        rb"(<(Anchor|configAnchor)>)\d+,\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}(</\2>)",
        lambda m: m.group(1) + tokens["Anchor"].encode() + m.group(3),
        body,
    )
    answer = _post(client, meta["path"], '"' + meta["soap_action"] + '"', body)
    assert answer.status_code == meta["status"], answer.text[:500]
    assert answer.headers["content-type"].startswith("text/xml")
    ours, theirs = etree.fromstring(answer.content), etree.fromstring(real)
    assert _shape(ours) == _shape(theirs)
    fault = theirs.find(".//{*}ErrorCode")
    if fault is not None:
        assert ours.findtext(".//{*}ErrorCode") == fault.text
        assert ours.findtext(".//{*}Message") == theirs.findtext(".//{*}Message")
