"""License terms of a generated catalog: the EULA an update names and the files it has.

Microsoft Update names one set of license terms (`Properties/@EulaID`) for every update of
a product line (the same Silverlight terms for each of its updates), and serves them as one
text file per language, named `<line>eula-<language>-<EulaID>.txt` and downloaded from
`model.MU_EULA_FOLDER` (what a WSUS lists for such an
update). A generated update of a template with license terms gets the terms of its product
line: `eula_id_for` derives their GUID from the line's name, and `eula_files` the
`upd:EulaFiles` element listing their files, with the SHA-1 digest of the text
`license_text` writes for each language. The texts depend only on the EULA's id and the
language, so `license_terms` gives the files of any generated catalog from its documents
alone: what the stand-in Microsoft Update serves beside the metadata.

Nothing here draws from the catalog's random generator: the catalogs keep every GUID and
every count they had before updates had license-term files.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator.tables import BASE_DATE, LANGUAGES

_MAX_EXTRA_LANGUAGES: Final = 3
_PARAGRAPHS: Final = (
    "These license terms are an agreement between the publisher and you. They apply to the "
    "software named above and to any updates, supplements and support services for it.",
    "Installation and use rights. You may install and use any number of copies of the "
    "software on your devices.",
    "Scope of license. The software is licensed, not sold. You may not work around any "
    "technical limitation of the software.",
    "Updates. The software may check for and install updates. You agree to receive these "
    "updates without further notice.",
    "Data collection. The software may collect information about you and your use of it.",
    "Export restrictions. You must comply with all export laws and regulations that apply.",
    "Disclaimer of warranty. The software is licensed as-is. You bear the risk of using it.",
)
_EULA_FILES_RE: Final = re.compile(r"<upd:EulaFiles>(.*?)</upd:EulaFiles>", re.DOTALL)
_EULA_FILE_RE: Final = re.compile(
    r'<upd:EulaFile Digest="([^"]+)" DigestAlgorithm="SHA1" FileName="([^"]+)" '
    r'Size="(\d+)" Modified="[^"]+" Language="([^"]+)" />'
)
_EULA_ID_RE: Final = re.compile(r'\bEulaID="([0-9a-f-]{36})"')


@dataclass(frozen=True, slots=True)
class LicenseTermsFile:
    """One file of license terms: its EULA, language, name, SHA-1 digest (base64) and text."""

    eula_id: str
    language: str
    name: str
    digest: str
    content: bytes


def eula_id_for(line: str) -> str:
    """The GUID of a product line's license terms (a version-4 shape, from its name)."""
    h = hashlib.sha256(f"license terms of {line}".encode()).hexdigest()
    variant = "89ab"[int(h[16], 16) % 4]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def eula_languages(eula_id: str) -> tuple[str, ...]:
    """The languages a EULA is written in: English and up to three more."""
    seed = int(hashlib.sha256(eula_id.encode()).hexdigest()[:8], 16)
    extra = [lang for n, lang in enumerate(LANGUAGES) if seed >> n & 1]
    return ("en", *extra[:_MAX_EXTRA_LANGUAGES])


def license_text(eula_id: str, language: str) -> bytes:
    """The text of license terms `eula_id` in `language` (UTF-8, CRLF lines, 1 to 3 KB)."""
    seed = hashlib.sha256(f"{eula_id}/{language}".encode()).digest()
    lines = [
        "MICROSOFT SOFTWARE LICENSE TERMS",
        f"License terms {eula_id} ({language}); a synthetic text of a generated catalog.",
        "",
    ]
    for n in range(4 + seed[0] % 8):
        lines.append(f"{n + 1}. {_PARAGRAPHS[(seed[1] + n) % len(_PARAGRAPHS)]}")
        lines.append("")
    return "\r\n".join(lines).encode("utf-8")


def eula_files(eula_id: str, line: str) -> str:
    """The `upd:EulaFiles` element of an update naming license terms `eula_id` of `line`."""
    slug = re.sub(r"[^a-z0-9]+", "", line.lower())[:24] or "update"
    modified = f"{BASE_DATE:%Y-%m-%dT%H:%M:%S}Z"
    parts = ["<upd:EulaFiles>"]
    for language in eula_languages(eula_id):
        text = license_text(eula_id, language)
        digest = base64.b64encode(hashlib.sha1(text).digest()).decode("ascii")
        parts.append(
            f'<upd:EulaFile Digest="{digest}" DigestAlgorithm="SHA1" '
            f'FileName="{slug}eula-{language}-{eula_id}.txt" Size="{len(text)}" '
            f'Modified="{modified}" Language="{language}" />'
        )
    parts.append("</upd:EulaFiles>")
    return "".join(parts)


def license_terms(records: Iterable[ExportRecord]) -> Iterator[LicenseTermsFile]:
    """The license-term files the documents of a generated catalog list, each once: what
    Microsoft Update would serve for them. Files whose listed digest is not that of the
    text `license_text` writes (documents not generated here) are left out."""
    seen: set[str] = set()
    for record in records:
        xml = record.xml
        if "EulaFiles" not in xml:
            continue
        found = _EULA_FILES_RE.search(xml)
        eula = _EULA_ID_RE.search(xml)
        if found is None or eula is None:
            continue
        for digest, name, _size, language in _EULA_FILE_RE.findall(found.group(1)):
            if digest in seen:
                continue
            text = license_text(eula.group(1), language)
            if base64.b64encode(hashlib.sha1(text).digest()).decode("ascii") != digest:
                continue
            seen.add(digest)
            yield LicenseTermsFile(eula.group(1), language, name, digest, text)
