"""The console's `/logs` page: logs uploaded through the app (multipart, over HTTP to a real
server) come back as the tracker's runs, one card each: the real published logs (the
article's CS1 and PS1 syncs, the failures of a ConfigMgr 2403 site), a .zip of a logs folder
with a stuck run, and what is refused or warned about (too big, not a log, unsafe archive
paths). The scratch folder of an upload is gone once the page is back. The consoles' top-level
site is a real SMS Provider of its own (nothing else of the hierarchy runs), where a Full
Administrator is added to sign in through the login form; each upload carries the session's
CSRF token and the console's own origin, as the page's form does."""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import httpx
import pytest
from console_login import SignedIn, console_user, lone_provider, with_top_at
from lxml import html as lxml_html

from updatesync.config import load_hierarchy
from updatesync.console import create_console_app
from updatesync.console.logs_page import SCRATCH_PREFIX
from updatesync.console.uploads import UploadLimits, member_parts, safe_name
from updatesync.logs.cmtrace import CMTraceLog
from updatesync.logs.tracker import track_paths
from updatesync.roles.serving import BackgroundServer

LOG_FOLDERS = ("msdocs-2014-hierarchy", "patchmypc-2024-failures")
SMALL = UploadLimits(max_bytes=256 * 1024, max_files=20, max_extracted=512 * 1024)
Files = list[tuple[str, tuple[str, bytes, str]]]
SIGNED_IN: dict[str, SignedIn] = {}
"""The signed-in user of each console, by the console's address."""


@dataclass
class Console:
    url: str
    small_url: str
    """The same console with small upload limits."""
    scratch: Path
    """Where the uploads' scratch folders go (tempfile's folder during these tests)."""


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    example = resources.files("updatesync") / "examples" / "hierarchy.toml"
    scratch = tmp_path_factory.mktemp("scratch")
    saved, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        with (
            lone_provider(tmp_path_factory.mktemp("provider")) as (provider, admin),
            BackgroundServer(
                create_console_app(with_top_at(load_hierarchy(str(example)), provider))
            ) as server,
            BackgroundServer(
                create_console_app(
                    with_top_at(load_hierarchy(str(example)), provider), upload_limits=SMALL
                )
            ) as small,
        ):
            for url in (server.url, small.url):
                SIGNED_IN[url] = console_user(url, provider, admin)
            yield Console(server.url, small.url, scratch)
            for url in (server.url, small.url):
                SIGNED_IN.pop(url).close()
    finally:
        tempfile.tempdir = saved


def fixture_files(fixtures_dir: Path) -> Files:
    return [
        ("logs", (path.name, path.read_bytes(), "text/plain"))
        for folder in LOG_FOLDERS
        for path in sorted((fixtures_dir / "logs" / folder).iterdir())
    ]


def upload(url: str, files: Files | dict[str, tuple[str, bytes]], **fields: str) -> httpx.Response:
    """The upload form of the console at `url` sent by its signed-in user."""
    user = SIGNED_IN[url]
    return user.client.post(
        url + "/logs",
        files=files,
        data={"csrf": user.csrf, **fields},
        headers=user.same_origin(),
        timeout=60,
    )


def get(url: str, path: str) -> httpx.Response:
    return SIGNED_IN[url].client.get(url + path)


def tree_of(answer: httpx.Response) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(answer.text)


def text(element: lxml_html.HtmlElement) -> str:
    return " ".join(element.text_content().split())


def cards(tree: lxml_html.HtmlElement) -> list[lxml_html.HtmlElement]:
    return tree.xpath("//article[contains(@class, 'run ')]")


def facts(card: lxml_html.HtmlElement) -> dict[str, str]:
    return {dd.get("data-fact"): text(dd) for dd in card.xpath(".//*[@data-fact]")}


def warnings(tree: lxml_html.HtmlElement) -> list[str]:
    return [text(p) for p in tree.xpath("//p[@data-warning]")]


def no_scratch_left(console: Console) -> bool:
    return not list(console.scratch.glob(f"{SCRATCH_PREFIX}*"))


# -- the real logs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(console: Console, fixtures_dir: Path) -> lxml_html.HtmlElement:
    answer = upload(console.url, fixture_files(fixtures_dir), stuck_after="60")
    assert answer.status_code == 200, answer.text
    return tree_of(answer)


def test_the_page_has_a_form_and_a_nav_link(console: Console) -> None:
    answer = get(console.url, "/logs")
    assert answer.status_code == 200
    tree = tree_of(answer)
    form = tree.xpath("//form[@enctype='multipart/form-data']")[0]
    assert form.get("method") == "post" and form.get("action") == "/logs"
    assert form.xpath(".//input[@type='file'][@name='logs'][@multiple]")
    assert tree.xpath("//nav/a[@href='/logs'][@aria-current='page']/text()") == ["Logs"]
    assert "up to 50 MB in all" in text(form)
    assert "Logs" in tree_of(get(console.url, "/alerts")).xpath("//nav/a/text()")


def test_the_cas_run_of_the_article(real: lxml_html.HtmlElement) -> None:
    [cs1] = [c for c in cards(real) if c.get("data-site") == "CS1"]
    assert cs1.get("data-result") == "success"
    assert "state-done" in cs1.get("class")  # green
    assert text(cs1.xpath(".//h2")[0]) == "CS1 cs1site.contoso.com"
    shown = facts(cs1)
    assert shown["trigger"] == "local request"
    assert shown["parent"] == "—"
    assert shown["started"] == "2014-01-16 18:53:52.608 UTC"
    assert shown["ended"] == "2014-01-16 18:57:46.304 UTC"
    assert shown["duration"] == "3m 54s"
    assert shown["versions"] == "33 → 34 · 130 items updated"
    assert shown["children"] == "PS1, PS2"
    assert cs1.xpath(".//dd[@data-fact='children']/a/@href") == ["/sites/PS1", "/sites/PS2"]
    assert shown["log"] == "CS1-WSyncMgr.rendered.txt"  # the name uploaded, not the scratch path
    phases = [
        (row.get("data-phase"), [text(td) for td in row.xpath("./td")][:6])
        for row in cs1.xpath(".//tr[@data-phase]")
    ]
    assert phases == [
        (
            "update_server",
            ["update server 6704", "cs1site.contoso.com", "18:53:53.698", "—", "130 / 130", "done"],
        ),
        (
            "site_database_categories",
            [
                "site database: categories 6705",
                "cs1site.contoso.com",
                "18:57:09.156",
                "—",
                "223 / 223",
                "done",
            ],
        ),
        (
            "site_database_updates",
            ["site database: updates 6705", "cs1site.contoso.com", "—", "—", "5 / 5", "done"],
        ),
    ]
    # bars on the run's time axis: one per phase with a start
    assert len(cs1.xpath(".//tr[@data-phase]//span[contains(@class, 'span')]")) == 2
    # the update server's own sync, from CS1SITE-SoftwareDistribution.log
    [sync] = cs1.xpath(".//tr[@data-update-server]")
    assert [text(td) for td in sync.xpath("./td")][2:4] == ["18:53:54.231", "18:55:05.166"]
    assert "succeeded" in text(sync)
    assert not cs1.xpath(".//*[@data-fact='error']")


def test_the_child_primary_run_with_its_replica(real: lxml_html.HtmlElement) -> None:
    [ps1] = [c for c in cards(real) if c.get("data-site") == "PS1"]
    assert ps1.get("data-result") == "success"
    shown = facts(ps1)
    assert shown["trigger"] == "parent request from CS1"
    assert shown["parent"] == "CS1"
    assert ps1.xpath(".//dd[@data-fact='parent']/a/@href") == ["/sites/CS1"]
    assert shown["replicas"] == "ps1sys.contoso.com: 4 items, done"
    assert shown["versions"] == "34"
    assert shown["children"] == "SS1"
    [replica] = ps1.xpath(".//tr[@data-phase='replica']")
    assert [text(td) for td in replica.xpath("./td")][1:5] == [
        "ps1sys.contoso.com",
        "19:17:13.575",
        "—",
        "4 / 4",
    ]


def test_the_failed_runs_name_the_cause_the_code_and_the_next_retry(
    real: lxml_html.HtmlElement,
) -> None:
    failed = [c for c in cards(real) if c.get("data-result") == "failed"]
    assert [c.get("data-site") for c in failed] == ["CHQ", ""]
    assert all("state-failed" in c.get("class") for c in failed)  # red
    chq, timeout = failed
    shown = facts(chq)
    assert shown["code"] == "0x8013150a"
    assert (
        shown["source"] == "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer"
    )
    assert shown["error"].startswith("Request for principal permission failed 0x8013150a")
    assert shown["next-retry"] == (
        "Next retry: 2024-08-02 21:54:26.571 UTC (60 minutes after the failure)"
    )
    assert shown["ended"] == "2024-08-02 20:54:26.571 UTC"
    assert shown["started"] == "not in the log"
    assert text(chq.xpath(".//h2")[0]) == "CHQ cm1.corp.contoso.com"
    shown = facts(timeout)
    assert shown["error"].startswith("The operation has timed out Source:")
    assert shown["next-retry"] == "Next retry: time unknown (60 minutes after the failure)"
    assert shown["log"] == "wsyncmgr-timeout.rendered.txt"


def test_the_page_shows_what_track_paths_gives(
    real: lxml_html.HtmlElement, fixtures_dir: Path
) -> None:
    runs = track_paths([fixtures_dir / "logs" / folder for folder in LOG_FOLDERS])
    assert [(c.get("data-site") or None, c.get("data-result")) for c in cards(real)] == [
        (r.site, r.result) for r in runs
    ]
    assert text(real.xpath("//p[@data-summary]")[0]) == "4 sync runs in 7 logs: 2 success 2 failed"
    files = {
        r.get("data-file"): [text(td) for td in r.xpath("./td")]
        for r in real.xpath("//tr[@data-file]")
    }
    assert files["CS1SITE-SoftwareDistribution.log"][1:] == [
        "SoftwareDistribution.log",
        "update server",
        "—",
        "cs1site",
        "4",
        "1 update server sync",
    ]
    assert files["PS1-WSyncMgr.rendered.txt"][-1] == "1 sync run"
    assert warnings(real) == []


def test_the_scratch_folder_is_gone_after_the_page(
    real: lxml_html.HtmlElement, console: Console
) -> None:
    assert cards(real)
    assert no_scratch_left(console)


# -- refused and warned ----------------------------------------------------------------------


def test_an_upload_over_the_limit_is_refused_with_the_reason(console: Console) -> None:
    big = b"x" * (SMALL.max_bytes + 1)
    answer = upload(console.small_url, [("logs", ("WSyncMgr.log", big, "text/plain"))])
    assert answer.status_code == 413
    [problem] = [text(p) for p in tree_of(answer).xpath("//p[@data-problem]")]
    assert problem.startswith("The upload is larger than 256 KB in all, the most this page takes")
    assert not cards(tree_of(answer))
    assert no_scratch_left(console)


def test_the_default_limit_is_50_mb(console: Console) -> None:
    big = b"Starting Sync\tSMS_WSUS_SYNC_MANAGER\r\n" * (51 * 1024 * 1024 // 37)
    answer = upload(console.url, [("logs", ("WSyncMgr.log", big, "text/plain"))])
    assert answer.status_code == 413
    assert "larger than 50 MB in all" in answer.text
    # sent without a Content-Length (chunked), it is counted as it comes
    chunks = (b"x" * 65536 for _ in range(6))
    boundary = "b0undary"
    body = [
        f"--{boundary}\r\n".encode(),
        b'Content-Disposition: form-data; name="logs"; filename="a.log"\r\n\r\n',
        *chunks,
    ]
    user = SIGNED_IN[console.small_url]
    answer = user.client.post(
        console.small_url + "/logs",
        content=iter(body),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"} | user.same_origin(),
        timeout=60,
    )
    assert answer.status_code == 413


def test_garbage_is_a_warning_not_an_error(console: Console, fixtures_dir: Path) -> None:
    noise = bytes(range(256)) * 8
    files: Files = [
        ("logs", ("WSyncMgr.log", noise, "application/octet-stream")),
        ("logs", ("notes.txt", b"shopping list\nmilk\neggs\n", "text/plain")),
        *fixture_files(fixtures_dir)[-1:],
    ]
    answer = upload(console.url, files)
    assert answer.status_code == 200
    tree = tree_of(answer)
    assert warnings(tree) == [
        "WSyncMgr.log is not a text log (it holds binary data): it was not read.",
        "notes.txt: the tracker found no log entry in it (it is not in the CMTrace, simple, "
        "copied-from-CMTrace or SoftwareDistribution.log form); it was left out.",
    ]
    # the good file beside them is still read
    assert [c.get("data-result") for c in cards(tree)] == ["failed"]
    assert [text(td) for td in tree.xpath("//tr[@data-file='notes.txt']/td")][-1] == (
        "left out: no log entry in it"
    )
    # only garbage: the warnings, and no run
    answer = upload(console.url, files[:2])
    assert answer.status_code == 200
    assert len(warnings(tree_of(answer))) == 2
    assert "No sync run in these logs" in answer.text
    assert no_scratch_left(console)


@pytest.mark.parametrize(
    ("files", "fields", "status", "problem"),
    [
        ([], {"stuck_after": "60"}, 400, "Choose at least one log file"),
        (
            [("logs", ("WSyncMgr.log", b"x\tSMS_WSUS_SYNC_MANAGER\n", "text/plain"))],
            {"stuck_after": "soon"},
            400,
            "Stuck after: 'soon' is not a number of minutes",
        ),
    ],
)
def test_a_form_that_cannot_be_used_says_why(
    console: Console, files: Files, fields: dict[str, str], status: int, problem: str
) -> None:
    answer = upload(console.url, files or {"other": ("", b"")}, **fields)
    assert answer.status_code == status
    assert problem in text(tree_of(answer).xpath("//p[@data-problem]")[0])


def test_a_post_that_is_not_a_form_upload(console: Console) -> None:
    user = SIGNED_IN[console.url]
    answer = user.client.post(
        console.url + "/logs",
        data={"stuck_after": "60", "csrf": user.csrf},
        headers=user.same_origin(),
    )
    assert answer.status_code == 415
    assert "Send the logs with the page" in answer.text


def test_too_many_files(console: Console) -> None:
    files: Files = [("logs", (f"{n}-WSyncMgr.log", b"", "text/plain")) for n in range(25)]
    answer = upload(console.small_url, files)
    assert answer.status_code == 400
    assert "Too many files: at most 20 at once" in answer.text


# -- a .zip of logs folders ------------------------------------------------------------------


T0 = datetime(2024, 3, 12, 9, 0, 0, tzinfo=UTC)


def stuck_logs(root: Path) -> None:
    """CS1's WSyncMgr.log (CMTrace) with a run that stopped at 50 of 130 updates, and its
    SMSDBMON.log going on 90 minutes later; the site is known only from the folder."""
    clock = [T0]

    def now() -> datetime:
        clock[0] += timedelta(seconds=1)
        return clock[0]

    def log(name: str, component: str) -> CMTraceLog:
        path = root / "CS1" / "logs" / name
        return CMTraceLog(path, component=component, bias_minutes=0, now=now, thread=1)

    wsync = log("WSyncMgr.log", "SMS_WSUS_SYNC_MANAGER")
    for line in (
        "Found local sync request file",
        "Starting Sync",
        "Performing sync on local request",
        "Synchronizing WSUS server CS1SITE.CONTOSO.COM ...",
        "sync: Starting WSUS synchronization",
        "sync: WSUS synchronizing updates, processed 50 out of 130 items (38%)",
    ):
        wsync.info(line)
    clock[0] += timedelta(minutes=90)
    log("SMSDBMON.log", "SMS_DATABASE_NOTIFICATION_MONITOR").info(
        "RCV: UPDATE on Update_SyncStatus for SyncNotif_WSyncMgr [SELF][7]"
    )


def zipped(folder: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_zip_of_a_logs_folder_with_a_stuck_run(console: Console, tmp_path: Path) -> None:
    stuck_logs(tmp_path / "logs")
    data = zipped(
        tmp_path / "logs",
        {
            "../../evil-WSyncMgr.log": b"x\tSMS_WSUS_SYNC_MANAGER\n",
            "/etc/WSyncMgr.log": b"x\tSMS_WSUS_SYNC_MANAGER\n",
            "CS1/readme.md": b"not a log",
        },
    )
    answer = upload(console.url, [("logs", ("hierarchy-logs.zip", data, "application/zip"))])
    assert answer.status_code == 200, answer.text
    tree = tree_of(answer)
    [card] = cards(tree)
    assert (card.get("data-site"), card.get("data-result")) == ("CS1", "stuck")
    assert "state-stuck" in card.get("class")  # amber
    shown = facts(card)
    assert shown["trigger"] == "local request"
    assert shown["log"] == "hierarchy-logs.zip: CS1/logs/WSyncMgr.log"
    assert shown["last-activity"].startswith("Stuck since 2024-03-12 09:00:06.000 UTC: sync: WSUS")
    assert shown["ended"] == "not yet"
    assert sorted(warnings(tree)) == [
        "hierarchy-logs.zip: ../../evil-WSyncMgr.log: its path leaves the archive's folder; "
        "skipped.",
        "hierarchy-logs.zip: /etc/WSyncMgr.log: its path leaves the archive's folder; skipped.",
    ]
    assert "1 file in the archives is not a log the tracker reads" in answer.text
    # a shorter wait: the same run is only running (blue)
    answer = upload(
        console.url,
        [("logs", ("hierarchy-logs.zip", data, "application/zip"))],
        stuck_after="120",
    )
    [card] = cards(tree_of(answer))
    assert card.get("data-result") == "running" and "state-running" in card.get("class")
    assert no_scratch_left(console)


def test_a_zip_bomb_stops_at_the_limit(console: Console) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        line = b"Sleeping 60 more minutes\tSMS_WSUS_SYNC_MANAGER\r\n"
        archive.writestr("CS1/WSyncMgr.log", line * (4 * SMALL.max_extracted // len(line)))
    data = buffer.getvalue()
    assert len(data) < SMALL.max_bytes  # small upload, large content
    answer = upload(console.small_url, [("logs", ("bomb.zip", data, "application/zip"))])
    assert answer.status_code == 200
    assert warnings(tree_of(answer)) == [
        "bomb.zip: CS1/WSyncMgr.log: the archives unpack to more than 512 KB, the most this "
        "page takes out; it and the files after it were not read."
    ]
    answer = upload(console.url, [("logs", ("broken.zip", b"PK\x03\x04 not really", "x"))])
    assert answer.status_code == 200
    assert warnings(tree_of(answer))[0].startswith("broken.zip is not a zip archive that can be")
    assert no_scratch_left(console)


def test_names_and_paths_from_the_browser_are_kept_inside_the_folder() -> None:
    assert safe_name("CS1-WSyncMgr.rendered.txt", 1) == "CS1-WSyncMgr.rendered.txt"
    assert safe_name("C:\\logs\\PS1-WSyncMgr.log", 1) == "PS1-WSyncMgr.log"
    assert safe_name("../../etc/passwd", 1) == "passwd"
    assert safe_name("..", 3) == "upload-3.log"
    assert member_parts("CS1/logs/WSyncMgr.log") == ["CS1", "logs", "WSyncMgr.log"]
    assert member_parts("CS1\\logs\\WSyncMgr.lo_") == ["CS1", "logs", "WSyncMgr.lo_"]
    for unsafe in ("../x.log", "a/../../x.log", "/etc/x.log", "C:/x.log", "C:x.log", "a/b:c"):
        assert member_parts(unsafe) is None, unsafe


def test_two_files_of_the_same_name_are_both_read(console: Console, fixtures_dir: Path) -> None:
    folder = fixtures_dir / "logs" / "msdocs-2014-hierarchy"
    files: Files = [
        ("logs", ("WSyncMgr.log", (folder / name).read_bytes(), "text/plain"))
        for name in ("CS1-WSyncMgr.rendered.txt", "PS1-WSyncMgr.rendered.txt")
    ]
    tree = tree_of(upload(console.url, files))
    # their STATMSG lines name the sites
    assert [(c.get("data-site"), facts(c)["log"]) for c in cards(tree)] == [
        ("CS1", "WSyncMgr.log"),
        ("PS1", "WSyncMgr.log (#2)"),
    ]


def test_a_log_and_its_rolled_over_lo_are_read_as_one(console: Console, fixtures_dir: Path) -> None:
    whole = fixtures_dir / "logs" / "msdocs-2014-hierarchy" / "CS1-WSyncMgr.rendered.txt"
    lines = whole.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    files: Files = [
        ("logs", ("CS1-WSyncMgr.log", b"".join(lines[half:]), "text/plain")),
        ("logs", ("CS1-WSyncMgr.lo_", b"".join(lines[:half]), "text/plain")),
    ]
    tree = tree_of(upload(console.url, files))
    [card] = cards(tree)
    shown = facts(card)
    assert (card.get("data-site"), card.get("data-result")) == ("CS1", "success")
    assert shown["versions"] == "33 → 34 · 130 items updated"
    assert shown["children"] == "PS1, PS2"
    assert shown["log"] == "CS1-WSyncMgr.log"
    assert tree.xpath("//tr[@data-file]/@data-file") == ["CS1-WSyncMgr.log (with its .lo_)"]


# -- WCM.log ---------------------------------------------------------------------------------

WCM_FAILED = (
    # MS-TSSYNC (reference 1.7), copied from CMTrace with its component
    "System.Net.WebException: The request failed with HTTP status 407\t"
    "SMS_WSUS_CONFIGURATION_MANAGER\r\n"
)
WSYNC_NOT_CONFIGURED = (
    # MS-TSSYNC (reference 2.5), with the double dot of real copies
    "Sync failed: WSUS server not configured. Please refer to WCM.log for configuration error "
    "details.. Source: CWSyncMgr::DoSync\tSMS_WSUS_SYNC_MANAGER\r\n"
    "Sync failed. Will retry in 60 minutes\tSMS_WSUS_SYNC_MANAGER\r\n"
)
WCM_SUCCESS = "".join(
    # MS-WCM (reference 1.2)
    f"{line}\tSMS_WSUS_CONFIGURATION_MANAGER\r\n"
    for line in (
        "File notification triggered WCM Inbox.",
        "Setting new configuration state to 4 (WSUS_CONFIG_SUBSCRIPTION_PENDING)",
        "Attempting connection to WSUS server: CE1SITE.CONTOSO.COM, port: 8530, useSSL: False",
        "Successfully connected to server: CE1SITE.CONTOSO.COM, port: 8530, useSSL: False",
        'Subscribed Update Categories <?xml version="1.0" ?>~~<Categories>~~ <Category Id="'
        'Product:a105a108-7c9b-4518-bbbe- 73f0fe30012b"><![CDATA[Windows Server 2012]]>'
        "</Category>~~ ... ~~</Categories>",
        "Configuration successful. Will wait for 1 minute for any subscription or proxy changes",
        "Setting new configuration state to 2 (WSUS_CONFIG_SUCCESS)",
    )
)


def test_wcm_logs_give_configuration_cards_and_the_cause_of_a_sync_failure(
    console: Console, tmp_path: Path
) -> None:
    """A WCM.log's configuration runs get cards of their own; a `WSUS server not configured`
    sync failure names the failed configuration run behind it; a WCM.log in a .zip is read."""
    files: Files = [
        ("logs", ("CHQ-WCM.rendered.txt", WCM_FAILED.encode(), "text/plain")),
        ("logs", ("CHQ-WSyncMgr.rendered.txt", WSYNC_NOT_CONFIGURED.encode(), "text/plain")),
    ]
    answer = upload(console.url, files)
    assert answer.status_code == 200, answer.text
    tree = tree_of(answer)
    assert warnings(tree) == []
    assert text(tree.xpath("//p[@data-summary]")[0]) == (
        "1 sync run and 1 configuration run in 2 logs: 2 failed"
    )
    [configuration] = tree.xpath("//article[@data-kind='configuration']")
    assert (configuration.get("data-site"), configuration.get("data-result")) == ("CHQ", "failed")
    assert "WSUS configuration" in text(configuration.xpath(".//h2")[0])
    assert facts(configuration)["error"] == (
        "System.Net.WebException: The request failed with HTTP status 407"
    )
    [sync] = [c for c in cards(tree) if c.get("data-kind") != "configuration"]
    assert facts(sync)["cause"] == (
        "Cause: WCM.log: the WSUS configuration failed: "
        "System.Net.WebException: The request failed with HTTP status 407"
    )
    rows = {r.get("data-file"): [text(td) for td in r.xpath("./td")] for r in tree.xpath("//tr")}
    assert rows["CHQ-WCM.rendered.txt"][1:] == [
        "WCM.log",
        "copied from CMTrace",
        "CHQ",
        "—",
        "1",
        "1 configuration run",
    ]

    (tmp_path / "CE1" / "logs").mkdir(parents=True)
    (tmp_path / "CE1" / "logs" / "WCM.log").write_text(WCM_SUCCESS, encoding="utf-8")
    data = zipped(tmp_path)
    answer = upload(console.url, [("logs", ("site-logs.zip", data, "application/zip"))])
    assert answer.status_code == 200, answer.text
    [card] = tree_of(answer).xpath("//article[@data-kind='configuration']")
    shown = facts(card)
    assert (card.get("data-site"), card.get("data-result")) == ("CE1", "success")
    assert shown["trigger"] == "file notification (WSUSMgr.box)"
    assert shown["config-state"] == "2 (WSUS_CONFIG_SUCCESS)"
    assert shown["servers"] == "ce1site.contoso.com:8530 (no SSL)"
    assert shown["subscriptions"] == "Windows Server 2012"
    assert shown["log"] == "site-logs.zip: CE1/logs/WCM.log"
    assert "not a log the tracker reads" not in answer.text
    assert no_scratch_left(console)
