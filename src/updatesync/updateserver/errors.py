"""Errors of the update server role."""

from __future__ import annotations


class UpdateServerError(Exception):
    """An update server operation failed; the message says what, where and what to do."""


class ImportFailed(UpdateServerError):
    """An import was refused or failed part-way; nothing of it was kept."""
