"""The hierarchy file: the shipped example, every validation rule (each problem naming its key
path), several problems reported together, the API over a loaded hierarchy, and schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from updatesync.config import (
    DEFAULT_SCHEDULE,
    MICROSOFT_UPDATE_URL,
    CronSchedule,
    Hierarchy,
    HierarchyError,
    IntervalSchedule,
    Problem,
    load_hierarchy,
    parse_duration,
    parse_hierarchy,
    parse_schedule,
    parse_size,
)
from updatesync.logs.rollover import DEFAULT_MAX_BYTES

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


@pytest.fixture(scope="module")
def example() -> Hierarchy:
    return load_hierarchy(EXAMPLE)


# --------------------------------------------------------------------------- the example


def test_example_structure(example: Hierarchy) -> None:
    assert example.name == "Contoso"
    assert example.source == str(EXAMPLE)
    assert example.data_dir == EXAMPLE.parent / "data"
    assert [s.code for s in example.sites] == ["CS1", "PS1", "PS2", "SS1"]
    assert example.top.code == "CS1"
    assert example.top.type == "cas"
    assert example.site("ps1").type == "primary"
    assert example.site("SS1").type == "secondary"
    assert [s.code for s in example.children("CS1")] == ["PS1", "PS2"]
    assert [s.code for s in example.children("PS1")] == ["SS1"]
    assert example.children("SS1") == ()
    assert example.parent("CS1") is None
    assert example.parent("SS1") == example.site("PS1")
    assert [s.code for s in example.walk()] == ["CS1", "PS1", "PS2", "SS1"]
    assert [sup.fqdn for sup in example.site("PS1").sups] == [
        "ps1site.contoso.com",
        "ps1sys.contoso.com",
    ]
    default = example.default_sup("PS1")
    assert default is not None and default.fqdn == "ps1site.contoso.com"
    assert [sup.fqdn for sup in example.replicas("PS1")] == ["ps1sys.contoso.com"]
    assert example.replicas("CS1") == ()
    assert all(sup.port == 8530 and not sup.https for s in example.sites for sup in s.sups)
    assert len(example.site("SS1").sups) == 1


def test_example_settings(example: Hierarchy) -> None:
    assert example.upstream.kind == "microsoft-update"
    assert example.upstream.url == MICROSOFT_UPDATE_URL
    assert set(example.criteria.classifications) == {
        SECURITY_UPDATES,
        CRITICAL_UPDATES,
        DEFINITION_UPDATES,
    }
    assert WINDOWS_10 in example.criteria.products
    assert example.criteria.languages == ("en",)
    assert isinstance(example.schedule, IntervalSchedule)
    assert example.schedule.interval == timedelta(days=1)
    assert example.schedule.next_run(datetime(2014, 1, 16, 18, 53)) == datetime(2014, 1, 17, 2)
    assert example.retry_interval == timedelta(minutes=60)
    assert example.logs.max_bytes == 5 * 1024 * 1024
    assert example.logs.tz_bias == "local"


def test_example_folders(example: Hierarchy) -> None:
    data = EXAMPLE.parent / "data"
    assert example.log_dir("cs1") == data / "CS1" / "logs"
    assert example.log_dir("SS1") == data / "SS1" / "logs"
    assert example.update_server_dir("PS1SYS.CONTOSO.COM") == data / "ps1sys.contoso.com"
    with pytest.raises(KeyError, match="no software update point"):
        example.update_server_dir("nowhere.contoso.com")
    with pytest.raises(KeyError, match=r"no site 'XX1'.*CS1, PS1, PS2, SS1"):
        example.site("XX1")


@pytest.mark.parametrize(
    ("site", "sup", "upstream"),
    [
        ("CS1", "cs1site.contoso.com", MICROSOFT_UPDATE_URL),
        ("PS1", "ps1site.contoso.com", "http://cs1site.contoso.com:8530"),
        ("PS1", "ps1sys.contoso.com", "http://ps1site.contoso.com:8530"),
        ("PS2", "ps2site.contoso.com", "http://cs1site.contoso.com:8530"),
        ("SS1", "ss1site.contoso.com", "http://ps1site.contoso.com:8530"),
    ],
)
def test_example_sup_upstream(example: Hierarchy, site: str, sup: str, upstream: str) -> None:
    assert example.sup_upstream(site, sup) == upstream
    # Objects and any case work as well as codes and names.
    found_site, found_sup = example.find_sup(sup.upper())
    assert found_site.code == site
    assert example.sup_upstream(found_site, found_sup) == upstream


def test_every_example_sup_has_an_upstream(example: Hierarchy) -> None:
    for site in example.walk():
        for sup in site.sups:
            assert example.sup_upstream(site, sup)


def test_sup_upstream_of_a_sup_elsewhere_is_refused(example: Hierarchy) -> None:
    with pytest.raises(KeyError, match="site PS2 has no software update point"):
        example.sup_upstream("PS2", "ps1sys.contoso.com")


# --------------------------------------------------------------------------- valid variants


def test_minimal_file_defaults() -> None:
    hierarchy = parse_hierarchy(doc(), base_dir="/srv/updatesync")
    assert hierarchy.data_dir == Path("/srv/updatesync/data")
    assert hierarchy.schedule == DEFAULT_SCHEDULE
    assert hierarchy.retry_interval == timedelta(minutes=60)
    assert hierarchy.logs.max_bytes == DEFAULT_MAX_BYTES
    assert hierarchy.criteria.products == ()
    assert hierarchy.source == "<string>"


def test_https_sup_defaults_to_8531_and_urls_use_it() -> None:
    text = doc(
        extra='[[sites.sups]]\nfqdn = "ps1sys.contoso.com"\nhttps = true\ninternet_facing = true\n'
    )
    hierarchy = parse_hierarchy(text)
    replica = hierarchy.replicas("PS1")[0]
    assert (replica.port, replica.https, replica.internet_facing) == (8531, True, True)
    assert replica.url == "https://ps1sys.contoso.com:8531"
    text = doc(extra='[[sites.sups]]\nfqdn = "ps1sys.contoso.com"\nhttps = true\nport = 443\n')
    assert parse_hierarchy(text).replicas("PS1")[0].url == "https://ps1sys.contoso.com:443"


def test_names_are_normalised() -> None:
    text = doc().replace('code = "PS1"', 'code = "ps1"').replace('parent = "CS1"', 'parent = "cs1"')
    text = text.replace('fqdn = "cs1site.contoso.com"\n', 'fqdn = "CS1Site.Contoso.COM"\n', 1)
    hierarchy = parse_hierarchy(text)
    assert hierarchy.site("PS1").parent == "CS1"
    assert hierarchy.top.fqdn == "cs1site.contoso.com"


def test_data_dir_relative_and_absolute(tmp_path: Path) -> None:
    relative = parse_hierarchy(doc(hierarchy='data_dir = "state/x"'), base_dir=tmp_path)
    assert relative.data_dir == tmp_path / "state" / "x"
    absolute = parse_hierarchy(doc(hierarchy=f'data_dir = "{tmp_path}"'), base_dir="/elsewhere")
    assert absolute.data_dir == tmp_path
    file = tmp_path / "sub" / "h.toml"
    file.parent.mkdir()
    file.write_text(doc(hierarchy='data_dir = "d"'), encoding="utf-8")
    assert load_hierarchy(file).data_dir == file.parent / "d"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("retry_interval = 15", timedelta(minutes=15)), ('retry_interval = "2h"', timedelta(hours=2))],
)
def test_retry_interval_forms(setting: str, expected: timedelta) -> None:
    assert parse_hierarchy(doc(hierarchy=setting)).retry_interval == expected


@pytest.mark.parametrize(
    ("setting", "max_bytes", "bias"),
    [
        ("max_size = 1000\ntz_bias = 480", 1000, 480),
        ('max_size = "5MB"\ntz_bias = -60', 5 * 1024 * 1024, -60),
        ('max_size = "512 KB"\ntz_bias = "local"', 512 * 1024, "local"),
        ('max_size = "1GiB"', 1024**3, "local"),
    ],
)
def test_log_settings(setting: str, max_bytes: int, bias: int | str) -> None:
    hierarchy = parse_hierarchy(doc(extra=f"[hierarchy.logs]\n{setting}\n"))
    assert (hierarchy.logs.max_bytes, hierarchy.logs.tz_bias) == (max_bytes, bias)


def test_upstream_kinds() -> None:
    wsus = parse_hierarchy(
        doc(upstream='url = "http://wsus.corp.example:8530/"').replace(
            'kind = "microsoft-update"', 'kind = "wsus"'
        )
    )
    assert (wsus.upstream.kind, wsus.upstream.url) == ("wsus", "http://wsus.corp.example:8530")
    assert wsus.sup_upstream("CS1", "cs1site.contoso.com") == "http://wsus.corp.example:8530"
    none = parse_hierarchy(doc().replace('kind = "microsoft-update"', 'kind = "none"'))
    assert none.upstream.url is None
    assert none.sup_upstream("CS1", "cs1site.contoso.com") is None
    assert none.sup_upstream("PS1", "ps1site.contoso.com") == "http://cs1site.contoso.com:8530"
    own = parse_hierarchy(doc(upstream='url = "https://mu.test:9443"'))
    assert own.upstream.url == "https://mu.test:9443"


def test_criteria_are_normalised() -> None:
    criteria = f"""
[hierarchy.criteria]
products = ["{{{WINDOWS_10.upper()}}}"]
classifications = ["{SECURITY_UPDATES.upper()}"]
languages = ["EN", "zh-CN"]
"""
    hierarchy = parse_hierarchy(doc(extra=criteria))
    assert hierarchy.criteria.products == (WINDOWS_10,)
    assert hierarchy.criteria.classifications == (SECURITY_UPDATES,)
    assert hierarchy.criteria.languages == ("en", "zh-cn")


def test_top_only_settings_may_sit_on_the_top_level_site() -> None:
    # [sites.upstream] right after CS1's keys belongs to CS1, the top-level site.
    text = doc(cas='schedule = "0 3 * * *"\n[sites.upstream]\nkind = "none"\n')
    text = text.replace('[hierarchy.upstream]\nkind = "microsoft-update"\n', "")
    hierarchy = parse_hierarchy(text)
    assert hierarchy.schedule == CronSchedule("0 3 * * *")
    assert hierarchy.upstream.kind == "none"


def test_standalone_primary_with_a_secondary() -> None:
    text = """
[hierarchy]
name = "Standalone"
schedule = "7h"
[hierarchy.upstream]
kind = "microsoft-update"

[[sites]]
code = "PR1"
fqdn = "pr1.contoso.com"
type = "primary"
[[sites.sups]]
fqdn = "pr1.contoso.com"
[[sites.sups]]
fqdn = "pr1-dmz.contoso.com"
internet_facing = true

[[sites]]
code = "SE1"
fqdn = "se1.contoso.com"
type = "secondary"
parent = "PR1"
"""
    hierarchy = parse_hierarchy(text)
    assert hierarchy.top.code == "PR1"
    assert hierarchy.default_sup("SE1") is None
    assert hierarchy.sup_upstream("PR1", "pr1-dmz.contoso.com") == "http://pr1.contoso.com:8530"
    assert [s.code for s in hierarchy.walk()] == ["PR1", "SE1"]


# --------------------------------------------------------------------------- validation rules


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


def test_missing_name() -> None:
    assert_problem(doc().replace('name = "Test"\n', ""), "hierarchy.name", "missing")


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


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("retry_interval = 0", "positive"),
        ('retry_interval = "soon"', "not an interval"),
        ('retry_interval = "0m"', "longer than zero"),
        ("retry_interval = 1.5", "must be minutes"),
    ],
)
def test_retry_interval_rules(setting: str, fragment: str) -> None:
    assert_problem(doc(hierarchy=setting), "hierarchy.retry_interval", fragment)


@pytest.mark.parametrize(
    ("setting", "path", "fragment"),
    [
        ('max_size = "5XB"', "hierarchy.logs.max_size", "not a size"),
        ("max_size = 0", "hierarchy.logs.max_size", "more than 0"),
        ("max_size = true", "hierarchy.logs.max_size", "integer (bytes)"),
        ("tz_bias = 900", "hierarchy.logs.tz_bias", "from -840 to 720"),
        ('tz_bias = "UTC"', "hierarchy.logs.tz_bias", '"local"'),
        ("tz_bias = 1.5", "hierarchy.logs.tz_bias", '"local"'),
    ],
)
def test_log_rules(setting: str, path: str, fragment: str) -> None:
    assert_problem(doc(extra=f"[hierarchy.logs]\n{setting}\n"), path, fragment)


def test_logs_must_be_a_table() -> None:
    assert_problem(doc(hierarchy='logs = "big"'), "hierarchy.logs", "must be a table")


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ('schedule = "61 * * * *"', "bad minute"),
        ('schedule = "0 2 * * 8"', "bad day-of-week"),
        ('schedule = "0 0 30 2 *"', "bad day-of-month"),
        ('schedule = "0 0 2 * * *"', "has 6 field(s)"),
        ('schedule = "* * *"', "has 3 field(s)"),
        ('schedule = "daily"', "neither an interval"),
        ('schedule = "1w"', "neither an interval"),
        ('schedule = ""', "empty"),
        ("schedule = 7", "must be a string"),
    ],
)
def test_schedule_rules(setting: str, fragment: str) -> None:
    assert_problem(doc(hierarchy=setting), "hierarchy.schedule", fragment)


def test_schedule_start_rules() -> None:
    assert_problem(
        doc(hierarchy='schedule = "0 2 * * *"\nschedule_start = 2014-01-16T02:00:00'),
        "hierarchy.schedule",
        "schedule_start applies only to an interval",
    )
    assert_problem(
        doc(hierarchy='schedule_start = "tomorrow"'),
        "hierarchy.schedule_start",
        "TOML date-time",
    )


@pytest.mark.parametrize(
    ("upstream", "path", "fragment"),
    [
        ('kind = "windows-update"', "hierarchy.upstream.kind", "unknown upstream kind"),
        ('kind = "wsus"', "hierarchy.upstream.url", 'kind = "wsus" needs'),
        ('kind = "none"\nurl = "http://x:1"', "hierarchy.upstream.url", "remove url"),
        ('kind = "microsoft-update"\nurl = "ftp://x"', "hierarchy.upstream.url", "http(s) URL"),
        ('kind = "wsus"\nurl = "wsus.contoso.com"', "hierarchy.upstream.url", "http(s) URL"),
        ('kind = "wsus"\nurl = "http://x:1/?a=b"', "hierarchy.upstream.url", "query"),
        ('kind = "wsus"\nurl = 8530', "hierarchy.upstream.url", "must be a string"),
        ("kind = 1", "hierarchy.upstream.kind", "must be a string"),
        ('url = "http://x:1"', "hierarchy.upstream.kind", "missing"),
    ],
)
def test_upstream_rules(upstream: str, path: str, fragment: str) -> None:
    text = doc().replace('kind = "microsoft-update"\n', upstream + "\n")
    assert_problem(text, path, fragment)


def test_upstream_is_required() -> None:
    text = doc().replace('[hierarchy.upstream]\nkind = "microsoft-update"\n', "")
    assert_problem(text, "hierarchy.upstream", "missing", 'kind = "microsoft-update"')


@pytest.mark.parametrize(
    ("criteria", "path", "fragment"),
    [
        ('products = ["windows 10"]', "hierarchy.criteria.products[0]", "not a GUID"),
        (
            f'products = ["{WINDOWS_10}"]\nclassifications = ["{SECURITY_UPDATES}", "x"]',
            "hierarchy.criteria.classifications[1]",
            "not a GUID",
        ),
        (
            f'products = ["{WINDOWS_10}", "{WINDOWS_10.upper()}"]\n'
            f'classifications = ["{SECURITY_UPDATES}"]',
            "hierarchy.criteria.products[1]",
            "listed twice",
        ),
        (f'products = ["{WINDOWS_10}"]', "hierarchy.criteria.classifications", "no update"),
        (f'classifications = ["{CRITICAL_UPDATES}"]', "hierarchy.criteria.products", "no update"),
        ('languages = ["english"]', "hierarchy.criteria.languages[0]", "not a language code"),
        ('languages = ["en", "EN"]', "hierarchy.criteria.languages[1]", "listed twice"),
        ('languages = "en"', "hierarchy.criteria.languages", "array of strings"),
        ("languages = [1]", "hierarchy.criteria.languages[0]", "must be a string"),
    ],
)
def test_criteria_rules(criteria: str, path: str, fragment: str) -> None:
    assert_problem(doc(extra=f"[hierarchy.criteria]\n{criteria}\n"), path, fragment)


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


SS1 = """
[[sites]]
code = "SS1"
fqdn = "ss1site.contoso.com"
type = "secondary"
parent = "{parent}"
"""


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


def test_sites_must_be_an_array_of_tables() -> None:
    assert_problem('sites = ["CS1"]\n' + HEAD.format(hierarchy="", upstream=""), "sites", "array")
    assert_problem("sites = []\n" + HEAD.format(hierarchy="", upstream=""), "sites", "no sites")


@pytest.mark.parametrize(
    ("sup", "path", "fragment"),
    [
        ("port = 70000", "sites[1].sups[0].port", "from 1 to 65535"),
        ("port = 0", "sites[1].sups[0].port", "from 1 to 65535"),
        ('port = "8530"', "sites[1].sups[0].port", "from 1 to 65535"),
        ("port = true", "sites[1].sups[0].port", "from 1 to 65535"),
        ('https = "yes"', "sites[1].sups[0].https", "true or false"),
        ("internet_facing = 1", "sites[1].sups[0].internet_facing", "true or false"),
    ],
)
def test_sup_rules(sup: str, path: str, fragment: str) -> None:
    assert_problem(doc(extra=sup + "\n"), path, fragment)


def test_sup_fqdn_rules() -> None:
    assert_problem(
        doc(extra='[[sites.sups]]\nfqdn = "CS1SITE.contoso.com"\n'),
        "sites[1].sups[1].fqdn",
        "cs1site.contoso.com is already defined at sites[0].sups[0].fqdn",
    )
    assert_problem(doc(extra="[[sites.sups]]\nport = 1\n"), "sites[1].sups[1].fqdn", "missing")
    assert_problem(
        doc(extra='[[sites.sups]]\nfqdn = "-bad-.contoso.com"\n'),
        "sites[1].sups[1].fqdn",
        "not a host name",
    )
    text = doc(ps1='sups = "x"').replace('[[sites.sups]]\nfqdn = "ps1site.contoso.com"\n', "")
    assert_problem(text, "sites[1].sups", "array of tables")


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


# --------------------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 2 * * *", datetime(2014, 1, 16, 18, 53), datetime(2014, 1, 17, 2, 0)),
        ("0 2 * * *", datetime(2014, 1, 16, 1, 59, 59), datetime(2014, 1, 16, 2, 0)),
        ("0 2 * * *", datetime(2014, 1, 16, 2, 0), datetime(2014, 1, 17, 2, 0)),
        ("*/15 * * * *", datetime(2014, 1, 16, 18, 53), datetime(2014, 1, 16, 19, 0)),
        ("30 4 * * 1-5", datetime(2014, 1, 17, 5, 0), datetime(2014, 1, 20, 4, 30)),  # Fri → Mon
        ("0 0 1 * *", datetime(2014, 1, 16), datetime(2014, 2, 1)),
        ("0 6 * * SUN", datetime(2014, 1, 16), datetime(2014, 1, 19, 6, 0)),
    ],
)
def test_cron_next_run(expression: str, after: datetime, expected: datetime) -> None:
    schedule = parse_schedule(expression)
    assert isinstance(schedule, CronSchedule)
    assert schedule.next_run(after) == expected


def test_cron_next_run_keeps_the_time_zone() -> None:
    tokyo = timezone(timedelta(hours=9))
    after = datetime(2014, 1, 16, 18, 53, tzinfo=tokyo)
    assert CronSchedule("0 2 * * *").next_run(after) == datetime(2014, 1, 17, 2, tzinfo=tokyo)
    utc_after = datetime(2014, 1, 16, 18, 53, tzinfo=UTC)
    assert CronSchedule("0 19 * * *").next_run(utc_after) == datetime(2014, 1, 16, 19, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "after", "expected"),
    [
        ("1d", None, datetime(2014, 1, 16, 18, 53), datetime(2014, 1, 17)),
        ("7h", None, datetime(2000, 1, 1, 7, 0), datetime(2000, 1, 1, 14, 0)),
        ("30m", None, datetime(2014, 1, 16, 18, 53), datetime(2014, 1, 16, 19, 0)),
        ("1h30m", None, datetime(2000, 1, 1, 2, 0), datetime(2000, 1, 1, 3, 0)),
        ("1d", datetime(2014, 1, 16, 2), datetime(2014, 1, 16, 2), datetime(2014, 1, 17, 2)),
        ("7d", datetime(2014, 1, 16, 2), datetime(2014, 1, 20), datetime(2014, 1, 23, 2)),
        ("7d", datetime(2014, 1, 16, 2), datetime(2013, 12, 1), datetime(2014, 1, 16, 2)),
    ],
)
def test_interval_next_run(
    text: str, start: datetime | None, after: datetime, expected: datetime
) -> None:
    schedule = parse_schedule(text, start)
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.next_run(after) == expected
    assert str(schedule) == text


def test_interval_next_run_with_time_zones() -> None:
    tokyo = timezone(timedelta(hours=9))
    naive_start = IntervalSchedule(timedelta(days=1), datetime(2014, 1, 16, 2))
    after = datetime(2014, 1, 16, 18, 53, tzinfo=tokyo)
    assert naive_start.next_run(after) == datetime(2014, 1, 17, 2, tzinfo=tokyo)
    aware_start = IntervalSchedule(timedelta(hours=12), datetime(2014, 1, 16, tzinfo=UTC))
    assert aware_start.next_run(after) == datetime(2014, 1, 16, 12, tzinfo=UTC).astimezone(tokyo)
    with pytest.raises(ValueError, match="pass an aware datetime"):
        aware_start.next_run(datetime(2014, 1, 16))


def test_schedule_start_from_the_file() -> None:
    hierarchy = parse_hierarchy(doc(hierarchy="schedule_start = 2014-01-16T02:00:00+09:00"))
    assert isinstance(hierarchy.schedule, IntervalSchedule)
    assert hierarchy.schedule.interval == timedelta(days=7)  # the default interval
    after = datetime(2014, 1, 20, tzinfo=UTC)
    expected = datetime(2014, 1, 23, 2, tzinfo=timezone(timedelta(hours=9)))
    assert hierarchy.schedule.next_run(after) == expected


def test_duration_and_size_parsers() -> None:
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration(" 1H30M ") == timedelta(hours=1, minutes=30)
    with pytest.raises(ValueError, match="not an interval"):
        parse_duration("1.5h")
    assert parse_size(10) == 10
    assert parse_size("5MB") == 5 * 1024 * 1024
    assert parse_size("2kb") == 2048
    with pytest.raises(ValueError, match="not a size"):
        parse_size("5 TB")
    with pytest.raises(ValueError, match="must be positive"):
        IntervalSchedule(timedelta(0))


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


# --------------------------------------------------------------------------- alerts


def alerts(body: str, *, hierarchy: str = "") -> str:
    """The small valid file with a `[hierarchy.alerts]` table holding `body`."""
    return doc(hierarchy=hierarchy, extra=f"[hierarchy.alerts]\n{body}\n")


def test_example_alert_settings(example: Hierarchy) -> None:
    assert example.alerts.overdue_after == timedelta(days=2)
    assert example.alerts.webhooks == ()


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("", timedelta(days=8)),  # ConfigMgr's weekly default, plus one day
        ('schedule = "1d"', timedelta(days=2)),
        ('schedule = "30m"', timedelta(days=2)),  # at least 2 days
        ('schedule = "0 2 * * 1-5"', timedelta(days=4)),  # Friday to Monday, plus one day
        ('schedule = "0 0 1 * *"', timedelta(days=32)),  # 31-day months, plus one day
    ],
)
def test_overdue_after_defaults_to_the_schedule_gap_plus_a_day(
    schedule: str, expected: timedelta
) -> None:
    hierarchy = parse_hierarchy(doc(hierarchy=schedule))
    assert hierarchy.alerts.overdue_after == expected
    assert hierarchy.alerts.webhooks == ()


def test_alert_settings_from_the_file() -> None:
    text = alerts(
        'overdue_after = "1d12h"\n'
        "webhooks = [\n"
        '    "http://127.0.0.1:9000/hook",\n'
        '    "https://alerts.contoso.com/updatesync?token=abc",\n'
        "]",
        hierarchy='schedule = "0 2 * * *"',
    )
    settings = parse_hierarchy(text).alerts
    assert settings.overdue_after == timedelta(days=1, hours=12)
    assert settings.webhooks == (
        "http://127.0.0.1:9000/hook",
        "https://alerts.contoso.com/updatesync?token=abc",
    )


@pytest.mark.parametrize(
    ("body", "path", "fragment"),
    [
        ("overdue_after = 2", "hierarchy.alerts.overdue_after", 'interval such as "2d"'),
        ('overdue_after = "soon"', "hierarchy.alerts.overdue_after", "not an interval"),
        ('overdue_after = "0m"', "hierarchy.alerts.overdue_after", "longer than zero"),
        (
            'overdue_after = "7d"',
            "hierarchy.alerts.overdue_after",
            "not longer than the longest time between two scheduled syncs (7d, the default "
            "schedule, every 7d): every site would be overdue before its next scheduled sync; "
            'make it longer, such as "8d"',
        ),
        ('webhooks = "http://a.contoso.com/"', "hierarchy.alerts.webhooks", "array of strings"),
        ("webhooks = [8080]", "hierarchy.alerts.webhooks[0]", "must be a string"),
        ('webhooks = [""]', "hierarchy.alerts.webhooks[0]", "is empty"),
        ('webhooks = ["ftp://a.contoso.com/x"]', "hierarchy.alerts.webhooks[0]", "not an http(s)"),
        ('webhooks = ["alerts.contoso.com/x"]', "hierarchy.alerts.webhooks[0]", "not an http(s)"),
        ('webhooks = ["http://"]', "hierarchy.alerts.webhooks[0]", "not an http(s) URL"),
        ('webhooks = ["http://a.contoso.com:99999/"]', "hierarchy.alerts.webhooks[0]", "not a URL"),
        ('webhooks = ["http://a.contoso.com:0/"]', "hierarchy.alerts.webhooks[0]", "port 0"),
        ('webhooks = ["http://a b.contoso.com/"]', "hierarchy.alerts.webhooks[0]", "white space"),
        ('webhooks = ["http://a.contoso.com/#x"]', "hierarchy.alerts.webhooks[0]", "fragment"),
        (
            'webhooks = ["http://a.contoso.com/", "http://a.contoso.com/"]',
            "hierarchy.alerts.webhooks[1]",
            "listed twice (also hierarchy.alerts.webhooks[0])",
        ),
        ('webhook = ["http://a.contoso.com/"]', "hierarchy.alerts.webhook", "'webhooks'"),
        ('overdue = "2d"', "hierarchy.alerts.overdue", "'overdue_after'"),
    ],
)
def test_alert_rules(body: str, path: str, fragment: str) -> None:
    assert_problem(alerts(body), path, fragment)


def test_alerts_must_be_a_table() -> None:
    assert_problem(doc(hierarchy='alerts = "loud"'), "hierarchy.alerts", "must be a table")


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


def test_alert_problems_give_their_lines() -> None:
    text = alerts(
        'overdue_after = "1h"\n'
        "webhooks = [\n"
        '    "http://ok.contoso.com/hook",\n'
        '    "mailto:admin@contoso.com",\n'
        "]"
    )
    lines = text.splitlines()
    assert [(p.path, p.line) for p in problems_of(text)] == [
        ("hierarchy.alerts.overdue_after", lines.index('overdue_after = "1h"') + 1),
        ("hierarchy.alerts.webhooks[1]", lines.index('    "mailto:admin@contoso.com",') + 1),
    ]
