"""The web console over the article's hierarchy running in this process: every page renders
from the sites' SMS Providers (over HTTP, nothing else), the sync buttons reach the top-level
site, the timeline draws every phase of every site, the filters filter, and a site that does
not answer is shown grey with the reason, never as an error page. Each console here is used
by a Full Administrator signed in through its login form (`console_login`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from console_login import SignedIn, console_user
from hierarchy_inprocess import SITE_CODES, InProcessHierarchy
from lxml import html as lxml_html

from updatesync.config import Site, Sup
from updatesync.console import create_console_app
from updatesync.console.providers import ProviderDown
from updatesync.console.timeline import build_timeline
from updatesync.roles.serving import BackgroundServer
from updatesync.vocabulary import CATALOGUE

SUPS = (
    "cs1site.contoso.com",
    "ps1site.contoso.com",
    "ps1sys.contoso.com",
    "ps2site.contoso.com",
    "ss1site.contoso.com",
)
PS2_SUP = "sup:ps2site.contoso.com"


SIGNED_IN: dict[str, SignedIn] = {}
"""The signed-in user of each running console, by the console's address."""


def signed_in(h: InProcessHierarchy, url: str) -> SignedIn:
    """A Full Administrator signed in to the console at `url` (kept for `get`)."""
    SIGNED_IN[url] = console_user(url, h.url("CS1"), h.admin(), verify=h.verify)
    return SIGNED_IN[url]


def get(url: str, **kwargs: object) -> httpx.Response:
    """GET `url` of a console as its signed-in user."""
    parts = urlsplit(url)
    return SIGNED_IN[f"{parts.scheme}://{parts.netloc}"].client.get(url, **kwargs)  # type: ignore[arg-type]


def page(url: str, **params: object) -> lxml_html.HtmlElement:
    answer = get(url, params=params)
    assert answer.status_code == 200, answer.text
    return lxml_html.fromstring(answer.text)


def texts(tree: lxml_html.HtmlElement, xpath: str) -> list[str]:
    return [" ".join(e.text_content().split()) for e in tree.xpath(xpath)]


def post_sync(url: str, full: str, **headers: str) -> httpx.Response:
    """A sync button of the console at `url` pressed (its form: `full` and the CSRF token,
    posted from the console's page, unless `headers` say otherwise)."""
    user = SIGNED_IN[url]
    return user.client.post(
        url + "/sync",
        data={"full": full, "csrf": user.csrf},
        headers=headers or user.same_origin(),
    )


def next_syncs(h: InProcessHierarchy) -> dict[str, int]:
    """Per site, the count its next sync will reach."""
    return {code: len(h.results(code)) + 1 for code in SITE_CODES}


def wait_for(h: InProcessHierarchy, counts: dict[str, int]) -> None:
    for code, count in counts.items():
        h.wait(code, count)
    h.wait_idle()


@dataclass
class Console:
    h: InProcessHierarchy
    url: str
    before: lxml_html.HtmlElement
    """The hierarchy page before any sync."""
    live_during_sync: str
    """data-live of the hierarchy fragment just after the sync was requested."""
    sync_answer: httpx.Response


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    with (
        InProcessHierarchy(tmp_path_factory.mktemp("hierarchy"), updates=120) as h,
        BackgroundServer(
            create_console_app(h.hierarchy, auth=h.signed("console"), verify=h.verify)
        ) as server,
    ):
        signed_in(h, server.url)
        before = page(server.url + "/")
        counts = next_syncs(h)
        answer = post_sync(server.url, "1")
        live = page(server.url + "/fragments/hierarchy").xpath("//*[@data-live]/@data-live")[0]
        wait_for(h, counts)
        yield Console(h, server.url, before, live, answer)
        SIGNED_IN.pop(server.url).close()


# -- the hierarchy -------------------------------------------------------------------------


def test_the_picture_shows_every_site_with_its_sups_and_the_parent_links(
    console: Console,
) -> None:
    for tree in (console.before, page(console.url + "/")):
        sites = tree.xpath("//svg//g[contains(@class, 'site ')]")
        assert [g.get("data-site") for g in sites] == list(SITE_CODES)
        assert [g.get("data-sup") for g in tree.xpath("//svg//g[@data-sup]")] == list(SUPS)
        links = {(p.get("data-parent"), p.get("data-child")) for p in tree.xpath("//svg//path")}
        assert links == {("CS1", "PS1"), ("CS1", "PS2"), ("PS1", "SS1")}
    # Before the first sync every site is idle; the box says its type.
    states = console.before.xpath("//svg//g[@data-site and not(@data-sup)]/@data-state")
    assert states == ["idle"] * 4
    assert "central administration site" in texts(console.before, "//svg//g[@data-site='CS1']")[0]


def test_the_sync_button_requests_syncnow_at_the_top_and_every_site_turns_green(
    console: Console,
) -> None:
    assert console.sync_answer.status_code == 303
    assert console.sync_answer.headers["location"] == "/?requested=full"
    assert console.live_during_sync == "true"  # the page refreshes itself while it runs
    assert all(r.succeeded for code in SITE_CODES for r in console.h.results(code))
    tree = page(console.url + "/", requested="full")
    assert texts(tree, "//p[@role='status']") == [
        "Full synchronization requested at CS1; the picture follows it as it spreads."
    ]
    version = console.h.db("CS1").content.version()
    assert version > 0
    for g in tree.xpath("//svg//g[@data-site and not(@data-sup)]"):
        assert (g.get("data-state"), g.get("data-version")) == ("done", str(version))
    assert set(tree.xpath("//svg//g[@data-sup]/@data-state")) == {"done"}
    fragment = page(console.url + "/fragments/hierarchy")
    assert fragment.xpath("//*[@data-live]/@data-live") == ["false"]


def test_every_asset_ships_with_the_console(console: Console) -> None:
    tree = page(console.url + "/")
    assets = tree.xpath("//script/@src | //link/@href | //img/@src")
    assert sorted(assets) == ["/static/console.css", "/static/console.js"]
    for asset in assets:
        answer = get(console.url + asset)
        assert answer.status_code == 200 and answer.text
    assert "data-fragment" in get(console.url + "/static/console.js").text


# -- one site --------------------------------------------------------------------------------


def test_a_site_page_shows_the_sync_status_of_the_site_and_of_each_sup(console: Console) -> None:
    tree = page(console.url + "/sites/PS1")
    facts = dict(
        zip(
            texts(tree, "//dl[@class='facts']/dt"),
            texts(tree, "//dl[@class='facts']/dd"),
            strict=True,
        )
    )
    assert facts["Sync status"] == "6702 WSUS Synchronization done."
    assert facts["Error"] == "none"
    assert facts["Content version"] == str(console.h.db("CS1").content.version())
    assert facts["Last successful sync"].startswith(str(datetime.now(UTC).year))
    header = texts(tree, "//table[contains(@class, 'sup-table')]//th")
    assert header == [
        "WSUSServerName",
        "Role",
        "WSUSSourceServer",
        "LastSyncState",
        "LastSyncStateTime",
        "LastSyncErrorCode",
        "LastSuccessfulSyncTime",
        "SyncCatalogVersion",
        "ReplicationLinkStatus",
        "LastReplicationLinkCheckTime",
        "Content vs. upstream",
    ]
    rows = {
        r.get("data-sup"): texts(r, "./td")
        for r in tree.xpath("//table[contains(@class, 'sup-table')]//tr[@data-sup]")
    }
    assert list(rows) == ["ps1site.contoso.com", "ps1sys.contoso.com"]
    assert rows["ps1site.contoso.com"][1:4] == ["default", "cs1site.contoso.com", "6702 done"]
    assert rows["ps1sys.contoso.com"][1:4] == ["replica", "ps1site.contoso.com", "6702 done"]
    assert rows["ps1site.contoso.com"][8] == "0 (healthy)"
    # Each SUP proven equal to its upstream by the consistency audit of its last sync, with
    # the time.
    year = str(datetime.now(UTC).year)
    assert rows["ps1site.contoso.com"][10].startswith("proven equal to cs1site.contoso.com " + year)
    assert rows["ps1sys.contoso.com"][10].startswith("proven equal to ps1site.contoso.com " + year)
    # Its recent messages, newest first, with the standard texts.
    assert texts(tree, "//table[contains(@class, 'messages-table')]//tr[@data-id]/td[3]")[:2] == [
        "6702",
        "6706",
    ]
    assert page(console.url + "/fragments/sites/PS1").xpath("//dl[@class='facts']")


def test_an_unknown_site_is_a_page_saying_which_sites_there_are(console: Console) -> None:
    answer = get(console.url + "/sites/XX9")
    assert answer.status_code == 404
    assert (
        "The hierarchy has no site &#39;XX9&#39;; its sites are CS1, PS1, PS2, SS1." in answer.text
    )


# -- status messages -------------------------------------------------------------------------


def message_rows(url: str, **params: object) -> list[tuple[str, int, str]]:
    """(site, message id, description) of each row of the status messages page."""
    tree = page(url + "/messages", **params)
    return [
        (
            r.get("data-site"),
            int(r.get("data-id")),
            " ".join(r.xpath("./td")[-1].text_content().split()),
        )
        for r in tree.xpath("//table[contains(@class, 'messages-table')]//tr[@data-id]")
    ]


def test_status_messages_of_every_site_with_their_standard_texts(console: Console) -> None:
    rows = message_rows(console.url)
    assert {site for site, _, _ in rows} == set(SITE_CODES)
    for _site, message_id, text in rows:
        assert text == CATALOGUE[message_id].text
    assert (
        "CS1",
        6705,
        "WSUS Synchronization in progress. Current phase: Synchronizing site database.",
    ) in rows
    assert ("PS1", 6706, CATALOGUE[6706].text) in rows
    assert ("SS1", 6701, "WSUS Synchronization started.") in rows


def test_the_filters_filter(console: Console) -> None:
    assert {(s, i) for s, i, _ in message_rows(console.url, id="6702")} == {
        (code, 6702) for code in SITE_CODES
    }
    assert {(s, i) for s, i, _ in message_rows(console.url, id="6701, 6702", site="PS2")} == {
        ("PS2", 6701),
        ("PS2", 6702),
    }
    assert {s for s, _, _ in message_rows(console.url, site="SS1")} == {"SS1"}
    assert message_rows(console.url, severity="E") == []
    assert len(message_rows(console.url, severity="I")) == len(message_rows(console.url))
    assert len(message_rows(console.url, component="SMS_WSUS_SYNC_MANAGER")) == len(
        message_rows(console.url)
    )
    assert message_rows(console.url, component="SMS_HIERARCHY_MANAGER") == []
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    past = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert message_rows(console.url, since=future) == []
    assert len(message_rows(console.url, since=past, until=future)) == len(
        message_rows(console.url)
    )
    assert message_rows(console.url, until=past) == []
    assert len(message_rows(console.url, limit="3")) == 3
    # The form keeps what was asked.
    tree = page(console.url + "/messages", site="PS2", severity="I", id="6702")
    assert tree.xpath("//select[@name='site']/option[@selected]/@value") == ["PS2"]
    assert tree.xpath("//input[@name='id']/@value") == ["6702"]


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"id": "67o2"}, "message id: &#39;67o2&#39; is not a list of numbers"),
        ({"site": "XX9"}, "site: the hierarchy has no site &#39;XX9&#39;"),
        ({"severity": "Q"}, "severity: &#39;Q&#39; is not I, W or E"),
        ({"since": "yesterday"}, "since: &#39;yesterday&#39; is not a time"),
    ],
)
def test_a_filter_that_cannot_be_used_says_why(
    console: Console, params: dict[str, str], problem: str
) -> None:
    answer = get(console.url + "/messages", params=params)
    assert answer.status_code == 400
    assert problem in answer.text


def test_no_alert_after_a_good_sync(console: Console) -> None:
    tree = page(console.url + "/alerts")
    assert texts(tree, "//p[@class='empty']") == ["No alerts: no sync has failed."]


# -- the timeline ----------------------------------------------------------------------------


def bars(tree: lxml_html.HtmlElement) -> dict[tuple[str, str | None], list[int]]:
    """(site, replica SUP or None) → the phases of its bars in the order drawn, which is the
    order of their start times."""
    found: dict[tuple[str, str | None], list[tuple[datetime, int]]] = {}
    for rect in tree.xpath("//svg//rect[@data-phase]"):
        key = (rect.get("data-site"), rect.get("data-sup"))
        start = datetime.fromisoformat(rect.get("data-start"))
        found.setdefault(key, []).append((start, int(rect.get("data-phase"))))
    for key, drawn in found.items():
        assert drawn == sorted(drawn, key=lambda d: d[0]), key
    return {key: [phase for _, phase in drawn] for key, drawn in found.items()}


EXPECTED_PHASES = {
    ("CS1", None): [6701, 6704, 6705, 6702],
    ("PS1", None): [6701, 6704, 6702],
    ("PS1", "ps1sys.contoso.com"): [6706],
    ("PS2", None): [6701, 6704, 6702],
    ("SS1", None): [6701, 6704, 6702],
}


def test_the_timeline_has_a_bar_per_phase_per_site_on_one_axis(console: Console) -> None:
    tree = page(console.url + "/timeline")
    assert bars(tree) == EXPECTED_PHASES
    rows = tree.xpath("//svg//g[contains(@class, 'row')]")
    assert [(r.get("data-site"), r.get("data-sup"), r.get("data-state")) for r in rows] == [
        ("CS1", None, "done"),
        ("PS1", None, "done"),
        ("PS1", "ps1sys.contoso.com", "done"),
        ("PS2", None, "done"),
        ("SS1", None, "done"),
    ]
    # The children start after their parent is done: CS1's 6702 before PS1's 6701, and so on.
    x = {
        (r.get("data-site"), int(r.get("data-phase"))): float(r.get("x"))
        for r in tree.xpath("//svg//rect[@data-phase and not(@data-sup)]")
    }
    assert x[("CS1", 6702)] < x[("PS1", 6701)] < x[("PS1", 6702)] < x[("SS1", 6701)]
    assert x[("CS1", 6702)] < x[("PS2", 6701)]
    hover = tree.xpath("//svg//rect[@data-site='CS1'][@data-phase='6704']/title")[0].text
    assert hover.startswith("CS1 — 6704 WSUS Synchronization in progress.")
    assert " UTC, " in hover  # from → to, and how long
    summary = texts(tree, "//p[@class='summary']")[0]
    assert "at CS1; 4 of 4 sites done, 0 failed" in summary
    assert page(console.url + "/fragments/timeline").xpath("//*[@data-live='false']")


def test_the_timeline_of_the_sync_starting_at_a_given_time(console: Console) -> None:
    started = console.h.db("CS1").messages.find(site_code="CS1", message_id=[6701])[-1].time
    tree = page(console.url + "/timeline", since=started.isoformat())
    assert bars(tree) == EXPECTED_PHASES
    later = (started + timedelta(hours=1)).isoformat()
    tree = page(console.url + "/timeline", since=later)
    assert texts(tree, "//p[contains(@class, 'notice')]")[0].startswith(
        "No sync of the hierarchy started at or after"
    )


# -- failures and sites that do not answer ---------------------------------------------------


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[InProcessHierarchy, str]]:
    with (
        InProcessHierarchy(tmp_path / "hierarchy", updates=60) as h,
        BackgroundServer(
            create_console_app(h.hierarchy, auth=h.signed("console"), timeout=3, verify=h.verify)
        ) as server,
    ):
        signed_in(h, server.url)
        yield h, server.url
        SIGNED_IN.pop(server.url).close()


def test_a_failure_shows_red_with_its_6703_and_alert_and_a_stopped_site_grey(
    fresh: tuple[InProcessHierarchy, str],
) -> None:
    h, url = fresh
    h.stop_role(PS2_SUP)  # PS2's update server refuses connections
    counts = next_syncs(h)
    answer = post_sync(url, "0")
    assert answer.status_code == 303
    wait_for(h, counts)

    tree = page(url + "/")
    states = {
        g.get("data-site"): g.get("data-state")
        for g in tree.xpath("//svg//g[@data-site and not(@data-sup)]")
    }
    assert states == {"CS1": "done", "PS1": "done", "PS2": "failed", "SS1": "done"}
    assert tree.xpath("//svg//g[@data-sup='ps2site.contoso.com']/@data-state") == ["failed"]
    assert "actively refused it" in texts(tree, "//tr[@data-site='PS2']/td[last()]")[0]

    failures = message_rows(url, id="6703")
    assert [(s, i) for s, i, _ in failures] == [("PS2", 6703)]
    assert failures[0][2].startswith("WSUS Synchronization failed. Message: ")
    assert message_rows(url, severity="E") == failures

    alerts = page(url + "/alerts")
    groups = alerts.xpath("//tbody[contains(@class, 'alert-group')]")
    assert [(g.get("data-site"), g.get("data-instance"), g.get("data-state")) for g in groups] == [
        ("PS2", "ps2site.contoso.com", "raised")
    ]
    assert (
        page(url + "/alerts", state="canceled").xpath("//tbody[contains(@class, 'alert-group')]")
        == []
    )

    # Why it failed and when it is tried again (issue 15): PS2's page and its alert say it.
    retry_at = h.site("PS2").next_retry_at()
    assert retry_at is not None
    ps2 = page(url + "/sites/PS2")
    failure = "//section[@data-failure]//dd[@data-fact='{}']"
    assert "actively refused it" in texts(ps2, failure.format("cause"))[0]
    assert texts(ps2, failure.format("source"))[0].startswith(
        "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer"
    )
    assert (
        f"{retry_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}."
        in texts(ps2, failure.format("next-retry"))[0]
    )
    assert page(url + "/sites/PS1").xpath("//section[@data-failure]") == []
    why = texts(alerts, "//tr[@class='occurrence']/td[@data-fact='cause']")[0]
    assert "actively refused it" in why
    assert "AdminProxy.CreateUpdateServer" in why

    timeline = page(url + "/timeline")
    assert bars(timeline)[("PS2", None)] == [6701, 6704, 6703]
    assert timeline.xpath("//svg//g[@data-site='PS2'][not(@data-sup)]/@data-state") == ["failed"]
    failed = timeline.xpath("//svg//rect[@data-site='PS2'][contains(@class, 'failed')]/@data-phase")
    assert sorted(failed) == ["6703", "6704"]

    # A site whose provider does not answer: grey, with the reason, on every page; no 500.
    h.stop_role("site:SS1")
    tree = page(url + "/")
    assert tree.xpath("//svg//g[@data-site='SS1'][not(@data-sup)]/@data-state") == ["unreachable"]
    assert tree.xpath("//svg//g[@data-sup='ss1site.contoso.com']/@data-state") == ["unreachable"]
    reason = texts(tree, "//tr[@data-site='SS1']/td[last()]")[0]
    assert reason.startswith("The SMS Provider of site SS1 at https://127.0.0.1:")
    assert "cannot be reached" in reason
    site = page(url + "/sites/SS1")
    assert texts(site, "//p[contains(@class, 'unreachable')]")[0].startswith("SS1 does not answer.")
    messages = page(url + "/messages")
    assert messages.xpath("//p[@data-down]/@data-down") == ["SS1"]
    assert page(url + "/alerts").xpath("//p[@data-down]/@data-down") == ["SS1"]
    timeline = page(url + "/timeline")
    assert timeline.xpath("//svg//g[@data-site='SS1']/@data-state") == ["unreachable"]

    # The top-level site down: the picture still draws; a sync cannot be requested, and the
    # page says why.
    h.stop_role("site:CS1")
    assert page(url + "/").xpath("//svg//g[@data-site='CS1'][not(@data-sup)]/@data-state") == [
        "unreachable"
    ]
    answer = post_sync(url, "1")
    assert answer.status_code == 502
    assert "The sync was not requested: SyncNow goes to the top-level site CS1" in answer.text
    assert "does not answer" in texts(page(url + "/timeline"), "//p[contains(@class, 'notice')]")[0]


def test_a_sync_is_not_requested_from_another_site(fresh: tuple[InProcessHierarchy, str]) -> None:
    h, url = fresh
    answer = post_sync(url, "1", origin="http://evil.example")
    assert answer.status_code == 403
    assert h.db("CS1").sync.status().sync_now is None


# -- the timeline's model alone ----------------------------------------------------------------


def at(seconds: float) -> datetime:
    return datetime(2014, 1, 16, 18, 53, tzinfo=UTC) + timedelta(seconds=seconds)


def message(site: str, message_id: int, seconds: float, *strings: str) -> dict[str, object]:
    return {
        "SiteCode": site,
        "MessageID": message_id,
        "Time": at(seconds),
        "InsertionStrings": [*strings, *[""] * (10 - len(strings))],
    }


def test_the_model_a_top_replica_after_6702_and_a_child_replica_that_failed() -> None:
    cs1 = Site("CS1", "cs1.contoso.com", "cas", sups=_sups("cs1a", "cs1b"))
    ps1 = Site("PS1", "ps1.contoso.com", "primary", parent="CS1", sups=_sups("ps1a", "ps1b"))
    ps2 = Site("PS2", "ps2.contoso.com", "primary", parent="CS1", sups=_sups("ps2a"))
    messages = {
        "CS1": [
            message("CS1", 6701, 0),
            message("CS1", 6704, 1),
            message("CS1", 6705, 5),
            message("CS1", 6702, 7),
            message("CS1", 6706, 7.1),
        ],
        "PS1": [
            message("PS1", 6701, 9),
            message("PS1", 6704, 9.5),
            message("PS1", 6706, 12),
            message("PS1", 6703, 13, "UpdateServer x", "Replica WSUS server ps1b.contoso.com: no"),
            message("PS1", 6702, 13.5),
        ],
        "PS2": ProviderDown("PS2", "http://ps2", "cannot be reached (refused)"),
    }
    timeline = build_timeline([cs1, ps1, ps2], [at(0)], messages, [], now=at(20))
    rows = {(r.code, r.sup): r for r in timeline.rows}
    assert list(rows) == [
        ("CS1", None),
        ("CS1", "cs1b.contoso.com"),
        ("PS1", None),
        ("PS1", "ps1b.contoso.com"),
        ("PS2", None),
    ]
    assert [b.phase for b in rows[("CS1", None)].bars] == [6701, 6704, 6705, 6702]
    assert rows[("CS1", None)].bars[2].seconds == 2
    assert [b.phase for b in rows[("CS1", "cs1b.contoso.com")].bars] == [6706]
    assert [(b.phase, b.failed) for b in rows[("PS1", "ps1b.contoso.com")].bars] == [
        (6706, True),
        (6703, True),
    ]
    assert rows[("PS1", None)].state == "done"  # a replica's failure leaves the site's sync
    assert rows[("PS1", "ps1b.contoso.com")].state == "failed"
    assert rows[("PS2", None)].state == "unreachable"
    assert "cannot be reached" in rows[("PS2", None)].note
    assert not timeline.live
    assert timeline.summary.endswith("2 of 3 sites done, 0 failed, span 13.5 s")


def _sups(*names: str) -> tuple[Sup, ...]:
    return tuple(Sup(f"{n}.contoso.com") for n in names)
