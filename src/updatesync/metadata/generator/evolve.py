"""`evolve_catalog`: one catalog turned into "next month's" (new updates, new revisions,
expirations), in one pass over its input."""

from __future__ import annotations

import random
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Final

from updatesync.metadata.export import ExportRecord
from updatesync.metadata.generator.categories import Palette, attribute, learn_category
from updatesync.metadata.generator.markup import esc
from updatesync.metadata.generator.tables import BASE_DATE, EVOLVE_SPAN
from updatesync.metadata.generator.updates import UpdateFactory

_REVISION_RE: Final = re.compile(
    r'(<(?:\w+:)?UpdateIdentity\b[^>]*?\bRevisionNumber\s*=\s*")(\d+)(")'
)
_STATE_RE: Final = re.compile(r'(\bPublicationState\s*=\s*")(\w+)(")')
_PROPERTIES_RE: Final = re.compile(r"<(?:\w+:)?Properties\b")
_CATEGORY_GROUP_RE: Final = re.compile(
    r'<(?:\w+:)?AtLeastOne\s+IsCategory\s*=\s*"true"\s*>(.*?)</(?:\w+:)?AtLeastOne>'
)
_GROUP_ID_RE: Final = re.compile(r'\bUpdateID\s*=\s*"([^"]+)"')
_CREATED_RE: Final = re.compile(r'\bCreationDate\s*=\s*"([^"]*)"')
_KB_RE: Final = re.compile(r"<(?:\w+:)?KBArticleID>\s*(\d+)\s*<")
_EN_TEXT_RE: Final = re.compile(
    r"(<(\w+:)?Language>\s*en\s*</\2Language>\s*<\2Title>)([^<]*)(</\2Title>)"
    r"(?:(\s*<\2Description>)([^<]*)(</\2Description>))?"
)


def _bump(xml: str, above: int = 0) -> tuple[str, int]:
    """`xml` as its next revision: one above its own number and above `above` (the highest
    revision of the update in the catalog, which may be a later one that stays as it is)."""
    match = _REVISION_RE.search(xml)
    if match is None:
        raise ValueError("an update record without a RevisionNumber cannot be revised")
    revision = max(int(match.group(2)), above) + 1
    return f"{xml[: match.start(2)]}{revision}{xml[match.end(2) :]}", revision


def _revise(record: ExportRecord, rng: random.Random, when: str, above: int = 0) -> ExportRecord:
    """A new revision of `record` with its English title or description changed."""
    xml, revision = _bump(record.xml, above)
    match = _EN_TEXT_RE.search(xml)
    if match is not None:
        if match.group(6) is not None and rng.random() < 0.5:
            note = esc(f" Revised {when}: updated the known-issues section.")
            xml = f"{xml[: match.end(6)]}{note}{xml[match.end(6) :]}"
        else:
            note = esc(f" (revised {when})")
            xml = f"{xml[: match.end(3)]}{note}{xml[match.end(3) :]}"
    return ExportRecord(record.update_id, revision, xml)


def _expire(record: ExportRecord, above: int = 0) -> ExportRecord:
    """A new revision of `record` with PublicationState="Expired"."""
    xml, revision = _bump(record.xml, above)
    props = _PROPERTIES_RE.search(xml)
    state = _STATE_RE.search(xml, props.end() if props else 0)
    if state is not None:
        xml = f"{xml[: state.start(2)]}Expired{xml[state.end(2) :]}"
    elif props is not None:
        xml = f'{xml[: props.end()]} PublicationState="Expired"{xml[props.end() :]}'
    return ExportRecord(record.update_id, revision, xml)


def evolve_catalog(
    records: Iterable[ExportRecord], changes: int, seed: int
) -> Iterator[ExportRecord]:
    """Stream "next month's" catalog: every record of `records`, with `changes` changes.

    The changes are spread over new updates (filed under the products and classifications
    found among the category records, some superseding recent updates of the same product),
    new revisions of existing updates (RevisionNumber + 1, English title or description
    changed) and expirations (a new revision with PublicationState="Expired"). A changed
    update is emitted only in its new revision. If fewer existing updates are found than
    revisions and expirations asked for, the rest become new updates, so the count stays
    exact.

    One pass over `records`: the candidates for a new revision are reservoir-sampled and
    held back (memory grows with `changes`, not with the catalog); a record pushed out of
    the reservoir is emitted then, unchanged, so the output order differs slightly from the
    input order. Category and detectoid records keep their place. New updates and changed
    revisions come last. The output depends only on the arguments (and the input order).
    """
    if changes < 0:
        raise ValueError(f"changes must be >= 0, not {changes}")
    return _evolve(records, changes, seed)


def _evolve(records: Iterable[ExportRecord], changes: int, seed: int) -> Iterator[ExportRecord]:
    rng = random.Random(seed)
    kinds = Counter(rng.choices(("new", "revise", "expire"), (5, 3, 2), k=changes))
    wanted = kinds["revise"] + kinds["expire"]

    palette = Palette()
    recent: dict[str, deque[str]] = {}
    reservoir: list[ExportRecord] = []
    index: dict[str, int] = {}  # update id -> position in reservoir
    seen = 0
    latest = BASE_DATE
    max_kb = 5_005_000

    highest: dict[str, int] = {}  # update id -> its highest revision in the catalog
    for record in records:
        update_type = learn_category(record, palette)
        if update_type not in ("Software", "Driver"):
            yield record
            continue
        key = record.update_id.lower()
        highest[key] = max(highest.get(key, 0), record.revision)
        xml = record.xml
        created = attribute(xml, "CreationDate", _CREATED_RE)
        if created is not None:
            try:
                moment = datetime.fromisoformat(created[:19]).replace(tzinfo=UTC)
            except ValueError:
                moment = latest
            latest = max(latest, moment)
        if "KBArticleID>" in xml:
            for kb in _KB_RE.findall(xml):
                max_kb = max(max_kb, int(kb))
        groups = _CATEGORY_GROUP_RE.findall(xml) if "IsCategory" in xml else []
        if not groups or 'PublicationState="Expired"' in xml:
            yield record  # leaves (no category groups) and expired ones stay as they are
            continue
        uid = record.update_id.lower()
        for group in groups:
            for product in _GROUP_ID_RE.findall(group):
                recent.setdefault(product.lower(), deque(maxlen=3)).append(uid)
        if wanted == 0:
            yield record
            continue
        held = index.get(uid)
        if held is not None:  # another revision of an id already held: keep the later one
            older = reservoir[held]
            if record.revision >= older.revision:
                reservoir[held] = record
                yield older
            else:
                yield record
            continue
        seen += 1
        if len(reservoir) < wanted:
            index[uid] = len(reservoir)
            reservoir.append(record)
            continue
        slot = rng.randrange(seen)
        if slot < wanted:
            evicted = reservoir[slot]
            del index[evicted.update_id.lower()]
            reservoir[slot] = record
            index[uid] = slot
            yield evicted
        else:
            yield record

    rng.shuffle(reservoir)
    revise = min(kinds["revise"], len(reservoir))
    expire = min(kinds["expire"], len(reservoir) - revise)
    new = changes - revise - expire
    when = f"{latest + timedelta(days=1):%Y-%m-%d}"
    for record in reservoir[:revise]:
        yield _revise(record, rng, when, highest[record.update_id.lower()])
    for record in reservoir[revise : revise + expire]:
        yield _expire(record, highest[record.update_id.lower()])
    for record in reservoir[revise + expire :]:
        yield record  # held but not needed (only when the reservoir outgrew the changes)
    if new:
        palette.check()
        start = (latest + timedelta(days=1)).replace(hour=0, minute=0, second=0)
        # The new updates draw from a generator of their own: drawn from `rng`, whose
        # words began as `generate_catalog`'s with the same seed, they could repeat the
        # ids of updates the catalog holds (generate and evolve with seed 1 did).
        fresh = random.Random(f"updatesync-evolve-new:{seed}:{rng.getrandbits(64)}")
        factory = UpdateFactory(fresh, palette, start, EVOLVE_SPAN, max_kb, recent)
        for made in factory.stream(new, bundles=False):
            if made.update_id.lower() in highest:  # a repeat all the same: never written
                raise ValueError(f"evolve drew the id of a held update, {made.update_id}")
            yield made
