"""The categories of a generated catalog: the palette updates are filed under, the
generated category tree and detectoids, and learning the palette from real category
records."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from lxml import etree

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator.markup import esc, guid, identity, localized, root, stamp
from updatesync.metadata.generator.shape import size_for_rank
from updatesync.metadata.generator.tables import (
    ALL_LANGUAGES,
    ARCHS,
    CATEGORY_HANDLER,
    CATEGORY_LANGUAGES,
    CATEGORY_SIZE_PERCENTILES,
    CLASSIFICATIONS,
    DETECTOID_SIZE_PERCENTILES,
    GENERATED_DETECTOIDS,
    KIND_WEIGHT,
    LEGACY_PRODUCTS,
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


@dataclass(frozen=True, slots=True)
class _Draft:
    """A category or detectoid document before padding: the text before its IsInstalled rule,
    the rule, and the text after it."""

    uid: str
    revision: int
    parts: tuple[str, str, str]

    def xml(self, rule: str) -> str:
        head, _rule, tail = self.parts
        text = head + rule + tail
        prefixes = [p for p in ("pub", "cat", "lar", "bar", "mar") if f"{p}:" in text]
        return (
            f"{root([*prefixes, 'upd'])}{identity(self.uid, self.revision)}{head}"
            f"<upd:ApplicabilityRules><upd:IsInstalled>{rule}</upd:IsInstalled>"
            f"</upd:ApplicabilityRules>{tail}"
        )


_MSIAR: Final = "http://schemas.microsoft.com/msus/2002/12/MsiApplicabilityRules"


def _pad_element(rng: random.Random, number: int) -> str:
    code = guid(rng).upper()
    if number % 3:
        return f'<msiar:MsiProductInstalled ProductCode="{{{code}}}" xmlns:msiar="{_MSIAR}" />'
    return (
        f'<msiar:MsiProductInstalled ProductCode="{{{code}}}" VersionMin="{number % 17}.0.0.0" '
        f'VersionMax="{number % 17}.0.65535.65535" xmlns:msiar="{_MSIAR}" />'
    )


def pad_to_real_sizes(
    drafts: Sequence[_Draft], percentiles: tuple[int, ...], rng: random.Random
) -> Iterator[ExportRecord]:
    """The drafts as records, in their order, each grown with MSI product rules (as the real
    large categories and detectoids are) to the real size of its rank: the smallest draft
    gets the size of the smallest share of the real documents, and so on."""
    bare = [draft.xml(draft.parts[1]) for draft in drafts]
    order = sorted(range(len(drafts)), key=lambda index: len(bare[index]))
    targets = [0] * len(drafts)
    for rank, index in enumerate(order):
        targets[index] = size_for_rank(percentiles, rank, len(drafts))
    for draft, xml, target in zip(drafts, bare, targets, strict=True):
        if len(xml) < target - 200:
            rule = draft.parts[1]
            pads = []
            size = len(xml) + 17
            while size < target:
                element = _pad_element(rng, len(pads))
                pads.append(element)
                size += len(element)
            xml = draft.xml(f"<lar:Or>{rule}{''.join(pads)}</lar:Or>")
        yield ExportRecord(draft.uid, draft.revision, xml)


def _category_parts(
    category_type: str,
    titles: Mapping[str, str],
    descriptions: Mapping[str, str],
    parent: str | None,
    created: str,
    publisher: str,
    info: str,
    rule: str = "<lar:True />",
) -> tuple[str, str, str]:
    relationships = (
        '<upd:Relationships><upd:Prerequisites><upd:AtLeastOne IsCategory="true">'
        f"{identity(parent)}</upd:AtLeastOne></upd:Prerequisites></upd:Relationships>"
        if parent
        else ""
    )
    return (
        '<upd:Properties DefaultPropertiesLanguage="en" IsPublic="true" UpdateType="Category" '
        f'Handler="{CATEGORY_HANDLER}" PublicationState="Published" CreationDate="{created}" '
        f'PublisherID="{publisher}"></upd:Properties>'
        f"{localized(titles, descriptions)}{relationships}",
        rule,
        f'<upd:HandlerSpecificData xsi:type="cat:Category" xmlns:xsi="{XSI}">'
        f'<cat:CategoryInformation CategoryType="{category_type}" {info} />'
        "</upd:HandlerSpecificData></upd:Update>",
    )


def _detectoid_parts(
    title: str,
    detectoid_type: str,
    created: str,
    rule: str,
    prerequisites: Sequence[str],
    superseded: Sequence[str] = (),
    languages: int = 1,
) -> tuple[str, str, str]:
    relationships = ""
    if prerequisites or superseded:
        relationships = "<upd:Relationships>"
        if superseded:
            relationships += (
                f"<upd:SupersededUpdates>{''.join(identity(s) for s in superseded)}"
                "</upd:SupersededUpdates>"
            )
        if prerequisites:
            relationships += (
                f"<upd:Prerequisites>{''.join(identity(p) for p in prerequisites)}"
                "</upd:Prerequisites>"
            )
        relationships += "</upd:Relationships>"
    texts = dict.fromkeys(ALL_LANGUAGES[:languages], title)
    return (
        '<upd:Properties DefaultPropertiesLanguage="en" UpdateType="Detectoid" '
        'ExplicitlyDeployable="false" PerUser="false" IsPublic="false" '
        f'DetectoidType="{detectoid_type}" PublicationState="Published" '
        f'CreationDate="{created}" PublisherID="{MS_UPDATE_PUBLISHER}"></upd:Properties>'
        f"{localized(texts, texts)}{relationships}",
        rule,
        "</upd:Update>",
    )


def generate_categories(rng: random.Random, palette: Palette) -> Iterator[ExportRecord]:
    """The generated category tree (parents before children), then the detectoids, each
    padded to the size the real ones of its rank have (`pad_to_real_sizes`)."""
    moment = datetime(2004, 2, 28, 18, 17, 22, tzinfo=UTC)

    def created() -> str:
        nonlocal moment
        moment += timedelta(seconds=rng.randint(1, 86_400 * 90))
        return stamp(moment, rng.randrange(1000))

    categories = list(_category_tree(rng, palette, created))
    yield from pad_to_real_sizes(categories, CATEGORY_SIZE_PERCENTILES, rng)
    detectoids = list(_detectoids(rng, palette, created))
    yield from pad_to_real_sizes(detectoids, DETECTOID_SIZE_PERCENTILES, rng)


def _everywhere(text: str) -> dict[str, str]:
    """The same text in the languages real companies and classifications carry."""
    return dict.fromkeys(ALL_LANGUAGES[:CATEGORY_LANGUAGES], text)


def _category_tree(
    rng: random.Random, palette: Palette, created: Callable[[], str]
) -> Iterator[_Draft]:
    def revision() -> int:
        return rng.choice((1, 100, 101, 200, 201, 202))

    legacy = dict(LEGACY_PRODUCTS)
    for order, (company, families) in enumerate(TREE, start=1):
        company_id = guid(rng)
        publisher = MS_CATEGORY_PUBLISHER if order == 1 else guid(rng)
        yield _Draft(
            company_id,
            revision(),
            _category_parts(
                "Company",
                _everywhere(company),
                _everywhere(company),
                None,
                created(),
                publisher,
                f'ProhibitsSubcategories="false" ProhibitsUpdates="true" DisplayOrder="{order}"',
            ),
        )
        for family, products in families:
            family_id = guid(rng)
            yield _Draft(
                family_id,
                revision(),
                _category_parts(
                    "ProductFamily",
                    {"en": family},
                    {"en": family},
                    company_id,
                    created(),
                    publisher,
                    'ProhibitsSubcategories="false" ProhibitsUpdates="true"',
                ),
            )
            entries = [(title, kind, True) for title, kind in products]
            entries += [(title, "lob", False) for title in legacy.get(family, ())]
            for title, kind, current in entries:
                product_id = guid(rng)
                rule = (
                    '<bar:WindowsVersion Comparison="GreaterThanOrEqualTo" MajorVersion="10" '
                    'MinorVersion="0" />'
                    if kind in ("windows", "defender")
                    else "<lar:True />"
                )
                yield _Draft(
                    product_id,
                    revision(),
                    _category_parts(
                        "Product",
                        {"en": title},
                        {"en": title},
                        family_id,
                        created(),
                        MS_PRODUCT_PUBLISHER if order == 1 else publisher,
                        'ProhibitsSubcategories="true" ExcludedByDefault="false"',
                        rule,
                    ),
                )
                if current:
                    palette.add_product(product_id, title, kind)

    for item in CLASSIFICATIONS:
        rev = 200 if item.title == "Upgrades" else 100
        titles = {**_everywhere(item.title), "en": item.title, **dict(sorted(item.titles.items()))}
        descriptions = {**_everywhere(item.description), "en": item.description}
        palette.classifications[item.update_id] = item.title
        yield _Draft(
            item.update_id,
            rev,
            _category_parts(
                "UpdateClassification",
                titles,
                descriptions,
                None,
                created(),
                MS_CATEGORY_PUBLISHER,
                'ProhibitsSubcategories="true" ProhibitsUpdates="false"',
            ),
        )


_FILLER_DETECTOIDS: Final = (
    ("Application Locale", "{0} {1} language detectoid"),
    ("SKU or Feature", "{0} installed"),
    ("Service Pack", "{0} RTM or later"),
    ("Windows Locale", "Windows {1} locale"),
)
_LOCALES: Final = ("English", "German", "French", "Japanese", "Arabic", "Chinese (Simplified)")


def _detectoids(
    rng: random.Random, palette: Palette, created: Callable[[], str]
) -> Iterator[_Draft]:
    arch_ids: dict[str, str] = {}
    for arch, _lower, code in ARCHS:
        uid = guid(rng)
        arch_ids[arch] = uid
        palette.add_detectoid(uid, f"arch:{arch}")
        yield _Draft(
            uid,
            1,
            _detectoid_parts(
                f"{arch}-based Systems",
                "Architecture",
                created(),
                f'<bar:Processor Architecture="{code}" />',
                (),
            ),
        )
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
        palette.add_detectoid(uid, kind)
        yield _Draft(
            uid, 200, _detectoid_parts(title, detectoid_type, created(), rule, (arch_ids[arch],))
        )
    fillers: list[str] = []
    titles = [title for title, _kind in (p for _f, ps in TREE[0][1] for p in ps)]
    for number in range(GENERATED_DETECTOIDS - len(ARCHS) - len(extras)):
        detectoid_type, pattern = _FILLER_DETECTOIDS[number % len(_FILLER_DETECTOIDS)]
        title = pattern.format(titles[number % len(titles)], _LOCALES[number % len(_LOCALES)])
        uid = guid(rng)
        parents = [rng.choice(list(arch_ids.values()))]
        if fillers and rng.random() < 0.1:
            parents.append(rng.choice(fillers))
        superseded = (rng.choice(fillers),) if fillers and rng.random() < 0.15 else ()
        languages = CATEGORY_LANGUAGES if number == 7 else 1
        yield _Draft(
            uid,
            rng.choice((100, 200)),
            _detectoid_parts(
                title,
                detectoid_type,
                created(),
                f'<bar:RegKeyExists Key="HKEY_LOCAL_MACHINE" Subkey="SOFTWARE\\Microsoft\\'
                f'{esc(title)}" />',
                tuple(parents),
                superseded,
                languages,
            ),
        )
        fillers.append(uid)


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
