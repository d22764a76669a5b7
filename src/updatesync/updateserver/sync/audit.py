"""The consistency audit a downstream runs at the end of each successful sync.

It asks its upstream, with the sync's session cookie, for the digest of what the upstream
had listed to it at the anchors the sync has just saved (`GetRevisionSetDigest`,
updatesync's own extension of the server-sync service: `wsusss/messages/audit.py`), and
computes its own over the same scope (`digest.scoped`: its kept digest when it mirrors its
upstream, else the selection of its filter over its own store). Comparing against the
upstream's anchors, not its present, keeps a sync of the upstream running meanwhile from
looking like drift; comparing the downstream's present filter on both sides keeps a
subscription change from looking like one.

- **equal**: the two sets are the same;
- **differs**: they are not; the anchors of this upstream are dropped in the same
  transaction that records the result, so the next sync is a full sync, which fetches
  every revision the downstream lacks (a revision it holds that the upstream does not is
  never removed: revisions are immutable, and the audit says so again after that sync);
- **not available**: no answer to compare (a real WSUS or Microsoft Update faults on the
  extension, the call failed, or the sync saved no anchors). Never an alarm.

The result is kept in `revision_audit` (one row per upstream), returned with the sync's
result and shown by `GET /api/sync`. Each audit writes one line to SoftwareDistribution.log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from sqlalchemy import Connection, delete, insert, select

from updatesync.updateserver import schema as t
from updatesync.updateserver.digest import scoped
from updatesync.updateserver.errors import UnsupportedLanguages
from updatesync.updateserver.peers import UpstreamState, write_upstream_state
from updatesync.updateserver.selection import FilterItem
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.sync.context import SyncContext
from updatesync.updateserver.sync.filters import read_filter_key
from updatesync.updateserver.sync.languages import language_ids
from updatesync.updateserver.sync.session import ServerChanged, UpstreamSession
from updatesync.wsusss.anchors import Anchor, AnchorError
from updatesync.wsusss.errors import WsusssError
from updatesync.wsusss.faults import WsusssFault

__all__ = ["DIFFERS", "EQUAL", "NOT_AVAILABLE", "AuditResult", "audit_after_sync", "last_audit"]

EQUAL: Final = "equal"
DIFFERS: Final = "differs"
NOT_AVAILABLE: Final = "not available"


@dataclass(frozen=True, slots=True)
class AuditResult:
    """One audit of this store against `upstream` (its URL), at `checked_at`."""

    upstream: str
    result: str
    checked_at: datetime
    scope: str | None = None
    own_digest: str | None = None
    own_count: int | None = None
    upstream_digest: str | None = None
    upstream_count: int | None = None
    config_counter: int | None = None
    updates_counter: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]
        values["checked_at"] = self.checked_at.isoformat()
        return values


def audit_after_sync(
    context: SyncContext, session: UpstreamSession, state: UpstreamState
) -> AuditResult:
    """Audit the store against its upstream at the anchors of `state` (just saved), keep
    the result, and on a difference drop the anchors (the next sync is a full one)."""
    store, url = context.store, context.url
    now = context.hooks.now()
    subscription = store.subscription()
    products, classes = tuple(subscription.products), tuple(subscription.classifications)
    # The languages the filter sent (none to an upstream before protocol 1.3): the same
    # scope on both sides, by LanguageID to the upstream, by short name here.
    key = read_filter_key(state.filter_key)
    sent = sorted(key.languages or ()) if key is not None else []
    try:
        lcids = tuple(language_ids(url, sent, state.languages).values()) if sent else ()
    except UnsupportedLanguages as exc:
        return _keep(context, AuditResult(url, NOT_AVAILABLE, now, reason=str(exc)))
    counters = _counters(state)
    if counters is None:
        result = AuditResult(url, NOT_AVAILABLE, now, reason="the sync saved no anchors")
        return _keep(context, result)
    config_anchor, update_anchor = state.config_list_anchor, state.update_list_anchor
    assert config_anchor is not None and update_anchor is not None
    try:
        answer = session.call(
            lambda cookie: context.client.get_revision_set_digest(
                cookie, config_anchor, update_anchor, products, classes, lcids
            )
        )
    except (ServerChanged, WsusssFault) as exc:
        reason = f"the upstream does not answer GetRevisionSetDigest ({_fault_text(exc)})"
        return _keep(context, AuditResult(url, NOT_AVAILABLE, now, reason=reason))
    except (WsusssError, httpx.HTTPError, OSError) as exc:
        reason = f"GetRevisionSetDigest failed: {exc}"
        return _keep(context, AuditResult(url, NOT_AVAILABLE, now, reason=reason))
    own, scope = scoped(store, products, classes, tuple(FilterItem(lang) for lang in sent))
    if answer.scope != scope:
        reason = f"the upstream answered for scope {answer.scope!r}, not {scope!r}"
        return _keep(context, AuditResult(url, NOT_AVAILABLE, now, reason=reason))
    same = own.hex == answer.digest.lower() and own.count == answer.count
    result = AuditResult(
        url,
        EQUAL if same else DIFFERS,
        now,
        scope=scope,
        own_digest=own.hex,
        own_count=own.count,
        upstream_digest=answer.digest.lower(),
        upstream_count=answer.count,
        config_counter=counters[0],
        updates_counter=counters[1],
    )
    return _keep(context, result)


def last_audit(store: UpdateStore, upstream: str | None = None) -> AuditResult | None:
    """The last audit kept (against `upstream`, else the latest against any)."""
    a = t.revision_audit
    query = select(a).order_by(a.c.checked_at.desc()).limit(1)
    if upstream is not None:
        query = query.where(a.c.upstream_url == upstream)
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        return None
    values = dict(row)
    checked = values.pop("checked_at")
    if checked.tzinfo is None:  # SQLite keeps the UTC time without its zone
        checked = checked.replace(tzinfo=UTC)
    return AuditResult(
        upstream=values.pop("upstream_url"),
        checked_at=checked,
        **values,
    )


def _counters(state: UpstreamState) -> tuple[int, int] | None:
    try:
        config = Anchor.parse(state.config_list_anchor or "")
        updates = Anchor.parse(state.update_list_anchor or "")
    except AnchorError:
        return None
    return config.change_number, updates.change_number


def _fault_text(exc: Exception) -> str:
    fault = exc.fault if isinstance(exc, ServerChanged) else exc
    code = getattr(fault, "code", None)
    return f"fault {code}" if code is not None else str(fault)


def _keep(context: SyncContext, result: AuditResult) -> AuditResult:
    """Record `result`; on a difference drop the upstream's anchors in the same
    transaction. Then its line in SoftwareDistribution.log."""
    with context.store.engine.begin() as conn:
        _write(conn, result)
        if result.result == DIFFERS:
            write_upstream_state(conn, UpstreamState(context.url))
    context.note(_line(result))
    return result


def _write(conn: Connection, result: AuditResult) -> None:
    a = t.revision_audit
    conn.execute(delete(a).where(a.c.upstream_url == result.upstream))
    values = result.to_json()
    values["upstream_url"] = values.pop("upstream")
    values["checked_at"] = result.checked_at
    conn.execute(insert(a).values(**values))


def _line(result: AuditResult) -> str:
    if result.result == EQUAL:
        return (
            f"Revision set audit against {result.upstream}: equal "
            f"({result.own_count} revisions, scope {result.scope})"
        )
    if result.result == DIFFERS:
        return (
            f"Revision set audit against {result.upstream}: differs (here "
            f"{result.own_count} revisions, digest {result.own_digest}; upstream "
            f"{result.upstream_count}, digest {result.upstream_digest}; scope {result.scope}); "
            "anchors dropped, the next sync is a full sync"
        )
    return f"Revision set audit against {result.upstream}: not available ({result.reason})"
