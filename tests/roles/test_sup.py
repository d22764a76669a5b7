"""A SUP's `/metrics` with `metrics_need_token`: `SiteTokenGuard` asks the SUP's site server
whether it knows the token (a stand-in SMS Provider's `GET /api/whoami` here), remembers a
token it accepted, refuses one it does not know, and says so when the site cannot be asked."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from updatesync.roles.serving import BackgroundServer
from updatesync.roles.sup import SiteTokenGuard

GOOD = "usa_1_good"


def _site(asked: list[str]) -> Starlette:
    def whoami(request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        asked.append(token)
        if token == GOOD:
            return JSONResponse({"user": "prometheus", "role": "Read-only Analyst"})
        return JSONResponse({"detail": "refused: unknown token"}, status_code=401)

    return Starlette(routes=[Route("/api/whoami", whoami)])


def _sup(site_url: str) -> SiteTokenGuard:
    routes = [
        Route("/metrics", lambda _r: PlainTextResponse("updatesync_build_info 1\n")),
        Route("/other", lambda _r: PlainTextResponse("not guarded")),
    ]
    return SiteTokenGuard(Starlette(routes=routes), site_url, verify=False, site="PS1")


def test_the_sup_takes_a_token_its_site_server_knows_and_remembers_it() -> None:
    asked: list[str] = []
    with (
        BackgroundServer(_site(asked)) as site,
        BackgroundServer(_sup(site.url)) as sup,
        httpx.Client(base_url=sup.url, timeout=30) as client,
    ):
        bare = client.get("/metrics")
        unknown = client.get("/metrics", headers={"authorization": "Bearer usa_2_bad"})
        good = [client.get("/metrics", headers={"authorization": f"Bearer {GOOD}"}) for _ in "ab"]
        other = client.get("/other")

    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    assert "no token" in bare.json()["detail"]
    assert unknown.status_code == 401
    assert "site server PS1 does not know this token" in unknown.json()["detail"]
    assert [g.status_code for g in good] == [200, 200]
    assert good[0].text == "updatesync_build_info 1\n"
    assert asked == ["usa_2_bad", GOOD]  # the good token asked once, then remembered
    assert other.status_code == 200


def test_a_site_server_that_does_not_answer_is_a_503_naming_it() -> None:
    with BackgroundServer(_site([])) as site:
        gone = site.url
    with BackgroundServer(_sup(gone)) as sup:
        answer = httpx.get(
            f"{sup.url}/metrics", headers={"authorization": f"Bearer {GOOD}"}, timeout=30
        )
    assert answer.status_code == 503
    assert "site server PS1 does not answer" in answer.json()["detail"]
