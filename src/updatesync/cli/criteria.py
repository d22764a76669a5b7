"""The values of the update server's commands, checked before anything runs: the upstream
address (`--upstream`), category ids (`--product`, `--classification`), language codes
(`--language`), a category type (`--type`, any case), and a category title as one line.
A wrong value is a usage error naming it (exit status 2): nothing is fetched or made."""

from __future__ import annotations

import typer

from updatesync.cli import exits
from updatesync.cli.output import error


def upstream_url(value: str) -> str:
    """`--upstream`: an http(s) address with a host, else one `error:` line and exit status
    2 (a wrong command line), before a store is opened."""
    import httpx

    try:
        url = httpx.URL(value)
        good = url.scheme in ("http", "https") and bool(url.host)
        reason = "" if good else "not an http:// or https:// address with a host"
    except httpx.InvalidURL as exc:
        good, reason = False, str(exc)
    if not good:
        error(
            f"--upstream: upstream URL {value!r} is not a valid address ({reason}); give it as "
            "e.g. http://wsus.example:8530"
        )
        raise typer.Exit(exits.USAGE)
    return value


def category_ids(values: list[str] | None) -> list[str] | None:
    """`--product`/`--classification` values: category ids (GUIDs), else a usage error
    naming the value (before anything is fetched)."""
    from updatesync.config.values import category_id

    try:
        return None if values is None else [category_id(v.strip()) for v in values]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def language_codes(values: list[str] | None) -> list[str] | None:
    """`--language` values: language codes, else a usage error naming the value."""
    from updatesync.config.values import language_code

    try:
        return None if values is None else [language_code(v.strip()) for v in values]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


CATEGORY_TYPES = ("Company", "ProductFamily", "Product", "UpdateClassification")


def checked_category_type(value: str | None) -> str | None:
    """`--type` in any case, as the store names it; else a usage error listing the types."""
    if value is None:
        return None
    for known in CATEGORY_TYPES:
        if value.strip().lower() == known.lower():
            return known
    raise typer.BadParameter(
        f"{value!r} is not a category type: give one of {', '.join(CATEGORY_TYPES)}"
    )


def one_line(text: str) -> str:
    """A title as one line: a real catalog's titles hold line breaks and runs of blanks."""
    return " ".join(text.split())
