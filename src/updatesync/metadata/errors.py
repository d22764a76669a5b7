"""Errors raised while reading update metadata and export cabinets.

Each error says what failed and where (the update, the cabinet member, the byte or record),
so that a user can act on it without a traceback.
"""

from __future__ import annotations


class MetadataError(Exception):
    """Update metadata could not be read. `where` names the document, record or member."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class UnsafeXmlError(MetadataError):
    """An update document uses a construct we refuse: DTD, entities, oversize."""


class MalformedXmlError(MetadataError):
    """An update document is not well-formed or lacks a required part."""


class CabinetError(MetadataError):
    """A cabinet file is corrupt, truncated, or not a cabinet at all."""


class ExportFormatError(MetadataError):
    """A WSUS export (package.xml / metadata.txt) breaks its format."""
