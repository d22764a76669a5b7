"""Update revisions of a generated catalog: `UpdateFactory` streams updates (bundles and
their leaves, supersedence chains, files, applicability rules, handler data) filed under a
palette."""

from __future__ import annotations

import random
import re
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator.categories import Palette
from updatesync.metadata.generator.markup import b64, esc, guid, identity, localized, root, stamp
from updatesync.metadata.generator.tables import (
    ARCHS,
    CMD_HANDLER,
    DRIVER_CLASSES,
    DRIVER_HANDLER,
    LANGUAGES,
    MS_UPDATE_PUBLISHER,
    MULTILINGUAL_SHARE,
    SEVERITIES,
    XSI,
)
from updatesync.metadata.generator.templates import TEMPLATES, Template
from updatesync.metadata.model import UpdateType


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
        # product id -> recent ids known from elsewhere (an existing catalog)
        self.recent = recent or {}

    def stream(self, count: int, *, bundles: bool = True) -> Iterator[ExportRecord]:
        rng = self.rng
        palette = self.palette
        produced = 0
        while produced < count:
            moment = self.start + timedelta(
                seconds=self.span_seconds * produced // max(count, 1) + rng.randrange(3600)
            )
            product_id, product, kind = rng.choices(palette.products, palette.weights)[0]
            templates = TEMPLATES[kind]
            template = rng.choices(templates, [t.weight for t in templates])[0]
            leaves = 0
            if bundles and template.leaves and rng.random() < template.bundle:
                leaves = min(rng.randint(2, len(template.leaves)), count - produced - 1)
            for record in self._update(product_id, product, kind, template, moment, leaves):
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
            "dclass": dclass,
            "dclassl": dclass.lower(),
            "maker": maker,
        }

    def _update(
        self,
        product_id: str,
        product: str,
        kind: str,
        template: Template,
        moment: datetime,
        leaves: int,
    ) -> Iterator[ExportRecord]:
        rng = self.rng
        palette = self.palette
        day = max(0, (moment - self.start).days)
        values = self._fields(product, kind, template, day)
        classification = palette.classification_for(template.classification, rng)
        created = stamp(moment, rng.randrange(1000))

        leaf_keys: list[tuple[str, int]] = []
        for index in range(leaves):
            leaf_id = guid(rng)
            leaf_rev = 200
            title = template.leaves[index].format_map(values)
            yield ExportRecord(
                leaf_id,
                leaf_rev,
                self._document(
                    leaf_id,
                    leaf_rev,
                    UpdateType.SOFTWARE,
                    kind,
                    template,
                    values,
                    {"en": title},
                    {},
                    created,
                    product_id,
                    None,
                    leaf=True,
                ),
            )
            leaf_keys.append((leaf_id, leaf_rev))

        uid = guid(rng)
        revision = rng.choice((200, 200, 200, 200, 201, 202))
        titles, descriptions = self._texts(template, values)
        line = self.lines.setdefault((product_id, template.key), deque(maxlen=4))
        superseded: list[str] = []
        if rng.random() < template.supersede:
            superseded = list(line)
            known = self.recent.get(product_id)
            if known and not superseded:
                superseded = list(known)[-rng.randint(1, min(2, len(known))) :]
        line.append(uid)
        xml = self._document(
            uid,
            revision,
            template.update_type,
            kind,
            template,
            values,
            titles,
            descriptions,
            created,
            product_id,
            classification,
            superseded=superseded,
            bundled=leaf_keys,
        )
        yield ExportRecord(uid, revision, xml)

    def _texts(
        self, template: Template, values: Mapping[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        rng = self.rng
        languages = ["en"]
        extra = [lang for lang in LANGUAGES if lang in template.title]
        if extra and rng.random() < MULTILINGUAL_SHARE:
            languages += sorted(rng.sample(extra, rng.randint(1, len(extra))))
        titles = {lang: template.title[lang].format_map(values) for lang in languages}
        descriptions = {
            lang: template.description[lang].format_map(values)
            for lang in languages
            if template.description.get(lang)
        }
        return titles, descriptions

    def _document(
        self,
        uid: str,
        revision: int,
        update_type: UpdateType,
        kind: str,
        template: Template,
        values: Mapping[str, str],
        titles: Mapping[str, str],
        descriptions: Mapping[str, str],
        created: str,
        product_id: str,
        classification: str | None,
        *,
        leaf: bool = False,
        superseded: Sequence[str] = (),
        bundled: Sequence[tuple[str, int]] = (),
    ) -> str:
        rng = self.rng
        is_bundle = bool(bundled)
        driver = update_type is UpdateType.DRIVER
        files = ""
        rules = ""
        handler = ""
        size_total = 0
        if not is_bundle:
            files, size_total = self._files(template, values, created)
            rules = _rules(kind, values, rng)
            handler = self._handler(template, values, files)

        # Properties
        attrs = [f'UpdateType="{update_type.value}"', 'DefaultPropertiesLanguage="en"']
        if not leaf:
            attrs.append('AutoSelectOnWebSites="true" ExplicitlyDeployable="true"')
        if handler:
            attrs.append(f'Handler="{DRIVER_HANDLER if driver else CMD_HANDLER}"')
        attrs.append(f'MaxDownloadSize="{size_total}" MinDownloadSize="0"')
        if template.severity and not leaf and rng.random() < template.severity:
            attrs.append(f'MsrcSeverity="{rng.choice(SEVERITIES)}"')
        if template.eula and not leaf and rng.random() < template.eula:
            attrs.append(f'EulaID="{guid(rng)}"')
        attrs.append(f'PublicationState="Published" CreationDate="{created}"')
        attrs.append(f'PublisherID="{MS_UPDATE_PUBLISHER}"')
        props = [f"<upd:Properties {' '.join(attrs)}>"]
        if handler:
            props.append(
                '<upd:InstallationBehavior Impact="Minor" />'
                if leaf
                else '<upd:InstallationBehavior RebootBehavior="CanRequestReboot" />'
            )
        if not leaf:
            props.append(
                "<upd:SupportUrl>https://go.microsoft.com/fwlink/?LinkId=52661</upd:SupportUrl>"
            )
            if template.bulletin and rng.random() < template.bulletin:
                year = created[2:4]
                props.append(
                    f"<upd:SecurityBulletinID>MS{year}-{rng.randint(1, 199):03d}"
                    "</upd:SecurityBulletinID>"
                )
            if values["kb"] and template.kb is not None:
                props.append(f"<upd:KBArticleID>{values['kb']}</upd:KBArticleID>")
        props.append("</upd:Properties>")

        more_info = (
            f"<upd:MoreInfoUrl>https://support.microsoft.com/help/{values['kb']}</upd:MoreInfoUrl>"
            if values["kb"] and not leaf
            else ""
        )

        # Relationships
        rel = ["<upd:Relationships>"]
        if superseded:
            rel.append("<upd:SupersededUpdates>")
            rel.extend(identity(s) for s in superseded)
            rel.append("</upd:SupersededUpdates>")
        rel.append("<upd:Prerequisites>")
        detectoids = self.palette.detectoids
        if leaf or rng.random() < 0.4:
            pool = detectoids.get(kind) or detectoids.get("any")
            if pool:
                rel.append(identity(rng.choice(pool)))
            arch_pool = detectoids.get(f"arch:{values['arch']}")
            if arch_pool:
                rel.append(identity(arch_pool[0]))
        if leaf:
            rel.append(f"<upd:AtLeastOne>{identity(product_id)}</upd:AtLeastOne>")
        else:
            rel.append(
                f'<upd:AtLeastOne IsCategory="true">{identity(str(classification))}'
                "</upd:AtLeastOne>"
                f'<upd:AtLeastOne IsCategory="true">{identity(product_id)}</upd:AtLeastOne>'
            )
        rel.append("</upd:Prerequisites>")
        if bundled:
            rel.append("<upd:BundledUpdates><upd:AtLeastOne>")
            rel.extend(identity(b, r) for b, r in bundled)
            rel.append("</upd:AtLeastOne></upd:BundledUpdates>")
        rel.append("</upd:Relationships>")

        prefixes: list[str] = ["pub"]
        if rules:
            prefixes += [p for p in ("bar", "lar", "mar") if f"<{p}:" in rules]
        if handler:
            prefixes.append("drv" if driver else "cmd")
        prefixes.append("upd")
        return "".join(
            (
                root(prefixes),
                identity(uid, revision),
                *props,
                localized(titles, descriptions, more_info),
                *rel,
                rules,
                files,
                handler,
                "</upd:Update>",
            )
        )

    def _files(
        self, template: Template, values: Mapping[str, str], created: str
    ) -> tuple[str, int]:
        rng = self.rng
        sha1 = rng.randbytes(20)
        sha256 = rng.randbytes(32)
        name = template.file.format_map({**values, "hex": sha1.hex()})
        size = rng.randint(*template.size)
        modified = datetime.fromisoformat(created[:19]) - timedelta(
            days=rng.randint(1, 20), seconds=rng.randrange(86_400)
        )
        return (
            f'<upd:Files><upd:File Digest="{b64(sha1)}" DigestAlgorithm="SHA1" '
            f'FileName="{esc(name)}" Size="{size}" Modified="{modified:%Y-%m-%dT%H:%M:%S}Z">'
            f'<upd:AdditionalDigest Algorithm="SHA256">{b64(sha256)}</upd:AdditionalDigest>'
            "</upd:File></upd:Files>",
            size,
        )

    def _handler(self, template: Template, values: Mapping[str, str], files: str) -> str:
        if template.update_type is UpdateType.DRIVER:
            rng = self.rng
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
        start = files.index('FileName="') + 10
        program = files[start : files.index('"', start)]
        return (
            f'<upd:HandlerSpecificData xsi:type="cmd:CommandLineInstallation" '
            f'xmlns:xsi="{XSI}"><cmd:InstallCommand Program="{program}" '
            'Arguments="/quiet /norestart"><cmd:ReturnCode Code="0" Result="Succeeded" />'
            '<cmd:ReturnCode Code="3010" Result="Succeeded" Reboot="true" />'
            "</cmd:InstallCommand></upd:HandlerSpecificData>"
        )


def _rules(kind: str, values: Mapping[str, str], rng: random.Random) -> str:
    """An ApplicabilityRules block of the shape real documents of this kind carry."""
    arch_code = next(code for name, _l, code in ARCHS if name == values["arch"])
    if kind == "defender":
        version = values["ver"]
        installed = (
            '<lar:And><lar:Not><bar:RegDword Key="HKEY_LOCAL_MACHINE" Subkey="SOFTWARE\\Microsoft'
            '\\Windows Defender\\Signature Updates" Value="SignatureType" Comparison="EqualTo" '
            'Data="1" /></lar:Not><bar:FileVersionPrependRegSz Path="mpasdlta.vdm" '
            f'Comparison="GreaterThanOrEqualTo" Version="{version}" Key="HKEY_LOCAL_MACHINE" '
            'Subkey="SOFTWARE\\Microsoft\\Windows Defender\\Signature Updates" '
            'Value="SignatureLocation" /></lar:And>'
        )
        installable = (
            '<lar:And><bar:FileVersionPrependRegSz Path="mpclient.dll" '
            'Comparison="GreaterThanOrEqualTo" Version="4.13.0.0" Key="HKEY_LOCAL_MACHINE" '
            'Subkey="SOFTWARE\\Microsoft\\Windows Defender" Value="InstallLocation" />'
            f'<bar:Processor Architecture="{arch_code}" /></lar:And>'
        )
    elif kind == "office":
        product_code = "{" + str(uuid.UUID(int=rng.getrandbits(128))).upper() + "}"
        patch_code = "{" + str(uuid.UUID(int=rng.getrandbits(128))).upper() + "}"
        installed = (
            f'<mar:MsiPatchInstalledForProduct PatchCode="{patch_code}" '
            f'ProductCode="{product_code}" VersionMax="16.0.65535.65535" '
            'VersionMin="16.0.4266.1001" />'
        )
        installable = (
            f'<mar:MsiProductInstalled ProductCode="{product_code}" '
            'VersionMax="16.0.65535.65535" VersionMin="16.0.4266.1001" Language="0" />'
        )
    elif kind in ("windows", "driver"):
        build = rng.choice(("17763", "19045", "20348", "22621", "22631", "26100"))
        installed = (
            '<bar:FileVersion Path="ntoskrnl.exe" Csidl="37" Comparison="GreaterThanOrEqualTo" '
            f'Version="10.0.{build}.{rng.randint(100, 4000)}" />'
        )
        installable = (
            '<lar:And><bar:WindowsVersion Comparison="EqualTo" MajorVersion="10" '
            f'MinorVersion="0" BuildNumber="{build}" />'
            f'<bar:Processor Architecture="{arch_code}" /></lar:And>'
        )
    else:
        key = "SOFTWARE\\Contoso\\" + (re.sub(r"\W+", "", values["product"])[:40] or "App")
        installed = (
            f'<bar:RegSz Key="HKEY_LOCAL_MACHINE" Subkey="{esc(key)}" Value="Version" '
            f'Comparison="EqualTo" Data="{values["ver"]}" />'
        )
        installable = (
            f'<lar:And><bar:RegKeyExists Key="HKEY_LOCAL_MACHINE" Subkey="{esc(key)}" />'
            f'<bar:Processor Architecture="{arch_code}" /></lar:And>'
        )
    return (
        f"<upd:ApplicabilityRules><upd:IsInstalled>{installed}</upd:IsInstalled>"
        f"<upd:IsInstallable>{installable}</upd:IsInstallable></upd:ApplicabilityRules>"
    )
