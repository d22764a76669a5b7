"""Upgrading a site server whose older updatesync kept its webhook delivery record in
`<site data>/alerting.sqlite`: the running site reads it into its site database once,
renames it, says so in its alert log, and sends nothing the old record had sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from updatesync.config import AlertSettings, WebhookSettings, load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.logs.cmtrace import read_cmtrace
from updatesync.roles import RoleContext, SiteRole, on_loopback
from updatesync.roles.serving import BackgroundServer
from updatesync.security.webhook_signing import create_webhook_secret
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.watch.alerts import AlertType
from updatesync.site.watch.webhooks import event_payload
from updatesync.vocabulary import ALERT_WATCHER_LOG

SECRET = b"the-hierarchy-secret-of-this-test-0002"
SUP = "cs1site.contoso.com"
OLD_DDL = (  # as the older updatesync wrote it
    "CREATE TABLE webhook (url TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0, "
    "next_attempt_at TEXT, last_error TEXT)",
    "CREATE TABLE baseline (url TEXT NOT NULL, epoch TEXT NOT NULL, taken_at TEXT NOT NULL, "
    "PRIMARY KEY (url, epoch))",
    "CREATE TABLE delivery (seq INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL, "
    "epoch TEXT NOT NULL, alert_id INTEGER NOT NULL, event TEXT NOT NULL, payload TEXT NOT NULL, "
    "happened_at TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
    "done_at TEXT, UNIQUE (url, epoch, alert_id, event))",
    "CREATE INDEX ix_delivery_pending ON delivery (url, state, seq)",
)


class Receiver:
    """Records the event and alert id of every POST; answers 204."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.json()
        with self._lock:
            self.events.append((body["event"], body["alert"]["id"]))
        return Response(status_code=204)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    r = Receiver()
    with BackgroundServer(r.app) as server:
        yield r, f"{server.url}/hook"


def _old_record(path: Path, url: str, db: SiteDatabase, alert: Any) -> None:
    """The older updatesync's file: the webhook had the raise of `alert`."""
    epoch = db.set_up_time().isoformat()
    payload = json.dumps(event_payload(alert, "raised", "Contoso"))
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for statement in OLD_DDL:
            conn.execute(text(statement))
        conn.execute(text("INSERT INTO webhook (url) VALUES (:url)"), {"url": url})
        conn.execute(
            text("INSERT INTO baseline VALUES (:url, :epoch, :at)"),
            {"url": url, "epoch": epoch, "at": alert.raised_at.isoformat()},
        )
        conn.execute(
            text(
                "INSERT INTO delivery (url, epoch, alert_id, event, payload, happened_at, state, "
                "attempts, done_at) VALUES (:url, :epoch, :id, 'raised', :payload, :at, 'sent', "
                "1, :at)"
            ),
            {
                "url": url,
                "epoch": epoch,
                "id": alert.alert_id,
                "payload": payload,
                "at": alert.raised_at.isoformat(),
            },
        )
    engine.dispose()


def test_a_site_reads_its_older_alerting_file_once_and_sends_nothing_twice(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    secret = tmp_path / "keys" / "alerts-webhook.secret"
    create_webhook_secret(secret)
    loaded = load_hierarchy(example_hierarchy())
    hierarchy = replace(
        loaded,
        data_dir=tmp_path / "data",
        secret_file=tmp_path / "hierarchy.secret",
        alerts=AlertSettings(loaded.alerts.overdue_after, (WebhookSettings(url, secret),)),
    )
    placed, socks = on_loopback(hierarchy)
    sock = socks.pop("site:CS1")
    for other in socks.values():
        other.close()
    site_dir = tmp_path / "data" / "CS1"
    old = site_dir / "alerting.sqlite"
    with SiteDatabase.open(site_dir, site_code="CS1") as db:  # as the older updatesync left it
        alert = db.alerts.raise_alert(AlertType.SYNC_FAILURE, SUP)
        _old_record(old, url, db, alert)

    with SiteRole(RoleContext(placed, SECRET), "CS1", sock=sock, monitor_interval=0.2) as site:
        first = site.watcher.check_now()  # after, or instead of, the watcher's own first round
        assert first.errors == ()
        assert not old.exists()
        assert (site_dir / "alerting.sqlite.migrated").is_file()
        site.db.alerts.cancel_alert(AlertType.SYNC_FAILURE, SUP)
        assert site.watcher.check_now().delivered == 1

    assert hook.events == [("canceled", alert.alert_id)]  # its raise was sent before
    messages = [e.message for e in read_cmtrace(site_dir / "logs" / ALERT_WATCHER_LOG)]
    moved = [m for m in messages if "of an older updatesync read into the site database" in m]
    assert len(moved) == 1
    assert "1 webhook(s), 1 event(s); alerting.sqlite renamed alerting.sqlite.migrated" in moved[0]
    assert not any("first use" in m for m in messages)
