"""The WSUS configuration manager (SMS_WSUS_CONFIGURATION_MANAGER, WCM.log).

In ConfigMgr it is the site server component that sets each software update point's WSUS:
its subscription (products, classifications, languages), its upstream and proxy. It runs on
start, once an hour (`Waiting for changes for N minutes` / `Wait timed out after N minutes
while waiting for at least one trigger event.`), when the site control file changes (`SCF
change notification triggered.`) and when the subscription changes: SMSDBMON drops a `.CSB`
file into `WSUSMgr.box` (`File notification triggered WCM Inbox.`). The sync manager syncs
only a SUP it configured; otherwise WSyncMgr.log says `Sync failed: WSUS server not
configured. Please refer to WCM.log for configuration error details.. Source:
CWSyncMgr::DoSync`.

Here each cycle reads the subscription from the site database (`db.wsus`), and for every
active SUP of the site control (default first) asks its update server's admin API for its
configuration (`GET /api/configuration`), checks its upstream, and, where its subscription
differs (or a change woke the cycle), sets it (`PUT /api/configuration`). The update server
refuses a product or classification it does not hold: that SUP's state becomes
WSUS_CONFIG_FAILED (3) with the reason, and its syncs fail until a later cycle succeeds. A
SUP's upstream is set where its update server starts (the hierarchy file); this manager
reports it and warns where it differs from what the site expects.

A failed cycle is tried again after `retry_seconds` (a minute) and up to a tenth more of
jitter (`retry_policy.WCM_CYCLE_RETRY`), not after the hour. Before a
sync, the sync manager calls `ensure_configured`: a SUP not yet configured gets a cycle at
once, and the sync waits for it (bounded) instead of failing while the site starts.

The lines and their sources are in docs/log-ledger.md (WCM.log).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from updatesync.logs.cmtrace import CMTraceLog
from updatesync.retry_policy import WCM_CYCLE_RETRY
from updatesync.security.private_files import private_dir
from updatesync.site.database.models import SoftwareUpdatePoint
from updatesync.site.database.site_db import SiteDatabase
from updatesync.site.database.wsus_config import ConfigState, WsusSubscription
from updatesync.site.sync.sup_client import (
    ConfigurationRefused,
    UpdateServerApi,
    UpdateServerUnavailable,
)
from updatesync.updateserver.failures import GENERIC_ERROR

_log = logging.getLogger(__name__)

BOX = "WSUSMgr.box"
"""The configuration manager's inbox, beside WSyncMgr.box."""
SUFFIX = ".CSB"
HOUR = 3600.0
CHANGE_WAIT = 60.0
"""After a configuration that changed something, the next look this much later."""

VERSION_LINES = (
    "Checking for supported version of WSUS (min WSUS 3.0 SP2 + KB2720211 + KB2734608)",
    "Checking runtime v4.0.30319...",
    "Supported WSUS version found",
)
"""WCM.log's version check at the start of each cycle (the update server's admin API client
is part of the site server here, so it is always found)."""

TRIGGER_LINES: dict[str, tuple[str, ...]] = {
    "file": ("File notification triggered WCM Inbox.",),
    "scf": ("SCF change notification triggered.", "Populating config from SCF"),
    "timeout": ("Timed Out...",),
    "start": ("Populating config from SCF",),
    "sync": ("Configuration requested by SMS_WSUS_SYNC_MANAGER.",),
}
"""What WCM.log says woke a cycle: a `.CSB` drop, a site control change, the hourly timeout,
the component's start, a sync that found its SUP not configured (no real log shows that
case: the line is ours, Unverified in docs/log-ledger.md)."""


class WcmInbox:
    """`WSUSMgr.box`: the database monitor drops `<version>.CSB` for each new subscription
    version; the configuration manager takes them all at once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()
        private_dir(self.path)

    def drop(self, version: int) -> Path:
        target = self.path / f"{version}{SUFFIX}"
        temp = self.path / f".{target.name}.{os.getpid()}.{threading.get_ident()}"
        with open(temp, "wb") as handle:
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
        return target

    def take(self) -> list[Path]:
        """Consume every `.CSB` file present; the files taken."""
        taken = []
        for entry in sorted(self.path.glob(f"*{SUFFIX}")):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                taken.append(entry)
        return taken


@dataclass(frozen=True, slots=True)
class WcmSettings:
    """What the configuration manager knows of its site."""

    site_code: str
    upstream_of: Callable[[SoftwareUpdatePoint], str | None]
    """Where the site expects a SUP to sync from: "Microsoft Update", an upstream URL or
    None (no expectation: not checked)."""
    retry_seconds: float = 60.0
    """After a failed cycle, the next one this much later (not after the hour)."""
    interval_seconds: float = HOUR


class WsusConfigurationManager:
    """Configures the SUPs of one site, on its own thread (`start`, `stop`), or one cycle at a
    time (`run_cycle`)."""

    def __init__(
        self,
        db: SiteDatabase,
        settings: WcmSettings,
        log: CMTraceLog,
        api_for: Callable[[SoftwareUpdatePoint], UpdateServerApi],
        inbox: WcmInbox,
        *,
        first: str = "start",
        rng: random.Random | None = None,
    ) -> None:
        """`first`: what wakes the first cycle: "start", or "scf" when the site control
        file changed since the site last ran (a SUP added, removed or moved). `rng`: the
        random source of the failed cycle's retry jitter (None: the process's own)."""
        self._rng = rng
        self.next_wait: float | None = None
        """Seconds the thread waits after its last cycle (jittered after a failed one)."""
        self.db = db
        self.settings = settings
        self.log = log
        self.api_for = api_for
        self.inbox = inbox
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending: list[str] = [first]
        self._lock = threading.Lock()
        self._cycles = threading.Condition(self._lock)
        self._finished = 0
        """Cycles finished since start: what `ensure_configured` waits on."""
        self._running = False
        """A cycle is under way (guarded by `_cycles`)."""
        self._thread: threading.Thread | None = None
        self._changed = False
        """The last cycle set some SUP's configuration."""

    # -- triggers ----------------------------------------------------------------------------

    def poke(self, trigger: str) -> None:
        """Run a cycle now, for `trigger` ("file", "scf", "sync")."""
        with self._lock:
            if trigger not in self._pending:
                self._pending.append(trigger)
        self._wake.set()

    def files_dropped(self) -> None:
        """The database monitor dropped into WSUSMgr.box."""
        self.poke("file")

    # -- the thread --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"WSUS configuration manager of {self.settings.site_code} runs")
        self._stop.clear()
        self._wake.set()
        self._thread = threading.Thread(
            target=self._loop, name=f"wcm {self.settings.site_code}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        with self._cycles:
            self._cycles.notify_all()

    def _loop(self) -> None:
        wait = 0.0
        while not self._stop.is_set():
            began = time.monotonic()
            woken = self._wake.wait(wait) if wait > 0 else True
            if self._stop.is_set():
                break
            self._wake.clear()
            if self.inbox.take():
                self.poke("file")
                self._wake.clear()
            with self._lock:
                triggers, self._pending = self._pending, []
            if not woken and not triggers:
                minutes = max(round((time.monotonic() - began) / 60), 1)
                self.log.info(
                    f"Wait timed out after {minutes} minutes while waiting for at least one "
                    "trigger event."
                )
                triggers = ["timeout"]
            if not triggers:
                continue
            cycle_began = time.monotonic()
            with self._cycles:
                self._running = True
            try:
                ok = self.run_cycle(_strongest(triggers))
            except Exception as exc:  # the component keeps running; the next cycle retries
                _log.exception("WSUS configuration manager of %s", self.settings.site_code)
                with contextlib.suppress(Exception):
                    self.log.error(f"WSUS configuration cycle failed: {exc}")
                ok = False
            if not ok:
                retry = WCM_CYCLE_RETRY.scaled(self.settings.retry_seconds)
                wait = retry.next_delay(1, self._rng)
            elif self._changed:
                wait = CHANGE_WAIT  # "Will wait for 1 minute for any subscription ... changes"
            else:
                wait = self.settings.interval_seconds - (time.monotonic() - cycle_began)
            wait = max(wait, 1.0)
            with self._cycles:
                self._running = False
                self._finished += 1
                self.next_wait = wait
                self._cycles.notify_all()
            self.log.info(f"Waiting for changes for {max(round(wait / 60), 1)} minutes")

    def wait_cycles(self, count: int, timeout: float) -> bool:
        """Wait until the thread has finished `count` cycles (at most `timeout` seconds)."""
        with self._cycles:
            return self._cycles.wait_for(lambda: self._finished >= count, timeout)

    def ensure_configured(self, sup: SoftwareUpdatePoint, timeout: float = 60.0) -> bool:
        """Whether `sup` is configured (WSUS_CONFIG_SUCCESS with the current subscription);
        when it is not, a cycle is run at once and waited for (at most `timeout` seconds)
        before answering. Without the thread running, the state as stored."""
        if self._configured(sup):
            return True
        if self._thread is None:
            return False
        with self._cycles:
            # A cycle that began before this call may have looked before the SUP was up:
            # wait for the one after it.
            wanted = self._finished + (2 if self._running else 1)
        self.poke("sync")
        deadline = time.monotonic() + timeout
        with self._cycles:
            # ... and for a cycle under way when it ends (a `.CSB` taken meanwhile): such a
            # cycle marks the SUP pending (state 4) until it has looked at it.
            while (self._finished < wanted or self._running) and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cycles.wait(left)
            # Read under the lock: no cycle can begin (and mark the SUP pending) meanwhile.
            return self._configured(sup)

    def _configured(self, sup: SoftwareUpdatePoint) -> bool:
        """Configured with the subscription as it is now: a change not yet set on the SUP
        (a `.CSB` the manager has not taken yet) makes the sync wait for the cycle that
        sets it, so a sync requested right after a change syncs what was asked."""
        state = self.db.wsus.state(sup.fqdn)
        return (
            state is not None
            and state.state is ConfigState.WSUS_CONFIG_SUCCESS
            and state.subscription_version == self.db.wsus.subscription().version
        )

    # -- one cycle ---------------------------------------------------------------------------

    def run_cycle(self, trigger: str = "start") -> bool:
        """Configure every active SUP of the site; True when every one is configured."""
        for line in (*TRIGGER_LINES.get(trigger, ()), *VERSION_LINES):
            self.log.info(line)
        subscription = self.db.wsus.subscription()
        sups = [s for s in self.db.sups.find() if s.active]
        self._changed = False
        results = [self._configure(sup, subscription, trigger) for sup in sups]
        return all(results)

    def _configure(
        self, sup: SoftwareUpdatePoint, subscription: WsusSubscription, trigger: str
    ) -> bool:
        held = self.db.wsus.state(sup.fqdn)
        # A known change (a subscription or the site control file) is pending before the
        # connection, as WCM.log shows it; otherwise only once the SUP is found to differ.
        pending = {
            "file": ConfigState.WSUS_CONFIG_SUBSCRIPTION_PENDING,
            "scf": ConfigState.WSUS_CONFIG_PENDING,
        }.get(trigger)
        if pending is not None:
            self._set_state(sup, pending)
        where = f"{sup.fqdn.upper()}, port: {sup.port}, useSSL: {sup.https}"
        self.log.info(f"Attempting connection to WSUS server: {where}")
        try:
            with self.api_for(sup) as api:
                current = api.configuration()
                self.log.info(f"Successfully connected to server: {where}")
                self._check_upstream(sup, current)
                applied_before = (
                    held is not None
                    and held.state in (ConfigState.WSUS_CONFIG_SUCCESS, pending)
                    and held.subscription_version == subscription.version
                )
                if _same(current, subscription) and applied_before:
                    self.log.info("Successfully refreshed categories from WSUS server")
                    if pending is not None:  # nothing to change after all
                        self._set_state(
                            sup, ConfigState.WSUS_CONFIG_SUCCESS, version=subscription.version
                        )
                    return True
                if pending is None:
                    self._set_state(sup, ConfigState.WSUS_CONFIG_PENDING)
                applied = api.configure(
                    subscription.products, subscription.classifications, subscription.languages
                )
        except ConfigurationRefused as exc:
            return self._failed(
                sup, f"Failed to set Subscriptions on WSUS Server. {exc.error}", GENERIC_ERROR
            )
        except UpdateServerUnavailable as exc:
            failure = exc.failure
            return self._failed(sup, f"{failure.kind}: {failure.message}", failure.hresult)
        self.log.info(f"Subscribed Update Categories {_categories_xml(subscription, applied)}")
        languages = ", ".join(subscription.languages) or "all"
        self.log.info(f"Subscribed Update Languages {languages}")
        self.log.info(
            "Configuration successful. Will wait for 1 minute for any subscription or proxy changes"
        )
        self._set_state(sup, ConfigState.WSUS_CONFIG_SUCCESS, version=subscription.version)
        self._changed = True
        return True

    def _check_upstream(self, sup: SoftwareUpdatePoint, current: dict[str, Any]) -> None:
        expected = self.settings.upstream_of(sup)
        if expected is None:
            return
        actual = current.get("upstream")
        self.log.info("Verify Upstream Server settings on the Active WSUS Server")
        if _same_upstream(actual, expected):
            self.log.info(
                "No changes - WSUS Server settings are correctly configured and Upstream "
                f"Server is set to {expected}"
            )
        else:
            self.log.warning(
                f"WSUS Server {sup.fqdn.upper()} synchronizes from {actual or 'nowhere'}, not "
                f"from {expected}: its upstream is set where its update server starts (the "
                "hierarchy file it is started with)"
            )

    def _failed(self, sup: SoftwareUpdatePoint, error: str, code: int) -> bool:
        self.log.error(error)
        self.log.info(
            f"Setting new configuration state to {int(ConfigState.WSUS_CONFIG_FAILED)} "
            f"({ConfigState.WSUS_CONFIG_FAILED.name})"
        )
        self.db.wsus.record_state(
            sup.fqdn, ConfigState.WSUS_CONFIG_FAILED, error=error, error_code=code
        )
        return False

    def _set_state(
        self,
        sup: SoftwareUpdatePoint,
        state: ConfigState,
        *,
        error: str | None = None,
        version: int | None = None,
    ) -> None:
        self.log.info(f"Setting new configuration state to {int(state)} ({state.name})")
        self.db.wsus.record_state(sup.fqdn, state, error=error, subscription_version=version)


def _strongest(triggers: Sequence[str]) -> str:
    """One trigger names the cycle: a file drop over an SCF change over the rest."""
    for kind in ("file", "scf", "start", "timeout", "sync"):
        if kind in triggers:
            return kind
    return triggers[0]


def _same(current: dict[str, Any], subscription: WsusSubscription) -> bool:
    held = WsusSubscription(
        tuple(current.get("products") or ()),
        tuple(current.get("classifications") or ()),
        tuple(current.get("languages") or ()),
    )
    return held.same_as(subscription)


def _same_upstream(actual: object, expected: str) -> bool:
    if not isinstance(actual, str):
        return False
    if expected == "Microsoft Update":
        return True  # the top-level default SUP: whatever stands for Microsoft Update
    return actual.rstrip("/").lower() == expected.rstrip("/").lower()


def _categories_xml(subscription: WsusSubscription, applied: dict[str, Any]) -> str:
    """The subscribed categories as WCM.log shows them: one `<Category Id="Kind:id">` a line
    with its title in CDATA, the lines joined by `~~` (a folded multi-line value)."""
    titles = applied.get("titles") or {}
    lines = ['<?xml version="1.0" ?>', "<Categories>"]
    for kind, ids in (
        ("Product", subscription.products),
        ("UpdateClassification", subscription.classifications),
    ):
        for uid in ids:
            title = str(titles.get(uid.lower(), uid)).replace("]]>", "]]]]><![CDATA[>")
            ident = quoteattr(f"{kind}:{uid.lower()}")
            lines.append(f" <Category Id={ident}><![CDATA[{title}]]></Category>")
    lines.append("</Categories>")
    return "~~".join(lines)
