"""The lines of the sync manager's log (WSyncMgr.log) a sync run is rebuilt from: what kind
each is (`classify`) and the parts of a failure line (`split_failure`).

The lines are those of SPEC sections 2 to 4, as ConfigMgr and updatesync write them; one
pattern per kind, tried in order (`updatesync.logs.rebuild` has one step per kind).
"""

from __future__ import annotations

import re

_PROCESSED = r", processed (?P<done>\d+) out of (?P<total>\d+) items"
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (k, re.compile(p, re.IGNORECASE | re.DOTALL))
    for k, p in (
        # wake-up lines, before a run starts
        ("hint_schedule", r"Wakeup for scheduled regular sync\b"),
        ("hint_retry", r"Wakeup for a polling cycle\b"),
        ("hint_parent", r"Found parent sync notification file (?P<parent>[A-Za-z0-9]+)\.SYN\b"),
        ("hint_full", r"(?:Found full sync request file\b|Full sync requested\b|.*\bFULL\.SYN\b)"),
        ("hint_local", r"Found local sync request file\b"),
        ("hint_wakeup", r"Wakeup\b"),
        ("start", r"Starting Sync\s*$"),
        ("performing", r"Performing sync on (?P<what>.+?)\s*$"),
        ("read_sups", r"Read SUPs from SCF for (?P<server>\S+)"),
        ("found_sups", r"Found \d+ SUPs"),
        ("active_sup", r"Found active SUP (?P<server>\S+) from SCF File"),
        ("replicas", r"Synchronizing replica WSUS servers"),
        ("wsus_server", r"Synchronizing WSUS server (?P<server>[^\s.][^\s]*?)(?:\s*\.\.\.)?\s*$"),
        ("wsus_start", r"sync: Starting (?P<replica>Replica )?WSUS synchronization"),
        (
            "wsus_progress",
            r"sync: (?:Replica )?WSUS synchronizing (?P<what>[a-z ]+?)" + _PROCESSED,
        ),
        ("wsus_step", r"sync: (?:Replica )?WSUS synchronizing (?P<what>[a-z ]+?)\s*$"),
        ("wsus_done", r"Done synchronizing WSUS Server (?P<server>\S+)"),
        (
            "replica_failed",
            r"Failed to synchronize replica WSUS server (?P<server>[^\s:]+): (?P<rest>.*)",
        ),
        (
            "sms_server",
            r"Synchronizing SMS database with WSUS server (?P<server>[^\s]+?)(?: \.\.\.)?$",
        ),
        ("sms_categories", r"sync: SMS synchronizing categories" + _PROCESSED),
        ("sms_categories_step", r"sync: SMS synchronizing categories\s*$"),
        ("sms_updates", r"sync: SMS synchronizing updates" + _PROCESSED),
        ("sms_updates_step", r"sync: SMS synchronizing updates\s*$"),
        ("sms_update", r"Synchronizing update [0-9a-f-]{36}\b"),
        (
            "update_failed",
            r"Failed to sync update (?P<update>[0-9a-f-]{36})\.?\s*(?:Error: )?(?P<rest>.*)",
        ),
        ("sms_done", r"Done synchronizing SMS with WSUS Server (?P<server>\S+)"),
        (
            "content_version",
            r"Set content version of update source \S+ for site (?P<site>\w+) to (?P<v>\d+)",
        ),
        ("succeeded", r"Sync succeeded\.(?: .* on site (?P<site>\w+))?"),
        (
            "updated",
            r"Updated (?P<n>\d+) items in SMS database, new update source content version is "
            r"(?P<v>\d+)",
        ),
        ("synced_parent", r"Successfully synced site with parent (?P<p>\w+), version (?P<v>\d+)"),
        ("sync_time", r"Sync time: (?P<d>\d+)d(?P<h>\d+)h(?P<m>\d+)m(?P<s>\d+)s"),
        ("children", r"Sending sync notification to child site\(s\): (?P<list>.+?)\s*$"),
        (
            "replicating",
            r"SQL Replication type has not been set for .*replicating to \((?P<list>[^)]*)\)",
        ),
        ("notify_failed", r"Failed to send the sync notification to child site\(s\)"),
        ("retry", r"Sync failed\. Will retry in (?P<n>\d+) minutes?"),
        ("failed", r"Sync failed: (?P<rest>.*)"),
        ("aborted", r"Too many consecutive failures\. Aborting sync\b"),
        ("sleeping", r"Sleeping \d+ more minutes?"),
    )
]
HINTS = frozenset(
    {"hint_schedule", "hint_retry", "hint_parent", "hint_full", "hint_local", "hint_wakeup"}
)
PERFORMING = {
    "local request": "local",
    "parent request": "parent",
    "regular schedule": "schedule",
    "retry schedule": "retry",
    "full sync request": "full",
}


def classify(message: str) -> tuple[str | None, re.Match[str] | None]:
    """The kind of a sync manager line and its match, or (None, None) when unknown. A pasted
    line may start with a BOM shown as `?`, or with CMTrace's column header `Message` glued
    to it (`MessageSync failed: ...`, PMPC-PERM): both are looked past."""
    text = message.strip().lstrip("\ufeff?")
    for candidate in (text, text.removeprefix("Message") if text.startswith("Message") else ""):
        for kind, pattern in PATTERNS if candidate else ():
            match = pattern.match(candidate)
            if match is not None:
                return kind, match
    return None, None


def split_failure(text: str) -> tuple[str | None, str | None]:
    """`<message>. Source: <source>` → (message, source); a text without `Source:` is all
    message. Of a message spread over lines (an exception and its stack), the first line."""
    message, sep, source = text.rpartition(". Source: ")
    if not sep:
        message, source = text, ""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = lines[0].rstrip(".") if lines else ""
    return (first or None), (source.strip().rstrip(".") or None)


def sites(listed: str) -> list[str]:
    return [s.strip().upper() for s in re.split(r"[,;\s]+", listed) if s.strip()]


def host(name: str) -> str:
    return name.strip().rstrip(".").lower()
