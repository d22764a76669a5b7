"""The rules of the hierarchy file that span tables: unique names, parents, site types and
their SUPs, one top-level site, where the top-level settings are written, and overdue_after
against the schedule."""

from __future__ import annotations

import pytest
from hierarchy_text import (
    PS1,
    SS1,
    alerts,
    assert_problem,
    doc,
    problems_of,
)

from updatesync.config import (
    parse_hierarchy,
)


def test_upstream_is_required() -> None:
    text = doc().replace('[hierarchy.upstream]\nkind = "microsoft-update"\n', "")
    assert_problem(text, "hierarchy.upstream", "missing", 'kind = "microsoft-update"')


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        ('code = "PS1"', 'code = "PS12"', "sites[1].code", "exactly 3 letters or digits"),
        ('code = "PS1"', 'code = "P-1"', "sites[1].code", "exactly 3 letters or digits"),
        ('code = "PS1"', 'code = "CS1"', "sites[1].code", "duplicate site code CS1"),
        ('code = "PS1"', "", "sites[1].code", "missing"),
        ('type = "primary"', 'type = "tertiary"', "sites[1].type", "unknown site type"),
        ('type = "primary"', "", "sites[1].type", "missing"),
        (
            'fqdn = "ps1site.contoso.com"\ntype',
            'fqdn = "ps1 site"\ntype',
            "sites[1].fqdn",
            "not a host",
        ),
        (
            'fqdn = "ps1site.contoso.com"\ntype',
            'fqdn = "cs1site.contoso.com"\ntype',
            "sites[1].fqdn",
            "already used by sites[0].fqdn",
        ),
        ('parent = "CS1"', 'parent = "CS9"', "sites[1].parent", "unknown parent site CS9"),
        ('parent = "CS1"', 'parent = "PS1"', "sites[1].parent", "cannot be its own parent"),
    ],
)
def test_site_rules(old: str, new: str, path: str, fragment: str) -> None:
    text = doc()
    start = text.index("[[sites]]", text.index("[[sites]]") + 1)
    text = text[:start] + text[start:].replace(old, new, 1)
    problems = problems_of(text)
    matching = [p for p in problems if p.path == path and fragment in p.message]
    assert matching, "\n".join(map(str, problems))


def test_own_parent_reported_alone() -> None:
    text = doc().replace('parent = "CS1"', 'parent = "PS1"')
    assert_problem(text, "sites[1].parent", "cannot be its own parent")


def test_cas_has_no_parent() -> None:
    problems = problems_of(doc(cas='parent = "PS1"'))
    assert [(p.path, p.message.split(";")[0]) for p in problems] == [
        ("sites[0].parent", "a central administration site is always the top-level site"),
        ("sites[0].parent", "the parent links form a cycle (CS1 → PS1 → CS1)"),
    ]


def test_primary_parent_must_be_a_cas() -> None:
    extra = PS1.format(ps1="").replace("PS1", "PS2").replace("ps1", "ps2")
    extra = extra.replace('parent = "CS1"', 'parent = "PS1"')
    assert_problem(
        doc(extra=extra),
        "sites[2].parent",
        "primary site's parent must be a central administration site",
        "PS1 is a primary site",
    )


def test_secondary_parent_must_be_a_primary() -> None:
    assert_problem(
        doc(extra=SS1.format(parent="CS1")),
        "sites[2].parent",
        "secondary site's parent must be a primary site",
        "CS1 is a central administration site",
    )


def test_secondary_needs_a_parent() -> None:
    text = doc(extra=SS1.format(parent="PS1").replace('parent = "PS1"\n', ""))
    assert_problem(text, "sites[2].parent", "missing", "secondary site needs parent")


def test_secondary_has_at_most_one_sup() -> None:
    sups = '[[sites.sups]]\nfqdn = "ss1a.contoso.com"\n[[sites.sups]]\nfqdn = "ss1b.contoso.com"\n'
    text = doc(extra=SS1.format(parent="PS1") + sups)
    problem = assert_problem(text, "sites[2].sups[1]", "at most one software update point")
    lines = text.splitlines()
    assert problem.line == lines.index('fqdn = "ss1b.contoso.com"')  # its [[sites.sups]] header


def test_exactly_one_top_level_site() -> None:
    text = doc().replace('parent = "CS1"\n', "")
    assert_problem(text, "sites", "2 top-level sites", "CS1 (cas)", "PS1 (primary)")


def test_no_top_level_site_and_cycle() -> None:
    text = """
[hierarchy]
name = "Loop"
[hierarchy.upstream]
kind = "none"
[[sites]]
code = "PA1"
fqdn = "pa1.contoso.com"
type = "primary"
parent = "PB1"
[[sites]]
code = "PB1"
fqdn = "pb1.contoso.com"
type = "primary"
parent = "PA1"
"""
    problems = problems_of(text)
    messages = {(p.path, p.message.split(";")[0]) for p in problems}
    assert ("sites[0].parent", "the parent links form a cycle (PA1 → PB1 → PA1)") in messages
    assert any(p.path == "sites" and "no top-level site" in p.message for p in problems)
    # each primary also names a primary as its parent
    assert sum("must be a central administration site" in p.message for p in problems) == 2


def test_child_sups_need_a_parent_sup() -> None:
    text = doc().replace('[[sites.sups]]\nfqdn = "cs1site.contoso.com"\n', "")
    assert_problem(text, "sites[1].sups", "CS1 has none", "add a [[sites.sups]] to CS1")


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ('schedule = "1d"', "schedule"),
        ("schedule_start = 2014-01-16T02:00:00", "schedule_start"),
        ('[sites.upstream]\nkind = "none"', "upstream"),
        ('[sites.criteria]\nlanguages = ["en"]', "criteria"),
    ],
)
def test_child_sites_inherit_top_only_settings(setting: str, key: str) -> None:
    assert_problem(
        doc(ps1=setting),
        f"sites[1].{key}",
        f"{key} is set only at the top-level site (CS1) and inherited by PS1",
    )


def test_top_only_setting_in_two_places() -> None:
    assert_problem(
        doc(hierarchy='schedule = "1d"', cas='schedule = "2d"'),
        "sites[0].schedule",
        "also set at hierarchy.schedule",
    )


def test_overdue_after_against_a_cron_schedule() -> None:
    weekdays = 'schedule = "0 2 * * 1-5"'
    problem = assert_problem(
        alerts('overdue_after = "2d"', hierarchy=weekdays),
        "hierarchy.alerts.overdue_after",
        'not longer than the longest time between two scheduled syncs (3d, schedule "0 2 * * 1-5")',
        'such as "4d"',
    )
    assert problem.line is not None
    assert parse_hierarchy(alerts('overdue_after = "3d1m"', hierarchy=weekdays)).alerts


def test_a_bad_schedule_is_reported_alone_not_again_by_overdue_after() -> None:
    assert_problem(
        alerts('overdue_after = "1d"', hierarchy='schedule = "0 25 * * *"'),
        "hierarchy.schedule",
        "bad hour",
    )


def test_a_misplaced_setting_is_reported_once_not_for_what_it_holds() -> None:
    problems = problems_of(doc(ps1='schedule = 7\n[sites.criteria]\nproducts = ["x"]\ncolour = 1'))
    assert [(p.path, p.message.split(" is set only")[0]) for p in problems] == [
        ("sites[1].schedule", "schedule"),
        ("sites[1].criteria", "criteria"),
    ]
