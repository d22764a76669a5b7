"""The typed model of update metadata: one revision of an update, category or detectoid.

A revision is what WSUS stores and the server-to-server protocol moves: an update id, a
revision number, the fields a site needs (titles, KB, severity, product and classification,
relationships, files) and the original XML text, kept byte-for-byte so it can be served on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

MU_EULA_FOLDER: Final = "http://download.windowsupdate.com/msdownload/update/v5/eula/"
"""Where Microsoft Update serves the files of license terms, by file name (what a WSUS
shows as such a file's origin)."""


class UpdateType(StrEnum):
    """`/Update/Properties/@UpdateType`."""

    SOFTWARE = "Software"
    DRIVER = "Driver"
    CATEGORY = "Category"
    DETECTOID = "Detectoid"


class CategoryType(StrEnum):
    """`/Update/HandlerSpecificData/CategoryInformation/@CategoryType`."""

    COMPANY = "Company"
    PRODUCT_FAMILY = "ProductFamily"
    PRODUCT = "Product"
    UPDATE_CLASSIFICATION = "UpdateClassification"


class PublicationState(StrEnum):
    """`/Update/Properties/@PublicationState`."""

    PUBLISHED = "Published"
    EXPIRED = "Expired"


@dataclass(frozen=True, slots=True, order=True)
class RevisionKey:
    """The identity of one revision: update id (lower-case GUID) and revision number."""

    update_id: str
    revision: int

    def __str__(self) -> str:
        return f"{self.update_id} rev {self.revision}"


@dataclass(frozen=True, slots=True)
class LocalizedProperties:
    """Title and description in one language (`upd:LocalizedProperties`)."""

    language: str
    title: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateFile:
    """One file of an update (`upd:Files/upd:File`), or one file of its license terms
    (`upd:EulaFiles/upd:EulaFile`, with the `language` it is written in). Digests are
    base64, as in the XML."""

    name: str
    size: int
    sha1: str
    sha256: str | None = None
    modified: str | None = None
    patching_type: str | None = None
    is_encrypted: bool = False
    language: str | None = None


@dataclass(frozen=True, slots=True)
class UpdateRevision:
    """One parsed revision, with the XML it was parsed from.

    `category_prerequisites` holds each `AtLeastOne IsCategory="true"` group of the
    prerequisites: for an update these name its product(s) and classification(s), for a
    category they name its parent. `prerequisites` holds the other prerequisite groups
    (a bare `UpdateIdentity` is a group of one; a plain `AtLeastOne` a group of several).
    """

    update_id: str
    revision: int
    update_type: UpdateType
    xml: str
    category_type: CategoryType | None = None
    default_language: str | None = None
    localized: tuple[LocalizedProperties, ...] = ()
    kb_article: str | None = None
    security_bulletin: str | None = None
    msrc_severity: str | None = None
    creation_date: str | None = None
    publication_state: PublicationState = PublicationState.PUBLISHED
    category_prerequisites: tuple[tuple[str, ...], ...] = ()
    prerequisites: tuple[tuple[str, ...], ...] = ()
    bundled_updates: tuple[RevisionKey, ...] = ()
    superseded_updates: tuple[str, ...] = ()
    files: tuple[UpdateFile, ...] = ()
    eula_id: str | None = None
    eula_files: tuple[UpdateFile, ...] = ()
    """The files of the license terms `eula_id` names, one per language."""
    detectoid_type: str | None = None
    update_languages: tuple[str, ...] = ()
    """The languages the update itself is for (`upd:Properties/upd:Language`, lower case):
    a language pack names its language; empty for a language-neutral update."""

    @property
    def key(self) -> RevisionKey:
        return RevisionKey(self.update_id, self.revision)

    @property
    def is_category(self) -> bool:
        return self.update_type is UpdateType.CATEGORY

    @property
    def category_ids(self) -> tuple[str, ...]:
        """Every update id named by a category prerequisite group, in document order."""
        return tuple(uid for group in self.category_prerequisites for uid in group)

    @property
    def parent_categories(self) -> tuple[str, ...]:
        """For a category: the categories it sits under (its `IsCategory` prerequisites)."""
        return self.category_ids if self.is_category else ()

    def title(self, language: str = "en") -> str:
        """The title in `language`, else the default language, else the first one, else ''."""
        return self._localized(language).title if self.localized else ""

    def description(self, language: str = "en") -> str | None:
        return self._localized(language).description if self.localized else None

    def languages(self) -> tuple[str, ...]:
        """The languages of its localized properties (titles, descriptions)."""
        return tuple(item.language for item in self.localized)

    def _localized(self, language: str) -> LocalizedProperties:
        for wanted in (language, self.default_language):
            for item in self.localized:
                if item.language == wanted:
                    return item
        return self.localized[0]

    def products_and_classifications(
        self, category_types: Mapping[str, CategoryType]
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Resolve the prerequisites against the known categories.

        Returns (product ids, classification ids). Most updates name them in
        `IsCategory="true"` groups, but real ones (hidden Defender leaves) also name them in
        plain groups, so every prerequisite id is looked up. A company or product family
        counts as a product (an update can be filed under a family). Ids not found in
        `category_types` are left out.
        """
        products: list[str] = []
        classifications: list[str] = []
        plain = (uid for group in self.prerequisites for uid in group)
        for uid in (*self.category_ids, *plain):
            kind = category_types.get(uid)
            if kind is None:
                continue
            target = classifications if kind is CategoryType.UPDATE_CLASSIFICATION else products
            if uid not in target:
                target.append(uid)
        return tuple(products), tuple(classifications)


def category_type_map(revisions: Iterable[UpdateRevision]) -> dict[str, CategoryType]:
    """update id -> category type, for the category revisions among `revisions`."""
    return {
        r.update_id: r.category_type
        for r in revisions
        if r.update_type is UpdateType.CATEGORY and r.category_type is not None
    }
