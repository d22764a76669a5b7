"""Loading a hierarchy file: TOML syntax, unreadable files, unknown keys with their hints,
every problem reported together in file order, and the line each problem names."""

from __future__ import annotations

import pytest
from hierarchy_text import (
    CRITICAL_UPDATES,
    SECURITY_UPDATES,
    SS1,
    WINDOWS_10,
    alerts,
    assert_problem,
    doc,
    problems_of,
    single_problem,
)

from updatesync.config import (
    HierarchyError,
    load_hierarchy,
    parse_hierarchy,
)


def test_toml_syntax_error_gives_the_line() -> None:
    problem = single_problem('[hierarchy]\nname = "x"\nport = \n')
    assert problem.line == 3
    assert problem.path == ""
    assert "not valid TOML" in problem.message


def test_missing_file() -> None:
    with pytest.raises(HierarchyError, match="cannot read the file") as caught:
        load_hierarchy("/nonexistent/hierarchy.toml")
    assert caught.value.source == "/nonexistent/hierarchy.toml"


def test_missing_hierarchy_table_and_sites() -> None:
    problems = problems_of("")
    assert [p.path for p in problems] == ["hierarchy", "sites", "hierarchy.upstream"]


@pytest.mark.parametrize(
    ("text", "path", "hint"),
    [
        ("colour = 1\n" + doc(), "colour", "expected one of: hierarchy, sites"),
        (doc(hierarchy='nmae = "x"'), "hierarchy.nmae", "did you mean 'name'?"),
        (doc(upstream='ulr = "http://a:1"'), "hierarchy.upstream.ulr", "did you mean 'url'?"),
        (doc(extra="[hierarchy.logs]\nmax_sise = 10\n"), "hierarchy.logs.max_sise", "max_size"),
        (
            doc(extra="[hierarchy.criteria]\nproduct = []\n"),
            "hierarchy.criteria.product",
            "products",
        ),
        (doc(cas='parnet = "X"'), "sites[0].parnet", "did you mean 'parent'?"),
        (doc(ps1="retry_interval = 5"), "sites[1].retry_interval", "expected one of"),
        (doc(extra="prot = 8530\n"), "sites[1].sups[0].prot", "did you mean 'port'?"),
    ],
)
def test_unknown_keys(text: str, path: str, hint: str) -> None:
    assert_problem(text, path, "unknown key", hint)


def test_several_problems_are_reported_together() -> None:
    text = doc(
        hierarchy='nmae = "x"\nschedule = "0 25 * * *"',
        extra="port = 0\n" + SS1.format(parent="CS9"),
    ).replace('kind = "microsoft-update"', 'kind = "wsus"')
    with pytest.raises(HierarchyError) as caught:
        parse_hierarchy(text, source="contoso.toml")
    error = caught.value
    paths = [p.path for p in error.problems]
    assert paths == [
        "hierarchy.nmae",
        "hierarchy.schedule",
        "hierarchy.upstream.url",
        "sites[1].sups[0].port",
        "sites[2].parent",
    ]
    lines = text.splitlines()
    assert error.problems[0].line == lines.index('nmae = "x"') + 1
    assert error.problems[1].line == lines.index('schedule = "0 25 * * *"') + 1
    assert error.problems[2].line == lines.index("[hierarchy.upstream]") + 1
    assert error.problems[3].line == lines.index("port = 0") + 1
    assert error.problems[4].line == lines.index('parent = "CS9"') + 1
    text_of_error = str(error)
    assert text_of_error.startswith("contoso.toml: 5 problems in the hierarchy file:")
    assert f"line {error.problems[3].line}, sites[1].sups[0].port: must be an integer" in (
        text_of_error
    )


def test_lines_of_inline_tables_fall_back_to_the_enclosing_key() -> None:
    text = doc(ps1='sups = [{ fqdn = "ps1sys.contoso.com", port = 0 }]').replace(
        '[[sites.sups]]\nfqdn = "ps1site.contoso.com"\n', ""
    )
    problem = assert_problem(text, "sites[1].sups[0].port", "from 1 to 65535")
    assert (
        problem.line
        == text.splitlines().index('sups = [{ fqdn = "ps1sys.contoso.com", port = 0 }]') + 1
    )


def test_lines_of_items_in_a_multi_line_array() -> None:
    criteria = f"""
[hierarchy.criteria]
products = [ # "#" in a comment, and in a string below
    "{WINDOWS_10}",
]
classifications = [
    "{SECURITY_UPDATES}", "{CRITICAL_UPDATES}",  # two on one line
    "not#a-guid",
]
languages = ["en", "en"]
"""
    text = doc(extra=criteria)
    lines = text.splitlines()
    problems = problems_of(text)
    assert [(p.path, p.line) for p in problems] == [
        ("hierarchy.criteria.classifications[2]", lines.index('    "not#a-guid",') + 1),
        ("hierarchy.criteria.languages[1]", lines.index('languages = ["en", "en"]') + 1),
    ]


def test_alert_problems_give_their_lines() -> None:
    text = alerts(
        'overdue_after = "1h"\n'
        "[[hierarchy.alerts.webhooks]]\n"
        'url = "http://ok.contoso.com/hook"\n'
        "unsigned = true\n"
        "[[hierarchy.alerts.webhooks]]\n"
        'url = "mailto:admin@contoso.com"\n'
        'secret_file = "k"\n'
    )
    lines = text.splitlines()
    assert [(p.path, p.line) for p in problems_of(text)] == [
        ("hierarchy.alerts.overdue_after", lines.index('overdue_after = "1h"') + 1),
        ("hierarchy.alerts.webhooks[1].url", lines.index('url = "mailto:admin@contoso.com"') + 1),
    ]
