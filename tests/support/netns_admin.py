"""What an administrator's host asks a site's SMS Provider, as a script run inside that host's
network namespace (`ip netns exec <admin> python netns_admin.py ...`), so that the test
process itself sends nothing to the hosts' addresses.

    netns_admin.py --ca CA --token-file FILE get URL [URL ...]
        GET each URL with the token; prints the JSON answers as one JSON list, in order (exit
        1 with the status of the first that is not 200).
    netns_admin.py --ca CA --token-file FILE syncs TIMEOUT URL SITE COUNT [URL SITE COUNT ...]
        For each site in turn, long-polls its provider at URL until SITE has finished COUNT
        syncs since its server started (all within TIMEOUT seconds; a child that does not know
        the token yet is asked again); prints the answers (each with the last sync) as one
        JSON object by SITE.

One process asks all it is given: a process per question would start Python each time.

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
    answers = []
    with _client(args) as client:
        for url in args.urls:
            answer = client.get(url)
            if answer.status_code != 200:
                print(f"GET {url}: HTTP {answer.status_code}: {answer.text[:500]}", file=sys.stderr)
                return 1
            answers.append(answer.json())
    print(json.dumps(answers))
    return 0


def _syncs(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    specs = args.specs
    if len(specs) % 3:
        print("syncs: give URL SITE COUNT for each site", file=sys.stderr)
        return 2
    answers: dict[str, dict] = {}
    with _client(args) as client:
        for i in range(0, len(specs), 3):
            url, site, count = specs[i], specs[i + 1], int(specs[i + 2])
            answer = _wait_syncs(client, url, site, count, deadline)
            if answer is None:
                return 1
            answers[site] = answer
    print(json.dumps(answers))
    return 0


def _wait_syncs(
    client: httpx.Client, url: str, site: str, count: int, deadline: float
) -> dict | None:
    """The site's answer once it has finished `count` syncs, None (said on stderr) if not
    before `deadline`."""
    path = f"{url.rstrip('/')}/api/sites/{site}/syncs"
    answer: dict = {}
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        wait = max(1, min(30, int(left)))
        response = client.get(path, params={"after": count - 1, "wait": wait})
        if response.status_code == 401 and "is not known at site" in response.text:
            # The token was made at the top-level site: a child knows it once its database
            # replication has brought it (before its first sync ends), and nothing here can
            # await that: ask again shortly.
            time.sleep(0.2)
            continue
        if response.status_code != 200:
            print(
                f"GET {path}: HTTP {response.status_code}: {response.text[:500]}",
                file=sys.stderr,
            )
            return None
        answer = response.json()
        if answer["completed"] >= count:
            return answer
    print(
        f"site {site} finished {answer.get('completed')} of {count} syncs in time; "
        f"its last: {json.dumps(answer.get('last'))}",
        file=sys.stderr,
    )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ca", required=True)
    parser.add_argument("--token-file", required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("get")
    get.add_argument("urls", nargs="+")
    syncs = commands.add_parser("syncs")
    syncs.add_argument("timeout", type=float)
    syncs.add_argument("specs", nargs="+")
    args = parser.parse_args(argv)
    try:
        return _get(args) if args.command == "get" else _syncs(args)
    except httpx.HTTPError as exc:
        print(f"{args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
