"""The configuration reference: every key of the model documented, and the committed
`docs/configuration.md` the one the model generates."""

from __future__ import annotations

from pathlib import Path

from updatesync.config.model import HierarchyFile
from updatesync.config.reference import REGENERATE, markdown, tables

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_committed_reference_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == markdown(), (
        f"docs/configuration.md is not what the model generates; regenerate it: {REGENERATE}"
    )


def test_every_table_is_in_the_reference_once() -> None:
    headers = [header for header, _ in tables()]
    assert headers == [
        "[hierarchy]",
        "[hierarchy.logs]",
        "[hierarchy.alerts]",
        "[[hierarchy.alerts.webhooks]]",
        "[hierarchy.security]",
        "[hierarchy.upstream]",
        "[hierarchy.criteria]",
        "[hierarchy.tls]",
        "[[sites]]",
        "[[sites.sups]]",
    ]
    text = markdown()
    for header in headers:
        assert f"## `{header}`" in text


def test_every_key_has_a_meaning_and_a_toml_type() -> None:
    for header, model in [("(file)", HierarchyFile), *tables()]:
        for name, field in model.model_fields.items():
            extra = field.json_schema_extra
            assert field.description, f"{header} {name} has no description"
            assert isinstance(extra, dict) and extra.get("toml"), f"{header} {name}: no type"


def test_each_key_is_a_row_of_its_table() -> None:
    text = markdown()
    for header, model in tables():
        section = text.split(f"## `{header}`", 1)[1].split("\n## ", 1)[0]
        rows = [line for line in section.splitlines() if line.startswith("| `")]
        assert [row.split("`")[1] for row in rows] == list(model.model_fields)


def test_defaults_are_shown() -> None:
    text = markdown()
    assert "| `port` | integer | `8440` |" in text
    assert '| `data_dir` | string | `"data"` |' in text
    assert "| `https` | boolean | `false` |" in text
    assert "| `name` | string | required |" in text
    assert "`8530`, or `8531` with `https = true`" in text
