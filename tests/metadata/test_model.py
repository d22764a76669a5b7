"""The update metadata model: a revision's identity, texts and categories."""

from __future__ import annotations

from updatesync.metadata.model import (
    CategoryType,
    LocalizedProperties,
    RevisionKey,
    UpdateRevision,
    UpdateType,
    category_type_map,
)

PRODUCT = "11111111-0000-4000-8000-000000000001"
FAMILY = "11111111-0000-4000-8000-000000000002"
CLASSIFICATION = "11111111-0000-4000-8000-000000000003"
UPDATE = "22222222-0000-4000-8000-000000000001"


def _category(uid: str, kind: CategoryType, parents: tuple[str, ...] = ()) -> UpdateRevision:
    return UpdateRevision(
        uid,
        1,
        UpdateType.CATEGORY,
        "<upd:Update />",
        category_type=kind,
        category_prerequisites=tuple((p,) for p in parents),
    )


def test_a_revision_key_and_its_text() -> None:
    key = RevisionKey(UPDATE, 200)
    assert str(key) == f"{UPDATE} rev 200"
    assert UpdateRevision(UPDATE, 200, UpdateType.SOFTWARE, "").key == key


def test_titles_fall_back_to_the_default_language_then_the_first() -> None:
    texts = (
        LocalizedProperties("de", "Titel", "Beschreibung"),
        LocalizedProperties("fr", "Titre"),
    )
    update = UpdateRevision(
        UPDATE, 200, UpdateType.SOFTWARE, "", default_language="fr", localized=texts
    )
    assert update.title("de") == "Titel" and update.description("de") == "Beschreibung"
    assert update.title("ja") == "Titre" and update.description("ja") is None
    assert update.languages() == ("de", "fr")
    no_default = UpdateRevision(UPDATE, 200, UpdateType.SOFTWARE, "", localized=texts)
    assert no_default.title("ja") == "Titel"
    bare = UpdateRevision(UPDATE, 200, UpdateType.SOFTWARE, "")
    assert (bare.title(), bare.description(), bare.languages()) == ("", None, ())


def test_categories_resolve_products_and_classifications() -> None:
    family = _category(FAMILY, CategoryType.PRODUCT_FAMILY)
    product = _category(PRODUCT, CategoryType.PRODUCT, parents=(FAMILY,))
    classification = _category(CLASSIFICATION, CategoryType.UPDATE_CLASSIFICATION)
    assert product.is_category and product.parent_categories == (FAMILY,)
    types = category_type_map([family, product, classification])
    assert types == {
        FAMILY: CategoryType.PRODUCT_FAMILY,
        PRODUCT: CategoryType.PRODUCT,
        CLASSIFICATION: CategoryType.UPDATE_CLASSIFICATION,
    }
    update = UpdateRevision(
        UPDATE,
        200,
        UpdateType.SOFTWARE,
        "",
        category_prerequisites=((PRODUCT,), (CLASSIFICATION,)),
        prerequisites=((FAMILY, "33333333-0000-4000-8000-000000000009"), (PRODUCT,)),
    )
    assert not update.is_category and update.parent_categories == ()
    assert update.category_ids == (PRODUCT, CLASSIFICATION)
    assert update.products_and_classifications(types) == ((PRODUCT, FAMILY), (CLASSIFICATION,))
