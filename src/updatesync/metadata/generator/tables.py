"""The fixed values of generated catalogs, as real documents carry them: namespaces,
publisher ids, dates, the real update classifications (`CLASSIFICATIONS`), the generated
category tree and the localized texts. Pure tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

# --------------------------------------------------------------------------------------
# Namespaces and fixed values seen in real documents

NS: Final = {
    "pub": "http://schemas.microsoft.com/msus/2002/12/Publishing",
    "bar": "http://schemas.microsoft.com/msus/2002/12/BaseApplicabilityRules",
    "lar": "http://schemas.microsoft.com/msus/2002/12/LogicalApplicabilityRules",
    "mar": "http://schemas.microsoft.com/msus/2002/12/MsiApplicabilityRules",
    "cmd": "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/CommandLineInstallation",
    "drv": "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/WindowsDriver",
    "cat": "http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Category",
    "upd": "http://schemas.microsoft.com/msus/2002/12/Update",
}
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
CATEGORY_HANDLER: Final = NS["cat"]
CMD_HANDLER: Final = NS["cmd"]
DRIVER_HANDLER: Final = NS["drv"]

# Publisher ids as they appear in real documents (categories, products, Defender updates).
MS_CATEGORY_PUBLISHER: Final = "42f20e12-2856-447d-a8b2-68f06c2e9b45"
MS_PRODUCT_PUBLISHER: Final = "395392a0-19c0-48b7-a927-f7c15066d905"
MS_UPDATE_PUBLISHER: Final = "bccf8ca0-2819-4598-8d15-c1506e363e92"

BASE_DATE: Final = datetime(2021, 10, 5, tzinfo=UTC)
"""Generated update dates start here (seconds-exact offsets are derived from the seed)."""
CATALOG_SPAN: Final = timedelta(days=990)
"""A generated catalog spreads its updates over this span after `BASE_DATE`."""
EVOLVE_SPAN: Final = timedelta(days=30)

LANGUAGES: Final = ("ar", "de", "fr", "ja", "zh-cn")
MULTILINGUAL_SHARE: Final = 0.35
SEVERITIES: Final = ("Critical", "Important", "Important", "Moderate", "Low")


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
CLS: Final = {c.title: c.update_id for c in CLASSIFICATIONS}

# The generated category tree: company -> product family -> (product title, product kind).
# The product kind selects the update templates filed under the product.
TREE: Final[tuple[tuple[str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...]], ...]] = (
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
KIND_WEIGHT: Final = {
    "windows": 5,
    "defender": 4,
    "office": 3,
    "dotnet": 1,
    "sql": 1,
    "lob": 1,
    "driver": 2,
}

DRIVER_CLASSES: Final = ("Net", "Display", "System", "USB", "Bluetooth", "MEDIA", "Camera")
ARCHS: Final = (("x64", "x64", "9"), ("ARM64", "arm64", "12"), ("x86", "x86", "0"))

# --------------------------------------------------------------------------------------
# Texts. Translations are limited to what real catalogs carry for these kinds of updates.

WINDOWS_DESC: Final = {
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
CU_TITLE: Final = {
    "en": "{ym} Cumulative Update for {product} for {arch}-based Systems (KB{kb})",
    "de": "{ym} Kumulatives Update für {product} für {arch}-basierte Systeme (KB{kb})",
    "fr": "{ym} Mise à jour cumulative pour {product} pour les systèmes {arch} (KB{kb})",
    "ja": "{ym} {arch} ベース システム用 {product} の累積更新プログラム (KB{kb})",
    "ar": "{ym} التحديث التراكمي لـ {product} للأنظمة المستندة إلى {arch} (KB{kb})",
    "zh-cn": "{ym} 适用于基于 {arch} 的系统的 {product} 累积更新 (KB{kb})",
}
SECURITY_TITLE: Final = {
    "en": "Security Update for {product} (KB{kb}) {bits}-Bit Edition",
    "de": "Sicherheitsupdate für {product} (KB{kb}), {bits}-Bit-Edition",
    "fr": "Mise à jour de sécurité pour {product} (KB{kb}) Édition {bits} bits",
    "ja": "{product} セキュリティ更新プログラム (KB{kb}) {bits} ビット版",
    "ar": "تحديث أمان لـ {product} (KB{kb}) إصدار {bits} بت",
    "zh-cn": "{product} 安全更新 (KB{kb}) {bits} 位版本",
}
SECURITY_DESC: Final = {
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
UPDATE_TITLE: Final = {
    "en": "Update for {product} (KB{kb})",
    "de": "Update für {product} (KB{kb})",
    "fr": "Mise à jour pour {product} (KB{kb})",
    "ja": "{product} 用更新プログラム (KB{kb})",
    "ar": "تحديث لـ {product} (KB{kb})",
    "zh-cn": "{product} 更新 (KB{kb})",
}
UPDATE_DESC: Final = {
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
DEFS_TITLE: Final = {
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
DEFS_DESC: Final = {
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

# --------------------------------------------------------------------------------------
# The shape of real documents (see `shape` and docs/architecture.md): what the generator is
# calibrated on.

ALL_LANGUAGES: Final = (
    "en", "ar", "bg", "cs", "da", "de", "el", "es", "et", "fi", "fr", "he", "hr", "hu", "it",
    "ja", "ko", "lt", "lv", "nb", "nl", "pl", "pt", "pt-br", "ro", "ru", "sk", "sl", "sr", "sv",
    "th", "tr", "uk", "zh-cn", "zh-hk", "zh-tw",
)  # fmt: skip
"""The languages real documents carry localized properties in, English first (the real
Defender definition bundle carries 35 of them, the real companies and classifications 24)."""
CATEGORY_LANGUAGES: Final = 24
FAMILY_SHARE: Final = 0.5
"""Odds that an update of a template without a share of its own comes as a bundle family
(leaves, hidden sub-bundles, the bundle), as the real Defender definition updates do."""
GLOBAL_LANGUAGE_SHARE: Final = 0.12
"""Share of stand-alone updates localized in 24 to 36 languages (the rest: English, or English
and a few)."""

# The mean size (characters) of each percentile of the real documents, smallest first, measured
# on the June 2024 WSUS export (451 categories, 3,674 detectoids). Generated categories and
# detectoids are padded (with applicability rule elements, as the real large ones are) to the
# size of the percentile range their rank falls in, so their distribution follows the real one.
CATEGORY_SIZE_PERCENTILES: Final = (
    1416, 1441, 1456, 1486, 1515, 1547, 1582, 1613, 1644, 1671, 1688, 1710, 1726, 1735, 1744,
    1762, 1768, 1777, 1782, 1792, 1797, 1805, 1812, 1820, 1824, 1828, 1840, 1850, 1858, 1868,
    1871, 1874, 1878, 1888, 1901, 1911, 1920, 1927, 1941, 1977, 2040, 2127, 2158, 2191, 2205,
    2228, 2236, 2239, 2246, 2255, 2266, 2276, 2290, 2307, 2320, 2342, 2364, 2391, 2425, 2446,
    2462, 2486, 2518, 2559, 2650, 2764, 2825, 2852, 2883, 2929, 2943, 2959, 2974, 2985, 3001,
    3014, 3024, 3036, 3057, 3244, 3517, 3878, 4411, 4984, 5270, 5566, 5973, 6250, 6495, 6824,
    7251, 7495, 8647, 10879, 12493, 15144, 21298, 31642, 67349, 532117,
)  # fmt: skip
DETECTOID_SIZE_PERCENTILES: Final = (
    1102, 1142, 1167, 1189, 1221, 1235, 1250, 1262, 1269, 1271, 1287, 1290, 1291, 1293, 1293,
    1293, 1294, 1295, 1295, 1295, 1295, 1295, 1296, 1297, 1297, 1297, 1297, 1299, 1299, 1299,
    1300, 1301, 1301, 1303, 1305, 1307, 1309, 1312, 1315, 1319, 1323, 1330, 1335, 1340, 1347,
    1353, 1358, 1367, 1377, 1389, 1402, 1414, 1422, 1429, 1442, 1459, 1467, 1492, 1520, 1556,
    1589, 1622, 1647, 1680, 1698, 1724, 1748, 1774, 1806, 1857, 1892, 1920, 1949, 1971, 1988,
    2037, 2090, 2151, 2230, 2318, 2357, 2374, 2458, 2550, 2660, 2864, 3257, 3522, 3965, 4259,
    4914, 5514, 5872, 6648, 7611, 9162, 10470, 13435, 16879, 80944,
)  # fmt: skip
GENERATED_DETECTOIDS: Final = 40
"""Detectoids of a generated catalog (the three architectures, three kinds, and fillers)."""


# Products that real catalogs still carry but that receive no new updates: they make the
# generated category tree as wide as a real one (most categories are products, each with a
# parent), and no update is filed under them. Family title -> product titles.
LEGACY_PRODUCTS: Final = (
    (
        "Windows",
        (
            "Windows 7", "Windows 8.1", "Windows Server 2008 R2", "Windows Server 2012",
            "Windows Server 2012 R2", "Windows Server 2016", "Windows 10 LTSB",
            "Windows 10, version 1809 and later, Servicing Drivers", "Windows Server 2019 and "
            "later, Servicing Drivers", "Windows 10 Feature On Demand", "Windows 10 Language "
            "Packs", "Windows 11 Dynamic Update", "Windows 10 Dynamic Update",
            "Windows Server, version 1903 and later", "Windows Insider Pre-Release",
            "Windows Safe OS Dynamic Update", "Windows 10 GDR-DU", "Windows 11 GDR-DU",
            "Windows Subsystem for Linux", "Windows Admin Center", "Windows Defender",
            "Microsoft Edge", "Windows Server Manager - Windows Server Update Services (WSUS) "
            "Dynamic Installer",
        ),
    ),
    (
        "Office",
        (
            "Office 2010", "Office 2013", "Office 2007", "Office 2003", "Office XP",
            "Office Communications Server 2007", "Office Live Add-in", "Office 2002/XP",
            "SharePoint Server 2019", "SharePoint Server 2016", "Project Server 2016",
            "Skype for Business Server 2019", "Visio 2016", "Microsoft Lync 2010",
        ),
    ),
    (
        "Developer Tools, Runtimes, and Redistributables",
        (
            ".NET 6.0", ".NET 7.0", ".NET 5.0", "Visual Studio 2019", "Visual Studio 2017",
            "Visual Studio 2015", "Visual Studio 2013", "Report Viewer 2010",
        ),
    ),
    (
        "SQL Server",
        (
            "Microsoft SQL Server 2017", "Microsoft SQL Server 2016", "Microsoft SQL Server 2014",
            "SQL Server 2012 Product Updates for Setup", "SQL Server Feature Pack",
            "Microsoft SQL Server Management Studio v18", "SQL Server 2008 R2",
        ),
    ),
)  # fmt: skip
