"""The hierarchy as a picture: where each site's box, its SUPs and the parent links go.

A tidy tree, top-down: each leaf site takes the next column, a parent sits centred over its
children; a level is as tall as its tallest box. A site's box holds its code, type, content
version and state, and one row per SUP beneath (the default SUP first). The template
(`_hierarchy.html`) draws what `layout` computes; the colours come from the states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from updatesync.console.states import SiteView

BOX_WIDTH = 250
HEADER_HEIGHT = 78
SUP_HEIGHT = 34
SUP_GAP = 6
PADDING = 10
COLUMN_GAP = 36
LEVEL_GAP = 56
MARGIN = 16


@dataclass(frozen=True)
class SupBox:
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class SiteBox:
    view: SiteView
    x: float
    y: float
    width: float
    height: float
    sups: tuple[SupBox, ...]

    @property
    def centre(self) -> float:
        return self.x + self.width / 2

    @property
    def bottom(self) -> float:
        return self.y + self.height


@dataclass(frozen=True)
class Link:
    """A parent link: a path from the parent's bottom to the child's top."""

    parent: str
    child: str
    path: str


@dataclass(frozen=True)
class Picture:
    width: float
    height: float
    sites: tuple[SiteBox, ...]
    links: tuple[Link, ...]


def box_height(sups: int) -> float:
    return HEADER_HEIGHT + sups * (SUP_HEIGHT + SUP_GAP) + PADDING


def layout(views: Sequence[SiteView]) -> Picture:
    """Boxes and links for the sites of `views` (top-down, as `Hierarchy.walk` gives them)."""
    by_code = {v.code: v for v in views}
    children: dict[str, list[str]] = {v.code: [] for v in views}
    roots: list[str] = []
    for v in views:
        parent = v.snapshot.site.parent
        if parent in by_code:
            children[parent].append(v.code)
        else:
            roots.append(v.code)

    depth: dict[str, int] = {}
    column: dict[str, float] = {}
    next_leaf = 0

    def place(code: str, level: int) -> None:
        nonlocal next_leaf
        depth[code] = level
        for child in children[code]:
            place(child, level + 1)
        if children[code]:
            kids = [column[c] for c in children[code]]
            column[code] = (min(kids) + max(kids)) / 2
        else:
            column[code] = next_leaf
            next_leaf += 1

    for root in roots:
        place(root, 0)

    levels = max(depth.values(), default=-1) + 1
    level_height = [0.0] * levels
    for code, level in depth.items():
        level_height[level] = max(level_height[level], box_height(len(by_code[code].sups)))
    level_top = []
    y = float(MARGIN)
    for height in level_height:
        level_top.append(y)
        y += height + LEVEL_GAP

    boxes: dict[str, SiteBox] = {}
    for v in views:
        x = MARGIN + column[v.code] * (BOX_WIDTH + COLUMN_GAP)
        top = level_top[depth[v.code]]
        sups = tuple(
            SupBox(
                x + PADDING,
                top + HEADER_HEIGHT + i * (SUP_HEIGHT + SUP_GAP),
                BOX_WIDTH - 2 * PADDING,
                SUP_HEIGHT,
            )
            for i in range(len(v.sups))
        )
        boxes[v.code] = SiteBox(v, x, top, BOX_WIDTH, box_height(len(v.sups)), sups)

    links = []
    for v in views:
        parent = v.snapshot.site.parent
        if parent not in boxes:
            continue
        p, c = boxes[parent], boxes[v.code]
        middle = (p.bottom + c.y) / 2
        links.append(
            Link(
                parent,
                v.code,
                f"M{p.centre:.1f},{p.bottom:.1f} V{middle:.1f} H{c.centre:.1f} V{c.y:.1f}",
            )
        )
    width = MARGIN * 2 + max(next_leaf, 1) * BOX_WIDTH + max(next_leaf - 1, 0) * COLUMN_GAP
    height = y - LEVEL_GAP + MARGIN if levels else 2 * MARGIN
    return Picture(width, height, tuple(boxes[v.code] for v in views), tuple(links))
