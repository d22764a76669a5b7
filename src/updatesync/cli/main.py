"""The `updatesync` command line: catalogs, the update server role, the demo."""

from __future__ import annotations

import json
import ssl
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from updatesync import __version__
from updatesync.cli import exits
from updatesync.cli.criteria import (
    category_ids,
    checked_category_type,
    language_codes,
    one_line,
    upstream_url,
)
from updatesync.cli.logs import logs_app
from updatesync.cli.output import (
    console,
    err_console,
    error,
    last_resort,
    port_in_range,
    print_json,
    quiet_tracebacks,
    say,
    user_error_text,
    warning,
)
from updatesync.cli.pki import pki_app
from updatesync.cli.serve import DEFAULT_CONSOLE_PORT, secret_app, serve
from updatesync.cli.service import service_app
from updatesync.cli.store_options import Database, DataDir, needs_data, open_store
from updatesync.cli.sync_now import sync_now
from updatesync.cli.users import (
    ADMIN_TOKEN_FILE,
    token_app,
    user_app,
)
from updatesync.config.defaults import MICROSOFT_UPDATE_URL

if TYPE_CHECKING:
    from updatesync.updateserver.importer import ImportResult
    from updatesync.updateserver.store_status import StoreStatus

app = typer.Typer(
    help="updatesync: software-update synchronization across a hierarchy of sites. "
    "Exit status: 0 done, 1 failed, 2 wrong command line, 3 a sync ran and failed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(help="Make synthetic update catalogs (WSUS export cabinets).")
server_app = typer.Typer(help="The update server role (WSUS): its store of update metadata.")


def _show_version(value: bool) -> None:
    if value:
        say(f"updatesync {__version__}")
        raise typer.Exit(exits.DONE)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """The options of `updatesync` itself (see `cli.exits` for the exit status)."""


app.add_typer(catalog_app, name="catalog")
app.add_typer(server_app, name="updateserver")
app.add_typer(secret_app, name="secret")
app.add_typer(logs_app, name="logs")
app.add_typer(pki_app, name="pki")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(service_app, name="service")
app.command("serve")(serve)
app.command("sync-now")(sync_now)

T = TypeVar("T")

USER_ERRORS = (
    ("updatesync.metadata.errors", "MetadataError"),
    ("updatesync.updateserver.errors", "UpdateServerError"),
    ("updatesync.config.loader", "HierarchyError"),
    ("updatesync.roles.context", "RoleError"),
    ("updatesync.security.shared_secret", "SecretError"),
    ("updatesync.site.database.store", "SiteDatabaseError"),
)
"""Errors whose message says what went wrong and what to do: printed as one `error:` line
(with OSError). Named by module, so that no command imports what it does not use: an error
of a module not imported was not raised."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The error classes of `USER_ERRORS` that this command imported, and OSError."""
    found: list[type[BaseException]] = [OSError]
    for module, name in USER_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None:
            found.append(getattr(loaded, name))
    return tuple(found)


def _sync_failed(exc: BaseException) -> bool:
    """A sync that ran and failed (`SyncFailed`, named by module like `USER_ERRORS`)."""
    outcome = sys.modules.get("updatesync.updateserver.sync.outcome")
    return outcome is not None and isinstance(exc, outcome.SyncFailed)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the errors a user can act on into one red line and exit status 1 (3 for a sync
    that ran and failed: `exits.SYNC_FAILED`)."""
    try:
        yield
    except Exception as exc:
        if not isinstance(exc, user_errors()):
            raise
        error(user_error_text(exc))
        raise typer.Exit(exits.SYNC_FAILED if _sync_failed(exc) else exits.FAILED) from exc


@contextmanager
def _progress(description: str) -> Iterator[Callable[[int, int], None]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report


def _counted(items: Iterable[T], report: Callable[[int, int], None], total: int) -> Iterator[T]:
    """Pass `items` through, reporting progress; `total` may be an estimate."""
    done = 0
    for done, item in enumerate(items, start=1):
        yield item
        if done % 250 == 0:
            report(done, max(total, done))
    report(done, done)


# -- catalog ---------------------------------------------------------------------------

ContentOption = Annotated[
    Path | None,
    typer.Option(
        help="Also write the catalog's license terms' files to this folder, in WsusContent's "
        "layout (<last two hex digits>/<SHA-1 in hex>.txt), for `updateserver import "
        "--content`.",
        show_default=False,
    ),
]


@catalog_app.command("generate")
def catalog_generate(
    updates: Annotated[int, typer.Option(help="How many updates to generate.", min=0)],
    out: Annotated[Path, typer.Option(help="The export cabinet to write.")],
    seed: Annotated[int, typer.Option(help="Same seed, same catalog.")] = 1,
    categories: Annotated[
        Path | None,
        typer.Option(help="Take the category tree from this real WSUS export cabinet."),
    ] = None,
    content: ContentOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write a WSUS export cabinet of N synthetic updates of the real shape."""
    from updatesync.metadata.document import parse_update
    from updatesync.metadata.export import read_export, write_export
    from updatesync.metadata.generator import generate_catalog

    with _user_errors(), _progress(f"generating {out.name}") as report:
        if categories is not None:
            with read_export(categories) as real:
                cats = [r for r in real.records() if parse_update(r.xml).is_category]
        else:
            cats = None
        records = generate_catalog(updates, seed, categories=cats)
        written = write_export(out, _counted(records, report, updates + len(cats or ())))
    _report_catalog(out, written, content, as_json)


@catalog_app.command("evolve")
def catalog_evolve(
    source: Annotated[Path, typer.Argument(help="Last month's export cabinet.")],
    out: Annotated[Path, typer.Option(help="The export cabinet to write.")],
    changes: Annotated[int, typer.Option(help="How many changes to make.", min=0)] = 100,
    seed: Annotated[int, typer.Option(help="Same seed, same changes.")] = 1,
    content: ContentOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write next month's catalog: new updates, new revisions, expirations, supersedence."""
    from updatesync.metadata.export import read_export, write_export
    from updatesync.metadata.generator import evolve_catalog

    with (
        _user_errors(),
        read_export(source) as previous,
        _progress(f"evolving {source.name}") as report,
    ):
        records = evolve_catalog(previous.records(), changes, seed)
        written = write_export(out, _counted(records, report, previous.count + changes))
    _report_catalog(out, written, content, as_json)


def _report_catalog(cabinet: Path, written: int, content: Path | None, as_json: bool) -> None:
    """Say what a catalog command wrote; with `content`, write the catalog's license terms'
    files there first, in WSUS's content layout."""
    files = None
    if content is not None:
        from updatesync.metadata.export import read_export
        from updatesync.metadata.generator.license_terms import license_terms
        from updatesync.updateserver.content_folder import write_license_terms

        with _user_errors(), read_export(cabinet) as done:
            files = write_license_terms(content, license_terms(done.records()))
    if as_json:
        print_json(
            {
                "cabinet": str(cabinet),
                "revisions": written,
                "content": None if content is None else str(content),
                "license_terms_files": files,
            }
        )
        return
    console.print(f"wrote {written:,} revisions to {cabinet}")
    if content is not None:
        console.print(f"wrote {files:,} license terms files to {content}")


# -- update server ---------------------------------------------------------------------


@server_app.command("import")
def server_import(
    cabinet: Annotated[Path, typer.Argument(help="A WSUS export cabinet (wsusutil export).")],
    data: DataDir = None,
    database: Database = None,
    content: Annotated[
        Path | None,
        typer.Option(
            help="A content folder copied beside the export (WsusContent's layout): the "
            "license terms' files the imported updates name are read from it.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import a WSUS export cabinet into the update server's store, all or nothing."""
    from updatesync.updateserver.importer import import_export_cabinet

    with (
        _user_errors(),
        open_store(data, database) as store,
        _progress(f"importing {cabinet.name}") as report,
    ):
        result = import_export_cabinet(store, cabinet, progress=report)
    loaded = None
    if content is not None:
        from updatesync.updateserver.content_folder import load_license_terms

        with _user_errors(), open_store(data, database) as store:
            loaded = load_license_terms(store, content)
    if as_json:
        print_json({"import": result, "license_terms": loaded})
        return
    _print_import(result)
    if loaded is not None:
        console.print(
            f"license terms from {content}: {loaded.stored:,} files stored, "
            f"{loaded.missing:,} not in the folder (pending: a sync from an upstream that "
            "serves them completes them)",
            highlight=False,
        )
        for problem in loaded.refused:
            warning(f"{problem}; it was left out")


@server_app.command("export")
def server_export(
    cabinet: Annotated[Path, typer.Argument(help="The export cabinet to write.")],
    data: DataDir = None,
    database: Database = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Export every stored revision as a WSUS export cabinet."""
    with (
        _user_errors(),
        open_store(data, database, existing=True) as store,
        _progress(f"exporting to {cabinet.name}") as report,
    ):
        written = store.export(cabinet, progress=report)
    if as_json:
        print_json({"cabinet": str(cabinet), "revisions": written})
        return
    console.print(f"wrote {written:,} revisions to {cabinet}")


@server_app.command("status")
def server_status(
    data: DataDir = None,
    database: Database = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What the update server holds: revisions, updates, categories, change counter."""
    with _user_errors(), open_store(data, database, existing=True) as store:
        status = store.status()
    if as_json:
        console.print_json(json.dumps(status.to_json()))
    else:
        _print_status(status)


@server_app.command("changes")
def server_changes(
    since: Annotated[int, typer.Option(help="A change counter value, e.g. from status.")],
    data: DataDir = None,
    database: Database = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The revisions that arrived after the change counter stood at SINCE."""
    with _user_errors(), open_store(data, database, existing=True) as store:
        keys = store.changed_since(since)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "since": since,
                    "count": len(keys),
                    "revisions": [{"update_id": k.update_id, "revision": k.revision} for k in keys],
                }
            )
        )
        return
    for key in keys:
        console.print(f"{key.update_id}  rev {key.revision}", highlight=False)
    console.print(f"{len(keys):,} revisions changed since {since}")


@server_app.command("sync")
def server_sync(
    data: DataDir = None,
    database: Database = None,
    upstream: Annotated[
        str,
        typer.Option(
            help="The upstream server's address, e.g. http://wsus.example:8530 "
            "(default: Microsoft Update's server-sync address).",
            callback=upstream_url,
        ),
    ] = MICROSOFT_UPDATE_URL,
    product: Annotated[
        list[str] | None,
        typer.Option(
            help="Subscribe to this product (or family, company) id; repeat. Replaces the "
            "subscribed products once the upstream's categories are in.",
            callback=category_ids,
        ),
    ] = None,
    classification: Annotated[
        list[str] | None,
        typer.Option(help="Subscribe to this classification id; repeat.", callback=category_ids),
    ] = None,
    language: Annotated[
        list[str] | None,
        typer.Option(help="Subscribe to this language code; repeat.", callback=language_codes),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Send no anchors: the upstream lists everything again (only what "
            "this server lacks is fetched).",
        ),
    ] = False,
    replica: Annotated[
        bool,
        typer.Option(
            "--replica",
            help="Sync as a replica of the upstream: also its target groups, deployments "
            "(approvals) and hidden updates (GetDeployments).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Synchronize update metadata from an upstream server (MS-WSUSSS), batch by batch.

    A failed sync keeps every batch it committed: run it again to fetch the rest. A
    replica's groups and deployments are applied all at once, or not at all.
    """
    from updatesync.updateserver.sync import SyncHooks, SyncSettings, sync_from_upstream

    needs_data(data, "sync", "its sync lock (one sync at a time) is kept")
    with (
        _user_errors(),
        open_store(data, database) as store,
        _progress(f"syncing from {upstream}") as report,
    ):
        settings = SyncSettings(
            upstream,
            products=tuple(product or ()),
            classifications=tuple(classification or ()),
            languages=tuple(language or ()),
            full=full,
            replica=replica,
            verify=_plain_http_context(upstream),
        )
        result = sync_from_upstream(store, settings, hooks=SyncHooks(progress=report))
    if as_json:
        print_json(result)
        return
    console.print(
        f"synced from {result.upstream}: {result.new_revisions:,} new, "
        f"{result.changed_revisions:,} changed, {result.expired_revisions:,} expired revisions "
        f"({result.revisions_requested:,} fetched in {result.batches:,} batches); change "
        f"counter {result.change_before} -> {result.change_after} ({result.seconds:.1f} s)",
        highlight=False,
    )
    if result.replica:
        console.print(
            f"replica: {result.other_items:,} other items ({result.target_groups:,} target "
            f"groups, {result.deployments_received:,} deployments, "
            f"{result.dead_deployments:,} dead deployments); {result.hidden_updates:,} hidden "
            f"updates; deployment anchor {result.deployment_anchor}",
            highlight=False,
        )


def _plain_http_context(upstream: str) -> ssl.SSLContext | None:
    """For an http:// upstream, a TLS context that is never used (nothing to verify over plain
    HTTP, and no redirect is followed) and loads no CA bundle: httpx's default loads one, a
    tenth of a delta sync's time. It trusts nothing, so it could not accept a certificate
    anyway. None (the default: the system's trust store) for an https:// upstream."""
    if not upstream.strip().lower().startswith("http://"):
        return None
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@server_app.command("serve")
def server_serve(
    data: DataDir = None,
    database: Database = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 serves the whole network.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            help="Port (WSUS uses 8530 for HTTP, 8531 for HTTPS).", callback=port_in_range
        ),
    ] = 8530,
    upstream: Annotated[
        str | None,
        typer.Option(help="The upstream this server syncs from when asked (POST /api/sync)."),
    ] = None,
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            help="The admin API's token (Authorization: Bearer); created with a new random "
            "token, readable by you only, when missing. Default: <data>/admin.token."
        ),
    ] = None,
    cert: Annotated[
        Path | None,
        typer.Option(
            help="Serve HTTPS only, with this certificate (`updatesync pki issue` makes one); "
            "needs --key."
        ),
    ] = None,
    key: Annotated[Path | None, typer.Option(help="The private key of --cert.")] = None,
    metrics_need_token: Annotated[
        bool, typer.Option(help="/metrics needs the admin token (by default it is open).")
    ] = False,
) -> None:
    """Serve MS-WSUSSS to downstream servers, the admin API (token needed), its OpenAPI
    document (/openapi.json, /docs) and Prometheus metrics (/metrics), until interrupted;
    over HTTPS with --cert and --key."""
    import socket

    from updatesync.roles.serving import bind, serve_forever, url_of
    from updatesync.security.access import (
        TokenFileError,
        load_or_create_token_file,
        static_token_guard,
    )
    from updatesync.security.pki import TlsError, check_server_files
    from updatesync.updateserver.admin_api import (
        ADMIN_API,
        admin_routes,
        service_error_logger,
        upstream_runner,
    )
    from updatesync.updateserver.admin_openapi import openapi_routes
    from updatesync.updateserver.errors import UpdateServerError
    from updatesync.updateserver.metrics import METRICS_PATH, UpdateServerMetrics
    from updatesync.updateserver.store_backend import StoreBackend
    from updatesync.wsusss.service import create_app
    from updatesync.wsusss.soap import SERVER_SYNC_PATH

    folder = needs_data(data, "serve", "its cookie key, admin token and sync lock are kept")
    if (cert is None) != (key is None):
        error("--cert and --key go together: give both to serve HTTPS, or neither")
        raise typer.Exit(2)
    if cert is not None and key is not None:
        try:
            check_server_files(cert, key, where="--cert/--key")
        except TlsError as exc:
            error(str(exc))
            raise typer.Exit(1) from exc
    with _user_errors(), open_store(data, database) as store:
        token_path = admin_token_file or folder / ADMIN_TOKEN_FILE
        try:
            token, created = load_or_create_token_file(token_path)
        except TokenFileError as exc:
            raise UpdateServerError(str(exc)) from exc
        metrics = UpdateServerMetrics(store, socket.getfqdn().lower())
        count = metrics.count_sync
        runner = upstream_runner(store, upstream, on_finished=count) if upstream else None
        on_error = service_error_logger(store)
        app = create_app(
            StoreBackend(store),
            extra_routes=[*admin_routes(store, runner), *openapi_routes(), metrics.route()],
            on_error=on_error,
            on_answer=metrics.count_request,
        )
        protected = [ADMIN_API, METRICS_PATH] if metrics_need_token else [ADMIN_API]
        guarded = static_token_guard(app, token, protect=protected)
        sock = bind(host, port)
        url = url_of(sock, https=cert is not None)
        console.print(
            f"listening on {url}: MS-WSUSSS at {url}{SERVER_SYNC_PATH}, admin API at {url}/api "
            f"(described at {url}/openapi.json), metrics at {url}{METRICS_PATH}"
            + (f"; syncs from {upstream}" if upstream else ""),
            highlight=False,
            markup=False,
        )
        console.print(
            f"the admin API's token is in {token_path}"
            + (" (created now, readable by you only)" if created else "")
            + "; send it as Authorization: Bearer <token>",
            highlight=False,
            markup=False,
        )
        try:
            serve_forever(guarded, sock, ssl_certfile=cert, ssl_keyfile=key)
        finally:
            if runner is not None:
                runner.close()  # a running sync stops at its next batch, before the store


@server_app.command("categories")
def server_categories(
    data: DataDir = None,
    database: Database = None,
    category_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="Only this type (any case): Company, ProductFamily, Product, "
            "UpdateClassification.",
            callback=checked_category_type,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The categories this server holds: the products and classifications to subscribe to.

    On a terminal, a table; piped, one line per category (`type<TAB>id<TAB>title`), every id
    whole (the ids are what `--product` and `--classification` take)."""
    from rich.table import Table

    with _user_errors(), open_store(data, database, existing=True) as store:
        found = store.categories(category_type)
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "id": c.update_id,
                        "type": c.category_type,
                        "title": one_line(c.title),
                        "parents": list(c.parents),
                    }
                    for c in found
                ]
            )
        )
        return
    if not console.is_terminal:
        for c in found:  # as written: Rich would turn the tabs into blanks
            typer.echo(f"{c.category_type or ''}\t{c.update_id}\t{one_line(c.title)}")
        return
    table = Table("type", "id", "title")
    table.columns[1].no_wrap = True
    table.columns[1].min_width = 36
    table.columns[2].overflow = "fold"
    for category in found:
        table.add_row(category.category_type or "", category.update_id, one_line(category.title))
    console.print(table)


@server_app.command("subscription")
def server_subscription(
    data: DataDir = None,
    database: Database = None,
    product: Annotated[
        list[str] | None,
        typer.Option(help="A product (or family, company) id; repeat.", callback=category_ids),
    ] = None,
    classification: Annotated[
        list[str] | None, typer.Option(help="A classification id; repeat.", callback=category_ids)
    ] = None,
    language: Annotated[
        list[str] | None, typer.Option(help="A language code; repeat.", callback=language_codes)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the subscription, or replace it when any option is given."""
    from updatesync.updateserver.store import Subscription

    changing = bool(product or classification or language)
    with _user_errors(), open_store(data, database, existing=not changing) as store:
        if changing:
            store.set_subscription(
                Subscription(
                    tuple(product or ()), tuple(classification or ()), tuple(language or ())
                )
            )
        current = store.subscription()
        titles = {c.update_id: c.title for c in store.categories()}
    shown = {
        "products": list(current.products),
        "classifications": list(current.classifications),
        "languages": list(current.languages),
    }
    if as_json:
        console.print_json(json.dumps(shown))
        return
    for label, ids in (
        ("products", current.products),
        ("classifications", current.classifications),
    ):
        names = ", ".join(f"{titles.get(uid, '?')} ({uid})" for uid in ids) or "none"
        console.print(f"{label}: {names}", highlight=False)
    console.print(f"languages: {', '.join(current.languages) or 'none'}", highlight=False)


def _print_import(result: ImportResult) -> None:
    console.print(
        f"imported {result.source}: {result.records:,} records, "
        f"{result.new_revisions:,} new, {result.unchanged_revisions:,} already stored; "
        f"change counter {result.change_before} -> {result.change_after} "
        f"({result.seconds:.1f} s)",
        highlight=False,
    )
    if result.conflicting:
        shown = ", ".join(str(k) for k in result.conflicting[:5])
        warning(
            f"{len(result.conflicting)} revisions arrived again with a different XML text and "
            f"were kept as first stored: {shown}"
        )


def _print_status(status: StoreStatus) -> None:
    from datetime import datetime

    from rich.table import Table

    table = Table(title="update server", show_header=False)
    table.add_row("revisions", f"{status.revisions:,}")
    table.add_row("updates", f"{status.updates:,}")
    table.add_row("categories", f"{status.categories:,}")
    for kind, count in status.by_type.items():
        table.add_row(f"  {kind} revisions", f"{count:,}")
    for kind, count in status.by_category_type.items():
        table.add_row(f"  {kind} revisions", f"{count:,}")
    table.add_row("change counter", str(status.last_change))
    if status.last_sync:
        last = status.last_sync
        when = datetime.fromisoformat(last["finished_at"]).strftime("%Y-%m-%d %H:%M:%S UTC")
        table.add_row(f"last {last['kind']}", f"{last['result']} at {when}")
    console.print(table)


# -- a site's sync, the demo -----------------------------------------------------------


@app.command("demo")
def demo(
    data: Annotated[
        Path | None, typer.Option("--data", help="Keep the demo's files here (else a temp dir).")
    ] = None,
    updates: Annotated[int, typer.Option(help="Updates in the stand-in catalog.", min=1)] = 3000,
    hierarchy: Annotated[
        Path | None,
        typer.Option(help="Run this hierarchy file instead of the article's example."),
    ] = None,
    port: Annotated[
        int,
        typer.Option(
            help="Port of the top-level site's SMS Provider (0: any free one).",
            callback=port_in_range,
        ),
    ] = 8080,
    console_port: Annotated[
        int, typer.Option(help="Port of the web console (0: any free one).", callback=port_in_range)
    ] = DEFAULT_CONSOLE_PORT,
    once: Annotated[
        bool, typer.Option("--once", help="Exit when the syncs are done (status 0 if they worked).")
    ] = False,
) -> None:
    """The embedded demo: the article's whole hierarchy in one process, syncing.

    A local update server loaded with a generated catalog plays Microsoft Update. Every role
    of the hierarchy (by default the article's: CS1 -> PS1 with SUPs ps1site and ps1sys, PS2;
    SS1 under PS1) runs on its own loopback port. The demo asks CS1's provider to SyncNow
    and shows every site and SUP live while the sync spreads down the tree, then brings next
    month's catalog and syncs again. The web console shows the same (--console-port).
    Without --once, the roles keep serving until Ctrl-C.
    """
    import tempfile
    import threading

    from rich.text import Text

    from updatesync.demo import HierarchyDemo, run_demo

    def keep_serving(running: HierarchyDemo) -> None:
        if once:
            return
        top = running.sites[0]
        web = running.web.url if running.web is not None else "?"
        console.print(
            f"serving; the web console at {web}/, CS1's SMS Provider at {top.url}/docs (try: "
            f"updatesync sync-now --site {top.code} --hierarchy {running.file} --token-file "
            f"{running.admin_token_file}); Ctrl-C to stop",
            highlight=False,
            markup=False,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print("stopping")

    with _user_errors(), tempfile.TemporaryDirectory(prefix="updatesync-demo-") as tmp:
        root = Path(data) if data else Path(tmp)
        console.rule(Text("updatesync demo", style="bold"))
        ok = run_demo(
            root,
            updates=updates,
            hierarchy_file=hierarchy,
            console=console,
            top_port=port,
            console_port=console_port,
            keep_serving=keep_serving,
        )
    if not ok:
        raise typer.Exit(1)


def main() -> None:
    """The `updatesync` command: an unexpected error is one line, its details in a file."""
    quiet_tracebacks()
    last_resort(app)
