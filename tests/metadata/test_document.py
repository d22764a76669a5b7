"""`parse_update` on small hand-written documents: hostile, malformed and positive cases."""

from __future__ import annotations

import codecs
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from updatesync.metadata.document import (
    DEFAULT_MAX,
    decode_document,
    parse_update,
    parse_update_identity,
)
from updatesync.metadata.errors import MalformedXmlError, MetadataError, UnsafeXmlError
from updatesync.metadata.model import (
    CategoryType,
    PublicationState,
    RevisionKey,
    UpdateType,
)

UID = "0d9a9c8b-1234-4f00-a1b2-c3d4e5f60718"
UID_UPPER = UID.upper()
WHERE = "test record 7"


def doc(
    *,
    uid: str = UID_UPPER,
    rev: str = "201",
    props: str = 'UpdateType="Software" DefaultPropertiesLanguage="en" '
    'PublicationState="Published" CreationDate="2024-01-02T03:04:05.678Z"',
    props_body: str = "",
    body: str = "",
    prolog: str = "",
) -> str:
    return (
        f'{prolog}<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update" '
        'xmlns:cat="http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category">'
        f'<upd:UpdateIdentity UpdateID="{uid}" RevisionNumber="{rev}" />'
        f"<upd:Properties {props}>{props_body}</upd:Properties>"
        "<upd:LocalizedPropertiesCollection><upd:LocalizedProperties>"
        "<upd:Language>en</upd:Language><upd:Title>Test update</upd:Title>"
        "<upd:Description>A test</upd:Description>"
        "</upd:LocalizedProperties><upd:LocalizedProperties>"
        "<upd:Language>de</upd:Language><upd:Title>Testaktualisierung</upd:Title>"
        "</upd:LocalizedProperties></upd:LocalizedPropertiesCollection>"
        f"{body}</upd:Update>"
    )


def _assert_names(err: MetadataError, *, update: bool = True) -> None:
    text = str(err)
    assert err.where == WHERE and text.startswith(f"{WHERE}: ")
    if update:
        assert UID in text, text


# --- hostile input ------------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n"
)


def test_billion_laughs_is_refused_unexpanded() -> None:
    text = BILLION_LAUGHS + doc().replace("Test update", "&lol9;")
    with pytest.raises(UnsafeXmlError) as caught:
        parse_update(text, where=WHERE)
    _assert_names(caught.value)
    assert "<!DOCTYPE" in str(caught.value)


def test_entity_declaration_without_doctype_keyword_is_refused() -> None:
    # not a valid place for it, but the pre-check refuses before any parsing
    text = doc(body='<!-- <!ENTITY x SYSTEM "file:///etc/passwd"> -->')
    with pytest.raises(UnsafeXmlError, match="ENTITY"):
        parse_update(text, where=WHERE)


def test_external_file_entity_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    text = f'<!DOCTYPE upd:Update [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>' + doc().replace(
        "Test update", "&xxe;"
    )
    with pytest.raises(UnsafeXmlError) as caught:
        parse_update(text, where=WHERE)
    _assert_names(caught.value)
    assert "TOP-SECRET-CONTENT" not in str(caught.value)
    passwd = '<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + doc().replace(
        "A test", "&xxe;"
    )
    with pytest.raises(UnsafeXmlError):
        parse_update(passwd.encode("utf-8"), where=WHERE)


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request it gets."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"FETCHED")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_external_http_entity_and_dtd_are_refused_unfetched(
    http_server: tuple[str, list[str]],
) -> None:
    base, hits = http_server
    entity = f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "{base}/entity">]>' + doc().replace(
        "Test update", "&xxe;"
    )
    external_dtd = f'<!DOCTYPE upd:Update SYSTEM "{base}/evil.dtd">' + doc()
    parameter = f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{base}/param.dtd"> %p;]>' + doc()
    for text in (entity, external_dtd, parameter):
        with pytest.raises(UnsafeXmlError) as caught:
            parse_update(text, where=WHERE)
        _assert_names(caught.value)
    assert hits == []


def test_doctype_alone_is_refused() -> None:
    with pytest.raises(UnsafeXmlError) as caught:
        parse_update("<!DOCTYPE upd:Update>" + doc(), where=WHERE)
    _assert_names(caught.value)
    utf16 = ("<!DOCTYPE upd:Update>" + doc()).encode("utf-16-le")
    with pytest.raises(UnsafeXmlError):
        parse_update(utf16, where=WHERE)


def test_oversize_document_is_refused_naming_size_and_limit() -> None:
    text = doc(body="<!--" + "x" * 5000 + "-->")
    limit = 4096
    with pytest.raises(UnsafeXmlError) as caught:
        parse_update(text, where=WHERE, max_bytes=limit)
    _assert_names(caught.value)
    message = str(caught.value)
    assert f"{len(text):,} bytes" in message and f"{limit:,} bytes" in message
    with pytest.raises(UnsafeXmlError, match="4,096"):
        parse_update(text.encode("utf-16-le"), where=WHERE, max_bytes=limit)
    # multi-byte characters count as their UTF-8 bytes, not as characters
    wide = doc(body="<!--" + "\u20ac" * 1500 + "-->")
    assert len(wide) < limit < len(wide.encode("utf-8"))
    with pytest.raises(UnsafeXmlError):
        parse_update(wide, where=WHERE, max_bytes=limit)
    assert parse_update(text, where=WHERE).update_id == UID  # fine under the default
    assert DEFAULT_MAX >= 16 * 1024 * 1024


# --- malformed input ----------------------------------------------------------------------


def test_truncated_document() -> None:
    text = doc()
    with pytest.raises(MalformedXmlError) as caught:
        parse_update(text[: len(text) // 2], where=WHERE)
    _assert_names(caught.value)
    assert "not well-formed" in str(caught.value)


def test_empty_input() -> None:
    for blob in ("", b""):
        with pytest.raises(MalformedXmlError) as caught:
            parse_update(blob, where=WHERE)
        _assert_names(caught.value, update=False)


def test_wrong_root_element() -> None:
    text = doc().replace("upd:Update", "upd:Updates")
    with pytest.raises(MalformedXmlError, match="root element") as caught:
        parse_update(text, where=WHERE)
    _assert_names(caught.value)
    bare = f'<Update><UpdateIdentity UpdateID="{UID}" RevisionNumber="1"/></Update>'
    with pytest.raises(MalformedXmlError, match="root element is Update"):
        parse_update(bare, where=WHERE)


def test_missing_identity() -> None:
    text = doc().replace(f'<upd:UpdateIdentity UpdateID="{UID_UPPER}" RevisionNumber="201" />', "")
    with pytest.raises(MalformedXmlError, match="no upd:UpdateIdentity") as caught:
        parse_update(text, where=WHERE)
    _assert_names(caught.value, update=False)


@pytest.mark.parametrize(
    "rev", ["", "abc", "1.5", "-3", "+4", " 7", "1_000", "\u0661", "99999999999"]
)
def test_bad_revision_number(rev: str) -> None:
    with pytest.raises(MalformedXmlError, match="RevisionNumber") as caught:
        parse_update(doc(rev=rev), where=WHERE)
    _assert_names(caught.value)


@pytest.mark.parametrize("uid", ["not-a-guid", "{" + UID + "}", UID[:-1], UID + "0", ""])
def test_bad_guid(uid: str) -> None:
    with pytest.raises(MalformedXmlError, match="not a GUID") as caught:
        parse_update(doc(uid=uid), where=WHERE)
    assert caught.value.where == WHERE


def test_bad_guid_in_a_relationship_names_the_update() -> None:
    body = (
        "<upd:Relationships><upd:SupersededUpdates>"
        '<upd:UpdateIdentity UpdateID="zzzz" /></upd:SupersededUpdates></upd:Relationships>'
    )
    with pytest.raises(MalformedXmlError, match="SupersededUpdates") as caught:
        parse_update(doc(body=body), where=WHERE)
    _assert_names(caught.value)
    assert f"{UID} rev 201" in str(caught.value)


def _many_bundled(identities: list[str]) -> str:
    return (
        "<upd:Relationships><upd:BundledUpdates>"
        + "".join(identities)
        + "</upd:BundledUpdates><upd:SupersededUpdates>"
        + "".join(f'<upd:UpdateIdentity UpdateID="{_nth(n).upper()}" />' for n in range(40))
        + "</upd:SupersededUpdates></upd:Relationships>"
    )


def _nth(n: int) -> str:
    return f"11111111-2222-4333-8444-{n:012d}"


def test_long_relationship_lists_are_read_in_order_and_lower_cased() -> None:
    bundled = [
        f'<upd:UpdateIdentity UpdateID="{_nth(n).upper()}" RevisionNumber="{100 + n}" />'
        for n in range(60)
    ]
    parsed = parse_update(doc(body=_many_bundled(bundled)), where=WHERE)
    assert parsed.bundled_updates == tuple(RevisionKey(_nth(n), 100 + n) for n in range(60))
    assert parsed.superseded_updates == tuple(_nth(n) for n in range(40))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('UpdateID="{guid}x" RevisionNumber="1"', "BundledUpdates UpdateIdentity is not a GUID"),
        ('RevisionNumber="1"', "BundledUpdates UpdateIdentity has no UpdateID"),
        ('UpdateID="{guid},{guid}" RevisionNumber="1"', "is not a GUID"),
        ('UpdateID="{guid}" RevisionNumber="1,2"', "RevisionNumber is not a non-negative"),
        ('UpdateID="{guid}"', "BundledUpdates UpdateIdentity RevisionNumber is missing"),
        ('UpdateID="{guid}" RevisionNumber="2147483648"', "2147483648 is out of range"),
    ],
    ids=["bad-guid", "no-guid", "two-guids", "bad-number", "no-number", "number-too-large"],
)
def test_one_bad_identity_among_many_is_named(bad: str, message: str) -> None:
    bundled = [
        f'<upd:UpdateIdentity UpdateID="{_nth(n)}" RevisionNumber="{n}" />' for n in range(60)
    ]
    bundled[37] = f"<upd:UpdateIdentity {bad.format(guid=_nth(37))} />"
    with pytest.raises(MalformedXmlError, match=message) as caught:
        parse_update(doc(body=_many_bundled(bundled)), where=WHERE)
    _assert_names(caught.value)


@pytest.mark.parametrize(
    ("props", "value"),
    [
        ('UpdateType="Firmware"', "Firmware"),
        ('UpdateType="Software" PublicationState="Withdrawn"', "Withdrawn"),
    ],
)
def test_unknown_enumerated_values_name_the_update_and_the_value(props: str, value: str) -> None:
    with pytest.raises(MalformedXmlError, match=repr(value)) as caught:
        parse_update(doc(props=props), where=WHERE)
    _assert_names(caught.value)


def test_unknown_category_type() -> None:
    body = (
        '<upd:HandlerSpecificData><cat:CategoryInformation CategoryType="Galaxy" />'
        "</upd:HandlerSpecificData>"
    )
    with pytest.raises(MalformedXmlError, match="'Galaxy'") as caught:
        parse_update(doc(props='UpdateType="Category"', body=body), where=WHERE)
    _assert_names(caught.value)


def test_missing_update_type() -> None:
    with pytest.raises(MalformedXmlError, match="UpdateType") as caught:
        parse_update(doc(props='PublicationState="Published"'), where=WHERE)
    _assert_names(caught.value)


# --- encodings ------------------------------------------------------------------------------


def test_utf16le_without_bom_parses() -> None:
    """SPEC.md section 7: the compressed blob is the XML as UTF-16LE without a BOM."""
    text = doc(props_body="<upd:KBArticleID>5034441</upd:KBArticleID>").replace(
        "Testaktualisierung", "Testaktualisierung \u00e4\u00f6\u00fc \u65e5\u672c"
    )
    blob = text.encode("utf-16-le")
    assert not blob.startswith(codecs.BOM_UTF16_LE)
    parsed = parse_update(blob, where=WHERE)
    assert parsed.xml == text
    assert parsed.update_id == UID and parsed.kb_article == "5034441"
    assert parsed.title("de") == "Testaktualisierung \u00e4\u00f6\u00fc \u65e5\u672c"
    assert parsed == parse_update(text, where=WHERE)


@pytest.mark.parametrize(
    ("prefix", "encoding"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF8, "utf-8"),
        (b"", "utf-8"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_bytes_with_or_without_bom_and_declaration(prefix: bytes, encoding: str) -> None:
    name = "utf-16" if encoding.startswith("utf-16") else "utf-8"
    text = f'<?xml version="1.0" encoding="{name}"?>' + doc()
    parsed = parse_update(prefix + text.encode(encoding), where=WHERE)
    assert parsed.xml == text  # the BOM is not part of the text
    assert parsed.update_id == UID


def test_text_with_an_encoding_declaration_parses() -> None:
    """.NET writes encoding="utf-16" even into text it then stores as UTF-8."""
    text = '<?xml version="1.0" encoding="utf-16"?>\r\n' + doc()
    assert parse_update(text, where=WHERE).xml == text
    assert parse_update(text.encode("utf-8"), where=WHERE).update_id == UID


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"<upd:Update \xff\xfe\xfa\xfb\xc0\x80>" + b"\x81" * 50, id="not-utf8"),
        pytest.param(doc().encode("utf-16-le")[:-1], id="odd-length-utf16"),
        pytest.param(
            doc().encode("utf-16-le").replace("Test".encode("utf-16-le"), b"\x00\xd8T\x00", 1),
            id="lone-surrogate-utf16",
        ),
        pytest.param(doc().encode("utf-8").replace(b"Test", b"T\xe9st", 1), id="latin1-as-utf8"),
    ],
)
def test_neither_utf8_nor_utf16_bytes(blob: bytes) -> None:
    with pytest.raises(MalformedXmlError, match="neither valid UTF-8 nor UTF-16") as caught:
        parse_update(blob, where=WHERE)
    assert caught.value.where == WHERE


def test_other_declared_8bit_encoding_is_refused() -> None:
    blob = ('<?xml version="1.0" encoding="windows-1252"?>' + doc()).encode("cp1252")
    with pytest.raises(MalformedXmlError, match="windows-1252") as caught:
        parse_update(blob, where=WHERE)
    _assert_names(caught.value)


def test_decode_document_rejects_invalid_bytes_with_offset() -> None:
    with pytest.raises(MalformedXmlError, match="byte 3"):
        decode_document(b"<a>\xff</a>", where=WHERE)


# --- positive: fields from small documents ----------------------------------------------


def test_software_update_fields() -> None:
    props = (
        'UpdateType="Software" DefaultPropertiesLanguage="en" MsrcSeverity="Critical" '
        'EulaID="8E9A1B2C-3D4E-4F50-8A9B-0C1D2E3F4A5B" PublicationState="Published" '
        'CreationDate="2008-10-23T00:00:00Z"'
    )
    props_body = (
        "<upd:KBArticleID> 958644 </upd:KBArticleID>"
        "<upd:SecurityBulletinID>MS08-067</upd:SecurityBulletinID>"
    )
    category = "0FA1201D-4330-4FA8-8AE9-B877473B6441"
    body = (
        "<upd:Relationships><upd:Prerequisites>"
        '<upd:UpdateIdentity UpdateID="AAAAAAAA-0000-0000-0000-000000000001" />'
        "<!-- a comment, as real exports have -->"
        '<upd:AtLeastOne><upd:UpdateIdentity UpdateID="aaaaaaaa-0000-0000-0000-000000000002" />'
        '<upd:UpdateIdentity UpdateID="aaaaaaaa-0000-0000-0000-000000000003" /></upd:AtLeastOne>'
        f'<upd:AtLeastOne IsCategory="true"><upd:UpdateIdentity UpdateID="{category}" />'
        "</upd:AtLeastOne></upd:Prerequisites>"
        "<upd:BundledUpdates><upd:AtLeastOne>"
        '<upd:UpdateIdentity UpdateID="BBBBBBBB-0000-0000-0000-000000000001"'
        ' RevisionNumber="102" />'
        "</upd:AtLeastOne></upd:BundledUpdates>"
        "<upd:SupersededUpdates>"
        '<upd:UpdateIdentity UpdateID="CCCCCCCC-0000-0000-0000-000000000001" />'
        "</upd:SupersededUpdates></upd:Relationships>"
        '<upd:Files><upd:File Digest="h/W9BGlYUAaqXTp30cZi/SiV3c0=" DigestAlgorithm="SHA1" '
        'FileName="windows-kb958644.cab" Size="1234567" Modified="2008-10-22T12:00:00Z">'
        '<upd:AdditionalDigest Algorithm="SHA256">Amt0qymy5KsROiwIXm4QIIV75Ju4r+Cl28Pg8gaLXUA='
        "</upd:AdditionalDigest></upd:File></upd:Files>"
    )
    parsed = parse_update(doc(props=props, props_body=props_body, body=body), where=WHERE)
    assert parsed.key == RevisionKey(UID, 201)
    assert parsed.update_type is UpdateType.SOFTWARE
    assert parsed.msrc_severity == "Critical"
    assert parsed.security_bulletin == "MS08-067"
    assert parsed.kb_article == "958644"
    assert parsed.eula_id == "8e9a1b2c-3d4e-4f50-8a9b-0c1d2e3f4a5b"
    assert parsed.creation_date == "2008-10-23T00:00:00Z"
    assert parsed.category_prerequisites == ((category.lower(),),)
    assert parsed.prerequisites == (
        ("aaaaaaaa-0000-0000-0000-000000000001",),
        ("aaaaaaaa-0000-0000-0000-000000000002", "aaaaaaaa-0000-0000-0000-000000000003"),
    )
    assert parsed.bundled_updates == (RevisionKey("bbbbbbbb-0000-0000-0000-000000000001", 102),)
    assert parsed.superseded_updates == ("cccccccc-0000-0000-0000-000000000001",)
    (file,) = parsed.files
    assert (file.name, file.size, file.sha1, file.modified) == (
        "windows-kb958644.cab",
        1234567,
        "h/W9BGlYUAaqXTp30cZi/SiV3c0=",
        "2008-10-22T12:00:00Z",
    )
    assert file.sha256 == "Amt0qymy5KsROiwIXm4QIIV75Ju4r+Cl28Pg8gaLXUA="
    assert parsed.title() == "Test update" and parsed.description() == "A test"
    assert parsed.title("de") == "Testaktualisierung" and parsed.description("de") is None
    assert parsed.languages() == ("en", "de")
    assert parsed.category_type is None and parsed.detectoid_type is None


def test_expired_state() -> None:
    props = 'UpdateType="Software" PublicationState="Expired"'
    assert parse_update(doc(props=props)).publication_state is PublicationState.EXPIRED
    # absent PublicationState: the model's default
    absent = parse_update(doc(props='UpdateType="Software"'))
    assert absent.publication_state is PublicationState.PUBLISHED


def test_driver_type() -> None:
    parsed = parse_update(doc(props='UpdateType="Driver" PublicationState="Published"'))
    assert parsed.update_type is UpdateType.DRIVER
    assert not parsed.is_category


def test_detectoid_and_category() -> None:
    detectoid = parse_update(doc(props='UpdateType="Detectoid" DetectoidType="Architecture"'))
    assert detectoid.update_type is UpdateType.DETECTOID
    assert detectoid.detectoid_type == "Architecture"
    body = (
        "<upd:Relationships><upd:Prerequisites>"
        '<upd:AtLeastOne IsCategory="true">'
        '<upd:UpdateIdentity UpdateID="56309036-4C77-4DD9-951A-99EE9C246A94" />'
        "</upd:AtLeastOne></upd:Prerequisites></upd:Relationships>"
        '<upd:HandlerSpecificData><cat:CategoryInformation CategoryType="ProductFamily" />'
        "</upd:HandlerSpecificData>"
    )
    category = parse_update(doc(props='UpdateType="Category"', body=body))
    assert category.category_type is CategoryType.PRODUCT_FAMILY
    assert category.parent_categories == ("56309036-4c77-4dd9-951a-99ee9c246a94",)


def test_xml_is_kept_exactly_as_given() -> None:
    text = "\ufeff" + doc(body="\r\n  <!-- spacing kept -->\r\n")
    assert parse_update(text).xml == text


def test_parse_update_identity() -> None:
    assert parse_update_identity(doc()) == RevisionKey(UID, 201)
    assert parse_update_identity(doc().encode("utf-16-le")) == RevisionKey(UID, 201)
    with pytest.raises(MalformedXmlError, match="RevisionNumber"):
        parse_update_identity(doc(rev="x"), where=WHERE)


def test_errors_without_where_still_name_the_update() -> None:
    with pytest.raises(MalformedXmlError) as caught:
        parse_update(doc(props='UpdateType="Nope"'))
    assert caught.value.where is None
    assert str(caught.value).startswith(f"update {UID} rev 201: unknown UpdateType 'Nope'")


def test_the_parser_itself_neither_expands_nor_fetches(
    http_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    """Defence in depth: the lxml parser behind the text check is configured safely too."""
    from lxml import etree

    from updatesync.metadata.document import _parser

    base, hits = http_server
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    external = (
        f'<!DOCTYPE r [<!ENTITY file SYSTEM "{secret.as_uri()}">'
        f'<!ENTITY web SYSTEM "{base}/entity">]><r>&file;&web;</r>'
    )
    root = etree.fromstring(external, _parser())
    serialized = etree.tostring(root)
    assert b"TOP-SECRET" not in serialized and b"FETCHED" not in serialized
    assert hits == []
    assert root.getroottree().docinfo.doctype  # what the check after parsing refuses

    laughs = BILLION_LAUGHS.split("\n", 1)[1] + "<r>&lol9;</r>"
    try:
        root = etree.fromstring(laughs, _parser())
    except etree.XMLSyntaxError:
        pass  # libxml2's amplification limit refused it: also fine
    else:
        assert len(etree.tostring(root)) < 10_000


# --- license terms ---------------------------------------------------------------------------

EULA = "717c6af4-d907-42d7-9375-2ca8f225f953"
EN_DIGEST = "BaxL9mEjBzph5M+JdDD6c/N91IY="


def _eula_files(*files: str) -> str:
    return "<upd:EulaFiles>" + "".join(files) + "</upd:EulaFiles>"


def _eula_file(language: str = "en", digest: str = EN_DIGEST) -> str:
    return (
        f'<upd:EulaFile Digest="{digest}" DigestAlgorithm="SHA1" '
        f'FileName="silverlighteula-{language}-{EULA}.txt" Size="40450" '
        f'Modified="2011-07-13T12:23:50Z" Language="{language}" />'
    )


def test_license_terms_files_are_read_with_their_languages() -> None:
    text = doc(
        props=f'UpdateType="Software" EulaID="{EULA.upper()}"',
        body=_eula_files(_eula_file("en"), _eula_file("nb", "EKvpUkQdmnL3oUL2heEnssOFe3o=")),
    )
    revision = parse_update(text, where=WHERE)
    assert revision.eula_id == EULA
    assert [(f.language, f.name, f.sha1, f.size) for f in revision.eula_files] == [
        ("en", f"silverlighteula-en-{EULA}.txt", EN_DIGEST, 40450),
        ("nb", f"silverlighteula-nb-{EULA}.txt", "EKvpUkQdmnL3oUL2heEnssOFe3o=", 40450),
    ]
    assert revision.files == ()  # the update's own files are apart


@pytest.mark.parametrize(
    ("props", "files", "problem"),
    [
        ('UpdateType="Software"', _eula_file(), "EulaFiles without a Properties EulaID"),
        (
            f'UpdateType="Software" EulaID="{EULA}"',
            _eula_file().replace(' Language="en"', ""),
            "EulaFile #1 (silverlighteula-en-",
        ),
        (
            f'UpdateType="Software" EulaID="{EULA}"',
            _eula_file(digest="not-a-digest"),
            "is not a SHA-1 digest in base64",
        ),
    ],
)
def test_bad_license_terms_files_are_refused_naming_the_update(
    props: str, files: str, problem: str
) -> None:
    with pytest.raises(MalformedXmlError) as caught:
        parse_update(doc(props=props, body=_eula_files(files)), where=WHERE)
    assert problem in str(caught.value)
    _assert_names(caught.value)
