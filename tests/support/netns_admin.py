"""What an administrator's host asks a site's SMS Provider, as a script run inside that host's
network namespace (`ip netns exec <admin> python netns_admin.py ...`), so that the test
process itself sends nothing to the hosts' addresses.

    netns_admin.py --ca CA --token-file FILE get URL
        GET URL with the token; prints the JSON answer (exit 1 with the status otherwise).
    netns_admin.py --ca CA --token-file FILE syncs URL SITE COUNT TIMEOUT
        Long-polls the site's provider at URL until SITE has finished COUNT syncs since its
        server started (within TIMEOUT seconds); prints the answer (the last sync).

Both verify the provider's certificate against the hierarchy's CA (its host name too).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import httpx

from updatesync.security.pki import client_context


def _client(args: argparse.Namespace) -> httpx.Client:
    token = Path(args.token_file).read_text().strip()
    return httpx.Client(
        headers={"Authorization": f"Bearer {token}"},
        verify=client_context(Path(args.ca)),
        timeout=70,
    )


def _get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        answer = client.get(args.url)
    if answer.status_code != 200:
        print(f"GET {args.url}: HTTP {answer.status_code}: {answer.text[:500]}", file=sys.stderr)
        return 1
    print(json.dumps(answer.json()))
    return 0


def _syncs(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    path = f"{args.url.rstrip('/')}/api/sites/{args.site}/syncs"
    answer: dict = {}
    with _client(args) as client:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            wait = max(1, min(30, int(left)))
            response = client.get(path, params={"after": args.count - 1, "wait": wait})
            if response.status_code != 200:
                print(
                    f"GET {path}: HTTP {response.status_code}: {response.text[:500]}",
                    file=sys.stderr,
                )
                return 1
            answer = response.json()
            if answer["completed"] >= args.count:
                print(json.dumps(answer))
                return 0
    print(
        f"site {args.site} finished {answer.get('completed')} of {args.count} syncs within "
        f"{args.timeout:g} s; its last: {json.dumps(answer.get('last'))}",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ca", required=True)
    parser.add_argument("--token-file", required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("get")
    get.add_argument("url")
    syncs = commands.add_parser("syncs")
    syncs.add_argument("url")
    syncs.add_argument("site")
    syncs.add_argument("count", type=int)
    syncs.add_argument("timeout", type=float)
    args = parser.parse_args(argv)
    try:
        return _get(args) if args.command == "get" else _syncs(args)
    except httpx.HTTPError as exc:
        print(f"{args.command} {args.url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
