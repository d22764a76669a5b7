"""The categories of a generated catalog: the palette updates are filed under, the
generated category tree and detectoids, and learning the palette from real category
records."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from lxml import etree

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator.markup import guid, identity, localized, root, stamp
from updatesync.metadata.generator.tables import (
    ARCHS,
    CATEGORY_HANDLER,
    CLASSIFICATIONS,
    KIND_WEIGHT,
    MS_CATEGORY_PUBLISHER,
    MS_PRODUCT_PUBLISHER,
    MS_UPDATE_PUBLISHER,
    TREE,
    XSI,
)
from updatesync.metadata.model import CategoryType


@dataclass(slots=True)
class Palette:
    """What updates are filed under: products, classifications, detectoids."""

    products: list[tuple[str, str, str]] = field(default_factory=list)  # id, title, kind
    classifications: dict[str, str] = field(default_factory=dict)  # id -> en title
    detectoids: dict[str, list[str]] = field(default_factory=dict)  # tag -> ids
    weights: list[int] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)

    def add_product(self, uid: str, title: str, kind: str | None = None) -> None:
        if uid in self._seen:
            return
        self._seen.add(uid)
        kind = kind or _kind_for(title)
        self.products.append((uid, title, kind))
        self.weights.append(KIND_WEIGHT.get(kind, 1))

    def add_detectoid(self, uid: str, tag: str = "any") -> None:
        self.detectoids.setdefault(tag, []).append(uid)
        if tag != "any":
            self.detectoids.setdefault("any", []).append(uid)

    def classification_for(self, wanted: str, rng: random.Random) -> str:
        if wanted in self.classifications:
            return wanted
        return rng.choice(sorted(self.classifications))

    def check(self) -> None:
        if not self.products or not self.classifications:
            raise ValueError(
                "the categories hold no Product or no UpdateClassification category: "
                "updates cannot be filed"
            )


def _kind_for(title: str) -> str:
    t = title.lower()
    if "defender antivirus" in t:
        return "defender"
    if "driver" in t:
        return "driver"
    if "office" in t or "365" in t or "sharepoint" in t:
        return "office"
    if "sql" in t:
        return "sql"
    if ".net" in t or "visual studio" in t:
        return "dotnet"
    if "windows" in t:
        return "windows"
    return "lob"


def _category_xml(
    uid: str,
    revision: int,
    category_type: str,
    titles: Mapping[str, str],
    descriptions: Mapping[str, str],
    parent: str | None,
    created: str,
    publisher: str,
    info: str,
    rule: str = "<lar:True />",
) -> str:
    prefixes = ("cat", "lar", "bar", "upd") if "bar:" in rule else ("cat", "lar", "upd")
    relationships = (
        '<upd:Relationships><upd:Prerequisites><upd:AtLeastOne IsCategory="true">'
        f"{identity(parent)}</upd:AtLeastOne></upd:Prerequisites></upd:Relationships>"
        if parent
        else ""
    )
    return (
        f"{root(prefixes)}{identity(uid, revision)}"
        '<upd:Properties DefaultPropertiesLanguage="en" IsPublic="true" UpdateType="Category" '
        f'Handler="{CATEGORY_HANDLER}" PublicationState="Published" CreationDate="{created}" '
        f'PublisherID="{publisher}"></upd:Properties>'
        f"{localized(titles, descriptions)}{relationships}"
        f"<upd:ApplicabilityRules><upd:IsInstalled>{rule}</upd:IsInstalled>"
        "</upd:ApplicabilityRules>"
        f'<upd:HandlerSpecificData xsi:type="cat:Category" xmlns:xsi="{XSI}">'
        f'<cat:CategoryInformation CategoryType="{category_type}" {info} />'
        "</upd:HandlerSpecificData></upd:Update>"
    )


def _detectoid_xml(
    uid: str,
    revision: int,
    title: str,
    detectoid_type: str,
    created: str,
    rule: str,
    prerequisite: str | None,
) -> str:
    prefixes = [p for p in ("pub", "bar", "lar", "mar") if f"<{p}:" in rule] + ["upd"]
    relationships = (
        f"<upd:Relationships><upd:Prerequisites>{identity(prerequisite)}"
        "</upd:Prerequisites></upd:Relationships>"
        if prerequisite
        else ""
    )
    return (
        f"{root(prefixes)}{identity(uid, revision)}"
        '<upd:Properties DefaultPropertiesLanguage="en" UpdateType="Detectoid" '
        'ExplicitlyDeployable="false" PerUser="false" IsPublic="false" '
        f'DetectoidType="{detectoid_type}" PublicationState="Published" '
        f'CreationDate="{created}" PublisherID="{MS_UPDATE_PUBLISHER}"></upd:Properties>'
        f"{localized({'en': title}, {'en': title})}{relationships}"
        f"<upd:ApplicabilityRules><upd:IsInstalled>{rule}</upd:IsInstalled>"
        "</upd:ApplicabilityRules></upd:Update>"
    )


def generate_categories(rng: random.Random, palette: Palette) -> Iterator[ExportRecord]:
    """The generated category tree (parents before children), then the detectoids."""
    moment = datetime(2004, 2, 28, 18, 17, 22, tzinfo=UTC)

    def created() -> str:
        nonlocal moment
        moment += timedelta(seconds=rng.randint(1, 86_400 * 90))
        return stamp(moment, rng.randrange(1000))

    def revision() -> int:
        return rng.choice((1, 100, 101, 200, 201, 202))

    for order, (company, families) in enumerate(TREE, start=1):
        company_id = guid(rng)
        publisher = MS_CATEGORY_PUBLISHER if order == 1 else guid(rng)
        rev = revision()
        xml = _category_xml(
            company_id,
            rev,
            "Company",
            {"en": company},
            {"en": company},
            None,
            created(),
            publisher,
            f'ProhibitsSubcategories="false" ProhibitsUpdates="true" DisplayOrder="{order}"',
        )
        yield ExportRecord(company_id, rev, xml)
        for family, products in families:
            family_id = guid(rng)
            rev = revision()
            xml = _category_xml(
                family_id,
                rev,
                "ProductFamily",
                {"en": family},
                {"en": family},
                company_id,
                created(),
                publisher,
                'ProhibitsSubcategories="false" ProhibitsUpdates="true"',
            )
            yield ExportRecord(family_id, rev, xml)
            for title, kind in products:
                product_id = guid(rng)
                rev = revision()
                rule = (
                    '<bar:WindowsVersion Comparison="GreaterThanOrEqualTo" MajorVersion="10" '
                    'MinorVersion="0" />'
                    if kind in ("windows", "defender")
                    else "<lar:True />"
                )
                xml = _category_xml(
                    product_id,
                    rev,
                    "Product",
                    {"en": title},
                    {"en": title},
                    family_id,
                    created(),
                    MS_PRODUCT_PUBLISHER if order == 1 else publisher,
                    'ProhibitsSubcategories="true" ExcludedByDefault="false"',
                    rule,
                )
                palette.add_product(product_id, title, kind)
                yield ExportRecord(product_id, rev, xml)

    for item in CLASSIFICATIONS:
        rev = 200 if item.title == "Upgrades" else 100
        titles = {"en": item.title, **dict(sorted(item.titles.items()))}
        descriptions = {"en": item.description}
        xml = _category_xml(
            item.update_id,
            rev,
            "UpdateClassification",
            titles,
            descriptions,
            None,
            created(),
            MS_CATEGORY_PUBLISHER,
            'ProhibitsSubcategories="true" ProhibitsUpdates="false"',
        )
        palette.classifications[item.update_id] = item.title
        yield ExportRecord(item.update_id, rev, xml)

    arch_ids: dict[str, str] = {}
    for arch, _lower, code in ARCHS:
        uid = guid(rng)
        arch_ids[arch] = uid
        xml = _detectoid_xml(
            uid,
            1,
            f"{arch}-based Systems",
            "Architecture",
            created(),
            f'<bar:Processor Architecture="{code}" />',
            None,
        )
        palette.add_detectoid(uid, f"arch:{arch}")
        yield ExportRecord(uid, 1, xml)
    extras = (
        (
            "windows",
            "Windows 10 and later client",
            "SKU or Feature",
            '<bar:WindowsVersion Comparison="GreaterThanOrEqualTo" MajorVersion="10" '
            'MinorVersion="0" ProductType="1" />',
            "x64",
        ),
        (
            "defender",
            "Microsoft Defender Antivirus platform installed",
            "SKU or Feature",
            '<bar:RegValueExists Key="HKEY_LOCAL_MACHINE" Subkey="SOFTWARE\\Microsoft\\Windows '
            'Defender" Value="InstallLocation" Type="REG_SZ" />',
            "x64",
        ),
        (
            "office",
            "Office 2016 32-bit",
            "Application Locale",
            '<lar:Or><mar:MsiProductInstalled ProductCode="{90160000-0011-0000-0000-0000000FF1CE}" '
            'VersionMin="16.0.4266.1001" VersionMax="16.0.65535.65535" /><mar:MsiProductInstalled '
            'ProductCode="{90160000-0012-0000-0000-0000000FF1CE}" VersionMin="16.0.4266.1001" '
            'VersionMax="16.0.65535.65535" /></lar:Or>',
            "x86",
        ),
    )
    for kind, title, detectoid_type, rule, arch in extras:
        uid = guid(rng)
        xml = _detectoid_xml(uid, 200, title, detectoid_type, created(), rule, arch_ids[arch])
        palette.add_detectoid(uid, kind)
        yield ExportRecord(uid, 200, xml)


_TITLE_RE: Final = re.compile(
    r"<(?:\w+:)?Language>\s*en\s*</(?:\w+:)?Language>\s*<(?:\w+:)?Title>([^<]*)<"
)
UPDATE_TYPE_RE: Final = re.compile(r'\bUpdateType\s*=\s*"(\w+)"')
CATEGORY_TYPE_RE: Final = re.compile(r'\bCategoryType\s*=\s*"(\w+)"')
_FIRST_ID_RE: Final = re.compile(r'<(?:\w+:)?UpdateIdentity\b[^>]*?\bUpdateID\s*=\s*"([^"]+)"')


def attribute(xml: str, name: str, pattern: re.Pattern[str]) -> str | None:
    """The first `name="..."` value in `xml`: a plain find, the regex only as a fallback."""
    key = f' {name}="'
    start = xml.find(key)
    if start >= 0:
        start += len(key)
        return xml[start : xml.find('"', start)]
    match = pattern.search(xml)
    return match.group(1) if match else None


def _unescape(text: str) -> str:
    if "&" not in text:
        return text
    return etree.fromstring(f"<t>{text}</t>").text or ""


def learn_category(record: ExportRecord, palette: Palette) -> str | None:
    """Note a category or detectoid record in `palette`; return its UpdateType."""
    xml = record.xml
    update_type = attribute(xml, "UpdateType", UPDATE_TYPE_RE)
    if update_type not in ("Category", "Detectoid"):
        return update_type
    id_match = _FIRST_ID_RE.search(xml)
    uid = (id_match.group(1) if id_match else record.update_id).lower()
    if update_type == "Detectoid":
        if uid not in palette._seen:
            palette._seen.add(uid)
            palette.add_detectoid(uid)
        return update_type
    kind = attribute(xml, "CategoryType", CATEGORY_TYPE_RE)
    title_match = _TITLE_RE.search(xml)
    title = _unescape(title_match.group(1)) if title_match else ""
    if kind == CategoryType.PRODUCT.value:
        palette.add_product(uid, title)
    elif kind == CategoryType.UPDATE_CLASSIFICATION.value:
        palette.classifications.setdefault(uid, title)
    return update_type
