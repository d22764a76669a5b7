"""The `updatesync` command (typer + rich)."""

from updatesync.cli.main import app, main

__all__ = ["app", "main"]
