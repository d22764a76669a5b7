"""Update revisions of a generated catalog: `UpdateFactory` streams updates filed under a
palette, in the shapes real ones have (see `shape` and docs/architecture.md):

- stand-alone updates: files, a large applicability rule block (`rules`), command-line or
  driver handler data, localized in English, a few languages, or (some) 24 to 36;
- bundle families, as Microsoft ships its Defender definitions: installable leaves (files,
  large rules, English only), hidden sub-bundles bundling some of them, and the bundle filed
  under the product and classification, localized in 24 to 36 languages, superseding the
  previous ones of its line and bundling, in `AtLeastOne` groups, its new leaves and
  sub-bundles with up to about 150 recent ones of its product.

Documents are written from string templates; the only state kept is a bounded window of
recent ids per product line."""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator.categories import Palette
from updatesync.metadata.generator.license_terms import eula_files, eula_id_for
from updatesync.metadata.generator.markup import b64, esc, guid, identity, root, stamp
from updatesync.metadata.generator.rules import update_rules
from updatesync.metadata.generator.tables import (
    ALL_LANGUAGES,
    ARCHS,
    CMD_HANDLER,
    DRIVER_CLASSES,
    DRIVER_HANDLER,
    FAMILY_SHARE,
    GLOBAL_LANGUAGE_SHARE,
    LANGUAGES,
    MS_UPDATE_PUBLISHER,
    MULTILINGUAL_SHARE,
    SEVERITIES,
    XSI,
)
from updatesync.metadata.generator.templates import TEMPLATES, Template
from updatesync.metadata.model import UpdateType

_GENERIC_LEAVES: Final = (
    "HIDDEN: {title} - {arch} Baseline",
    "HIDDEN: {title} - {arch} Express",
    "{title} - {arch} Delta",
)
_POOL: Final = 200
"""Recent leaves and sub-bundles kept per product for bundles to name."""
_LINE: Final = 12
"""Recent updates kept per product line for the next one to supersede."""
_ARCH_CODE: Final = {name: code for name, _lower, code in ARCHS}
_PREFIXES: Final = {
    (rules, handler): root(
        ["pub", *(["bar", "lar"] if rules else []), *([handler] if handler else []), "upd"]
    )
    for rules in (False, True)
    for handler in ("", "cmd", "drv")
}
_SUPPORT: Final = "https://go.microsoft.com/fwlink/?LinkId=52661"


class UpdateFactory:
    """Builds update documents one after another, keeping a few recent ids per product."""

    def __init__(
        self,
        rng: random.Random,
        palette: Palette,
        start: datetime,
        span: timedelta,
        kb_start: int,
        recent: dict[str, deque[str]] | None = None,
    ) -> None:
        self.rng = rng
        self.palette = palette
        self.start = start
        self.span_seconds = int(span.total_seconds())
        self.kb = kb_start
        # (product id, template key) -> recent update ids of that line, newest last
        self.lines: dict[tuple[str, str], deque[str]] = {}
        # product id -> recent leaves and sub-bundles (id, revision), newest last
        self.pools: dict[str, deque[str]] = {}
        # product id -> recent ids known from elsewhere (an existing catalog)
        self.recent = recent or {}
        self.registry_keys: dict[str, str] = {}
        self.moment = start
        # (template key, languages, with a KB) -> the localized texts with {fields} to fill
        self.everywhere: dict[tuple[str, int, bool], str] = {}
        # product line -> its license terms' id and upd:EulaFiles element
        self.eulas: dict[str, tuple[str, str]] = {}

    def stream(self, count: int, *, bundles: bool = True) -> Iterator[ExportRecord]:
        """`count` update revisions; with `bundles`, some come as bundle families."""
        rng = self.rng
        palette = self.palette
        products = palette.products
        cumulative = list(_accumulate(palette.weights))
        template_weights = {
            kind: list(_accumulate(t.weight for t in templates))
            for kind, templates in TEMPLATES.items()
        }
        produced = 0
        while produced < count:
            moment = self.start + timedelta(
                seconds=self.span_seconds * produced // max(count, 1) + rng.randrange(3600)
            )
            product_id, product, kind = rng.choices(products, cum_weights=cumulative)[0]
            templates = TEMPLATES[kind]
            template = rng.choices(templates, cum_weights=template_weights[kind])[0]
            left = count - produced
            family = (
                bundles
                and left >= 3
                and template.update_type is UpdateType.SOFTWARE
                and rng.random() < (template.bundle or FAMILY_SHARE)
            )
            if family:
                records = self._family(product_id, product, kind, template, moment, left)
            else:
                records = self._standalone(product_id, product, kind, template, moment)
            for record in records:
                produced += 1
                yield record

    def _fields(self, product: str, kind: str, template: Template, day: int) -> dict[str, str]:
        rng = self.rng
        arch, archl, _code = ARCHS[0] if rng.random() < 0.7 else rng.choice(ARCHS)
        kb = template.kb
        if kb == "":
            self.kb += rng.randint(1, 37)
            kb = str(self.kb)
        dclass = rng.choice(DRIVER_CLASSES)
        maker = (
            product.split()[0]
            if kind == "driver" and "Windows" not in product
            else (rng.choice(("Fabrikam", "Contoso", "Litware")))
        )
        return {
            "product": product,
            "ym": f"{self.start + timedelta(days=day):%Y-%m}",
            "arch": arch,
            "archl": archl,
            "kb": kb or "",
            "bits": rng.choice(("32", "64")),
            "n": str(1 + day // 45),
            "release": ("22H2", "23H2", "24H2")[min(2, day // 365)],
            "ver": (
                f"1.{350 + day // 2}.{rng.randrange(1000)}.0"
                if kind == "defender"
                else f"{8 + day // 365}.0.{day // 30}"
                if kind == "dotnet"
                else f"{rng.randint(1, 31)}.{rng.randrange(100)}.{rng.randrange(10000)}."
                f"{rng.randrange(1000)}"
                if kind == "driver"
                else f"{3 + day // 365}.{day // 30 % 12}.{rng.randrange(100)}"
            ),
            "engine": f"1.1.{24000 + day // 30 * 10}.{rng.randint(1, 9)}",
            "platform": f"{24000 + day // 30 * 10}.{rng.randint(1, 9)}",
            "build": ("17763", "19045", "20348", "22621", "22631", "26100")[day % 6],
            "dclass": dclass,
            "dclassl": dclass.lower(),
            "maker": maker,
        }

    def _start(
        self, product: str, kind: str, template: Template, moment: datetime
    ) -> tuple[dict[str, str], str, str]:
        day = max(0, (moment - self.start).days)
        self.moment = moment.replace(microsecond=0)
        values = self._fields(product, kind, template, day)
        classification = self.palette.classification_for(template.classification, self.rng)
        return values, classification, stamp(moment, self.rng.randrange(1000))

    def _superseded(self, product_id: str, template: Template, uid: str, bundle: bool) -> list[str]:
        rng = self.rng
        line = self.lines.setdefault((product_id, template.key), deque(maxlen=_LINE))
        superseded: list[str] = []
        if rng.random() < template.supersede:
            superseded = list(line) if bundle else list(line)[-rng.randint(1, 3) :]
            known = self.recent.get(product_id)
            if known and not superseded:
                superseded = list(known)[-rng.randint(1, min(2, len(known))) :]
        line.append(uid)
        return superseded

    def _standalone(
        self, product_id: str, product: str, kind: str, template: Template, moment: datetime
    ) -> Iterator[ExportRecord]:
        rng = self.rng
        values, classification, created = self._start(product, kind, template, moment)
        uid = guid(rng)
        revision = rng.choice((200, 200, 200, 200, 201, 202))
        texts = self._texts(template, values, rng.random() < GLOBAL_LANGUAGE_SHARE)
        superseded = self._superseded(product_id, template, uid, False)
        body, size = self._installable(template, kind, product, values, created)
        head = self._head(uid, revision, template, values, created, "update", size)
        yield ExportRecord(
            uid,
            revision,
            self._filed(
                head, body, values, texts, product_id, kind, classification, superseded, (),
            ),
        )  # fmt: skip

    def _family(
        self,
        product_id: str,
        product: str,
        kind: str,
        template: Template,
        moment: datetime,
        left: int,
    ) -> Iterator[ExportRecord]:
        rng = self.rng
        values, classification, created = self._start(product, kind, template, moment)
        texts = self._texts(template, values, True)
        values["title"] = template.title["en"].format_map(values)
        hidden_count = min(rng.randint(1, 2), left - 2)
        leaf_count = min(rng.randint(1, 3), left - 1 - hidden_count)
        pool = self.pools.setdefault(product_id, deque(maxlen=_POOL))
        leaf_titles = template.leaves or _GENERIC_LEAVES
        detectoids = self._detectoids(kind, values["arch"])
        new: list[str] = []
        for index in range(leaf_count):
            leaf_id = guid(rng)
            title = leaf_titles[index % len(leaf_titles)].format_map(values)
            body, size = self._installable(template, kind, product, values, created)
            head = self._head(leaf_id, 200, template, values, created, "leaf", size)
            prerequisites = "".join(identity(d) for d in detectoids) + (
                f"<upd:AtLeastOne>{identity(product_id)}</upd:AtLeastOne>"
            )
            yield ExportRecord(
                leaf_id,
                200,
                "".join(
                    (
                        head,
                        _localized({"en": title}, {}, ""),
                        f"<upd:Relationships><upd:Prerequisites>{prerequisites}"
                        "</upd:Prerequisites></upd:Relationships>",
                        body,
                    )
                ),
            )
            new.append(identity(leaf_id, 200))
        recent = list(pool)
        for _index in range(hidden_count):
            hidden_id = guid(rng)
            named = new + recent[max(0, len(recent) - rng.randint(4, 30)) :]
            head = self._head(hidden_id, 200, template, values, created, "hidden")
            title = f"HIDDEN: {values['title']} - {values['arch']} Installer"
            yield ExportRecord(
                hidden_id,
                200,
                "".join(
                    (
                        head,
                        _localized({"en": title}, {}, ""),
                        "<upd:Relationships><upd:Prerequisites><upd:AtLeastOne>",
                        identity(product_id),
                        "</upd:AtLeastOne><upd:AtLeastOne>",
                        identity(detectoids[0]),
                        "</upd:AtLeastOne></upd:Prerequisites>",
                        _bundled(named),
                        "</upd:Relationships></upd:Update>",
                    )
                ),
            )
            new.append(identity(hidden_id, 200))
        uid = guid(rng)
        revision = rng.choice((200, 200, 200, 200, 201, 202))
        superseded = self._superseded(product_id, template, uid, True)
        named = new + recent[max(0, len(recent) - rng.randint(60, _POOL)) :]
        pool.extend(new)
        head = self._head(uid, revision, template, values, created, "bundle")
        yield ExportRecord(
            uid,
            revision,
            self._filed(
                head, "</upd:Update>", values, texts, product_id, kind, classification,
                superseded, named,
            ),
        )  # fmt: skip

    def _detectoids(self, kind: str, arch: str) -> list[str]:
        random = self.rng.random
        found = self.palette.detectoids
        chosen = []
        pool = found.get(kind) or found.get("any")
        if pool:
            chosen.append(pool[int(random() * len(pool))])
        arch_pool = found.get(f"arch:{arch}")
        if arch_pool:
            chosen.append(arch_pool[0])
        anything = found.get("any")
        if anything:
            chosen.append(anything[int(random() * len(anything))])
        return list(dict.fromkeys(chosen)) or [self.palette.products[0][0]]

    def _texts(self, template: Template, values: Mapping[str, str], everywhere: bool) -> str:
        """The LocalizedPropertiesCollection of a filed update: English, English and a few
        translations, or (`everywhere`) 24 to 36 languages."""
        rng = self.rng
        title = template.title
        description = template.description
        kb = bool(values["kb"])
        if everywhere:
            key = (id(template), rng.choice((24, 28, 32, 36)), kb)
            pattern = self.everywhere.get(key)
            if pattern is None:
                pattern = self.everywhere[key] = _everywhere(template, key[1], kb)
            return pattern.format_map(
                {**values, "product": esc(values["product"]), "maker": esc(values["maker"])}
            )
        languages: tuple[str, ...] = ("en",)
        extra = [lang for lang in LANGUAGES if lang in title]
        if extra and rng.random() < MULTILINGUAL_SHARE:
            languages += tuple(sorted(rng.sample(extra, rng.randint(1, len(extra)))))
        en_title = title["en"].format_map(values)
        en_description = description["en"].format_map(values) if description.get("en") else ""
        titles = {}
        descriptions = {}
        for lang in languages:
            text = title.get(lang)
            titles[lang] = text.format_map(values) if text else en_title
            text = description.get(lang)
            text = text.format_map(values) if text else en_description
            if text:
                descriptions[lang] = text
        return _localized(titles, descriptions, _urls(values["kb"]) if kb else _SUPPORT_URL)

    def _head(
        self,
        uid: str,
        revision: int,
        template: Template,
        values: Mapping[str, str],
        created: str,
        role: str,
        size: int = 0,
    ) -> str:
        """The root, the identity and the properties of an update: `role` is "update" (a
        stand-alone update), "leaf", "hidden" (a sub-bundle) or "bundle"."""
        rng = self.rng
        driver = template.update_type is UpdateType.DRIVER
        installable = role in ("update", "leaf")
        handler = ("drv" if driver else "cmd") if installable else ""
        attrs = f'UpdateType="{template.update_type.value}" DefaultPropertiesLanguage="en"'
        if role in ("update", "bundle"):
            attrs += ' AutoSelectOnWebSites="true" ExplicitlyDeployable="true"'
        if installable:
            attrs += f' Handler="{DRIVER_HANDLER if driver else CMD_HANDLER}"'
        if role != "hidden":
            attrs += f' MaxDownloadSize="{size}" MinDownloadSize="0"'
        filed = role in ("update", "bundle")
        if filed and template.severity and rng.random() < template.severity:
            attrs += f' MsrcSeverity="{rng.choice(SEVERITIES)}"'
        terms = ""
        if filed and template.eula and rng.random() < template.eula:
            guid(rng)  # drawn as before, so that every later GUID stays what it was
            eula_id, terms = self._license_terms(values["product"], template)
            attrs += f' EulaID="{eula_id}"'
        props = [
            _PREFIXES[(installable, handler)],
            identity(uid, revision),
            f'<upd:Properties {attrs} PublicationState="Published" CreationDate="{created}" '
            f'PublisherID="{MS_UPDATE_PUBLISHER}">',
        ]
        if role == "leaf":
            props.append('<upd:InstallationBehavior Impact="Minor" />')
        elif role == "update":
            props.append('<upd:InstallationBehavior RebootBehavior="CanRequestReboot" />')
        if filed:
            props.append(f"<upd:SupportUrl>{_SUPPORT}</upd:SupportUrl>")
            if template.bulletin and rng.random() < template.bulletin:
                props.append(
                    f"<upd:SecurityBulletinID>MS{created[2:4]}-{rng.randint(1, 199):03d}"
                    "</upd:SecurityBulletinID>"
                )
            if values["kb"] and template.kb is not None:
                props.append(f"<upd:KBArticleID>{values['kb']}</upd:KBArticleID>")
        props.append("</upd:Properties>")
        props.append(terms)
        return "".join(props)

    def _license_terms(self, product: str, template: Template) -> tuple[str, str]:
        """The license terms of a product line: their id and `upd:EulaFiles` element."""
        line = f"{product} {template.key}"
        found = self.eulas.get(line)
        if found is None:
            eula_id = eula_id_for(line)
            found = self.eulas[line] = (eula_id, eula_files(eula_id, product))
        return found

    def _filed(
        self,
        head: str,
        body: str,
        values: Mapping[str, str],
        texts: str,
        product_id: str,
        kind: str,
        classification: str,
        superseded: Sequence[str],
        bundled: Sequence[str],
    ) -> str:
        """A stand-alone update or a bundle: `head`, texts, relationships, then `body`."""
        parts = [head, texts, "<upd:Relationships>"]
        if superseded:
            parts.append("<upd:SupersededUpdates>")
            parts.extend(identity(s) for s in superseded)
            parts.append("</upd:SupersededUpdates>")
        parts.append("<upd:Prerequisites>")
        parts.extend(identity(d) for d in self._detectoids(kind, values["arch"])[:2])
        parts.append(
            f'<upd:AtLeastOne IsCategory="true">{identity(classification)}</upd:AtLeastOne>'
            f'<upd:AtLeastOne IsCategory="true">{identity(product_id)}</upd:AtLeastOne>'
            "</upd:Prerequisites>"
        )
        if bundled:
            parts.append(_bundled(bundled))
        parts.append("</upd:Relationships>")
        parts.append(body)
        return "".join(parts)

    def _installable(
        self, template: Template, kind: str, product: str, values: dict[str, str], created: str
    ) -> tuple[str, int]:
        """Rules, files and handler data of an installable update, and its download size."""
        files, size = self._files(template, values, created)
        key = self.registry_keys.get(product)
        if key is None:
            key = "Microsoft\\" + (re.sub(r"\W+", "", product)[:40] or "App")
            self.registry_keys[product] = key
        rules = update_rules(kind, key, values, _ARCH_CODE[values["arch"]], self.rng)
        return f"{rules}{files}{_handler(template, values, self.rng)}</upd:Update>", size

    def _files(self, template: Template, values: dict[str, str], created: str) -> tuple[str, int]:
        rng = self.rng
        sha1 = rng.randbytes(20)
        sha256 = rng.randbytes(32)
        name = esc(template.file.format_map({**values, "hex": sha1.hex()}))
        values["file"] = name
        size = rng.randint(*template.size)
        modified = self.moment - timedelta(seconds=rng.randrange(86_400, 21 * 86_400))
        return (
            f'<upd:Files><upd:File Digest="{b64(sha1)}" DigestAlgorithm="SHA1" '
            f'FileName="{name}" Size="{size}" Modified="{modified:%Y-%m-%dT%H:%M:%S}Z" '
            'PatchingType="SelfContained">'
            f'<upd:AdditionalDigest Algorithm="SHA256">{b64(sha256)}</upd:AdditionalDigest>'
            "</upd:File></upd:Files>",
            size,
        )


def _handler(template: Template, values: Mapping[str, str], rng: random.Random) -> str:
    """Handler data: a driver's metadata, or the command line that installs the file."""
    if template.update_type is UpdateType.DRIVER:
        hardware = (
            f"PCI\\VEN_{rng.randrange(0x10000):04X}&DEV_{rng.randrange(0x10000):04X}"
            f"&SUBSYS_{rng.randrange(1 << 32):08X}"
        )
        return (
            f'<upd:HandlerSpecificData xsi:type="drv:WindowsDriverMetaData" '
            f'xmlns:xsi="{XSI}"><drv:WindowsDriverMetaData HardwareID="{esc(hardware)}" '
            f'WhqlDriverID="{rng.randrange(10**8)}" Manufacturer="{esc(values["maker"])}" '
            f'Company="{esc(values["maker"])}" Provider="{esc(values["maker"])}" '
            f'DriverVerDate="{values["ym"]}-{rng.randint(10, 28)}" '
            f'DriverVerVersion="{values["ver"]}" Class="{values["dclass"]}" />'
            "</upd:HandlerSpecificData>"
        )
    return (
        f'<upd:HandlerSpecificData xsi:type="cmd:CommandLineInstallation" '
        f'xmlns:xsi="{XSI}"><cmd:InstallCommand Program="{values["file"]}" '
        'Arguments="/quiet /norestart"><cmd:ReturnCode Code="0" Result="Succeeded" />'
        '<cmd:ReturnCode Code="3010" Result="Succeeded" Reboot="true" />'
        "</cmd:InstallCommand></upd:HandlerSpecificData>"
    )


def _accumulate(weights: Iterator[int] | Sequence[int]) -> Iterator[int]:
    total = 0
    for weight in weights:
        total += weight
        yield total


_SUPPORT_URL: Final = f"<upd:SupportUrl>{_SUPPORT}</upd:SupportUrl>"


def _urls(kb: str) -> str:
    return (
        f"<upd:MoreInfoUrl>https://support.microsoft.com/help/{kb}</upd:MoreInfoUrl>{_SUPPORT_URL}"
    )


def _everywhere(template: Template, languages: int, kb: bool) -> str:
    """A LocalizedPropertiesCollection in `languages` languages, with `{field}`s to fill (with
    escaped values): the template's translations where it has them, English elsewhere."""
    extra = _urls("{kb}") if kb else _SUPPORT_URL
    parts = ["<upd:LocalizedPropertiesCollection>"]
    for lang in ALL_LANGUAGES[:languages]:
        title = esc(template.title.get(lang) or template.title["en"])
        description = esc(template.description.get(lang) or template.description.get("en") or "")
        parts.append(
            f"<upd:LocalizedProperties><upd:Language>{lang}</upd:Language>"
            f"<upd:Title>{title}</upd:Title>"
        )
        if description:
            parts.append(f"<upd:Description>{description}</upd:Description>")
        parts.append(f"{extra}</upd:LocalizedProperties>")
    parts.append("</upd:LocalizedPropertiesCollection>")
    return "".join(parts)


def _localized(titles: Mapping[str, str], descriptions: Mapping[str, str], extra: str) -> str:
    """The LocalizedPropertiesCollection (texts escaped once each)."""
    parts = ["<upd:LocalizedPropertiesCollection>"]
    escaped: dict[str, str] = {}
    for lang, title in titles.items():
        text = escaped.get(title)
        if text is None:
            text = escaped[title] = esc(title)
        parts.append(
            f"<upd:LocalizedProperties><upd:Language>{lang}</upd:Language>"
            f"<upd:Title>{text}</upd:Title>"
        )
        description = descriptions.get(lang)
        if description:
            text = escaped.get(description)
            if text is None:
                text = escaped[description] = esc(description)
            parts.append(f"<upd:Description>{text}</upd:Description>")
        parts.append(f"{extra}</upd:LocalizedProperties>")
    parts.append("</upd:LocalizedPropertiesCollection>")
    return "".join(parts)


def _bundled(named: Sequence[str]) -> str:
    """BundledUpdates: the named revisions (identity elements) in AtLeastOne groups of seven,
    as real bundles group them."""
    groups = "</upd:AtLeastOne><upd:AtLeastOne>".join(
        "".join(named[start : start + 7]) for start in range(0, len(named), 7)
    )
    return f"<upd:BundledUpdates><upd:AtLeastOne>{groups}</upd:AtLeastOne></upd:BundledUpdates>"
