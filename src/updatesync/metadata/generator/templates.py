"""The update templates: one kind of update (title and description patterns, files,
sizes, classification, odds of a bundle, a bulletin, a EULA, supersedence) per product
kind. A declarative table built once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from updatesync.metadata.generator.tables import (
    CLS,
    CU_TITLE,
    DEFS_DESC,
    DEFS_TITLE,
    SECURITY_DESC,
    SECURITY_TITLE,
    UPDATE_DESC,
    UPDATE_TITLE,
    WINDOWS_DESC,
)
from updatesync.metadata.model import UpdateType


def _en(title: str, description: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    return {"en": title}, ({"en": description} if description else {})


@dataclass(frozen=True, slots=True)
class Template:
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


def _templates() -> dict[str, tuple[Template, ...]]:
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
    sec = CLS["Security Updates"]
    upd = CLS["Updates"]
    return {
        "windows": (
            Template(
                "cu",
                sec,
                CU_TITLE,
                WINDOWS_DESC,
                "windows10.0-kb{kb}-{archl}_{hex}.msu",
                (300_000_000, 900_000_000),
                weight=6,
                severity=1.0,
                bulletin=0.1,
                bundle=0.5,
                leaves=cu_leaves,
            ),
            Template(
                "ssu",
                CLS["Critical Updates"],
                *_en(
                    "{ym} Servicing Stack Update for {product} for {arch}-based Systems (KB{kb})",
                    WINDOWS_DESC["en"],
                ),
                "windows10.0-kb{kb}-{archl}_{hex}.msu",
                (10_000_000, 30_000_000),
                weight=2,
            ),
            Template(
                "netfx",
                upd,
                *_en(
                    "{ym} Cumulative Update for .NET Framework 3.5 and 4.8.1 for "
                    "{product} for {arch} (KB{kb})",
                    WINDOWS_DESC["en"],
                ),
                "windows10.0-kb{kb}-{archl}-ndp481_{hex}.msu",
                (50_000_000, 90_000_000),
                weight=2,
            ),
            Template(
                "msrt",
                CLS["Update Rollups"],
                *_en(
                    "Windows Malicious Software Removal Tool {arch} - v5.{n} (KB890830)",
                    "After the download, this tool runs one time to check your computer "
                    "for infection by specific, prevalent malicious software.",
                ),
                "windows-kb890830-{archl}-v5.{n}_{hex}.exe",
                (60_000_000, 80_000_000),
                kb="890830",
            ),
            Template(
                "feature",
                CLS["Upgrades"],
                *_en(
                    "Feature update to {product}, version {release}",
                    "Install the latest version of Windows: {product}, version {release}.",
                ),
                "{archl}fre_client_{hex}.esd",
                (3_000_000_000, 4_500_000_000),
                eula=1.0,
                kb=None,
            ),
            Template(
                "fp",
                CLS["Feature Packs"],
                *_en(
                    "Media Feature Pack for {product} (KB{kb})",
                    "This update installs the Media Feature Pack for N editions.",
                ),
                "microsoft-windows-mediafeaturepack-kb{kb}-{archl}_{hex}.cab",
                (80_000_000, 120_000_000),
                supersede=0.2,
            ),
            Template(
                "dyn",
                upd,
                UPDATE_TITLE,
                UPDATE_DESC,
                "windows10.0-kb{kb}-{archl}_{hex}.cab",
                (20_000_000, 60_000_000),
            ),
        ),
        "defender": (
            Template(
                "defs",
                CLS["Definition Updates"],
                DEFS_TITLE,
                DEFS_DESC,
                "mpam-fe_{archl}_{hex}.exe",
                (50_000_000, 120_000_000),
                weight=6,
                bundle=1.0,
                leaves=defs_leaves,
                kb="2267602",
                supersede=1.0,
            ),
            Template(
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
            Template(
                "security",
                sec,
                SECURITY_TITLE,
                SECURITY_DESC,
                "word{bits}-kb{kb}-fullfile-x{bits}-glb_{hex}.exe",
                (5_000_000, 90_000_000),
                weight=3,
                severity=1.0,
                bulletin=0.3,
            ),
            Template(
                "update",
                upd,
                UPDATE_TITLE,
                UPDATE_DESC,
                "mso{bits}-kb{kb}-fullfile-x{bits}-glb_{hex}.exe",
                (5_000_000, 60_000_000),
                weight=2,
            ),
            Template(
                "sp",
                CLS["Service Packs"],
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
            Template(
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
            Template(
                "tools",
                CLS["Tools"],
                *_en("{product} Build Tools {ver}", "Build tools for {product} without the IDE."),
                "vs_buildtools_{ver}_{hex}.exe",
                (2_000_000, 4_000_000),
                eula=0.5,
                kb=None,
            ),
        ),
        "sql": (
            Template(
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
            Template(
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
            Template(
                "sp",
                CLS["Service Packs"],
                *_en("{product} Service Pack {n} (KB{kb})", "Service Pack {n} for {product}."),
                "sqlserver-sp{n}-kb{kb}-x64_{hex}.exe",
                (500_000_000, 900_000_000),
                eula=1.0,
                supersede=0.3,
            ),
        ),
        "lob": (
            Template(
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
            Template(
                "fp",
                CLS["Feature Packs"],
                *_en(
                    "{product} {ver} Feature Pack", "Adds reporting & export features to {product}."
                ),
                "contoso-featurepack-{ver}_{hex}.msi",
                (10_000_000, 40_000_000),
                kb=None,
                supersede=0.3,
            ),
            Template(
                "tools",
                CLS["Tools"],
                *_en("{product} Administration Tools {ver}", ""),
                "contoso-admintools-{ver}_{hex}.msi",
                (1_000_000, 5_000_000),
                kb=None,
                eula=0.5,
            ),
            Template(
                "critical",
                CLS["Critical Updates"],
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
            Template(
                "driver",
                CLS["Drivers"],
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


TEMPLATES: Final = _templates()
