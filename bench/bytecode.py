"""Compiling updatesync's modules before a bench times a command.

pip compiles an installed package's modules once, at install. A checkout run where
PYTHONDONTWRITEBYTECODE is set (container images and CI runners often set it) never keeps
them, so every command a bench starts compiled updatesync's sources again: about a fifth of
a second a command when measured, which no administrator's command pays. Each bench calls
`compile_updatesync()` first; it writes what is missing or stale (`compileall` writes
whatever that variable says) and is quick when all is there.
"""

from __future__ import annotations

import compileall
from pathlib import Path

import updatesync


def compile_updatesync(package: Path | None = None) -> None:
    """Compile the modules of the updatesync package at `package` (default: the one this
    interpreter imports) to bytecode beside them."""
    folder = package if package is not None else Path(updatesync.__file__).parent
    if not compileall.compile_dir(folder, quiet=1):
        raise SystemExit(f"could not compile the modules under {folder}")
