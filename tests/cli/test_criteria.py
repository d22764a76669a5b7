"""The checks of the update server commands' values (`cli/criteria.py`): each wrong value is
a usage error naming it; a right one comes back in the form the store keeps."""

from __future__ import annotations

import pytest
import typer

from updatesync.cli.criteria import (
    category_ids,
    checked_category_type,
    language_codes,
    one_line,
    upstream_url,
)

SECURITY = "0fa1201d-4330-4fa8-8ae9-b877473b6441"


def test_category_ids_and_languages_come_back_normal_or_are_refused() -> None:
    assert category_ids([f" {SECURITY.upper()} "]) == [SECURITY]
    assert category_ids(None) is None
    with pytest.raises(typer.BadParameter, match="'Security Updates' is not a GUID"):
        category_ids(["Security Updates"])
    assert language_codes(["EN", "zh-CN"]) == ["en", "zh-cn"]
    with pytest.raises(typer.BadParameter, match="'English' is not a language code"):
        language_codes(["English"])


def test_category_type_in_any_case() -> None:
    assert checked_category_type("updateclassification") == "UpdateClassification"
    assert checked_category_type(None) is None
    with pytest.raises(typer.BadParameter, match="give one of Company, ProductFamily"):
        checked_category_type("Bogus")


def test_a_title_is_one_line() -> None:
    assert one_line("Windows Server\r\n  2012  R2\t") == "Windows Server 2012 R2"


@pytest.mark.parametrize("bad", ["http://[::1", "ftp://wsus.example", "wsus.example:8530"])
def test_an_upstream_that_is_no_http_address_is_a_usage_error(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as stopped:
        upstream_url(bad)
    assert stopped.value.exit_code == 2
    assert f"--upstream: upstream URL {bad!r} is not a valid address" in capsys.readouterr().err
    assert upstream_url("https://wsus.example:8531") == "https://wsus.example:8531"
