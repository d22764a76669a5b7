"""Tests of `updatesync.metadata.generator.markup`: the fragments of update documents it writes."""

from __future__ import annotations

import random
import uuid
from datetime import datetime

from lxml import etree

from updatesync.metadata.generator.markup import (
    b64,
    esc,
    guid,
    identity,
    localized,
    root,
    stamp,
)
from updatesync.metadata.generator.tables import NS


def test_esc_escapes_markup_and_double_quotes() -> None:
    assert esc('a < b & "c" > d') == "a &lt; b &amp; &quot;c&quot; &gt; d"
    assert esc("it's") == "it's"


def test_guid_is_a_v4_uuid_determined_by_the_seed() -> None:
    first = guid(random.Random(7))
    assert first == guid(random.Random(7))
    assert uuid.UUID(first).version == 4
    assert first == first.lower()
    rng = random.Random(7)
    assert guid(rng) != guid(rng)


def test_b64() -> None:
    assert b64(b"\x00\xffhello") == "AP9oZWxsbw=="
    assert b64(b"") == ""


def test_stamp_has_milliseconds_and_z() -> None:
    assert stamp(datetime(2024, 1, 2, 3, 4, 5), 7) == "2024-01-02T03:04:05.007Z"
    assert stamp(datetime(2024, 12, 31, 23, 59, 59), 999) == "2024-12-31T23:59:59.999Z"


def test_root_declares_prefixes_once_with_upd_last() -> None:
    text = root(["upd", "bar"]) + "</upd:Update>"
    assert text.count("xmlns:upd=") == 1
    assert text.index("xmlns:bar=") < text.index("xmlns:upd=")
    element = etree.fromstring(text.encode())
    assert element.tag == f"{{{NS['upd']}}}Update"
    assert element.nsmap["bar"] == NS["bar"]


def test_identity_with_and_without_revision() -> None:
    uid = "11111111-2222-3333-4444-555555555555"
    assert identity(uid) == f'<upd:UpdateIdentity UpdateID="{uid}" />'
    assert identity(uid, 0) == f'<upd:UpdateIdentity UpdateID="{uid}" RevisionNumber="0" />'


def _parse(fragment: str) -> etree._Element:
    return etree.fromstring(f'<r xmlns:upd="{NS["upd"]}">{fragment}</r>'.encode())


def test_localized_writes_each_language_escaped() -> None:
    text = localized(
        {"en": "A & B", "de": "Ä <neu>"},
        {"en": 'desc "quoted"', "de": ""},
        extra="<upd:UninstallNotes>n</upd:UninstallNotes>",
    )
    tree = _parse(text)
    ns = {"upd": NS["upd"]}
    props = tree.findall("upd:LocalizedPropertiesCollection/upd:LocalizedProperties", ns)
    assert [p.findtext("upd:Language", namespaces=ns) for p in props] == ["en", "de"]
    assert [p.findtext("upd:Title", namespaces=ns) for p in props] == ["A & B", "Ä <neu>"]
    assert props[0].findtext("upd:Description", namespaces=ns) == 'desc "quoted"'
    assert props[1].find("upd:Description", ns) is None  # empty description is left out
    assert all(p.findtext("upd:UninstallNotes", namespaces=ns) == "n" for p in props)


def test_localized_empty_collection() -> None:
    assert localized({}, {}) == (
        "<upd:LocalizedPropertiesCollection></upd:LocalizedPropertiesCollection>"
    )
