"""`updatesync user ...` and `updatesync token ...`: users, security roles and API tokens,
managed through the top-level site's SMS Provider over HTTP (as ConfigMgr's PowerShell
cmdlets go through the SMS Provider).

- `user add NAME --role ROLE [--password-file FILE]` (the password is asked for when no
  file is given), `user password NAME [--password-file FILE]` (a new password, e.g. for the
  first Full Administrator `admin`, made without one), `user list`, `user remove NAME`;
- `token new NAME [--expires-days N]` (the token is printed this once), `token list`,
  `token revoke ID`.

Each finds the provider with `--hierarchy FILE` (its top-level site) or `--provider URL`,
and authenticates with the token in `--token-file` (or the environment's
`UPDATESYNC_TOKEN_FILE`, or `UPDATESYNC_TOKEN` itself); with neither, the Full
Administrator's `admin.token` in the top-level site's data folder, when this machine holds
it. Managing users and tokens needs the Full Administrator role. `provider_call` is what
every command that calls a provider (`sync-now` too) goes through.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from updatesync.cli.output import console, err_console, error
from updatesync.cli.serve import LOOPBACK_COPY

if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping

ADMIN_TOKEN_FILE = "admin.token"
"""The Full Administrator's token file in the top-level site's data folder (the site
server's `site.api.auth.ADMIN_TOKEN_FILE`, named here so that a command that only reads it
does not load the SMS Provider)."""

TOKEN_FILE_ENV = "UPDATESYNC_TOKEN_FILE"
TOKEN_ENV = "UPDATESYNC_TOKEN"

user_app = typer.Typer(help="Administrative users and their security roles.")
token_app = typer.Typer(help="API tokens for the SMS Provider.")

HierarchyOption = Annotated[
    Path | None,
    typer.Option(help="The hierarchy file: the top-level site's SMS Provider is called."),
]
ProviderOption = Annotated[
    str | None, typer.Option(help="The SMS Provider's address, instead of --hierarchy.")
]
CaOption = Annotated[
    Path | None,
    typer.Option(
        help="Verify an https provider against this CA bundle (default: the hierarchy "
        "file's [hierarchy.tls] ca with --hierarchy; else the system's trust store)."
    ),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help=f"A file holding the API token to call the provider with (else ${TOKEN_FILE_ENV}, "
        f"${TOKEN_ENV}, or the top-level site's {ADMIN_TOKEN_FILE} when this machine has it).",
    ),
]


def fail(message: str) -> NoReturn:
    """Print one error line (no markup read in `message`) and exit with status 1."""
    error(message)
    raise typer.Exit(1)


def resolve_token(token_file: Path | None, hierarchy: Path | None) -> str | None:
    """The token to send: `--token-file`, `$UPDATESYNC_TOKEN_FILE`, `$UPDATESYNC_TOKEN`, then
    the top-level site's admin token file of `hierarchy` when it is readable here."""
    from updatesync.config import HierarchyError, load_hierarchy
    from updatesync.security.access import TokenFileError, read_token_file

    named = token_file or (
        Path(os.environ[TOKEN_FILE_ENV]) if os.environ.get(TOKEN_FILE_ENV) else None
    )
    if named is not None:
        try:
            return read_token_file(named)
        except TokenFileError as exc:
            fail(str(exc))
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip()
    if hierarchy is not None:
        try:
            h = load_hierarchy(hierarchy)
        except HierarchyError:
            return None
        candidate = h.data_dir / h.top.code / ADMIN_TOKEN_FILE
        try:
            return read_token_file(candidate)
        except TokenFileError:
            return None
    return None


@dataclass(frozen=True)
class ProviderEndpoint:
    """Where an SMS Provider answers, and how its certificate is verified."""

    url: str
    verify: ssl.SSLContext | bool = True
    hint: str = ""
    """Said after "did not answer": where else the provider may be."""


def provider_url(
    hierarchy: Path | None,
    provider: str | None,
    site: str | None = None,
    *,
    ca: Path | None = None,
) -> ProviderEndpoint:
    """The provider of `site` (the top-level site when None) in `hierarchy`, or `provider`;
    verified against `ca`, else the hierarchy's CA, else the system's trust store."""
    from updatesync.config import HierarchyError, load_hierarchy
    from updatesync.security.pki import TlsError, client_context

    verify: ssl.SSLContext | bool = True
    hint = ""
    try:
        if hierarchy is not None:
            h = load_hierarchy(hierarchy)
            url = (h.site(site) if site else h.top).url
            if ca is None and h.tls is not None:
                verify = client_context(h.tls.ca, f"[hierarchy.tls] ca of {hierarchy}")
            copy = h.data_dir / LOOPBACK_COPY
            if copy.is_file() and copy.resolve() != hierarchy.resolve():
                hint = (
                    f"; if `updatesync serve {hierarchy} --role all` runs this hierarchy, it "
                    f"runs it from {copy}: give --hierarchy {copy}"
                )
        elif provider is None:
            fail("say where the SMS Provider is: --hierarchy FILE or --provider URL")
        else:
            url = provider.rstrip("/")
        if ca is not None:
            verify = client_context(ca, "--ca")
    except (HierarchyError, TlsError) as exc:
        fail(str(exc))
    except KeyError as exc:
        fail(str(exc.args[0]) if exc.args else f"no site {site!r} in {hierarchy}")
    return ProviderEndpoint(url, verify, hint)


def provider_call(
    endpoint: ProviderEndpoint,
    method: str,
    path: str,
    token: str | None,
    *,
    json: Any = None,
    expect: tuple[int, ...] = (200,),
    params: dict[str, Any] | None = None,
    timeout: float = 30,
) -> Any:
    """Call the provider at `endpoint`; its JSON answer, or one error line and exit 1."""
    body, _ = provider_exchange(
        endpoint, method, path, token, json=json, expect=expect, params=params, timeout=timeout
    )
    return body


def provider_exchange(
    endpoint: ProviderEndpoint,
    method: str,
    path: str,
    token: str | None,
    *,
    json: Any = None,
    expect: tuple[int, ...] = (200,),
    params: dict[str, Any] | None = None,
    timeout: float = 30,
) -> tuple[Any, Mapping[str, str]]:
    """`provider_call`, with the answer's headers (a 202's `Location`)."""
    import httpx

    url = endpoint.url
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.request(
            method,
            url + path,
            json=json,
            params=params,
            headers=headers,
            timeout=timeout,
            verify=endpoint.verify,
        )
    except httpx.InvalidURL as exc:
        fail(f"the provider address {url!r} is not valid ({exc}); give it as e.g. {EXAMPLE}")
    except httpx.HTTPError as exc:
        fail(f"the SMS Provider at {url} did not answer: {exc}{endpoint.hint}")
    try:
        body = answer.json() if answer.content else None
    except ValueError:
        body = _NOT_JSON
    if answer.status_code in expect and body is not _NOT_JSON:
        return body, answer.headers
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error") or body
    elif body is _NOT_JSON or body is None:
        detail = " ".join(answer.text[:200].split()) or "no answer text"
    else:
        detail = body
    hint = ""
    if answer.status_code == 401 and token is None:
        hint = f" (no token was sent: give --token-file FILE or set ${TOKEN_FILE_ENV})"
    fail(f"{url}{path}: HTTP {answer.status_code}: {detail}{hint}")


EXAMPLE = "http://127.0.0.1:8080"
_NOT_JSON = object()


def _read_password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            lines = password_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read the password file {password_file}: {exc}")
        if not lines or not lines[0]:
            fail(
                f"the password file {password_file} is empty; write the password on its first line"
            )
        return lines[0]
    password: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return password


# -- users ------------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user name.")],
    role: Annotated[
        str,
        typer.Option(
            help='"Full Administrator", "Software Update Manager" or "Read-only Analyst" (any '
            'case; "full-administrator" works too).'
        ),
    ],
    password_file: Annotated[
        Path | None, typer.Option(help="Read the password from this file's first line.")
    ] = None,
    hierarchy: HierarchyOption = None,
    provider: ProviderOption = None,
    ca: CaOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Add a user with a security role (its password is asked for, or read from a file)."""
    from updatesync.security.access import parse_role

    try:
        security_role = parse_role(role)
    except ValueError as exc:
        fail(str(exc))
    url = provider_url(hierarchy, provider, ca=ca)
    token = resolve_token(token_file, hierarchy)
    password = _read_password(password_file)
    user = provider_call(
        url,
        "POST",
        "/api/users",
        token,
        json={"name": name, "role": security_role.value, "password": password},
        expect=(201,),
    )
    console.print(f"added user {user['name']} ({user['role']})", markup=False, highlight=False)


@user_app.command("password")
def user_password(
    name: Annotated[str, typer.Argument(help="The user name.")],
    password_file: Annotated[
        Path | None, typer.Option(help="Read the password from this file's first line.")
    ] = None,
    hierarchy: HierarchyOption = None,
    provider: ProviderOption = None,
    ca: CaOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Give a user a password for signing in to the console (asked for, or read from a
    file): the first Full Administrator, admin, has none until it is given one."""
    url = provider_url(hierarchy, provider, ca=ca)
    token = resolve_token(token_file, hierarchy)
    password = _read_password(password_file)
    user = provider_call(
        url, "PUT", f"/api/users/{name}/password", token, json={"password": password}
    )
    console.print(
        f"set the password of user {user['name']} ({user['role']})", markup=False, highlight=False
    )


@user_app.command("list")
def user_list(
    hierarchy: HierarchyOption = None,
    provider: ProviderOption = None,
    ca: CaOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """The users and their security roles."""
    from rich.table import Table

    url = provider_url(hierarchy, provider, ca=ca)
    users = provider_call(url, "GET", "/api/users", resolve_token(token_file, hierarchy))
    table = Table("user", "security role", "password", "added")
    for user in users:
        table.add_row(
            user["name"], user["role"], "yes" if user["has_password"] else "no", user["created"]
        )
    console.print(table)


@user_app.command("remove")
def user_remove(
    name: Annotated[str, typer.Argument(help="The user name.")],
    hierarchy: HierarchyOption = None,
    provider: ProviderOption = None,
    ca: CaOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Remove a user; its tokens stop working."""
    url = provider_url(hierarchy, provider, ca=ca)
    token = resolve_token(token_file, hierarchy)
    user = provider_call(url, "DELETE", f"/api/users/{name}", token)
    console.print(f"removed user {user['name']}", markup=False, highlight=False)


# -- tokens -----------------------------------------------------------------------------------


@token_app.command("new")
def token_new(
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    expires_days: Annotated[
        int | None, typer.Option(help="Days the token is valid (default: until revoked).", min=1)
    ] = None,
    hierarchy: HierarchyOption = None,
    provider: ProviderOption = None,
    ca: CaOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Make an API token for a user; it is printed this once (only its hash is kept)."""
    url = provider_url(hierarchy, provider, ca=ca)
    token = resolve_token(token_file, hierarchy)
    issued = provider_call(
        url,
        "POST",
        "/api/tokens",
        token,
        json={"user": name, "expires_days": expires_days},
        expect=(201,),
    )
    err_console.print(
        f"API token {issued['id']} of user {issued['user']} ({issued['role']}); it is shown "
        "this once, keep it in a file only its user can read:",
        markup=False,
        highlight=False,
    )
    print(issued["token"], flush=True)


@token_app.command("list")
def token_list(
    hierarchy: HierarchyOption = None,
    provider: ProviderOption = None,
    ca: CaOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """The API tokens not revoked (their ids, never the tokens)."""
    from rich.table import Table

    url = provider_url(hierarchy, provider, ca=ca)
    tokens = provider_call(url, "GET", "/api/tokens", resolve_token(token_file, hierarchy))
    table = Table("id", "user", "made", "expires")
    for item in tokens:
        table.add_row(item["id"], item["user"], item["created"], item["expires"] or "never")
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id.")],
    hierarchy: HierarchyOption = None,
    provider: ProviderOption = None,
    ca: CaOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Revoke an API token; it stops working at every site."""
    url = provider_url(hierarchy, provider, ca=ca)
    token = resolve_token(token_file, hierarchy)
    revoked = provider_call(url, "DELETE", f"/api/tokens/{token_id}", token)
    console.print(
        f"revoked token {revoked['id']} of user {revoked['user']}", markup=False, highlight=False
    )
