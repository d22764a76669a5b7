"""Hierarchy files as text for the tests of `updatesync.config`: a small valid file with text
added at chosen places, the shipped example, category GUIDs, and helpers asserting the
problems a file has."""

from __future__ import annotations

from pathlib import Path

import pytest

from updatesync.config import HierarchyError, Problem, parse_hierarchy

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "updatesync" / "examples" / "hierarchy.toml"

SECURITY_UPDATES = "0fa1201d-4330-4fa8-8ae9-b877473b6441"

CRITICAL_UPDATES = "e6cf1350-c01b-414d-a61f-263d14d133b4"

DEFINITION_UPDATES = "e0789628-ce08-4437-be74-2495b842f43b"

WINDOWS_10 = "a3c2375d-0c8a-42f9-bce0-28333e198407"

HEAD = """\
[hierarchy]
name = "Test"
{hierarchy}
[hierarchy.upstream]
kind = "microsoft-update"
{upstream}
"""

CAS = """\
[[sites]]
code = "CS1"
fqdn = "cs1site.contoso.com"
type = "cas"
{cas}
[[sites.sups]]
fqdn = "cs1site.contoso.com"
"""

PS1 = """\
[[sites]]
code = "PS1"
fqdn = "ps1site.contoso.com"
type = "primary"
parent = "CS1"
{ps1}
[[sites.sups]]
fqdn = "ps1site.contoso.com"
"""

SS1 = """
[[sites]]
code = "SS1"
fqdn = "ss1site.contoso.com"
type = "secondary"
parent = "{parent}"
"""


def doc(
    *, hierarchy: str = "", upstream: str = "", cas: str = "", ps1: str = "", extra: str = ""
) -> str:
    """A small valid file (CS1 with one SUP, PS1 under it) with text added at chosen places."""
    return (
        HEAD.format(hierarchy=hierarchy, upstream=upstream)
        + "\n"
        + CAS.format(cas=cas)
        + "\n"
        + PS1.format(ps1=ps1)
        + "\n"
        + extra
    )


def alerts(body: str, *, hierarchy: str = "") -> str:
    """The small valid file with a `[hierarchy.alerts]` table holding `body`."""
    return doc(hierarchy=hierarchy, extra=f"[hierarchy.alerts]\n{body}\n")


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(HierarchyError) as caught:
        parse_hierarchy(text, source="test.toml", base_dir="/srv/updatesync")
    assert caught.value.problems, "a HierarchyError must list its problems"
    return list(caught.value.problems)


def single_problem(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def assert_problem(text: str, path: str, *fragments: str) -> Problem:
    problem = single_problem(text)
    assert problem.path == path, str(problem)
    for fragment in fragments:
        assert fragment in problem.message, str(problem)
    return problem
