"""The command line as a script uses it: `--version`, the exit status (0 done, 1 failed,
2 wrong command line, 3 a sync ran and failed), read-only commands that refuse a store that
is not there instead of making an empty one, and `categories` whose ids stay whole when
piped and whose titles are one line each (a real WSUS export's titles hold line breaks)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from updatesync import __version__
from updatesync.cli import exits
from updatesync.cli.main import app
from updatesync.updateserver.store import UpdateStore

GUID_LENGTH = 36


def _run(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.stdout.strip()) == (0, f"updatesync {__version__}")


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """A store holding a real WSUS export (2024-06): its categories, some titles with line
    breaks."""
    folder = tmp_path_factory.mktemp("real") / "sup"
    cabinet = fixtures_dir / "wsus-exports" / "wsus-export-2024-06.cab"
    result = CliRunner().invoke(
        app, ["updateserver", "import", str(cabinet), "--data", str(folder)]
    )
    assert result.exit_code == 0, result.output
    return folder


def test_categories_piped_are_whole_ids_and_one_line_titles(real_store: Path) -> None:
    listed = CliRunner().invoke(app, ["updateserver", "categories", "--data", str(real_store)])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    as_json = CliRunner().invoke(
        app, ["updateserver", "categories", "--data", str(real_store), "--json"]
    )
    categories = json.loads(as_json.stdout)
    assert len(lines) == len(categories) > 400
    with UpdateStore.open(real_store, existing=True) as store:
        raw = [c.title for c in store.categories()]
    assert sum("\n" in title for title in raw) >= 1  # what the store holds, as WSUS wrote it
    assert not any("\n" in c["title"] or "  " in c["title"] for c in categories)
    for line, category in zip(lines, categories, strict=True):
        kind, uid, title = line.split("\t")
        assert len(uid) == GUID_LENGTH and uid == category["id"]
        assert (kind, title) == (category["type"], category["title"])


def test_category_type_in_any_case_and_a_wrong_one_refused(real_store: Path) -> None:
    products = CliRunner().invoke(
        app, ["updateserver", "categories", "--data", str(real_store), "--type", "product"]
    )
    assert products.exit_code == 0, products.output
    assert {line.split("\t")[0] for line in products.stdout.splitlines()} == {"Product"}
    every = json.loads(
        CliRunner()
        .invoke(app, ["updateserver", "categories", "--data", str(real_store), "--json"])
        .stdout
    )
    assert len(products.stdout.splitlines()) == sum(c["type"] == "Product" for c in every) > 300
    bogus = CliRunner().invoke(
        app, ["updateserver", "categories", "--data", str(real_store), "--type", "Bogus"]
    )
    assert bogus.exit_code == exits.USAGE
    assert "'Bogus' is not a category type" in bogus.output
    assert "UpdateClassification" in bogus.output


@pytest.mark.parametrize(
    "command",
    [["status"], ["categories"], ["changes", "--since", "0"], ["export", "OUT"], ["subscription"]],
)
def test_a_read_only_command_refuses_a_store_that_is_not_there(
    tmp_path: Path, command: list[str]
) -> None:
    mistyped = tmp_path / "sup-typo"
    args = [str(tmp_path / "out.cab") if a == "OUT" else a for a in command]
    result = CliRunner().invoke(app, ["updateserver", *args, "--data", str(mistyped)])
    assert result.exit_code == exits.FAILED
    assert f"{mistyped}: no such folder, so no update server store" in result.output
    assert not mistyped.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["updateserver", *args, "--data", str(empty)])
    assert result.exit_code == exits.FAILED
    assert "this folder holds no update server store" in result.output
    assert list(empty.iterdir()) == []
    missing = tmp_path / "other.sqlite"
    result = CliRunner().invoke(app, ["updateserver", *args, "--database", f"sqlite:///{missing}"])
    assert result.exit_code == exits.FAILED
    assert "no such file, so no update server store" in result.output
    assert not missing.exists()


def test_a_sync_that_runs_and_fails_exits_3(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    result = CliRunner().invoke(
        app,
        [
            "updateserver",
            "sync",
            "--data",
            str(tmp_path / "sup"),
            "--upstream",
            f"http://127.0.0.1:{dead}",
        ],
    )
    assert result.exit_code == exits.SYNC_FAILED, result.output
    assert "error:" in result.output


def test_serve_names_the_hierarchy_file_as_every_command_does(tmp_path: Path) -> None:
    """`serve --hierarchy FILE` like `sync-now`, `user`, `token`, `demo`; the file alone still
    works; two different files or none are a usage error."""
    missing = tmp_path / "nope.toml"
    named = CliRunner().invoke(app, ["serve", "--hierarchy", str(missing), "--role", "CS1"])
    alone = CliRunner().invoke(app, ["serve", str(missing), "--role", "CS1"])
    assert named.exit_code == alone.exit_code == exits.FAILED
    assert str(missing) in named.output and str(missing) in alone.output
    both = CliRunner().invoke(app, ["serve", "a.toml", "--hierarchy", "b.toml"])
    assert both.exit_code == exits.USAGE and "two hierarchy files" in both.output
    none = CliRunner().invoke(app, ["serve"])
    assert none.exit_code == exits.USAGE and "--hierarchy FILE" in none.output


def test_a_criteria_id_that_is_no_guid_is_refused_before_anything_is_fetched(
    tmp_path: Path,
) -> None:
    """`--product not-a-guid` is a usage error naming it, before any connection (here to an
    upstream that does not exist) and before any store is made."""
    sup = tmp_path / "sup"
    for option, value, said in (
        ("--product", "not-a-guid", "'not-a-guid' is not a GUID"),
        ("--classification", "Security Updates", "'Security Updates' is not a GUID"),
        ("--language", "English", "'English' is not a language code"),
    ):
        for command in ("sync", "subscription"):
            extra = ["--upstream", "http://127.0.0.1:9"] if command == "sync" else []
            result = CliRunner().invoke(
                app, ["updateserver", command, "--data", str(sup), *extra, option, value]
            )
            assert result.exit_code == exits.USAGE, result.output
            assert said in result.output
    assert not sup.exists()


def test_an_unknown_product_says_to_change_the_subscription_not_to_sync_again(
    tmp_path: Path,
) -> None:
    """A well-formed id the upstream has no category for is refused once the categories are
    in, before any update is fetched; the advice is to change the subscription (syncing
    again fails the same way), and the exit status says the sync ran and failed."""
    from updatesync.metadata.export import write_export
    from updatesync.metadata.generator import generate_catalog
    from updatesync.roles.serving import BackgroundServer
    from updatesync.updateserver.importer import import_export_cabinet
    from updatesync.updateserver.store_backend import StoreBackend
    from updatesync.wsusss.service import create_app

    write_export(tmp_path / "c.cab", generate_catalog(30, seed=3))
    with UpdateStore.open(tmp_path / "up") as upstream:
        import_export_cabinet(upstream, tmp_path / "c.cab")
        with BackgroundServer(create_app(StoreBackend(upstream))) as server:
            unknown = "11111111-2222-3333-4444-555555555555"
            result = CliRunner().invoke(
                app,
                [
                    *("updateserver", "sync", "--data", str(tmp_path / "dn")),
                    *("--upstream", server.url, "--product", unknown),
                ],
            )
    assert result.exit_code == exits.SYNC_FAILED, result.output
    said = " ".join(result.output.split())
    assert f"{unknown} cannot be a subscribed product" in said
    assert "change the subscription, then sync again" in said
    assert "fetch the rest" not in said and ".." not in said
    with UpdateStore.open(tmp_path / "dn", existing=True) as store:
        assert all(c.update_id for c in store.categories())  # the categories came
        assert store.status().by_type.get("Software", 0) == 0  # no update was fetched


def test_every_command_that_reports_says_it_in_json(tmp_path: Path) -> None:
    """catalog generate/evolve, updateserver import/export/sync: `--json` gives named
    fields a script reads, and the same counts as the sentence it replaces."""
    from updatesync.roles.serving import BackgroundServer
    from updatesync.updateserver.store_backend import StoreBackend
    from updatesync.wsusss.service import create_app

    june, july, content = tmp_path / "june.cab", tmp_path / "july.cab", tmp_path / "content"

    def run(*args: str) -> dict[str, object]:
        result = CliRunner().invoke(app, [*args, "--json"])
        assert result.exit_code == 0, result.output
        value: dict[str, object] = json.loads(result.stdout)
        return value

    made = run(
        "catalog", "generate", "--updates", "60", "--out", str(june), "--content", str(content)
    )
    assert made["cabinet"] == str(june) and made["content"] == str(content)
    assert isinstance(made["revisions"], int) and made["revisions"] > 60
    assert isinstance(made["license_terms_files"], int)
    evolved = run("catalog", "evolve", str(june), "--out", str(july), "--changes", "10")
    assert evolved["license_terms_files"] is None and evolved["revisions"] >= made["revisions"]
    imported = run("updateserver", "import", str(june), "--data", str(tmp_path / "up"))
    assert imported["import"]["new_revisions"] == made["revisions"]  # type: ignore[index]
    assert imported["license_terms"] is None
    exported = run(
        "updateserver", "export", str(tmp_path / "back.cab"), "--data", str(tmp_path / "up")
    )
    assert exported == {"cabinet": str(tmp_path / "back.cab"), "revisions": made["revisions"]}
    with (
        UpdateStore.open(tmp_path / "up", existing=True) as upstream,
        BackgroundServer(create_app(StoreBackend(upstream))) as server,
    ):
        synced = run(
            "updateserver", "sync", "--data", str(tmp_path / "dn"), "--upstream", server.url
        )
    assert synced["upstream"] == server.url
    assert synced["new_revisions"] == made["revisions"]
    assert synced["audit"]["result"] == "equal"  # type: ignore[index]
