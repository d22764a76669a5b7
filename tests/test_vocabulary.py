"""The vocabulary: the catalogue of SPEC section 6, one code per phase, each surface's words
for the phases, and no import of anything else of updatesync."""

from __future__ import annotations

import ast
from pathlib import Path

import updatesync.vocabulary as vocabulary
from updatesync.vocabulary import (
    CATALOGUE,
    IN_PROGRESS_STATES,
    PHASES_BY_CODE,
    RUN_PHASES,
    SYNC_PHASES,
    SYNC_STATES,
)


def test_catalogue_has_the_spec_texts_and_severities() -> None:
    expected = {
        6701: ("I", "WSUS Synchronization started."),
        6702: ("I", "WSUS Synchronization done."),
        6703: ("E", "WSUS Synchronization failed."),
        6704: ("I", "WSUS Synchronization in progress. Current phase: Synchronizing WSUS Server."),
        6705: (
            "I",
            "WSUS Synchronization in progress. Current phase: Synchronizing site database.",
        ),
        6706: (
            "I",
            "WSUS Synchronization in progress. Current phase: "
            "Synchronizing Internet facing WSUS Server.",
        ),
        6707: ("W", "Content of WSUS Server %1 is out of sync with upstream server %2."),
        6708: ("W", "WSUS synchronization complete, with pending license terms downloads."),
    }
    assert {k: (d.severity.value, d.text) for k, d in CATALOGUE.items()} == expected
    assert frozenset({6701, 6704, 6705, 6706}) == IN_PROGRESS_STATES


def test_the_vocabulary_imports_nothing_of_updatesync() -> None:
    tree = ast.parse(Path(vocabulary.__file__).read_text(encoding="utf-8"))
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    assert not [name for name in imported if name.split(".")[0] == "updatesync"]


def test_every_phase_has_one_dotted_code_and_a_label() -> None:
    codes = [p.code for p in SYNC_PHASES]
    assert len(codes) == len(set(codes)) == len(PHASES_BY_CODE)
    assert all(code.startswith("sync.") and p.label for code, p in PHASES_BY_CODE.items())
    assert {"sync.wsus", "sync.sitedb", "sync.replica", "sync.replication_wait"} <= set(codes)


def test_each_surface_keeps_its_words_for_the_phases() -> None:
    assert {k: p.label for k, p in SYNC_STATES.items()} == {
        6701: "started",
        6704: "update server",
        6705: "site database",
        6706: "replica",
        6702: "done",
        6703: "failed",
    }
    assert {k: p.demo_label for k, p in SYNC_STATES.items()} == {
        6701: "started (6701)",
        6704: "update server (6704)",
        6705: "site database (6705)",
        6706: "replicas (6706)",
        6702: "done (6702)",
        6703: "FAILED (6703)",
    }
    assert {k: p.metric_name for k, p in SYNC_STATES.items() if p.metric_name} == {
        6704: "update_server",
        6705: "site_database",
        6706: "replicas",
    }
    assert {
        name: (p.page_label, p.table_label, p.message_id) for name, p in RUN_PHASES.items()
    } == {
        "update_server": ("update server", "update server", 6704),
        "site_database_categories": ("site database: categories", "DB categories", 6705),
        "site_database_updates": ("site database: updates", "DB updates", 6705),
        "replica": ("replica SUP", "replica", 6706),
    }
    assert set(SYNC_STATES) >= IN_PROGRESS_STATES


def test_the_update_server_phases_keep_their_progress_names() -> None:
    progress = {p.code: p.progress_name for p in SYNC_PHASES if p.progress_name}
    assert progress == {
        "sync.wsus.categories": "categories",
        "sync.wsus.updates": "updates",
        "sync.wsus.other_items": "other items",
    }
