"""Applicability rules of generated updates, of the size and shape real ones have.

A real installable update (the Defender delta leaves captured from Microsoft Update) carries
about 60 rule elements: an `IsInstalled` block of a few registry and file-version checks, and
an `IsInstallable` block whose bulk is a `lar:Or` of `lar:And` pairs, one per earlier version the
update applies to; every element declares its own namespace, as in the real documents.
`update_rules` writes such a block from string templates (one pair template per product kind:
`bar:` file versions for Defender, `bar:`/`cbsar:` package identities for Windows and drivers,
`msiar:` MSI products and patches for Office, SQL Server and .NET, `bar:` registry values for
line-of-business software)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Final

from updatesync.metadata.generator.tables import NS

_BAR: Final = f' xmlns:bar="{NS["bar"]}"'
_LAR: Final = f' xmlns:lar="{NS["lar"]}"'
_MSIAR: Final = ' xmlns:msiar="http://schemas.microsoft.com/msus/2002/12/MsiApplicabilityRules"'
_CBSAR: Final = ' xmlns:cbsar="http://schemas.microsoft.com/msus/2002/12/CbsApplicabilityRules"'
_HKLM: Final = 'Key="HKEY_LOCAL_MACHINE"'

# One pair per earlier version: two elements with {v} (the version) and {k} (the key).
_PAIRS: Final = {
    "defender": (
        f'<bar:FileVersionPrependRegSz Path="mpasdlta.vdm" Comparison="EqualTo" Version="{{v}}" '
        f'{_HKLM} Subkey="SOFTWARE\\Microsoft\\Windows Defender\\Signature Updates" '
        f'Value="SignatureLocation"{_BAR} />'
        f'<bar:FileVersionPrependRegSz Path="mpavdlta.vdm" Comparison="EqualTo" Version="{{v}}" '
        f'{_HKLM} Subkey="SOFTWARE\\Microsoft\\Windows Defender\\Signature Updates" '
        f'Value="SignatureLocation"{_BAR} />'
    ),
    "windows": (
        '<bar:WindowsVersion Comparison="EqualTo" MajorVersion="10" MinorVersion="0" '
        f'BuildNumber="{{k}}" ServicePackMajor="0"{_BAR} />'
        '<cbsar:CbsPackageInstalledByIdentity PackageIdentity="Package_for_RollupFix'
        f'~31bf3856ad364e35~amd64~~{{k}}.{{v}}"{_CBSAR} />'
    ),
    "msi": (
        '<msiar:MsiPatchInstalledForProduct PatchCode="{{{k}-{v}}}" '
        'ProductCode="{{90160000-0011-0000-1000-0000000FF1CE}}" VersionMin="16.0.4266.1001" '
        f'VersionMax="16.0.65535.65535"{_MSIAR} />'
        '<msiar:MsiProductInstalled ProductCode="{{90160000-0012-0000-1000-0000000FF1CE}}" '
        f'VersionMin="16.0.4266.1001" VersionMax="16.0.{{v}}" Language="1033"{_MSIAR} />'
    ),
    "registry": (
        f'<bar:RegSzToVersion {_HKLM} Subkey="SOFTWARE\\{{k}}" Value="Version" '
        f'Comparison="EqualTo" Data="{{v}}"{_BAR} />'
        f'<bar:RegDword {_HKLM} Subkey="SOFTWARE\\{{k}}\\Servicing" Value="Build" '
        f'Comparison="LessThan" Data="{{v}}"{_BAR} />'
    ),
}
_PAIR_OF_KIND: Final = {
    "defender": "defender",
    "windows": "windows",
    "driver": "windows",
    "office": "msi",
    "sql": "msi",
    "dotnet": "msi",
}

_INSTALLED: Final = (
    f'<lar:And{_LAR}><lar:Not><bar:RegDword {_HKLM} Subkey="SOFTWARE\\{{k}}\\Updates" '
    f'Value="UpdateType" Comparison="EqualTo" Data="1"{_BAR} /></lar:Not>'
    '<bar:FileVersionPrependRegSz Path="{f}" Comparison="GreaterThanOrEqualTo" Version="{v}" '
    f'{_HKLM} Subkey="SOFTWARE\\{{k}}" Value="InstallLocation"{_BAR} />'
    f'<bar:RegValueExists {_HKLM} Subkey="SOFTWARE\\{{k}}" Value="Version" Type="REG_SZ"{_BAR} />'
    f'<lar:Not><bar:RegDword {_HKLM} Subkey="SOFTWARE\\{{k}}\\Configuration" '
    f'Value="UpdateFailure" Comparison="GreaterThanOrEqualTo" Data="1"{_BAR} /></lar:Not>'
    "</lar:And>"
)
_INSTALLABLE_HEAD: Final = (
    f"<lar:And{_LAR}><lar:Not><lar:And><bar:RegValueExists {_HKLM} "
    f'Subkey="SOFTWARE\\{{k}}\\BlockedVersions" Value="{{v}}" Type="REG_BINARY"{_BAR} />'
    '<bar:FileVersionPrependRegSz Path="{f}" Comparison="GreaterThan" Version="0.0.0.0" '
    f'{_HKLM} Subkey="SOFTWARE\\{{k}}" Value="InstallLocation"{_BAR} /></lar:And></lar:Not>'
    '<lar:Not><bar:LicenseDword Value="CE163B38-1AEC-47AF-854D-FC90ABD6951C" '
    f'Comparison="EqualTo" Data="1"{_BAR} /></lar:Not>'
    f'<bar:Processor Architecture="{{a}}"{_BAR} /><lar:Or>'
    '<bar:FileVersionPrependRegSz Path="{f}" Comparison="LessThan" Version="{v}" '
    f'{_HKLM} Subkey="SOFTWARE\\{{k}}" Value="InstallLocation"{_BAR} /><lar:Not><lar:Or>'
)
_INSTALLABLE_TAIL: Final = "</lar:Or></lar:Not></lar:Or></lar:And>"
PAIRS: Final = (8, 20)
"""The range of earlier-version pairs per rule block (about 60 elements on average)."""


_BLOCKS: dict[tuple[str, str], tuple[str, list[int]]] = {}


def _block(pair: str, key: str) -> tuple[str, list[int]]:
    """The most pairs a block holds for `key`, the version's head left as NUL and the pairs
    numbered, with where each pair ends (cached: there are few keys)."""
    found = _BLOCKS.get((pair, key))
    if found is None:
        if len(_BLOCKS) > 1024:
            _BLOCKS.clear()
        pieces = ("<lar:And>" + _PAIRS[pair].format(k=key, v="\0") + "</lar:And>").split("\0")
        text = ""
        ends = [0]
        for number in range(PAIRS[1]):
            text += f"\0.{number}".join(pieces)
            ends.append(len(text))
        found = _BLOCKS[(pair, key)] = (text, ends)
    return found


def update_rules(
    kind: str, key: str, values: Mapping[str, str], arch_code: str, rng: random.Random
) -> str:
    """An `upd:ApplicabilityRules` block for an update of product `kind`: registry key `key`,
    version `values["ver"]`, architecture `arch_code`; its length varies with the seed."""
    pair = _PAIR_OF_KIND.get(kind, "registry")
    version = values["ver"]
    head = version.rpartition(".")[0] or version
    pair_key = values.get("build", "19045") if pair == "windows" else key
    text, ends = _block(pair, pair_key)
    pairs = text[: ends[rng.randint(*PAIRS)]].replace("\0", head)
    fields = {"k": key, "v": version, "f": values.get("file", "setup.exe"), "a": arch_code}
    return (
        "<upd:ApplicabilityRules><upd:IsInstalled>"
        f"{_INSTALLED.format_map(fields)}</upd:IsInstalled><upd:IsInstallable>"
        f"{_INSTALLABLE_HEAD.format_map(fields)}{pairs}{_INSTALLABLE_TAIL}"
        "</upd:IsInstallable></upd:ApplicabilityRules>"
    )
