"""The 9 real update documents carried by the MS-WSUSSS captures parse into what they say.

Every expectation is read from the same XML by XPath here, independently of the parser,
so a field the parser drops, mixes up or mis-cases shows up as a difference.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from updatesync.metadata.document import parse_update
from updatesync.metadata.model import UpdateRevision

NS = {
    "upd": "http://schemas.microsoft.com/msus/2002/12/Update",
    "cat": "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category",
}


def _shared_fixtures() -> Path:
    """../shared/fixtures beside the project (stand-in until tests/conftest.py has one)."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


DOCS_DIR = _shared_fixtures() / "wsusss" / "docs"
DOCS = sorted(DOCS_DIR.glob("*.xml")) if DOCS_DIR.is_dir() else []
_SKIP = pytest.mark.skip(reason=f"real fixtures not present: {DOCS_DIR} (a user's clone)")
DOC_PARAMS = [pytest.param(path, id=path.stem) for path in DOCS] or [
    pytest.param(None, id="no-fixtures", marks=_SKIP)
]


def _xp(tree: etree._Element, path: str) -> list:
    return tree.xpath(path, namespaces=NS)


def _ids(elements: list) -> tuple[str, ...]:
    return tuple(e.get("UpdateID").lower() for e in elements)


@pytest.fixture(params=DOC_PARAMS)
def document(request: pytest.FixtureRequest) -> tuple[Path, str, etree._Element]:
    path: Path = request.param
    text = path.read_text(encoding="utf-8")
    return path, text, etree.fromstring(text.encode("utf-8"))


@pytest.fixture
def parsed(document: tuple[Path, str, etree._Element]) -> UpdateRevision:
    path, text, _ = document
    return parse_update(text, where=path.name)


def test_all_nine_documents_are_present() -> None:
    if not DOCS_DIR.is_dir():
        pytest.skip(f"real fixtures not present: {DOCS_DIR}")
    assert len(DOCS) == 9


def test_identity_and_type(document, parsed: UpdateRevision) -> None:
    path, text, tree = document
    uid = _xp(tree, "string(/upd:Update/upd:UpdateIdentity/@UpdateID)")
    rev = _xp(tree, "number(/upd:Update/upd:UpdateIdentity/@RevisionNumber)")
    assert parsed.update_id == uid.lower()
    assert parsed.revision == int(rev)
    assert path.stem == f"{parsed.update_id}-r{parsed.revision}"
    assert parsed.update_type.value == _xp(tree, "string(/upd:Update/upd:Properties/@UpdateType)")
    props = _xp(tree, "/upd:Update/upd:Properties")[0]
    assert parsed.default_language == props.get("DefaultPropertiesLanguage")
    assert parsed.creation_date == props.get("CreationDate")
    assert parsed.publication_state.value == props.get("PublicationState")
    assert parsed.xml == text


def test_titles_per_language(document, parsed: UpdateRevision) -> None:
    _, _, tree = document
    expected = {
        item.xpath("string(upd:Language)", namespaces=NS): (
            item.xpath("string(upd:Title)", namespaces=NS),
            (item.xpath("upd:Description/text()", namespaces=NS) or [None])[0],
        )
        for item in _xp(
            tree, "/upd:Update/upd:LocalizedPropertiesCollection/upd:LocalizedProperties"
        )
    }
    assert expected, "every real document has at least one title"
    got = {item.language: (item.title, item.description) for item in parsed.localized}
    assert got == expected
    assert len(parsed.localized) == len(expected)


def test_kb_and_category_type(document, parsed: UpdateRevision) -> None:
    _, _, tree = document
    kb = _xp(tree, "/upd:Update/upd:Properties/upd:KBArticleID/text()")
    assert parsed.kb_article == (kb[0].strip() if kb else None)
    kind = _xp(tree, "/upd:Update/upd:HandlerSpecificData/cat:CategoryInformation/@CategoryType")
    assert (parsed.category_type.value if parsed.category_type else None) == (
        kind[0] if kind else None
    )


def test_prerequisites(document, parsed: UpdateRevision) -> None:
    _, _, tree = document
    base = "/upd:Update/upd:Relationships/upd:Prerequisites"
    category_groups = tuple(
        _ids(group.xpath("upd:UpdateIdentity", namespaces=NS))
        for group in _xp(tree, f"{base}/upd:AtLeastOne[@IsCategory='true']")
    )
    plain_groups = tuple(
        _ids([node])
        if node.tag.endswith("}UpdateIdentity")
        else _ids(node.xpath("upd:UpdateIdentity", namespaces=NS))
        for node in _xp(
            tree,
            f"{base}/upd:UpdateIdentity | {base}/upd:AtLeastOne[not(@IsCategory='true')]",
        )
    )
    assert parsed.category_prerequisites == category_groups
    assert parsed.prerequisites == plain_groups


def test_bundled_and_superseded(document, parsed: UpdateRevision) -> None:
    _, _, tree = document
    bundled = [
        (e.get("UpdateID").lower(), int(e.get("RevisionNumber")))
        for e in _xp(tree, "/upd:Update/upd:Relationships/upd:BundledUpdates//upd:UpdateIdentity")
    ]
    assert [(k.update_id, k.revision) for k in parsed.bundled_updates] == bundled
    superseded = _ids(
        _xp(tree, "/upd:Update/upd:Relationships/upd:SupersededUpdates//upd:UpdateIdentity")
    )
    assert parsed.superseded_updates == superseded


def test_files(document, parsed: UpdateRevision) -> None:
    _, _, tree = document
    expected = [
        (
            f.get("FileName"),
            int(f.get("Size")),
            f.get("Digest"),
            (f.xpath("upd:AdditionalDigest[@Algorithm='SHA256']/text()", namespaces=NS) or [None])[
                0
            ],
            f.get("Modified"),
        )
        for f in _xp(tree, "/upd:Update/upd:Files/upd:File")
    ]
    got = [(f.name, f.size, f.sha1, f.sha256, f.modified) for f in parsed.files]
    assert got == expected


def test_utf16le_blob_parses_to_the_same_revision(document, parsed: UpdateRevision) -> None:
    """The protocol's compressed blob carries the document as UTF-16LE without a BOM."""
    path, text, _ = document
    again = parse_update(text.encode("utf-16-le"), where=f"{path.name} as UTF-16LE")
    assert again == parsed


def test_what_the_set_covers() -> None:
    """The captures hold a bundle, leaves with files, a superseding update and categories."""
    if not DOCS:
        pytest.skip(f"real fixtures not present: {DOCS_DIR}")
    revisions = {p.stem: parse_update(p.read_text(encoding="utf-8"), where=p.name) for p in DOCS}
    assert sum(1 for r in revisions.values() if r.bundled_updates) >= 2
    assert sum(1 for r in revisions.values() if r.files) == 3
    assert any(r.superseded_updates for r in revisions.values())
    kinds = {r.category_type.value for r in revisions.values() if r.category_type}
    assert kinds == {"Company", "ProductFamily", "Product"}
    # GUID case varies in real data: the Windows and Microsoft categories are upper-case.
    windows = revisions["6964aab4-c5b5-43bd-a17d-ffb4346a8e1d-r100"]
    assert 'UpdateID="6964AAB4-C5B5-43BD-A17D-FFB4346A8E1D"' in windows.xml
    assert windows.update_id == "6964aab4-c5b5-43bd-a17d-ffb4346a8e1d"
    assert windows.parent_categories == ("56309036-4c77-4dd9-951a-99ee9c246a94",)
    kb = revisions["a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe-r200"]
    assert kb.kb_article == "2267602"
    assert kb.category_ids == (
        "e0789628-ce08-4437-be74-2495b842f43b",
        "8c3fcc84-7410-4a95-8b89-a166a0190486",
    )
