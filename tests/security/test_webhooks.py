"""Signed webhooks (issue "Secure by default", item 8), against a real running site server
posting to a real HTTP receiver.

Findings covered (each failed on the code as it was):
- webhooks carried no signature: a receiver could not tell the site's alerts from anyone's;
  now every event carries `webhook-id`, `webhook-timestamp` and `webhook-signature` as the
  Standard Webhooks specification makes them, verified here with the specification's
  reference library (`standardwebhooks`), unchanged;
- the alert did not say why the sync failed: the event now carries the 6703 status message
  (id and text) and the failure's text and source;
- a webhook could be configured with no secret without the file saying so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hierarchy_text import alerts, assert_problem
from standardwebhooks import Webhook as ReferenceVerifier
from standardwebhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from updatesync.config import AlertSettings, Hierarchy, WebhookSettings, load_hierarchy
from updatesync.demo import example_hierarchy
from updatesync.roles import RoleContext, RoleError, SiteRole, on_loopback
from updatesync.roles.serving import BackgroundServer
from updatesync.security.webhook_signing import create_webhook_secret
from updatesync.site.database.models import SYNC_SELF

SUP = "cs1site.contoso.com"
SECRET = b"the-hierarchy-secret-of-this-test-0001"


class Receiver:
    """A webhook receiver that checks each POST's signature with the reference library
    and, apart, with the specification's algorithm written out; answers 401 when either
    fails, 204 otherwise."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.verifier = ReferenceVerifier(secret)
        self.verified: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._changed = threading.Condition()
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    def by_the_spec(self, body: bytes, headers: dict[str, str]) -> bool:
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        given = [s.split(",", 1)[1] for s in headers["webhook-signature"].split()]
        return any(hmac.compare_digest(expected, g) for g in given)

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        try:
            payload = self.verifier.verify(body, headers)
            if not self.by_the_spec(body, headers):
                raise WebhookVerificationError("the specification's algorithm disagrees")
        except (WebhookVerificationError, KeyError) as exc:
            with self._changed:
                self.refused.append(str(exc))
                self._changed.notify_all()
            return Response(status_code=401)
        with self._changed:
            self.verified.append(payload)
            self.headers.append(headers)
            self._changed.notify_all()
        return Response(status_code=204)

    def wait_for(self, count: int, timeout: float = 60.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.verified) >= count, timeout)


@pytest.fixture
def hook_secret(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "keys" / "alerts-webhook.secret"
    return path, create_webhook_secret(path)


@pytest.fixture
def receiver(hook_secret: tuple[Path, str]) -> Iterator[tuple[Receiver, str]]:
    r = Receiver(hook_secret[1])
    with BackgroundServer(r.app) as server:
        yield r, f"{server.url}/hook"


def _top_site(tmp_path: Path, webhooks: tuple[WebhookSettings, ...]) -> tuple[Hierarchy, Any]:
    loaded = load_hierarchy(example_hierarchy())
    hierarchy = replace(
        loaded,
        data_dir=tmp_path / "data",
        secret_file=tmp_path / "hierarchy.secret",
        alerts=AlertSettings(loaded.alerts.overdue_after, webhooks),
    )
    placed, socks = on_loopback(hierarchy)
    sock = socks.pop("site:CS1")
    for other in socks.values():  # CS1's SUP is not running: its sync fails
        other.close()
    return placed, sock


def test_a_failed_sync_reaches_the_webhook_signed_with_its_cause(
    tmp_path: Path, hook_secret: tuple[Path, str], receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    placed, sock = _top_site(tmp_path, (WebhookSettings(url, hook_secret[0]),))
    with SiteRole(RoleContext(placed, SECRET), "CS1", sock=sock, monitor_interval=0.2) as site:
        site.db.sync.request(SYNC_SELF, site_code="CS1")  # what SyncNow does
        assert site.wait_for_sync(1, timeout=60)
        assert not site.results[-1].succeeded
        assert hook.wait_for(1), f"nothing verified; refused: {hook.refused}"
    assert hook.refused == []
    (event,) = hook.verified
    assert (event["event"], event["alert"]["type"], event["alert"]["instance"]) == (
        "raised",
        "sync_failure",
        SUP,
    )
    cause = event["status_message"]
    assert cause["id"] == 6703
    assert cause["text"].startswith("WSUS Synchronization failed.")
    # The SUP never answered its site's WSUS configuration manager, so the sync refused it
    # as WSyncMgr does: the failure's text and source are the status message's.
    failure = event["failure"]
    assert failure["source"] == "CWSyncMgr::DoSync"
    assert failure["text"].startswith("WSUS server not configured. Please refer to WCM.log")
    assert failure["text"] in cause["text"] and failure["source"] in cause["text"]
    headers = hook.headers[0]
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-signature"].startswith("v1,")


def test_a_receiver_with_another_secret_refuses_the_event(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    """The signature is made with the webhook's own secret: a receiver holding another
    one refuses the event (and the site retries it later)."""
    hook, url = receiver
    other = tmp_path / "other-webhook.secret"
    create_webhook_secret(other)
    placed, sock = _top_site(tmp_path, (WebhookSettings(url, other),))
    with SiteRole(RoleContext(placed, SECRET), "CS1", sock=sock, monitor_interval=0.2) as site:
        site.db.sync.request(SYNC_SELF, site_code="CS1")
        assert site.wait_for_sync(1, timeout=60)
        with hook._changed:
            assert hook._changed.wait_for(lambda: hook.refused, timeout=60)
    assert hook.verified == []
    assert "No matching signature" in hook.refused[0]


def test_a_webhook_secret_others_can_read_stops_the_site_with_the_fix(
    tmp_path: Path, hook_secret: tuple[Path, str], receiver: tuple[Receiver, str]
) -> None:
    path = hook_secret[0]
    path.chmod(0o644)
    placed, sock = _top_site(tmp_path, (WebhookSettings(receiver[1], path),))
    with pytest.raises(RoleError) as caught:
        SiteRole(RoleContext(placed, SECRET), "CS1", sock=sock).start()
    sock.close()
    message = str(caught.value)
    assert str(path) in message and "0644" in message and f"chmod 600 {path}" in message


def test_a_webhook_without_a_secret_is_refused_unless_the_file_says_unsigned() -> None:
    assert_problem(
        alerts('webhooks = ["https://alerts.contoso.com/updatesync"]'),
        "hierarchy.alerts.webhooks[0]",
        "has no secret to sign its events with",
        "unsigned = true",
    )
