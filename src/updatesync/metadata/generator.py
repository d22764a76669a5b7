"""Synthetic update catalogs of the real shape, for tests, demos and benchmarks.

`generate_catalog` streams `ExportRecord`s as a WSUS export holds them: the category
revisions first (companies, product families, products, the real update classifications,
a few detectoids), then update revisions (Software mostly, some Driver) whose documents look
like the ones Microsoft Update serves: `upd:` identity and properties, titles and descriptions
in several languages, product/classification prerequisites as `AtLeastOne IsCategory="true"`
groups, detectoid prerequisites, bundles naming the leaf updates generated just before them,
supersedence chains within a product, files with SHA-1 and SHA-256 digests, applicability
rules and handler data. Real categories (from an export) may be passed in instead: they come
out byte-identical and the updates are filed under their products and classifications.

`evolve_catalog` turns one catalog into "next month's": it passes every record through and
applies an exact number of changes (new updates, new revisions with a changed title or
description, expirations), in one pass over its input.

Everything is deterministic for a given seed: the only randomness is `random.Random(seed)`,
GUIDs come from it, and dates are a fixed base date plus seed-driven offsets. Memory does not
grow with the number of updates: the generator keeps only a few recent update ids per
product (for supersedence); `evolve_catalog` keeps the records it is about to change.
"""

from __future__ import annotations

import base64
import random
import re
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final
from xml.sax.saxutils import escape

from lxml import etree

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.model import CategoryType, UpdateType

__all__ = [
    "CLASSIFICATIONS",
    "CatalogStats",
    "Classification",
    "ExportRecord",
    "catalog_stats",
    "evolve_catalog",
    "generate_catalog",
]

# --------------------------------------------------------------------------------------
# Namespaces and fixed values seen in real documents

_NS: Final = {
    "pub": "http://schemas.microsoft.com/msus/2002/12/Publishing",
    "bar": "http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules",
    "lar": "http://schemas.microsoft.com/msus/2002/12/LogicalApplicabilityRules",
    "mar": "http://schemas.microsoft.com/msus/2002/12/MsiApplicabilityRules",
    "cmd": "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation",
    "drv": "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver",
    "cat": "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category",
    "upd": "http://schemas.microsoft.com/msus/2002/12/Update",
}
_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
_CATEGORY_HANDLER: Final = _NS["cat"]
_CMD_HANDLER: Final = _NS["cmd"]
_DRIVER_HANDLER: Final = _NS["drv"]

# Publisher ids as they appear in real documents (categories, products, Defender updates).
_MS_CATEGORY_PUBLISHER: Final = "42f20e12-2856-447d-a8b2-68f06c2e9b45"
_MS_PRODUCT_PUBLISHER: Final = "395392a0-19c0-48b7-a927-f7c15066d905"
_MS_UPDATE_PUBLISHER: Final = "bccf8ca0-2819-4598-8d15-c1506e363e92"

_BASE_DATE: Final = datetime(2021, 10, 5, tzinfo=UTC)
"""Generated update dates start here (seconds-exact offsets are derived from the seed)."""
_CATALOG_SPAN: Final = timedelta(days=990)
"""A generated catalog spreads its updates over this span after `_BASE_DATE`."""
_EVOLVE_SPAN: Final = timedelta(days=30)

_LANGUAGES: Final = ("ar", "de", "fr", "ja", "zh-cn")
_MULTILINGUAL_SHARE: Final = 0.35
_SEVERITIES: Final = ("Critical", "Important", "Important", "Moderate", "Low")


@dataclass(frozen=True, slots=True)
class Classification:
    """One real update classification: its well-known GUID and its titles."""

    update_id: str
    title: str
    description: str
    titles: Mapping[str, str] = field(default_factory=dict)


# Ids, titles and descriptions as in the real June 2024 WSUS export.
CLASSIFICATIONS: Final[tuple[Classification, ...]] = (
    Classification(
        "e6cf1350-c01b-414d-a61f-263d14d133b4",
        "Critical Updates",
        "A broadly released fix for a specific problem addressing a critical, non-security "
        "related bug.",
        {
            "ar": "التحديثات الضرورية",
            "de": "Wichtige Updates",
            "fr": "Mise à jour critique",
            "ja": "重要な更新",
            "zh-cn": "关键更新程序",
        },
    ),
    Classification(
        "0fa1201d-4330-4fa8-8ae9-b877473b6441",
        "Security Updates",
        "A broadly released fix for a product-specific security-related vulnerability. "
        "Security vulnerabilities are rated based on their severity which is indicated in the "
        "Microsoft® security bulletin as critical, important, moderate, or low.",
        {
            "ar": "تحديثات الأمان",
            "de": "Sicherheitsupdates",
            "fr": "Mise à jour de la sécurité",
            "ja": "セキュリティ問題の修正プログラム",
            "zh-cn": "安全更新程序",
        },
    ),
    Classification(
        "e0789628-ce08-4437-be74-2495b842f43b",
        "Definition Updates",
        "A broadly-released and frequent software update containing additions to a product's "
        "definition database. Definition databases are often used to detect objects with "
        "specific attributes, such as malicious code, phishing Web sites, or junk e-mail.",
        {
            "ar": "تحديثات التعريف",
            "de": "Definitionsupdates",
            "fr": "Mises à jour de définitions",
            "ja": "定義更新プログラム",
            "zh-cn": "定义更新",
        },
    ),
    Classification(
        "b54e7d24-7add-428f-8b75-90a396fa584f",
        "Feature Packs",
        "New product functionality that is first distributed outside the context of a "
        "product release, and usually included in the next full product release.",
        {"de": "Feature Packs", "fr": "Feature Pack", "zh-cn": "Feature Pack"},
    ),
    Classification(
        "68c5b0a3-d1a6-4553-ae49-01d3a7827828",
        "Service Packs",
        "A tested, cumulative set of all hotfixes, security updates, critical updates and "
        "updates, as well as additional fixes for problems found internally since the release "
        "of the product. Service packs may also contain a limited number of customer-requested "
        "design changes or features.",
        {"ar": "حزم الخدمات", "fr": "Service Pack", "zh-cn": "Service Pack"},
    ),
    Classification(
        "b4832bd8-e735-4761-8daf-37f882276dab",
        "Tools",
        "A utility or feature that aids in accomplishing a task or set of tasks.",
        {"ar": "أدوات", "fr": "Outil", "ja": "ツール", "zh-cn": "工具"},
    ),
    Classification(
        "28bc880e-0592-4cbf-8f95-c79b17911d5f",
        "Update Rollups",
        "A tested, cumulative set of hotfixes, security updates, critical updates, and updates "
        "packaged together for easy deployment. A rollup generally targets a specific area, "
        "such as security, or a component of a product, such as Internet Information Services "
        '"IIS".',
        {
            "ar": "حزم التحديثات التراكمية",
            "de": "Update-Rollups",
            "fr": "Ensemble de mises à jour",
            "ja": "修正プログラム集",
            "zh-cn": "更新程序集",
        },
    ),
    Classification(
        "cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83",
        "Updates",
        "A broadly released fix for a specific problem addressing a noncritical, "
        "non-security-related bug.",
        {"ar": "التحديثات", "fr": "Mise à jour", "ja": "更新", "zh-cn": "更新程序"},
    ),
    Classification(
        "3689bdc8-b205-4af4-8d4a-a63924c5e9d5",
        "Upgrades",
        "A new product release bringing a device to the next version, containing bug fixes, "
        "design changes and new features.",
    ),
    Classification(
        "ebfc1fc5-71a4-4f7b-9aca-3b9a503104a0",
        "Drivers",
        "A software component necessary to control or regulate another device.",
        {
            "ar": "برامج التشغيل",
            "de": "Treiber",
            "fr": "Pilote",
            "ja": "ドライバ",
            "zh-cn": "驱动程序",
        },
    ),
)
_CLS: Final = {c.title: c.update_id for c in CLASSIFICATIONS}

# The generated category tree: company -> product family -> (product title, product kind).
# The product kind selects the update templates filed under the product.
_TREE: Final[tuple[tuple[str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...]], ...]] = (
    (
        "Microsoft Corporation",
        (
            (
                "Windows",
                (
                    ("Windows 11", "windows"),
                    ("Windows 10, version 1903 and later", "windows"),
                    ("Windows Server 2022", "windows"),
                    ("Windows Server 2019", "windows"),
                    ("Microsoft Defender Antivirus", "defender"),
                    (
                        "Windows 11 Client, version 24H2 and later, Upgrade & Servicing Drivers",
                        "driver",
                    ),
                ),
            ),
            (
                "Office",
                (
                    ("Microsoft 365 Apps/Office 2019/Office LTSC", "office"),
                    ("Office 2016", "office"),
                ),
            ),
            (
                "Developer Tools, Runtimes, and Redistributables",
                (
                    (".NET 8.0", "dotnet"),
                    ("Visual Studio 2022", "dotnet"),
                ),
            ),
            (
                "SQL Server",
                (
                    ("Microsoft SQL Server 2022", "sql"),
                    ("Microsoft SQL Server 2019", "sql"),
                ),
            ),
        ),
    ),
    (
        "Contoso Ltd.",
        (
            (
                "Contoso Line-of-Business Applications",
                (
                    ("Contoso Inventory Client", "lob"),
                    ('Contoso Field Agent "Next"', "lob"),
                ),
            ),
        ),
    ),
    (
        "Fabrikam, Inc.",
        (
            (
                "Fabrikam Devices",
                (
                    ("Fabrikam Network Adapters", "driver"),
                    ("Fabrikam Docking Stations <USB-C>", "driver"),
                ),
            ),
        ),
    ),
)
_KIND_WEIGHT: Final = {
    "windows": 5,
    "defender": 4,
    "office": 3,
    "dotnet": 1,
    "sql": 1,
    "lob": 1,
    "driver": 2,
}

# --------------------------------------------------------------------------------------
# Texts. Translations are limited to what real catalogs carry for these kinds of updates.

_WINDOWS_DESC: Final = {
    "en": "Install this update to resolve issues in Windows. For a complete listing of the "
    "issues that are included in this update, see the associated Microsoft Knowledge Base "
    "article for more information. After you install this item, you may have to restart your "
    "computer.",
    "de": "Installieren Sie dieses Update, um Probleme in Windows zu beheben. Eine vollständige "
    "Liste der in diesem Update enthaltenen Probleme finden Sie im zugehörigen Artikel der "
    "Microsoft Knowledge Base. Nach der Installation dieses Elements müssen Sie den Computer "
    "möglicherweise neu starten.",
    "fr": "Installez cette mise à jour pour résoudre des problèmes dans Windows. Pour obtenir "
    "la liste complète des problèmes résolus par cette mise à jour, consultez l’article de la "
    "Base de connaissances Microsoft associé. Après l’installation de cet élément, vous devrez "
    "peut-être redémarrer l’ordinateur.",
    "ja": "Windows の問題を解決するには、この更新プログラムをインストールしてください。"
    "この更新プログラムに含まれる問題の一覧については、関連するマイクロソフト サポート技術情報の"
    "記事を参照してください。このアイテムのインストール後、コンピューターの再起動が必要になる"
    "場合があります。",
    "ar": "قم بتثبيت هذا التحديث لحل المشكلات في Windows. للحصول على قائمة كاملة بالمشكلات "
    "المضمنة في هذا التحديث، راجع مقالة قاعدة معارف Microsoft المقترنة. بعد تثبيت هذا العنصر، "
    "قد تحتاج إلى إعادة تشغيل الكمبيوتر.",
    "zh-cn": "安装此更新以解决 Windows 中的问题。有关此更新中包含的问题的完整列表，请参阅相关的 "
    "Microsoft 知识库文章。安装此项目后，可能需要重新启动计算机。",
}
_CU_TITLE: Final = {
    "en": "{ym} Cumulative Update for {product} for {arch}-based Systems (KB{kb})",
    "de": "{ym} Kumulatives Update für {product} für {arch}-basierte Systeme (KB{kb})",
    "fr": "{ym} Mise à jour cumulative pour {product} pour les systèmes {arch} (KB{kb})",
    "ja": "{ym} {arch} ベース システム用 {product} の累積更新プログラム (KB{kb})",
    "ar": "{ym} التحديث التراكمي لـ {product} للأنظمة المستندة إلى {arch} (KB{kb})",
    "zh-cn": "{ym} 适用于基于 {arch} 的系统的 {product} 累积更新 (KB{kb})",
}
_SECURITY_TITLE: Final = {
    "en": "Security Update for {product} (KB{kb}) {bits}-Bit Edition",
    "de": "Sicherheitsupdate für {product} (KB{kb}), {bits}-Bit-Edition",
    "fr": "Mise à jour de sécurité pour {product} (KB{kb}) Édition {bits} bits",
    "ja": "{product} セキュリティ更新プログラム (KB{kb}) {bits} ビット版",
    "ar": "تحديث أمان لـ {product} (KB{kb}) إصدار {bits} بت",
    "zh-cn": "{product} 安全更新 (KB{kb}) {bits} 位版本",
}
_SECURITY_DESC: Final = {
    "en": "A security vulnerability exists in {product} that could allow arbitrary code to "
    "run when a maliciously modified file is opened. This update resolves that vulnerability.",
    "de": "In {product} besteht eine Sicherheitslücke, die beim Öffnen einer böswillig "
    "veränderten Datei die Ausführung von beliebigem Code ermöglichen kann. Dieses Update "
    "behebt diese Sicherheitslücke.",
    "fr": "Il existe une vulnérabilité de sécurité dans {product} qui pourrait permettre "
    "l’exécution de code arbitraire à l’ouverture d’un fichier modifié de manière "
    "malveillante. Cette mise à jour corrige cette vulnérabilité.",
    "ja": "{product} には、悪意を持って変更されたファイルを開いたときに任意のコードが実行される"
    "可能性があるセキュリティの脆弱性が存在します。この更新プログラムにより、この脆弱性が"
    "解決されます。",
    "ar": "توجد ثغرة أمنية في {product} قد تسمح بتشغيل تعليمات برمجية عشوائية عند فتح ملف "
    "معدّل بشكل ضار. يعمل هذا التحديث على حل هذه الثغرة الأمنية.",
    "zh-cn": "{product} 中存在一个安全漏洞，打开经过恶意修改的文件时，可能允许运行任意代码。"
    "此更新可解决该漏洞。",
}
_UPDATE_TITLE: Final = {
    "en": "Update for {product} (KB{kb})",
    "de": "Update für {product} (KB{kb})",
    "fr": "Mise à jour pour {product} (KB{kb})",
    "ja": "{product} 用更新プログラム (KB{kb})",
    "ar": "تحديث لـ {product} (KB{kb})",
    "zh-cn": "{product} 更新 (KB{kb})",
}
_UPDATE_DESC: Final = {
    "en": "Microsoft has released an update for {product}. This update provides the latest "
    "fixes to {product}. Additionally, this update contains stability and performance "
    "improvements.",
    "de": "Microsoft hat ein Update für {product} veröffentlicht. Dieses Update enthält die "
    "neuesten Korrekturen für {product} sowie Verbesserungen der Stabilität und Leistung.",
    "fr": "Microsoft a publié une mise à jour pour {product}. Cette mise à jour fournit les "
    "derniers correctifs pour {product} ainsi que des améliorations de stabilité et de "
    "performances.",
    "ja": "{product} の更新プログラムが公開されました。この更新プログラムには、{product} の"
    "最新の修正と、安定性およびパフォーマンスの向上が含まれています。",
    "ar": "أصدرت Microsoft تحديثًا لـ {product}. يوفر هذا التحديث أحدث الإصلاحات لـ {product}، "
    "بالإضافة إلى تحسينات في الثبات والأداء.",
    "zh-cn": "Microsoft 已发布 {product} 的更新。此更新提供 {product} 的最新修复程序，"
    "并包含稳定性和性能改进。",
}
# The Defender definition bundle's texts, as in the real a2fef9b0 document (version varies).
_DEFS_TITLE: Final = {
    "en": "Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 "
    "(Version {ver}) - Current Channel (Broad)",
    "de": "Security Intelligence-Update für Microsoft Defender Antivirus – KB2267602 "
    "(Version {ver}) – Aktueller Kanal (Allgemein)",
    "fr": "Mise à jour de la sélection disjointe pour Microsoft Defender Antivirus – 2267602 "
    "Ko (version {ver}) – Canal actuel (large)",
    "ja": "Microsoft Defender Antivirus のセキュリティ インテリジェンス更新プログラム - "
    "KB2267602 (バージョン {ver}) - 現在のチャネル (広範)",
    "ar": "تحديث معلومات الأمان Microsoft Defender Antivirus -2267602 قاعدة المعارف "
    "(الإصدار {ver}) - القناة الحالية (موسعة)",
    "zh-cn": "Microsoft Defender Antivirus 的安全智能更新 - KB2267602（版本 {ver}）- "
    "当前频道（广泛）",
}
_DEFS_DESC: Final = {
    "en": "Install this update to revise the files that are used to detect viruses, spyware, "
    "and other potentially unwanted software. Once you have installed this item, it cannot be "
    "removed.",
    "de": "Installieren Sie dieses Update, um die Dateien zu überarbeiten, die zum Erkennen von "
    "Viren, Spyware und anderer potenziell unerwünschter Software verwendet werden. Nachdem "
    "Sie dieses Element installiert haben, kann es nicht mehr entfernt werden.",
    "fr": "Installer cette mise à jour pour réviser les fichiers utilisés pour détecter les "
    "virus, les espiogiciels et autres logiciels potentiellement indésirables. Une fois que "
    "vous avez installé cet élément, il ne peut pas être supprimé.",
    "ja": "この更新プログラムをインストールして、ウイルス、スパイウェア、およびその他の望ましくない"
    "可能性のあるソフトウェアを検出するために使用されるファイルを修正します。このアイテムを"
    "一度インストールすると、削除することはできません。",
    "ar": "قم بتثبيت هذا التحديث لمراجعة الملفات المستخدمة للكشف عن الفيروسات وبرامج التجسس "
    "والبرامج الأخرى التي قد تكون غير مرغوب فيها. بمجرد تثبيت هذا العنصر، لا يمكن إزالته.",
    "zh-cn": "安装此更新可修改用于检测病毒、间谍软件和其他潜在不需要的软件的文件。此项一旦安装，"
    "便无法删除。",
}


def _en(title: str, description: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    return {"en": title}, ({"en": description} if description else {})


@dataclass(frozen=True, slots=True)
class _Template:
    """One kind of update filed under a product kind."""

    key: str
    classification: str
    title: Mapping[str, str]
    description: Mapping[str, str]
    file: str
    size: tuple[int, int]
    weight: int = 1
    update_type: UpdateType = UpdateType.SOFTWARE
    severity: float = 0.0
    bulletin: float = 0.0
    eula: float = 0.0
    bundle: float = 0.0
    leaves: tuple[str, ...] = ()
    kb: str | None = ""  # "" = a fresh KB number, None = no KB article, else a fixed one
    supersede: float = 0.8


def _templates() -> dict[str, tuple[_Template, ...]]:
    cu_leaves = (
        "HIDDEN: {ym} Cumulative Update for {product} (KB{kb}) - {arch} Baseline",
        "HIDDEN: {ym} Cumulative Update for {product} (KB{kb}) - {arch} Express",
        "HIDDEN: {ym} Servicing Stack for {product} (KB{kb}) - {arch}",
    )
    defs_leaves = (
        "Full Deltas {ver} for Defender amd64fre [Ring0, Ring1, Ring2, Ring3, Ring4, Broad, "
        "Delayed]",
        "AM Engine {engine} for Defender amd64fre Broad",
        "HIDDEN: Defender MpSigStub {engine} for EngineBroad (Installer {engine}-Q)",
        "Full Deltas {ver} for Defender x86fre [Broad]",
        "Full Deltas {ver} for Defender arm64fre [Broad]",
    )
    sec = _CLS["Security Updates"]
    upd = _CLS["Updates"]
    return {
        "windows": (
            _Template(
                "cu",
                sec,
                _CU_TITLE,
                _WINDOWS_DESC,
                "windows10.0-kb{kb}-{archl}_{hex}.msu",
                (300_000_000, 900_000_000),
                weight=6,
                severity=1.0,
                bulletin=0.1,
                bundle=0.5,
                leaves=cu_leaves,
            ),
            _Template(
                "ssu",
                _CLS["Critical Updates"],
                *_en(
                    "{ym} Servicing Stack Update for {product} for {arch}-based Systems (KB{kb})",
                    _WINDOWS_DESC["en"],
                ),
                "windows10.0-kb{kb}-{archl}_{hex}.msu",
                (10_000_000, 30_000_000),
                weight=2,
            ),
            _Template(
                "netfx",
                upd,
                *_en(
                    "{ym} Cumulative Update for .NET Framework 3.5 and 4.8.1 for "
                    "{product} for {arch} (KB{kb})",
                    _WINDOWS_DESC["en"],
                ),
                "windows10.0-kb{kb}-{archl}-ndp481_{hex}.msu",
                (50_000_000, 90_000_000),
                weight=2,
            ),
            _Template(
                "msrt",
                _CLS["Update Rollups"],
                *_en(
                    "Windows Malicious Software Removal Tool {arch} - v5.{n} (KB890830)",
                    "After the download, this tool runs one time to check your computer "
                    "for infection by specific, prevalent malicious software.",
                ),
                "windows-kb890830-{archl}-v5.{n}_{hex}.exe",
                (60_000_000, 80_000_000),
                kb="890830",
            ),
            _Template(
                "feature",
                _CLS["Upgrades"],
                *_en(
                    "Feature update to {product}, version {release}",
                    "Install the latest version of Windows: {product}, version {release}.",
                ),
                "{archl}fre_client_{hex}.esd",
                (3_000_000_000, 4_500_000_000),
                eula=1.0,
                kb=None,
            ),
            _Template(
                "fp",
                _CLS["Feature Packs"],
                *_en(
                    "Media Feature Pack for {product} (KB{kb})",
                    "This update installs the Media Feature Pack for N editions.",
                ),
                "microsoft-windows-mediafeaturepack-kb{kb}-{archl}_{hex}.cab",
                (80_000_000, 120_000_000),
                supersede=0.2,
            ),
            _Template(
                "dyn",
                upd,
                _UPDATE_TITLE,
                _UPDATE_DESC,
                "windows10.0-kb{kb}-{archl}_{hex}.cab",
                (20_000_000, 60_000_000),
            ),
        ),
        "defender": (
            _Template(
                "defs",
                _CLS["Definition Updates"],
                _DEFS_TITLE,
                _DEFS_DESC,
                "mpam-fe_{archl}_{hex}.exe",
                (50_000_000, 120_000_000),
                weight=6,
                bundle=1.0,
                leaves=defs_leaves,
                kb="2267602",
                supersede=1.0,
            ),
            _Template(
                "platform",
                upd,
                *_en(
                    "Update for Microsoft Defender Antivirus antimalware platform - "
                    "KB4052623 (Version 4.18.{platform}) - Current Channel (Broad)",
                    "This package will update Microsoft Defender Antivirus antimalware "
                    "platform’s components on the user machine.",
                ),
                "updateplatform.amd64fre_{hex}.exe",
                (15_000_000, 25_000_000),
                kb="4052623",
            ),
        ),
        "office": (
            _Template(
                "security",
                sec,
                _SECURITY_TITLE,
                _SECURITY_DESC,
                "word{bits}-kb{kb}-fullfile-x{bits}-glb_{hex}.exe",
                (5_000_000, 90_000_000),
                weight=3,
                severity=1.0,
                bulletin=0.3,
            ),
            _Template(
                "update",
                upd,
                _UPDATE_TITLE,
                _UPDATE_DESC,
                "mso{bits}-kb{kb}-fullfile-x{bits}-glb_{hex}.exe",
                (5_000_000, 60_000_000),
                weight=2,
            ),
            _Template(
                "sp",
                _CLS["Service Packs"],
                *_en(
                    "Service Pack {n} for {product} (KB{kb}) {bits}-Bit Edition",
                    "Service Pack {n} provides the latest updates for {product}.",
                ),
                "officesp{n}-kb{kb}-fullfile-x{bits}-glb_{hex}.exe",
                (200_000_000, 600_000_000),
                eula=1.0,
                supersede=0.3,
            ),
        ),
        "dotnet": (
            _Template(
                "security",
                sec,
                *_en(
                    "Microsoft {product} {ver} Security Update for x64 Client",
                    "Install this update to address security vulnerabilities in "
                    "{product}. See the release notes for details & known issues.",
                ),
                "dotnet-runtime-{ver}-win-x64_{hex}.exe",
                (25_000_000, 60_000_000),
                weight=2,
                severity=1.0,
                kb=None,
            ),
            _Template(
                "tools",
                _CLS["Tools"],
                *_en("{product} Build Tools {ver}", "Build tools for {product} without the IDE."),
                "vs_buildtools_{ver}_{hex}.exe",
                (2_000_000, 4_000_000),
                eula=0.5,
                kb=None,
            ),
        ),
        "sql": (
            _Template(
                "security",
                sec,
                *_en(
                    "Security Update for {product} RTM CU{n} (KB{kb})",
                    "A security issue has been identified in {product}. Install this "
                    "update to help protect your system.",
                ),
                "sqlserver-kb{kb}-x64_{hex}.exe",
                (300_000_000, 500_000_000),
                weight=2,
                severity=1.0,
                bulletin=0.2,
            ),
            _Template(
                "cu",
                upd,
                *_en(
                    "Cumulative Update {n} for {product} (KB{kb})",
                    "Cumulative Update {n} for {product} contains hotfixes for issues "
                    "fixed since the release.",
                ),
                "sqlserver-kb{kb}-x64_{hex}.exe",
                (300_000_000, 500_000_000),
            ),
            _Template(
                "sp",
                _CLS["Service Packs"],
                *_en("{product} Service Pack {n} (KB{kb})", "Service Pack {n} for {product}."),
                "sqlserver-sp{n}-kb{kb}-x64_{hex}.exe",
                (500_000_000, 900_000_000),
                eula=1.0,
                supersede=0.3,
            ),
        ),
        "lob": (
            _Template(
                "update",
                upd,
                *_en(
                    "{product} {ver} Update",
                    'Fixes the "Sync <now>" button & the offline cache for {product}.',
                ),
                "contoso-{ver}-x64_{hex}.msi",
                (10_000_000, 40_000_000),
                weight=3,
                kb=None,
            ),
            _Template(
                "fp",
                _CLS["Feature Packs"],
                *_en(
                    "{product} {ver} Feature Pack", "Adds reporting & export features to {product}."
                ),
                "contoso-featurepack-{ver}_{hex}.msi",
                (10_000_000, 40_000_000),
                kb=None,
                supersede=0.3,
            ),
            _Template(
                "tools",
                _CLS["Tools"],
                *_en("{product} Administration Tools {ver}", ""),
                "contoso-admintools-{ver}_{hex}.msi",
                (1_000_000, 5_000_000),
                kb=None,
                eula=0.5,
            ),
            _Template(
                "critical",
                _CLS["Critical Updates"],
                *_en(
                    "Critical fix for {product} {ver}",
                    "Fixes a crash when the <Inventory> view holds more than 65,535 items.",
                ),
                "contoso-hotfix-{ver}_{hex}.msp",
                (500_000, 5_000_000),
                kb=None,
            ),
        ),
        "driver": (
            _Template(
                "driver",
                _CLS["Drivers"],
                *_en("{maker} - {dclass} - {ver}", "{maker} {dclass} driver update"),
                "{dclassl}{n}_{hex}.cab",
                (200_000, 40_000_000),
                weight=1,
                update_type=UpdateType.DRIVER,
                kb=None,
                supersede=0.6,
            ),
        ),
    }


_TEMPLATES: Final = _templates()
_QUOTE: Final = {'"': "&quot;"}
_DRIVER_CLASSES: Final = ("Net", "Display", "System", "USB", "Bluetooth", "MEDIA", "Camera")
_ARCHS: Final = (("x64", "x64", "9"), ("ARM64", "arm64", "12"), ("x86", "x86", "0"))


# --------------------------------------------------------------------------------------
# Small helpers


def _esc(text: str) -> str:
    """Escape text for an attribute value or element content."""
    return escape(text, _QUOTE)


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _stamp(moment: datetime, millis: int) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def _root(prefixes: Iterable[str]) -> str:
    decl = "".join(f' xmlns:{p}="{_NS[p]}"' for p in prefixes if p != "upd")
    return f'<upd:Update{decl} xmlns:upd="{_NS["upd"]}">'


def _identity(uid: str, revision: int | None = None) -> str:
    if revision is None:
        return f'<upd:UpdateIdentity UpdateID="{uid}" />'
    return f'<upd:UpdateIdentity UpdateID="{uid}" RevisionNumber="{revision}" />'


def _localized(titles: Mapping[str, str], descriptions: Mapping[str, str], extra: str = "") -> str:
    parts = ["<upd:LocalizedPropertiesCollection>"]
    for lang, title in titles.items():
        parts.append(f"<upd:LocalizedProperties><upd:Language>{lang}</upd:Language>")
        parts.append(f"<upd:Title>{_esc(title)}</upd:Title>")
        description = descriptions.get(lang)
        if description:
            parts.append(f"<upd:Description>{_esc(description)}</upd:Description>")
        parts.append(extra)
        parts.append("</upd:LocalizedProperties>")
    parts.append("</upd:LocalizedPropertiesCollection>")
    return "".join(parts)


# --------------------------------------------------------------------------------------
# Categories


@dataclass(slots=True)
class _Palette:
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
        self.weights.append(_KIND_WEIGHT.get(kind, 1))

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
        f"{_identity(parent)}</upd:AtLeastOne></upd:Prerequisites></upd:Relationships>"
        if parent
        else ""
    )
    return (
        f"{_root(prefixes)}{_identity(uid, revision)}"
        '<upd:Properties DefaultPropertiesLanguage="en" IsPublic="true" UpdateType="Category" '
        f'Handler="{_CATEGORY_HANDLER}" PublicationState="Published" CreationDate="{created}" '
        f'PublisherID="{publisher}"></upd:Properties>'
        f"{_localized(titles, descriptions)}{relationships}"
        f"<upd:ApplicabilityRules><upd:IsInstalled>{rule}</upd:IsInstalled>"
        "</upd:ApplicabilityRules>"
        f'<upd:HandlerSpecificData xsi:type="cat:Category" xmlns:xsi="{_XSI}">'
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
        f"<upd:Relationships><upd:Prerequisites>{_identity(prerequisite)}"
        "</upd:Prerequisites></upd:Relationships>"
        if prerequisite
        else ""
    )
    return (
        f"{_root(prefixes)}{_identity(uid, revision)}"
        '<upd:Properties DefaultPropertiesLanguage="en" UpdateType="Detectoid" '
        'ExplicitlyDeployable="false" PerUser="false" IsPublic="false" '
        f'DetectoidType="{detectoid_type}" PublicationState="Published" '
        f'CreationDate="{created}" PublisherID="{_MS_UPDATE_PUBLISHER}"></upd:Properties>'
        f"{_localized({'en': title}, {'en': title})}{relationships}"
        f"<upd:ApplicabilityRules><upd:IsInstalled>{rule}</upd:IsInstalled>"
        "</upd:ApplicabilityRules></upd:Update>"
    )


def _generate_categories(rng: random.Random, palette: _Palette) -> Iterator[ExportRecord]:
    """The generated category tree (parents before children), then the detectoids."""
    moment = datetime(2004, 2, 28, 18, 17, 22, tzinfo=UTC)

    def created() -> str:
        nonlocal moment
        moment += timedelta(seconds=rng.randint(1, 86_400 * 90))
        return _stamp(moment, rng.randrange(1000))

    def revision() -> int:
        return rng.choice((1, 100, 101, 200, 201, 202))

    for order, (company, families) in enumerate(_TREE, start=1):
        company_id = _guid(rng)
        publisher = _MS_CATEGORY_PUBLISHER if order == 1 else _guid(rng)
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
            family_id = _guid(rng)
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
                product_id = _guid(rng)
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
                    _MS_PRODUCT_PUBLISHER if order == 1 else publisher,
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
            _MS_CATEGORY_PUBLISHER,
            'ProhibitsSubcategories="true" ProhibitsUpdates="false"',
        )
        palette.classifications[item.update_id] = item.title
        yield ExportRecord(item.update_id, rev, xml)

    arch_ids: dict[str, str] = {}
    for arch, _lower, code in _ARCHS:
        uid = _guid(rng)
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
        uid = _guid(rng)
        xml = _detectoid_xml(uid, 200, title, detectoid_type, created(), rule, arch_ids[arch])
        palette.add_detectoid(uid, kind)
        yield ExportRecord(uid, 200, xml)


_TITLE_RE: Final = re.compile(
    r"<(?:\w+:)?Language>\s*en\s*</(?:\w+:)?Language>\s*<(?:\w+:)?Title>([^<]*)<"
)
_UPDATE_TYPE_RE: Final = re.compile(r'\bUpdateType\s*=\s*"(\w+)"')
_CATEGORY_TYPE_RE: Final = re.compile(r'\bCategoryType\s*=\s*"(\w+)"')
_FIRST_ID_RE: Final = re.compile(r'<(?:\w+:)?UpdateIdentity\b[^>]*?\bUpdateID\s*=\s*"([^"]+)"')


def _attribute(xml: str, name: str, pattern: re.Pattern[str]) -> str | None:
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


def _learn_category(record: ExportRecord, palette: _Palette) -> str | None:
    """Note a category or detectoid record in `palette`; return its UpdateType."""
    xml = record.xml
    update_type = _attribute(xml, "UpdateType", _UPDATE_TYPE_RE)
    if update_type not in ("Category", "Detectoid"):
        return update_type
    id_match = _FIRST_ID_RE.search(xml)
    uid = (id_match.group(1) if id_match else record.update_id).lower()
    if update_type == "Detectoid":
        if uid not in palette._seen:
            palette._seen.add(uid)
            palette.add_detectoid(uid)
        return update_type
    kind = _attribute(xml, "CategoryType", _CATEGORY_TYPE_RE)
    title_match = _TITLE_RE.search(xml)
    title = _unescape(title_match.group(1)) if title_match else ""
    if kind == CategoryType.PRODUCT.value:
        palette.add_product(uid, title)
    elif kind == CategoryType.UPDATE_CLASSIFICATION.value:
        palette.classifications.setdefault(uid, title)
    return update_type


# --------------------------------------------------------------------------------------
# Updates


class _UpdateFactory:
    """Builds update documents one after another, keeping a few recent ids per product."""

    def __init__(
        self,
        rng: random.Random,
        palette: _Palette,
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
            templates = _TEMPLATES[kind]
            template = rng.choices(templates, [t.weight for t in templates])[0]
            leaves = 0
            if bundles and template.leaves and rng.random() < template.bundle:
                leaves = min(rng.randint(2, len(template.leaves)), count - produced - 1)
            for record in self._update(product_id, product, kind, template, moment, leaves):
                produced += 1
                yield record

    def _fields(self, product: str, kind: str, template: _Template, day: int) -> dict[str, str]:
        rng = self.rng
        arch, archl, _code = _ARCHS[0] if rng.random() < 0.7 else rng.choice(_ARCHS)
        kb = template.kb
        if kb == "":
            self.kb += rng.randint(1, 37)
            kb = str(self.kb)
        dclass = rng.choice(_DRIVER_CLASSES)
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
        template: _Template,
        moment: datetime,
        leaves: int,
    ) -> Iterator[ExportRecord]:
        rng = self.rng
        palette = self.palette
        day = max(0, (moment - self.start).days)
        values = self._fields(product, kind, template, day)
        classification = palette.classification_for(template.classification, rng)
        created = _stamp(moment, rng.randrange(1000))

        leaf_keys: list[tuple[str, int]] = []
        for index in range(leaves):
            leaf_id = _guid(rng)
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

        uid = _guid(rng)
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
        self, template: _Template, values: Mapping[str, str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        rng = self.rng
        languages = ["en"]
        extra = [lang for lang in _LANGUAGES if lang in template.title]
        if extra and rng.random() < _MULTILINGUAL_SHARE:
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
        template: _Template,
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
            attrs.append(f'Handler="{_DRIVER_HANDLER if driver else _CMD_HANDLER}"')
        attrs.append(f'MaxDownloadSize="{size_total}" MinDownloadSize="0"')
        if template.severity and not leaf and rng.random() < template.severity:
            attrs.append(f'MsrcSeverity="{rng.choice(_SEVERITIES)}"')
        if template.eula and not leaf and rng.random() < template.eula:
            attrs.append(f'EulaID="{_guid(rng)}"')
        attrs.append(f'PublicationState="Published" CreationDate="{created}"')
        attrs.append(f'PublisherID="{_MS_UPDATE_PUBLISHER}"')
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
            rel.extend(_identity(s) for s in superseded)
            rel.append("</upd:SupersededUpdates>")
        rel.append("<upd:Prerequisites>")
        detectoids = self.palette.detectoids
        if leaf or rng.random() < 0.4:
            pool = detectoids.get(kind) or detectoids.get("any")
            if pool:
                rel.append(_identity(rng.choice(pool)))
            arch_pool = detectoids.get(f"arch:{values['arch']}")
            if arch_pool:
                rel.append(_identity(arch_pool[0]))
        if leaf:
            rel.append(f"<upd:AtLeastOne>{_identity(product_id)}</upd:AtLeastOne>")
        else:
            rel.append(
                f'<upd:AtLeastOne IsCategory="true">{_identity(str(classification))}'
                "</upd:AtLeastOne>"
                f'<upd:AtLeastOne IsCategory="true">{_identity(product_id)}</upd:AtLeastOne>'
            )
        rel.append("</upd:Prerequisites>")
        if bundled:
            rel.append("<upd:BundledUpdates><upd:AtLeastOne>")
            rel.extend(_identity(b, r) for b, r in bundled)
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
                _root(prefixes),
                _identity(uid, revision),
                *props,
                _localized(titles, descriptions, more_info),
                *rel,
                rules,
                files,
                handler,
                "</upd:Update>",
            )
        )

    def _files(
        self, template: _Template, values: Mapping[str, str], created: str
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
            f'<upd:Files><upd:File Digest="{_b64(sha1)}" DigestAlgorithm="SHA1" '
            f'FileName="{_esc(name)}" Size="{size}" Modified="{modified:%Y-%m-%dT%H:%M:%S}Z">'
            f'<upd:AdditionalDigest Algorithm="SHA256">{_b64(sha256)}</upd:AdditionalDigest>'
            "</upd:File></upd:Files>",
            size,
        )

    def _handler(self, template: _Template, values: Mapping[str, str], files: str) -> str:
        if template.update_type is UpdateType.DRIVER:
            rng = self.rng
            hardware = (
                f"PCI\\VEN_{rng.randrange(0x10000):04X}&DEV_{rng.randrange(0x10000):04X}"
                f"&SUBSYS_{rng.randrange(1 << 32):08X}"
            )
            return (
                f'<upd:HandlerSpecificData xsi:type="drv:WindowsDriverMetaData" '
                f'xmlns:xsi="{_XSI}"><drv:WindowsDriverMetaData HardwareID="{_esc(hardware)}" '
                f'WhqlDriverID="{rng.randrange(10**8)}" Manufacturer="{_esc(values["maker"])}" '
                f'Company="{_esc(values["maker"])}" Provider="{_esc(values["maker"])}" '
                f'DriverVerDate="{values["ym"]}-{rng.randint(10, 28)}" '
                f'DriverVerVersion="{values["ver"]}" Class="{values["dclass"]}" />'
                "</upd:HandlerSpecificData>"
            )
        start = files.index('FileName="') + 10
        program = files[start : files.index('"', start)]
        return (
            f'<upd:HandlerSpecificData xsi:type="cmd:CommandLineInstallation" '
            f'xmlns:xsi="{_XSI}"><cmd:InstallCommand Program="{program}" '
            'Arguments="/quiet /norestart"><cmd:ReturnCode Code="0" Result="Succeeded" />'
            '<cmd:ReturnCode Code="3010" Result="Succeeded" Reboot="true" />'
            "</cmd:InstallCommand></upd:HandlerSpecificData>"
        )


def _rules(kind: str, values: Mapping[str, str], rng: random.Random) -> str:
    """An ApplicabilityRules block of the shape real documents of this kind carry."""
    arch_code = next(code for name, _l, code in _ARCHS if name == values["arch"])
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
            f'<bar:RegSz Key="HKEY_LOCAL_MACHINE" Subkey="{_esc(key)}" Value="Version" '
            f'Comparison="EqualTo" Data="{values["ver"]}" />'
        )
        installable = (
            f'<lar:And><bar:RegKeyExists Key="HKEY_LOCAL_MACHINE" Subkey="{_esc(key)}" />'
            f'<bar:Processor Architecture="{arch_code}" /></lar:And>'
        )
    return (
        f"<upd:ApplicabilityRules><upd:IsInstalled>{installed}</upd:IsInstalled>"
        f"<upd:IsInstallable>{installable}</upd:IsInstallable></upd:ApplicabilityRules>"
    )


# --------------------------------------------------------------------------------------
# Public API


def generate_catalog(
    updates: int,
    seed: int,
    *,
    categories: Iterable[ExportRecord] | None = None,
) -> Iterator[ExportRecord]:
    """Stream a synthetic catalog: category revisions first, then `updates` update revisions.

    Without `categories` a category tree is generated (three companies, Microsoft
    Corporation first; product families; products; the ten real update classifications with
    their real GUIDs; a few detectoids). With `categories` (e.g. the category and detectoid
    records of a real export) those records are passed through unchanged and the updates are
    filed under their products (CategoryType="Product") and classifications.

    `updates` counts every update revision yielded, bundle leaves included; leaves come just
    before the bundle naming them, and superseded updates before the ones superseding them.
    The output depends only on the arguments.
    """
    if updates < 0:
        raise ValueError(f"updates must be >= 0, not {updates}")
    return _generate(updates, seed, categories)


def _generate(
    updates: int, seed: int, categories: Iterable[ExportRecord] | None
) -> Iterator[ExportRecord]:
    rng = random.Random(seed)
    palette = _Palette()
    if categories is None:
        yield from _generate_categories(rng, palette)
    else:
        for record in categories:
            _learn_category(record, palette)
            yield record
    if updates == 0:
        return
    palette.check()
    factory = _UpdateFactory(rng, palette, _BASE_DATE, _CATALOG_SPAN, 5_005_000)
    yield from factory.stream(updates)


_REVISION_RE: Final = re.compile(
    r'(<(?:\w+:)?UpdateIdentity\b[^>]*?\bRevisionNumber\s*=\s*")(\d+)(")'
)
_STATE_RE: Final = re.compile(r'(\bPublicationState\s*=\s*")(\w+)(")')
_PROPERTIES_RE: Final = re.compile(r"<(?:\w+:)?Properties\b")
_CATEGORY_GROUP_RE: Final = re.compile(
    r'<(?:\w+:)?AtLeastOne\s+IsCategory\s*=\s*"true"\s*>(.*?)</(?:\w+:)?AtLeastOne>'
)
_GROUP_ID_RE: Final = re.compile(r'\bUpdateID\s*=\s*"([^"]+)"')
_CREATED_RE: Final = re.compile(r'\bCreationDate\s*=\s*"([^"]*)"')
_KB_RE: Final = re.compile(r"<(?:\w+:)?KBArticleID>\s*(\d+)\s*<")
_EN_TEXT_RE: Final = re.compile(
    r"(<(\w+:)?Language>\s*en\s*</\2Language>\s*<\2Title>)([^<]*)(</\2Title>)"
    r"(?:(\s*<\2Description>)([^<]*)(</\2Description>))?"
)


def _bump(xml: str) -> tuple[str, int]:
    match = _REVISION_RE.search(xml)
    if match is None:
        raise ValueError("an update record without a RevisionNumber cannot be revised")
    revision = int(match.group(2)) + 1
    return f"{xml[: match.start(2)]}{revision}{xml[match.end(2) :]}", revision


def _revise(record: ExportRecord, rng: random.Random, when: str) -> ExportRecord:
    """A new revision of `record` with its English title or description changed."""
    xml, revision = _bump(record.xml)
    match = _EN_TEXT_RE.search(xml)
    if match is not None:
        if match.group(6) is not None and rng.random() < 0.5:
            note = _esc(f" Revised {when}: updated the known-issues section.")
            xml = f"{xml[: match.end(6)]}{note}{xml[match.end(6) :]}"
        else:
            note = _esc(f" (revised {when})")
            xml = f"{xml[: match.end(3)]}{note}{xml[match.end(3) :]}"
    return ExportRecord(record.update_id, revision, xml)


def _expire(record: ExportRecord) -> ExportRecord:
    """A new revision of `record` with PublicationState="Expired"."""
    xml, revision = _bump(record.xml)
    props = _PROPERTIES_RE.search(xml)
    state = _STATE_RE.search(xml, props.end() if props else 0)
    if state is not None:
        xml = f"{xml[: state.start(2)]}Expired{xml[state.end(2) :]}"
    elif props is not None:
        xml = f'{xml[: props.end()]} PublicationState="Expired"{xml[props.end() :]}'
    return ExportRecord(record.update_id, revision, xml)


def evolve_catalog(
    records: Iterable[ExportRecord], changes: int, seed: int
) -> Iterator[ExportRecord]:
    """Stream "next month's" catalog: every record of `records`, with `changes` changes.

    The changes are spread over new updates (filed under the products and classifications
    found among the category records, some superseding recent updates of the same product),
    new revisions of existing updates (RevisionNumber + 1, English title or description
    changed) and expirations (a new revision with PublicationState="Expired"). A changed
    update is emitted only in its new revision. If fewer existing updates are found than
    revisions and expirations asked for, the rest become new updates, so the count stays
    exact.

    One pass over `records`: the candidates for a new revision are reservoir-sampled and
    held back (memory grows with `changes`, not with the catalog); a record pushed out of
    the reservoir is emitted then, unchanged, so the output order differs slightly from the
    input order. Category and detectoid records keep their place. New updates and changed
    revisions come last. The output depends only on the arguments (and the input order).
    """
    if changes < 0:
        raise ValueError(f"changes must be >= 0, not {changes}")
    return _evolve(records, changes, seed)


def _evolve(records: Iterable[ExportRecord], changes: int, seed: int) -> Iterator[ExportRecord]:
    rng = random.Random(seed)
    kinds = Counter(rng.choices(("new", "revise", "expire"), (5, 3, 2), k=changes))
    wanted = kinds["revise"] + kinds["expire"]

    palette = _Palette()
    recent: dict[str, deque[str]] = {}
    reservoir: list[ExportRecord] = []
    index: dict[str, int] = {}  # update id -> position in reservoir
    seen = 0
    latest = _BASE_DATE
    max_kb = 5_005_000

    for record in records:
        update_type = _learn_category(record, palette)
        if update_type not in ("Software", "Driver"):
            yield record
            continue
        xml = record.xml
        created = _attribute(xml, "CreationDate", _CREATED_RE)
        if created is not None:
            try:
                moment = datetime.fromisoformat(created[:19]).replace(tzinfo=UTC)
            except ValueError:
                moment = latest
            latest = max(latest, moment)
        if "KBArticleID>" in xml:
            for kb in _KB_RE.findall(xml):
                max_kb = max(max_kb, int(kb))
        groups = _CATEGORY_GROUP_RE.findall(xml) if "IsCategory" in xml else []
        if not groups or 'PublicationState="Expired"' in xml:
            yield record  # leaves (no category groups) and expired ones stay as they are
            continue
        uid = record.update_id.lower()
        for group in groups:
            for product in _GROUP_ID_RE.findall(group):
                recent.setdefault(product.lower(), deque(maxlen=3)).append(uid)
        if wanted == 0:
            yield record
            continue
        held = index.get(uid)
        if held is not None:  # another revision of an id already held: keep the later one
            older = reservoir[held]
            if record.revision >= older.revision:
                reservoir[held] = record
                yield older
            else:
                yield record
            continue
        seen += 1
        if len(reservoir) < wanted:
            index[uid] = len(reservoir)
            reservoir.append(record)
            continue
        slot = rng.randrange(seen)
        if slot < wanted:
            evicted = reservoir[slot]
            del index[evicted.update_id.lower()]
            reservoir[slot] = record
            index[uid] = slot
            yield evicted
        else:
            yield record

    rng.shuffle(reservoir)
    revise = min(kinds["revise"], len(reservoir))
    expire = min(kinds["expire"], len(reservoir) - revise)
    new = changes - revise - expire
    when = f"{latest + timedelta(days=1):%Y-%m-%d}"
    for record in reservoir[:revise]:
        yield _revise(record, rng, when)
    for record in reservoir[revise : revise + expire]:
        yield _expire(record)
    for record in reservoir[revise + expire :]:
        yield record  # held but not needed (only when the reservoir outgrew the changes)
    if new:
        palette.check()
        start = (latest + timedelta(days=1)).replace(hour=0, minute=0, second=0)
        factory = _UpdateFactory(rng, palette, start, _EVOLVE_SPAN, max_kb, recent)
        yield from factory.stream(new, bundles=False)


# --------------------------------------------------------------------------------------
# Summary


@dataclass(slots=True)
class CatalogStats:
    """Counts over a stream of records (see `catalog_stats`)."""

    revisions: int = 0
    by_update_type: Counter[str] = field(default_factory=Counter)
    by_category_type: Counter[str] = field(default_factory=Counter)
    bundles: int = 0
    superseding: int = 0
    expired: int = 0
    with_files: int = 0
    multilingual: int = 0
    characters: int = 0

    def summary(self) -> str:
        types = ", ".join(f"{k} {v}" for k, v in sorted(self.by_update_type.items()))
        cats = ", ".join(f"{k} {v}" for k, v in sorted(self.by_category_type.items()))
        return (
            f"{self.revisions} revisions ({types}); categories: {cats}; "
            f"{self.bundles} bundles, {self.superseding} superseding, {self.expired} expired, "
            f"{self.with_files} with files, {self.multilingual} multilingual; "
            f"{self.characters} characters of XML"
        )


_BUNDLE_RE: Final = re.compile(r"<(?:\w+:)?BundledUpdates\b")
_SUPERSEDED_RE: Final = re.compile(r"<(?:\w+:)?SupersededUpdates\b")
_FILE_RE: Final = re.compile(r"<(?:\w+:)?File\b")
_STATE_ATTR_RE: Final = re.compile(r'\bPublicationState\s*=\s*"(\w+)"')


def catalog_stats(
    records: Iterable[ExportRecord],
    *,
    observe: Callable[[ExportRecord], None] | None = None,
) -> CatalogStats:
    """Count a catalog's records by type in one pass, without keeping them.

    `observe`, if given, is called with each record as it goes by (to tee a stream).
    """
    stats = CatalogStats()
    for record in records:
        if observe is not None:
            observe(record)
        xml = record.xml
        stats.revisions += 1
        stats.characters += len(xml)
        update_type = _attribute(xml, "UpdateType", _UPDATE_TYPE_RE) or "?"
        stats.by_update_type[update_type] += 1
        if update_type == "Category":
            stats.by_category_type[_attribute(xml, "CategoryType", _CATEGORY_TYPE_RE) or "?"] += 1
        elif xml.count("Language>") > 2:
            stats.multilingual += 1
        if "BundledUpdates" in xml and _BUNDLE_RE.search(xml):
            stats.bundles += 1
        if "SupersededUpdates" in xml and _SUPERSEDED_RE.search(xml):
            stats.superseding += 1
        if _attribute(xml, "PublicationState", _STATE_ATTR_RE) == "Expired":
            stats.expired += 1
        if "Digest=" in xml and _FILE_RE.search(xml):
            stats.with_files += 1
    return stats
