"""The keys of the hierarchy file: valid forms and their defaults, and the problem each key
reports for a value it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hierarchy_text import (
    CRITICAL_UPDATES,
    HEAD,
    SECURITY_UPDATES,
    WINDOWS_10,
    alerts,
    assert_problem,
    doc,
    problems_of,
)

from updatesync.config import (
    DEFAULT_SCHEDULE,
    CronSchedule,
    IntervalSchedule,
    WebhookSettings,
    load_hierarchy,
    parse_hierarchy,
)
from updatesync.logs.rollover import DEFAULT_MAX_BYTES


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


def test_the_updates_cleanup_age_is_whole_days_zero_included() -> None:
    assert parse_hierarchy(doc()).criteria.updates_cleanup_age == timedelta(days=7)
    for days in (0, 30):
        text = doc(extra=f"[hierarchy.criteria]\nupdates_cleanup_age = {days}\n")
        assert parse_hierarchy(text).criteria.updates_cleanup_age == timedelta(days=days)
    for setting, fragment in (("-1", "from 0 to 3650 days"), ('"7d"', "whole number of days")):
        assert_problem(
            doc(extra=f"[hierarchy.criteria]\nupdates_cleanup_age = {setting}\n"),
            "hierarchy.criteria.updates_cleanup_age",
            fragment,
        )


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


def test_schedule_start_from_the_file() -> None:
    hierarchy = parse_hierarchy(doc(hierarchy="schedule_start = 2014-01-16T02:00:00+09:00"))
    assert isinstance(hierarchy.schedule, IntervalSchedule)
    assert hierarchy.schedule.interval == timedelta(days=7)  # the default interval
    after = datetime(2014, 1, 20, tzinfo=UTC)
    expected = datetime(2014, 1, 23, 2, tzinfo=timezone(timedelta(hours=9)))
    assert hierarchy.schedule.next_run(after) == expected


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
        "[[hierarchy.alerts.webhooks]]\n"
        'url = "http://127.0.0.1:9000/hook"\n'
        'secret_file = "keys/hook.secret"\n'
        "[[hierarchy.alerts.webhooks]]\n"
        'url = "https://alerts.contoso.com/updatesync?token=abc"\n'
        "unsigned = true\n",
        hierarchy='schedule = "0 2 * * *"',
    )
    settings = parse_hierarchy(text, base_dir="/srv/updatesync").alerts
    assert settings.overdue_after == timedelta(days=1, hours=12)
    assert settings.webhooks == (
        WebhookSettings(
            "http://127.0.0.1:9000/hook", Path("/srv/updatesync/keys/hook.secret"), False
        ),
        WebhookSettings("https://alerts.contoso.com/updatesync?token=abc", None, True),
    )


def test_a_webhook_given_as_a_plain_url_is_refused_with_the_table_to_write() -> None:
    """The earlier form (a list of URLs) is read, and refused: its events would go unsigned
    without the file saying so."""
    assert_problem(
        alerts('webhooks = ["http://a.contoso.com/hook"]'),
        "hierarchy.alerts.webhooks[0]",
        "has no secret to sign its events with",
        '[[hierarchy.alerts.webhooks]] with url = "http://a.contoso.com/hook" and '
        'secret_file = "FILE"',
        "`updatesync secret webhook FILE`",
        "unsigned = true",
    )


def test_missing_name() -> None:
    assert_problem(doc().replace('name = "Test"\n', ""), "hierarchy.name", "missing")


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


def _hook(url: str, more: str = 'secret_file = "k"') -> str:
    """A `[[hierarchy.alerts.webhooks]]` table with this url (TOML) and more keys."""
    return f"[[hierarchy.alerts.webhooks]]\nurl = {url}\n{more}"


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
        ('webhooks = "http://a.contoso.com/"', "hierarchy.alerts.webhooks", "array of tables"),
        ("webhooks = [8080]", "hierarchy.alerts.webhooks[0]", "must be a table"),
        (_hook('""'), "hierarchy.alerts.webhooks[0].url", "is empty"),
        (_hook("8080"), "hierarchy.alerts.webhooks[0].url", "must be a string"),
        (_hook('"ftp://a.contoso.com/x"'), "hierarchy.alerts.webhooks[0].url", "not an http(s)"),
        (_hook('"alerts.contoso.com/x"'), "hierarchy.alerts.webhooks[0].url", "not an http(s)"),
        (_hook('"http://"'), "hierarchy.alerts.webhooks[0].url", "not an http(s) URL"),
        (_hook('"http://a.contoso.com:99999/"'), "hierarchy.alerts.webhooks[0].url", "not a URL"),
        (_hook('"http://a.contoso.com:0/"'), "hierarchy.alerts.webhooks[0].url", "port 0"),
        (_hook('"http://a b.contoso.com/"'), "hierarchy.alerts.webhooks[0].url", "white space"),
        (_hook('"http://a.contoso.com/#x"'), "hierarchy.alerts.webhooks[0].url", "fragment"),
        (
            _hook('"http://a.contoso.com/"') + "\n" + _hook('"http://a.contoso.com/"'),
            "hierarchy.alerts.webhooks[1]",
            "listed twice (also hierarchy.alerts.webhooks[0])",
        ),
        (
            _hook('"http://a.contoso.com/"', 'secret_file = "k"\nunsigned = true'),
            "hierarchy.alerts.webhooks[0].unsigned",
            "remove one",
        ),
        (
            _hook('"http://a.contoso.com/"', 'secret_file = "k"\nsigned = true'),
            "hierarchy.alerts.webhooks[0].signed",
            "'unsigned'",
        ),
        ('webhook = ["http://a.contoso.com/"]', "hierarchy.alerts.webhook", "'webhooks'"),
        ('overdue = "2d"', "hierarchy.alerts.overdue", "'overdue_after'"),
    ],
)
def test_alert_rules(body: str, path: str, fragment: str) -> None:
    assert_problem(alerts(body), path, fragment)


def test_alerts_must_be_a_table() -> None:
    assert_problem(doc(hierarchy='alerts = "loud"'), "hierarchy.alerts", "must be a table")


def test_a_tables_rules_are_reported_with_its_unknown_keys() -> None:
    text = doc(upstream='ulr = "http://wsus.contoso.com:8530"').replace(
        'kind = "microsoft-update"', 'kind = "wsus"'
    )
    problems = problems_of(text)
    assert [p.path for p in problems] == ["hierarchy.upstream.url", "hierarchy.upstream.ulr"]
    assert 'kind = "wsus" needs' in problems[0].message
    assert "did you mean 'url'?" in problems[1].message


def test_a_duplicate_names_the_first_item_by_its_full_path() -> None:
    assert_problem(
        doc(cas='[sites.criteria]\nlanguages = ["en", "EN"]'),
        "sites[0].criteria.languages[1]",
        "en is listed twice (also sites[0].criteria.languages[0])",
    )


# -- [hierarchy.tls] ---------------------------------------------------------------------------

TLS = '[hierarchy.tls]\nca = "pki/ca.pem"\n'


def test_without_tls_every_url_is_plain_http() -> None:
    hierarchy = parse_hierarchy(doc(), base_dir="/srv/updatesync")
    assert hierarchy.tls is None
    assert hierarchy.site("CS1").url == "http://cs1site.contoso.com:8440"
    assert hierarchy.site_tls("CS1") is None


def test_tls_makes_every_site_and_sup_https_with_certificates_in_the_cas_folder() -> None:
    hierarchy = parse_hierarchy(doc(upstream="\n" + TLS), base_dir="/srv/updatesync")
    assert hierarchy.tls is not None
    assert hierarchy.tls.ca == Path("/srv/updatesync/pki/ca.pem")
    assert hierarchy.tls.dir == Path("/srv/updatesync/pki")
    assert hierarchy.site("PS1").url == "https://ps1site.contoso.com:8440"
    assert hierarchy.default_sup("PS1").url == "https://ps1site.contoso.com:8531"  # WSUS's
    files = hierarchy.sup_tls("ps1site.contoso.com")
    assert files is not None
    assert files.cert == Path("/srv/updatesync/pki/ps1site.contoso.com.pem")
    assert files.key == Path("/srv/updatesync/pki/ps1site.contoso.com.key")


def test_a_site_or_sup_may_name_its_own_certificate_and_a_plain_http_port() -> None:
    text = doc(
        upstream='\n[hierarchy.tls]\nca = "/etc/us/ca.pem"\ndir = "certs"\n',
        cas='cert = "/etc/us/cs1.pem"\nkey = "keys/cs1.key"',
        extra='[[sites.sups]]\nfqdn = "ps1sys.contoso.com"\nhttp_port = 8530\n',
    )
    hierarchy = parse_hierarchy(text, base_dir="/srv/updatesync")
    site = hierarchy.site_tls("CS1")
    assert site is not None
    assert (site.cert, site.key) == (Path("/etc/us/cs1.pem"), Path("/srv/updatesync/keys/cs1.key"))
    assert "cert and key of [[sites]] code = 'CS1'" in site.where
    sup = hierarchy.sup_tls("ps1sys.contoso.com")
    assert sup is not None and sup.cert == Path("/srv/updatesync/certs/ps1sys.contoso.com.pem")
    (_, replica) = hierarchy.site("PS1").sups
    assert (replica.port, replica.http_port) == (8531, 8530)


def test_tls_needs_its_ca_and_a_plain_port_of_its_own() -> None:
    assert_problem(doc(upstream="\n[hierarchy.tls]\n"), "hierarchy.tls.ca", "updatesync pki init")
    text = doc(
        upstream="\n" + TLS,
        extra='[[sites.sups]]\nfqdn = "ps1sys.contoso.com"\nport = 8531\nhttp_port = 8531\n',
    )
    assert_problem(text, "sites[1].sups[1].http_port", "also the SUP's port")
