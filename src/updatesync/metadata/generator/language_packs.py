"""Language-specific updates of a generated catalog: language packs.

A language pack is an update for one language: its `upd:Properties` name that language in
`upd:Language` (an update without one is language-neutral), and it is localized in English
and in its own language. A downstream server that subscribes to languages gets only the
packs of its languages ([MS-WSUSSS] 3.1.4.5.3.4); the rest of a catalog is language-neutral.

`language_packs` draws from a random generator of its own (seeded from the catalog's seed),
so asking for packs leaves every other record of a catalog unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Final

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator.categories import Palette
from updatesync.metadata.generator.markup import b64, guid, identity, localized, root, stamp
from updatesync.metadata.generator.tables import BASE_DATE, CLS, MS_UPDATE_PUBLISHER

__all__ = ["PACK_LANGUAGES", "language_packs"]

PACK_LANGUAGES: Final = (
    ("de", "German", "Sprachpaket"),
    ("fr", "French", "Module linguistique"),
    ("ja", "Japanese", "言語パック"),
    ("zh-cn", "Chinese (Simplified)", "语言包"),
    ("ar", "Arabic", "حزمة اللغة"),
)
"""(short name, English name, "language pack" in that language), in the order packs come."""
_CLASSIFICATIONS: Final = (CLS["Security Updates"], CLS["Critical Updates"])


def language_packs(count: int, seed: int, palette: Palette) -> Iterator[ExportRecord]:
    """`count` language packs filed under `palette`'s products, the languages in turn."""
    rng = random.Random(f"language-packs-{seed}")
    moment = BASE_DATE
    for number in range(count):
        short, english, word = PACK_LANGUAGES[number % len(PACK_LANGUAGES)]
        product_id, product, _kind = palette.products[rng.randrange(len(palette.products))]
        classification = _CLASSIFICATIONS[number % len(_CLASSIFICATIONS)]
        moment += timedelta(seconds=rng.randint(3_600, 86_400 * 7))
        uid = guid(rng)
        kb = 5_900_000 + number
        titles = {
            "en": f"{product} {english} Language Pack (KB{kb})",
            short: f"{product} {word} (KB{kb})",
        }
        descriptions = {
            "en": f"Install this language pack to use {product} in {english}.",
            short: f"{product}: {word} {short}.",
        }
        digest = b64(rng.randbytes(20))
        size = rng.randint(2_000_000, 90_000_000)
        xml = "".join(
            (
                root(["pub"]),
                identity(uid, 200),
                '<upd:Properties UpdateType="Software" DefaultPropertiesLanguage="en" '
                f'PublicationState="Published" CreationDate="{stamp(moment, rng.randrange(1000))}" '
                f'PublisherID="{MS_UPDATE_PUBLISHER}">',
                f"<upd:KBArticleID>{kb}</upd:KBArticleID>",
                f"<upd:Language>{short}</upd:Language>",
                "</upd:Properties>",
                localized(titles, descriptions),
                "<upd:Relationships><upd:Prerequisites>",
                f'<upd:AtLeastOne IsCategory="true">{identity(product_id)}</upd:AtLeastOne>',
                f'<upd:AtLeastOne IsCategory="true">{identity(classification)}</upd:AtLeastOne>',
                "</upd:Prerequisites></upd:Relationships>",
                f'<upd:Files><upd:File Digest="{digest}" FileName="lp-{short}-kb{kb}.cab" '
                f'Size="{size}" Modified="{stamp(moment, 0)}" /></upd:Files>',
                "</upd:Update>",
            )
        )
        yield ExportRecord(uid, 200, xml)
