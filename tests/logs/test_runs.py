"""The sync run model (`updatesync.logs.runs`): the derived properties a user reads (duration,
next retry, content version, replicas, first time), the JSON text of a run and its parts
(ISO times in UTC with milliseconds, error codes as 0x........), and `mark_stuck`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from updatesync.logs.runs import (
    FAILED,
    REPLICA,
    RUNNING,
    SITE_DATABASE_CATEGORIES,
    SITE_DATABASE_UPDATES,
    STUCK,
    SUCCESS,
    UPDATE_SERVER,
    Activity,
    LogLine,
    Phase,
    SyncError,
    SyncRun,
    UpdateServerSync,
    iso,
    mark_stuck,
)
from updatesync.logs.status_messages import new_status_message

START = datetime(2014, 1, 16, 18, 53, 52, 608000, tzinfo=UTC)
END = datetime(2014, 1, 16, 18, 57, 46, 304000, tzinfo=UTC)


def test_phase_names() -> None:
    assert (UPDATE_SERVER, SITE_DATABASE_CATEGORIES, SITE_DATABASE_UPDATES, REPLICA) == (
        "update_server",
        "site_database_categories",
        "site_database_updates",
        "replica",
    )


def test_iso_is_utc_with_milliseconds() -> None:
    assert iso(START) == "2014-01-16T18:53:52.608Z"
    assert iso(datetime(2014, 1, 16, 18, 53, 52, tzinfo=UTC)) == "2014-01-16T18:53:52.000Z"
    assert iso(None) is None


def test_a_log_line_happens_at_its_status_message_time() -> None:
    line_time = datetime(2014, 1, 16, 10, 53, 52, tzinfo=UTC)
    msg = new_status_message(6701, site_code="CS1", system="CS1SITE.CONTOSO.COM", time=START)
    assert LogLine("STATMSG: ...", line_time, msg).at == START
    assert LogLine("Starting Sync", line_time).at == line_time
    assert LogLine("Starting Sync").at is None


def test_sync_error_merge_keeps_own_parts_and_fills_missing_ones() -> None:
    mine = SyncError(None, "Request for principal permission failed", None)
    other = SyncError("AdminProxy.CreateUpdateServer", "other text", 0x8013150A)
    assert mine.merged(other) == SyncError(
        "AdminProxy.CreateUpdateServer", "Request for principal permission failed", 0x8013150A
    )
    assert SyncError().merged(SyncError()) == SyncError()


def test_sync_error_text_shows_the_code_in_hex() -> None:
    assert SyncError("src", "msg", 0x8013150A).to_json() == {
        "source": "src",
        "message": "msg",
        "code": "0x8013150a",
    }
    assert SyncError(code=5).to_json()["code"] == "0x00000005"
    assert SyncError().to_json() == {"source": None, "message": None, "code": None}


def test_activity_text() -> None:
    assert Activity(START, "Found 1 SUPs", "WSyncMgr.log").to_json() == {
        "time": "2014-01-16T18:53:52.608Z",
        "message": "Found 1 SUPs",
        "log": "WSyncMgr.log",
    }
    assert Activity(None, "x").to_json() == {"time": None, "message": "x", "log": None}


def test_update_server_sync_text() -> None:
    sync = UpdateServerSync(
        server="cs1site.contoso.com",
        started=START,
        ended=None,
        result=RUNNING,
        how="manual",
        message=None,
        last_time=END,
        last_message="still going",
        log="SoftwareDistribution.log",
    )
    assert sync.to_json() == {
        "server": "cs1site.contoso.com",
        "started": "2014-01-16T18:53:52.608Z",
        "ended": None,
        "result": "running",
        "how": "manual",
        "message": None,
        "log": "SoftwareDistribution.log",
    }


def test_a_new_phase_is_running_and_its_text_has_every_key() -> None:
    phase = Phase(UPDATE_SERVER, 6704, server="cs1site.contoso.com", started=START)
    assert phase.status == RUNNING
    assert phase.to_json() == {
        "name": "update_server",
        "status_message": 6704,
        "server": "cs1site.contoso.com",
        "started": "2014-01-16T18:53:52.608Z",
        "ended": None,
        "items_done": None,
        "items_total": None,
        "status": "running",
        "error": None,
        "update_server_log": None,
    }


def test_duration_from_start_and_end() -> None:
    run = SyncRun(result=SUCCESS, started=START, ended=END)
    assert run.duration_s == 233.696


@pytest.mark.parametrize(
    ("result", "duration"), [(SUCCESS, 233.0), (FAILED, 233.0), (RUNNING, None)]
)
def test_duration_falls_back_to_the_logs_sync_time_once_ended(
    result: str, duration: float | None
) -> None:
    run = SyncRun(result=result, reported_sync_time_s=233)
    assert run.duration_s == duration


def test_next_retry_is_the_end_plus_the_retry_minutes() -> None:
    assert SyncRun(ended=END, retry_after_minutes=60).next_retry == END + timedelta(hours=1)
    assert SyncRun(ended=None, retry_after_minutes=60).next_retry is None
    assert SyncRun(ended=END).next_retry is None


def test_content_version_is_the_last_one_set_else_the_reported_one() -> None:
    assert SyncRun(content_versions=[33, 34], reported_content_version=30).content_version == 34
    assert SyncRun(reported_content_version=34).content_version == 34
    assert SyncRun().content_version is None


def article_run() -> SyncRun:
    error = SyncError(None, "Replica WSUS server failed", 0x80131500)
    return SyncRun(
        site="PS1",
        server="ps1site.contoso.com",
        trigger="parent",
        parent="CS1",
        result=SUCCESS,
        started=START,
        ended=END,
        content_versions=[34],
        phases=[
            Phase(UPDATE_SERVER, 6704, "ps1site.contoso.com", START, END, 130, 130, "done"),
            Phase(REPLICA, 6706, "ps1sys.contoso.com", START, END, 4, 4, "done"),
            Phase(REPLICA, None, "ps1rep.contoso.com", START, END, None, None, FAILED, error),
        ],
        children=["SS1"],
        sups=["ps1site.contoso.com", "ps1sys.contoso.com"],
        log="PS1-WSyncMgr.log",
    )


def test_replicas_list_each_replica_phase() -> None:
    assert article_run().replicas == [
        {"server": "ps1sys.contoso.com", "items": 4, "status": "done", "error": None},
        {
            "server": "ps1rep.contoso.com",
            "items": None,
            "status": "failed",
            "error": {
                "source": None,
                "message": "Replica WSUS server failed",
                "code": "0x80131500",
            },
        },
    ]


def test_phase_finds_the_first_of_a_name() -> None:
    run = article_run()
    assert run.phase(REPLICA) is run.phases[1]
    assert run.phase(SITE_DATABASE_UPDATES) is None


def test_first_time_is_the_start_else_the_end_else_the_last_known() -> None:
    assert SyncRun(started=START, ended=END).first_time == START
    assert SyncRun(ended=END, last_known=START).first_time == END
    assert SyncRun(last_known=START).first_time == START
    assert SyncRun().first_time is None


def test_run_text() -> None:
    run = article_run()
    run.retry_after_minutes = 60
    text = run.to_json()
    assert list(text) == [
        "kind",
        "site",
        "server",
        "trigger",
        "parent",
        "result",
        "started",
        "ended",
        "duration_s",
        "requested",
        "content_versions",
        "content_version",
        "sups",
        "phases",
        "replicas",
        "children",
        "items_updated",
        "error",
        "retry_after_minutes",
        "next_retry",
        "last_activity",
        "warnings",
        "license_terms_pending",
        "update_failures",
        "configuration_failure",
        "log",
    ]
    assert text["kind"] == "sync"
    assert text["update_failures"] == [] and text["configuration_failure"] is None
    assert text["started"] == "2014-01-16T18:53:52.608Z"
    assert text["ended"] == "2014-01-16T18:57:46.304Z"
    assert text["duration_s"] == 233.696
    assert text["next_retry"] == "2014-01-16T19:57:46.304Z"
    assert text["content_version"] == 34
    assert [p["name"] for p in text["phases"]] == ["update_server", "replica", "replica"]
    assert text["replicas"] == run.replicas
    assert text["error"] is None and text["last_activity"] is None
    # The text is a copy: changing it does not change the run.
    text["children"].append("XX1")
    assert run.children == ["SS1"]


def test_bookkeeping_fields_stay_out_of_the_text_and_repr() -> None:
    run = SyncRun(has_6701=True, pending_server="x")
    assert "has_6701" not in run.to_json()
    assert "pending_server" not in repr(run)


@pytest.mark.parametrize(
    ("idle", "result"),
    [(timedelta(minutes=61), STUCK), (timedelta(minutes=60), RUNNING), (timedelta(0), RUNNING)],
)
def test_mark_stuck_after_too_long_without_activity(idle: timedelta, result: str) -> None:
    run = SyncRun(last_known=START)
    mark_stuck(run, START + idle, timedelta(hours=1))
    assert run.result == result


def test_a_stuck_run_that_moves_again_is_running() -> None:
    run = SyncRun(result=STUCK, last_known=END)
    mark_stuck(run, END + timedelta(minutes=1), timedelta(hours=1))
    assert run.result == RUNNING


@pytest.mark.parametrize("result", [SUCCESS, FAILED])
def test_an_ended_run_is_never_stuck(result: str) -> None:
    run = SyncRun(result=result, last_known=START)
    mark_stuck(run, START + timedelta(days=1), timedelta(hours=1))
    assert run.result == result


def test_mark_stuck_needs_a_reference_and_a_last_activity() -> None:
    unknown = SyncRun()
    mark_stuck(unknown, END, timedelta(0))
    assert unknown.result == RUNNING
    run = SyncRun(last_known=START)
    mark_stuck(run, None, timedelta(0))
    assert run.result == RUNNING
