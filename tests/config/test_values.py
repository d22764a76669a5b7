"""The hierarchy file's value checks (`updatesync.config.values`): site codes, host names,
ports, sizes, intervals, time-zone biases, schedules and the GUID / language / webhook lists,
with the messages an administrator reads when a value is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from updatesync.config import values

SECURITY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"


def refused(check: Callable[[object], object], value: object) -> str:
    """The message a check gives for a value it refuses."""
    with pytest.raises(PydanticCustomError) as info:
        check(value)
    assert info.value.type == values.PROBLEM
    return info.value.message()


def list_errors(
    check: Callable[[object], object], value: object
) -> list[tuple[tuple[int | str, ...], str]]:
    with pytest.raises(ValidationError) as info:
        check(value)
    return [(tuple(e["loc"]), e["msg"]) for e in info.value.errors()]


def test_format_path_reads_like_toml() -> None:
    assert values.format_path(("sites", 2, "sups", 0, "port")) == "sites[2].sups[0].port"
    assert values.format_path(("a b",)) == '"a b"'
    assert values.format_path(()) == ""


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (True, "a boolean"),
        (3, "an integer"),
        (1.5, "a float"),
        ("x", "a string"),
        ({}, "a table"),
        ([], "an array"),
        (datetime(2024, 1, 1), "a date-time"),
        (date(2024, 1, 1), "a date"),
    ],
)
def test_toml_type_names(value: object, name: str) -> None:
    assert values.toml_type(value) == name


def test_text_strips_and_refuses_empty_or_non_string() -> None:
    assert values.text("  CS1 ") == "CS1"
    assert refused(values.text, "   ") == "must not be empty"
    assert refused(values.text, 5) == "must be a string, got an integer 5"


def test_boolean() -> None:
    assert values.boolean(True) is True
    assert refused(values.boolean, "yes") == "must be true or false, got a string 'yes'"


def test_site_code_is_upper_cased() -> None:
    assert values.site_code(" cs1 ") == "CS1"


@pytest.mark.parametrize("code", ["CS", "CS12", "C-1"])
def test_site_code_refused(code: str) -> None:
    message = refused(values.site_code, code)
    assert message == f"site code {code!r} must be exactly 3 letters or digits (such as CS1)"


def test_site_type_and_upstream_kind_are_lower_cased_choices() -> None:
    assert values.site_type("CAS") == "cas"
    assert values.upstream_kind("Microsoft-Update") == "microsoft-update"
    assert (
        refused(values.site_type, "tertiary")
        == "unknown site type 'tertiary'; use one of: cas, primary, secondary"
    )
    assert "use one of: microsoft-update, wsus, none" in refused(values.upstream_kind, "x")


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("CS1Site.Contoso.COM.", "cs1site.contoso.com"),
        ("10.0.0.255", "10.0.0.255"),
        ("localhost", "localhost"),
    ],
)
def test_host_accepted(given: str, normal: str) -> None:
    assert values.host(given) == normal


@pytest.mark.parametrize("given", ["bad_host.contoso.com", "-a.contoso.com", "300.1.1.1", "a..b"])
def test_host_refused_tells_what_to_write(given: str) -> None:
    message = refused(values.host, given)
    assert message.startswith(f"{given!r} is not a host name; write the server's FQDN")
    assert "cs1site.contoso.com" in message


def test_ports() -> None:
    assert values.sup_port(8531) == 8531
    assert values.site_port(1) == 1
    assert values.site_port(65535) == 65535
    assert (
        refused(values.sup_port, 0)
        == "must be an integer from 1 to 65535, got 0; leave it out for 8530 (or 8531 with "
        "https = true)"
    )
    assert refused(values.site_port, 65536).endswith("leave it out for 8440")
    assert "got True" in refused(values.site_port, True)
    assert "got '8440'" in refused(values.site_port, "8440")


def test_minutes_or_interval() -> None:
    assert values.minutes_or_interval(60) == timedelta(minutes=60)
    assert values.minutes_or_interval("1h30m") == timedelta(minutes=90)
    assert refused(values.minutes_or_interval, 0) == "must be a positive number of minutes, got 0"
    assert refused(values.minutes_or_interval, 1.5) == (
        'must be minutes (an integer) or an interval like "60m", got a float'
    )
    assert "is not an interval" in refused(values.minutes_or_interval, "soon")


def test_interval() -> None:
    assert values.interval("1d12h") == timedelta(hours=36)
    assert refused(values.interval, 2).startswith('must be an interval such as "2d"')
    assert refused(values.interval, "0m") == "interval '0m' must be longer than zero"


def test_size() -> None:
    assert values.size(1024) == 1024
    assert values.size("5MB") == 5 * 1024 * 1024
    assert values.size("512 KB") == 512 * 1024
    assert "is not a size" in refused(values.size, "five")
    assert refused(values.size, 0) == "size must be more than 0 bytes, got 0"
    assert "size must be an integer (bytes)" in refused(values.size, True)


def test_tz_bias() -> None:
    assert values.tz_bias(" Local ") == "local"
    assert values.tz_bias(-840) == -840
    assert values.tz_bias(720) == 720
    assert refused(values.tz_bias, 721) == (
        "must be from -840 to 720 minutes (UTC = local + bias), got 721"
    )
    assert 'or "local"' in refused(values.tz_bias, "utc")


def test_schedule_and_start() -> None:
    assert values.schedule("1d") is not None
    assert refused(values.schedule, 7).startswith("must be a string (a cron expression")
    assert "schedule is empty" in refused(values.schedule, "  ")
    assert values.schedule_start(date(2014, 1, 16)) == datetime(2014, 1, 16)
    moment = datetime(2014, 1, 16, 2)
    assert values.schedule_start(moment) is moment
    assert "must be a TOML date-time" in refused(values.schedule_start, "2014-01-16")


def test_guid_list_normalises_braces_and_case() -> None:
    got = values.guid_list([f"{{{SECURITY.upper()}}}", " cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83 "])
    assert got == (SECURITY, "cd5ffd1e-e932-4e3a-bf74-18bf0b1bbd83")


def test_guid_list_reports_each_bad_item_at_its_index() -> None:
    errors = list_errors(values.guid_list, [SECURITY, "nope", 3, SECURITY.upper()])
    assert [loc for loc, _ in errors] == [(1,), (2,), (3,)]
    assert errors[0][1].startswith("'nope' is not a GUID; write the category id as")
    assert errors[1][1] == "must be a string, got an integer"
    assert errors[2][1] == f"{SECURITY} is listed twice (also {values.ALSO})"


def test_list_must_be_an_array() -> None:
    assert refused(values.language_list, "en") == "must be an array of strings, got a string"


def test_language_list() -> None:
    assert values.language_list(["EN", "zh-CN", "pt-br"]) == ("en", "zh-cn", "pt-br")
    errors = list_errors(values.language_list, ["english", "en", "EN"])
    assert errors[0] == (
        (0,),
        "'english' is not a language code; write codes such as en, de, zh-cn, pt-br",
    )
    assert errors[1] == ((2,), "en is listed twice (also {also})")


def test_webhook_url_accepts_http_urls_as_written() -> None:
    for url in ["http://hooks.contoso.com:8080/sync", "https://hooks.contoso.com/x"]:
        assert values.webhook_url(f" {url} ") == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "is empty; write it as http://host:port/path or https://host/path"),
        ("http://a b/", "'http://a b/' contains white space;"),
        ("ftp://host/x", "'ftp://host/x' is not an http(s) URL;"),
        ("http:///x", "'http:///x' is not an http(s) URL;"),
        ("http://host:0/x", "'http://host:0/x' has port 0;"),
        ("http://host:99999/x", "'http://host:99999/x' is not a URL ("),
        ("http://host/x#frag", "'http://host/x#frag' has a fragment (#...)"),
        (8080, "must be a string"),
    ],
    ids=["empty", "space", "ftp", "no-host", "port-0", "port-too-big", "fragment", "integer"],
)
def test_webhook_refused(url: object, message: str) -> None:
    assert refused(values.webhook_url, url).startswith(message)
