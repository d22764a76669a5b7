"""The console's hierarchy picture (`updatesync.console.picture.layout`) on the article's
hierarchy (CS1 over PS1 and PS2, SS1 under PS1): every site and SUP gets a box, children sit a
level below their parent, a parent is centred over its children, and each child has one link
from its parent's bottom to its own top."""

from __future__ import annotations

from updatesync.config import Site, Sup
from updatesync.console.picture import (
    BOX_WIDTH,
    COLUMN_GAP,
    HEADER_HEIGHT,
    LEVEL_GAP,
    MARGIN,
    PADDING,
    SUP_GAP,
    SUP_HEIGHT,
    Picture,
    SiteBox,
    box_height,
    layout,
)
from updatesync.console.providers import SiteSnapshot, SupSnapshot
from updatesync.console.states import SiteView, site_views

CS1 = Site("CS1", "cs1site.contoso.com", "cas", sups=(Sup("cs1site.contoso.com"),))
PS1 = Site(
    "PS1",
    "ps1site.contoso.com",
    "primary",
    parent="CS1",
    sups=(Sup("ps1site.contoso.com"), Sup("ps1sys.contoso.com")),
)
PS2 = Site(
    "PS2", "ps2site.contoso.com", "primary", parent="CS1", sups=(Sup("ps2site.contoso.com"),)
)
SS1 = Site(
    "SS1", "ss1site.contoso.com", "secondary", parent="PS1", sups=(Sup("ss1site.contoso.com"),)
)


def views(*sites: Site) -> list[SiteView]:
    snaps = [
        SiteSnapshot(
            site=s,
            url=s.url,
            status=None,
            sups=tuple(
                SupSnapshot(fqdn=u.fqdn, default=i == 0, internet_facing=False, status=None)
                for i, u in enumerate(s.sups)
            ),
            error=None,
        )
        for s in sites
    ]
    return site_views(snaps)


def article() -> Picture:
    return layout(views(CS1, PS1, SS1, PS2))


def boxes(picture: Picture) -> dict[str, SiteBox]:
    return {b.view.code: b for b in picture.sites}


def test_every_site_is_placed_in_the_order_given() -> None:
    assert [b.view.code for b in article().sites] == ["CS1", "PS1", "SS1", "PS2"]


def test_every_sup_gets_a_row_inside_its_site_box() -> None:
    by_code = boxes(article())
    assert {code: len(b.sups) for code, b in by_code.items()} == {
        "CS1": 1,
        "PS1": 2,
        "SS1": 1,
        "PS2": 1,
    }
    for box in by_code.values():
        assert box.height == box_height(len(box.sups))
        for row, sup in enumerate(box.sups):
            assert sup.x == box.x + PADDING
            assert sup.width == BOX_WIDTH - 2 * PADDING
            assert sup.height == SUP_HEIGHT
            assert sup.y == box.y + HEADER_HEIGHT + row * (SUP_HEIGHT + SUP_GAP)
            assert sup.y + sup.height <= box.bottom


def test_box_height_grows_with_each_sup() -> None:
    assert box_height(0) == HEADER_HEIGHT + PADDING
    assert box_height(2) - box_height(1) == SUP_HEIGHT + SUP_GAP


def test_levels_go_top_down_and_a_level_is_as_tall_as_its_tallest_box() -> None:
    by_code = boxes(article())
    assert by_code["CS1"].y == MARGIN
    assert by_code["PS1"].y == by_code["PS2"].y == by_code["CS1"].bottom + LEVEL_GAP
    # PS1 (two SUPs) is taller than PS2: the third level starts below PS1.
    assert by_code["PS1"].height > by_code["PS2"].height
    assert by_code["SS1"].y == by_code["PS1"].bottom + LEVEL_GAP


def test_leaves_take_columns_and_parents_are_centred_over_their_children() -> None:
    by_code = boxes(article())
    step = BOX_WIDTH + COLUMN_GAP
    assert by_code["SS1"].x == MARGIN
    assert by_code["PS2"].x == MARGIN + step
    assert by_code["PS1"].centre == by_code["SS1"].centre
    assert by_code["CS1"].centre == (by_code["PS1"].centre + by_code["PS2"].centre) / 2


def test_each_child_is_linked_from_its_parent_bottom_to_its_top() -> None:
    picture = article()
    by_code = boxes(picture)
    assert [(link.parent, link.child) for link in picture.links] == [
        ("CS1", "PS1"),
        ("PS1", "SS1"),
        ("CS1", "PS2"),
    ]
    for link in picture.links:
        parent, child = by_code[link.parent], by_code[link.child]
        middle = (parent.bottom + child.y) / 2
        assert link.path == (
            f"M{parent.centre:.1f},{parent.bottom:.1f} V{middle:.1f} "
            f"H{child.centre:.1f} V{child.y:.1f}"
        )


def test_the_picture_holds_every_box() -> None:
    picture = article()
    assert picture.width == 2 * MARGIN + 2 * BOX_WIDTH + COLUMN_GAP
    assert all(b.x + b.width <= picture.width - MARGIN for b in picture.sites)
    assert all(b.bottom <= picture.height - MARGIN for b in picture.sites)
    assert picture.height == boxes(picture)["SS1"].bottom + MARGIN


def test_a_site_whose_parent_is_not_shown_is_a_root_without_a_link() -> None:
    picture = layout(views(PS1, SS1))
    by_code = boxes(picture)
    assert by_code["PS1"].y == MARGIN
    assert [(link.parent, link.child) for link in picture.links] == [("PS1", "SS1")]


def test_two_roots_side_by_side() -> None:
    picture = layout(views(CS1, Site("XS1", "x.contoso.com", "cas")))
    by_code = boxes(picture)
    assert by_code["CS1"].y == by_code["XS1"].y == MARGIN
    assert by_code["XS1"].x - by_code["CS1"].x == BOX_WIDTH + COLUMN_GAP
    assert picture.links == ()


def test_an_empty_hierarchy_is_an_empty_picture() -> None:
    picture = layout([])
    assert picture.sites == () and picture.links == ()
    assert picture.width == 2 * MARGIN + BOX_WIDTH
    assert picture.height == 2 * MARGIN
