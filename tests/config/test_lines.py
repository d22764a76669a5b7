"""Where each key of a TOML text is written: tables, arrays of tables, dotted keys,
multi-line arrays and strings, and the fallback to the enclosing key."""

from __future__ import annotations

from updatesync.config.lines import key_lines, line_of

TEXT = """\
[hierarchy]
name = "x"   # a comment
notes = \"\"\"
[not-a-table]
fake = 1
\"\"\"
logs.max_size = 10

[[sites]]
code = "CS1"
[[sites.sups]]
fqdn = "a"
[[sites.sups]]
fqdn = "b"
[sites.upstream]
kind = "none"

[[sites]]
code = "PS1"
sups = [{ fqdn = "c" }]
list = [
  "one", "two",  # two on a line
  "three#",
]
"quoted key" = 1
"""


def test_tables_keys_and_arrays_of_tables() -> None:
    lines = key_lines(TEXT)
    assert lines[("hierarchy",)] == 1
    assert lines[("hierarchy", "name")] == 2
    assert lines[("hierarchy", "logs", "max_size")] == 7
    assert lines[("sites",)] == 9
    assert lines[("sites", 0, "sups", 1, "fqdn")] == 14
    assert lines[("sites", 0, "upstream", "kind")] == 16
    assert lines[("sites", 1, "code")] == 19
    assert lines[("sites", 1, '"quoted key"'[1:-1])] == 25


def test_multi_line_strings_are_skipped() -> None:
    lines = key_lines(TEXT)
    assert ("not-a-table",) not in lines
    assert ("hierarchy", "fake") not in lines


def test_items_of_a_multi_line_array() -> None:
    lines = key_lines(TEXT)
    assert [lines[("sites", 1, "list", index)] for index in range(3)] == [22, 22, 23]


def test_an_inline_table_falls_back_to_its_key() -> None:
    lines = key_lines(TEXT)
    assert line_of(("sites", 1, "sups", 0, "fqdn"), lines) == 20
    assert line_of(("elsewhere",), lines) is None
