"""The console's log viewer over the article's hierarchy running in this process: each site's
and SUP's own logs listed and read through the site's SMS Provider, as CMTrace shows them
(errors red, warnings yellow), tailed from a cursor, opened at a status message's or a
timeline bar's time, and no name that is not a log's reaching the provider."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from console_login import console_user
from hierarchy_inprocess import SITE_CODES, InProcessHierarchy
from lxml import html as lxml_html

from updatesync.console import create_console_app
from updatesync.console.log_viewer import log_href
from updatesync.logs.cmtrace import CMTraceLog, read_cmtrace
from updatesync.roles.serving import BackgroundServer
from updatesync.vocabulary import SYNC_MANAGER, WSUS_CONFIGURATION_MANAGER


@dataclass
class Viewer:
    h: InProcessHierarchy
    url: str
    client: object

    def get(self, path: str, **params: object):  # type: ignore[no-untyped-def]
        return self.client.get(self.url + path, params=params)  # type: ignore[attr-defined]

    def page(self, path: str, **params: object) -> lxml_html.HtmlElement:
        answer = self.get(path, **params)
        assert answer.status_code == 200, answer.text
        return lxml_html.fromstring(answer.text)


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viewer]:
    with (
        InProcessHierarchy(tmp_path_factory.mktemp("hierarchy"), updates=30) as h,
        BackgroundServer(
            create_console_app(h.hierarchy, auth=h.signed("console"), verify=h.verify)
        ) as server,
    ):
        user = console_user(server.url, h.url("CS1"), h.admin(), verify=h.verify)
        counts = {code: len(h.results(code)) + 1 for code in SITE_CODES}
        h.sync_now("CS1", full=True)
        for code, count in counts.items():
            h.wait(code, count)
        h.wait_idle()
        try:
            yield Viewer(h, server.url, user.client)
        finally:
            user.close()


def wsyncmgr(h: InProcessHierarchy, code: str) -> CMTraceLog:
    return CMTraceLog(h.site(code).log_dir / "WSyncMgr.log", component=SYNC_MANAGER)


def rows(tree: lxml_html.HtmlElement) -> list[tuple[str, str]]:
    return [
        (tr.get("data-type"), tr.xpath("string(td[1])"))
        for tr in tree.xpath("//tbody[@id='log-lines']/tr")
    ]


def test_a_sites_logs_are_listed_with_its_sups(viewer: Viewer) -> None:
    tree = viewer.page("/logs/PS1")
    names = tree.xpath("//table[contains(@class, 'log-files')]//tr/@data-log")
    assert {"WSyncMgr.log", "WCM.log", "SMSDBMON.log", "SMSProv.log"} <= set(names)
    sup = tree.xpath("//tr[@data-log='ps1sys.contoso.com/SoftwareDistribution.log']")[0]
    assert sup.xpath(".//a/@href") == ["/logs/PS1/ps1sys.contoso.com/SoftwareDistribution.log"]
    assert sup.xpath("string(td[4])").endswith(("iB", "Bytes"))  # the SUP synced: lines
    sd = rows(viewer.page("/logs/PS1/ps1sys.contoso.com/SoftwareDistribution.log"))
    assert any("EventId=384" in text for _, text in sd)  # its sync succeeded
    links = tree.xpath("//tr[@data-log='WSyncMgr.log']//a/@href")
    assert links == ["/logs/PS1/WSyncMgr.log"]
    # reached from the site page and from /logs
    assert viewer.page("/sites/PS1").xpath("//a[@data-logs-link]/@href") == ["/logs/PS1"]
    assert "/logs/SS1" in viewer.page("/logs").xpath("//p[@data-site-logs]//a/@href")


def test_a_log_reads_as_cmtrace_shows_it(viewer: Viewer) -> None:
    log = wsyncmgr(viewer.h, "CS1")
    log.warning("Viewer test: a warning line")
    log.error("Viewer test: an error line")
    tree = viewer.page("/logs/CS1/WSyncMgr.log")
    shown = rows(tree)
    assert any("Synchronizing" in text or "Sync" in text for _, text in shown)
    assert shown[-2:] == [
        ("warning", "Viewer test: a warning line"),
        ("error", "Viewer test: an error line"),
    ]
    last = tree.xpath("//tbody[@id='log-lines']/tr")[-1]
    assert "type-error" in last.get("class")
    assert last.xpath("string(td[2])") == SYNC_MANAGER
    assert last.xpath("string(td[4])").isdigit()
    assert tree.xpath("//thead//th/text()")[:2] == ["Log Text", "Component"]
    assert tree.xpath("//input[@id='log-filter']") and tree.xpath("//input[@id='log-highlight']")


def test_a_log_is_read_from_its_start_on_request(viewer: Viewer) -> None:
    whole = [e.message for e in read_cmtrace(viewer.h.site("SS1").log_dir / "WSyncMgr.log")]
    tree = viewer.page("/logs/SS1/WSyncMgr.log")
    start = tree.xpath("//a[@data-from-start]/@href")[0]
    assert start == "/logs/SS1/WSyncMgr.log?from=start"
    shown = [text for _, text in rows(viewer.page("/logs/SS1/WSyncMgr.log", **{"from": "start"}))]
    assert shown[: len(whole)] == whole


def test_the_tail_fragment_gives_the_lines_written_since(viewer: Viewer) -> None:
    tree = viewer.page("/logs/PS2/WSyncMgr.log")
    body = tree.xpath("//tbody[@id='log-lines']")[0]
    tail = body.get("data-log-tail")
    assert tail == "/fragments/logs/PS2/WSyncMgr.log"
    cursor = {"file": body.get("data-file"), "offset": body.get("data-offset")}
    wsyncmgr(viewer.h, "PS2").info("Viewer test: written while the page is open")
    fresh = viewer.page(tail, **cursor)
    written = [tr.xpath("string(td[1])") for tr in fresh.xpath("//tr")]
    assert written[-1] == "Viewer test: written while the page is open"
    assert written[-1] not in [text for _, text in rows(tree)]  # only what came after
    assert int(fresh.xpath("//tbody/@data-offset")[0]) > int(cursor["offset"])


def test_status_messages_and_timeline_bars_open_the_log_at_their_time(viewer: Viewer) -> None:
    messages = viewer.page("/messages", site="PS1", id="6702")
    href = messages.xpath("//tr[@data-id='6702']//a[@data-log-link]/@href")[0]
    path, query = urlsplit(href).path, parse_qs(urlsplit(href).query)
    assert path == "/logs/PS1/WSyncMgr.log"
    at = datetime.fromisoformat(query["at"][0].replace("Z", "+00:00"))
    opened = viewer.page(path, at=query["at"][0])
    body = opened.xpath("//tbody[@id='log-lines']")[0]
    assert body.get("data-at") == query["at"][0]
    first = next(
        tr
        for tr in body.xpath("tr[@data-time]")
        if datetime.fromisoformat(tr.get("data-time").replace("Z", "+00:00")) >= at
    )
    assert "ID=6702" in first.xpath("string(td[1])")  # the STATMSG line of the message
    bars = viewer.page("/timeline").xpath("//a[@data-log-link]/@href")
    assert any(b.startswith("/logs/CS1/WSyncMgr.log?at=") for b in bars)
    assert any("/SoftwareDistribution.log?at=" in b for b in bars)


def test_log_href_names_the_log_of_a_component() -> None:
    moment = datetime.fromisoformat("2014-01-16T18:57:46.123+00:00")
    assert log_href("", "CS1", WSUS_CONFIGURATION_MANAGER, moment) == (
        "/logs/CS1/WCM.log?at=2014-01-16T18%3A57%3A46.123000Z"
    )
    assert log_href("/c", "CS1", "SMS_UNKNOWN", moment) == ""
    assert log_href("", "CS1", SYNC_MANAGER, None, sup="cs1site.contoso.com") == (
        "/logs/CS1/cs1site.contoso.com/SoftwareDistribution.log"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/logs/XX9",
        "/logs/CS1/Nope.log",
        "/logs/CS1/..%2F..%2F..%2Fapi%2Falerts",
        "/logs/CS1/../../api/alerts",
        "/fragments/logs/CS1/%2e%2e/x.log",
    ],
)
def test_what_is_not_a_log_is_not_found(viewer: Viewer, path: str) -> None:
    answer = viewer.get(path)
    assert answer.status_code == 404, answer.text
    assert str(Path(viewer.h.root)) not in answer.text


def test_a_bad_cursor_or_time_is_refused(viewer: Viewer) -> None:
    assert viewer.get("/fragments/logs/CS1/WSyncMgr.log", file="x/y", offset="0").status_code == 400
    assert viewer.get("/logs/CS1/WSyncMgr.log", at="yesterday").status_code == 400
