"""A replica update server over loopback HTTP: after the updates it gets its upstream's target
groups, deployments (approvals), dead deployments and hidden updates with GetDeployments.

A is an autonomous upstream whose administrator approves updates; B syncs from A as a
replica (or, in one test, as an autonomous server). Every call goes through a
`FaultInjector` wrapped around A's real service, which records what went over the wire and
breaks the calls a test chooses.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import Databases
from fake_upstream import Exchange, FaultInjector, Rule, fault, garbage, respond, truncated
from typer.testing import CliRunner
from upstream import sync_runner, update_server_app

from updatesync.cli import app as cli_app
from updatesync.metadata.export import write_export
from updatesync.metadata.generator import generate_catalog
from updatesync.metadata.model import RevisionKey
from updatesync.roles.serving import BackgroundServer
from updatesync.site.sync.sup_client import UpdateServerApi
from updatesync.updateserver.admin_api import UpstreamSyncRequest
from updatesync.updateserver.deployments import (
    ALL_COMPUTERS,
    BUILTIN_GROUPS,
    NO_DEADLINE,
    UNASSIGNED_COMPUTERS,
    Deployment,
)
from updatesync.updateserver.errors import UpdateServerError
from updatesync.updateserver.importer import import_export_cabinet
from updatesync.updateserver.peers import (
    downstream_servers,
    save_upstream_state,
    upstream_state,
)
from updatesync.updateserver.store import UpdateStore
from updatesync.updateserver.store_backend import StoreBackend
from updatesync.updateserver.sync import (
    SyncFailed,
    SyncHooks,
    SyncResult,
    SyncSettings,
    sync_from_upstream,
)
from updatesync.wsusss.anchors import Anchor
from updatesync.wsusss.client import UpstreamClient
from updatesync.wsusss.faults import ErrorCode
from updatesync.wsusss.messages import (
    GetDeploymentsRequest,
    GetDeploymentsResponse,
    ServerSyncDeploymentResult,
    parse_request,
)
from updatesync.wsusss.service import create_app

OTHER = "other items"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("catalog") / "catalog.cab"
    write_export(path, generate_catalog(40, seed=17))
    return path


@dataclass
class Pair:
    """A (autonomous upstream, behind a fault injector) and B (the downstream)."""

    a: UpdateStore
    b: UpdateStore
    url: str
    wire: FaultInjector
    phases: list[tuple[str, int, int]] = field(default_factory=list)

    def sync(self, **settings: Any) -> SyncResult:
        """Sync B from A; `settings` are further `SyncSettings` fields."""
        self.phases.clear()
        hooks = SyncHooks(phase_progress=lambda *p: self.phases.append(p), sleep=lambda _s: None)
        with UpstreamClient(self.url, timeout=10.0, retries=0) as client:
            return sync_from_upstream(
                self.b,
                SyncSettings(self.url, server_name="replica.test.invalid", **settings),
                hooks=hooks,
                client=client,
            )

    def other_items(self) -> list[tuple[int, int]]:
        return [(done, total) for phase, done, total in self.phases if phase == OTHER]

    def deployment_requests(self) -> list[GetDeploymentsRequest]:
        found = [
            parse_request(r.body) for r in self.wire.requests if r.operation == "GetDeployments"
        ]
        assert all(isinstance(r, GetDeploymentsRequest) for r in found)
        return found  # type: ignore[return-value]

    def updates(self) -> list[RevisionKey]:
        """Software revisions of the catalog, in a stable order (what gets approved)."""
        keys = []
        for key in sorted(self.a.revision_keys()):
            xml = self.a.xml(key.update_id, key.revision) or ""
            if 'UpdateType="Software"' in xml:
                keys.append(key)
        assert len(keys) >= 6
        return keys


@pytest.fixture
def pair(tmp_path: Path, catalog: Path, databases: Databases) -> Iterator[Pair]:
    a = UpdateStore.open(tmp_path / "A", url=databases.new("a").url)
    import_export_cabinet(a, catalog)
    wire = FaultInjector(create_app(StoreBackend(a)))
    b_url = databases.new("b").url
    with BackgroundServer(wire) as server, UpdateStore.open(tmp_path / "B", url=b_url) as b:
        yield Pair(a, b, server.url, wire)
    a.close()


def _same(deployments: list[Deployment]) -> list[Deployment]:
    """Deployments as the upstream and the replica both see them (each numbers its own
    changes), by GUID."""
    return sorted((replace(d, change_number=0) for d in deployments), key=lambda d: d.deployment_id)


def _mirrors(pair: Pair) -> None:
    assert pair.b.target_groups() == pair.a.target_groups()
    assert _same(pair.b.deployments()) == _same(pair.a.deployments())
    assert pair.b.hidden_updates() == pair.a.hidden_updates()


def _snapshot(pair: Pair) -> tuple[object, ...]:
    state = upstream_state(pair.b, pair.url)
    return (
        pair.b.revision_keys(),
        pair.b.target_groups(),
        pair.b.deployments(),
        pair.b.dead_deployments(),
        pair.b.hidden_updates(),
        pair.b.deployment_counter(),
        state.deployment_anchor,
        state.update_list_anchor,
        state.filter_key,
    )


# --------------------------------------------------------------------------- approving


def test_approving_names_what_is_wrong(pair: Pair) -> None:
    key = pair.updates()[0]
    with pytest.raises(UpdateServerError, match="holds no such revision"):
        pair.a.approve(key.update_id, key.revision + 9999, UNASSIGNED_COMPUTERS, 0, "admin")
    with pytest.raises(UpdateServerError, match="no such target group"):
        pair.a.approve(key.update_id, key.revision, "0e1c7a52-0000-4000-8000-000000000000", 0, "a")
    with pytest.raises(UpdateServerError, match="action 7"):
        pair.a.approve(key.update_id, key.revision, UNASSIGNED_COMPUTERS, 7, "admin")
    with pytest.raises(UpdateServerError, match="built in"):
        pair.a.remove_target_group(ALL_COMPUTERS)
    assert pair.a.deployments() == [] and pair.a.deployment_counter() == 0


# --------------------------------------------------------------------------- replica syncs


def test_a_replica_gets_the_groups_and_approvals_counted_as_other_items(pair: Pair) -> None:
    u = pair.updates()
    pilot = pair.a.add_target_group("Pilot")
    first = pair.a.approve(u[0].update_id, u[0].revision, UNASSIGNED_COMPUTERS, 0, "WUS Server")
    deadline = datetime(2027, 1, 15, 18, 0, tzinfo=UTC)
    pair.a.approve(
        u[1].update_id,
        u[1].revision,
        pilot.target_group_id,
        3,
        "CONTOSO\\wsusadmin",
        deadline=deadline,
        is_assigned=False,
        download_priority=3,
    )
    pair.a.set_hidden(u[2].update_id)

    result = pair.sync(replica=True)

    _mirrors(pair)
    held = {d.deployment_id: d for d in pair.b.deployments()}
    assert held[first.deployment_id].deadline == NO_DEADLINE
    assert {d.deadline for d in held.values()} == {NO_DEADLINE, deadline}
    assert pair.b.hidden_updates() == [u[2].update_id]
    # 3 groups (two built in, Pilot) + 2 deployments, as WSyncMgr counts "other items".
    assert (result.replica, result.other_items) == (True, 5)
    assert (result.target_groups, result.deployments_received, result.dead_deployments) == (
        3,
        2,
        0,
    )
    assert pair.other_items() == [(0, 0), (0, 5), (5, 5)]
    assert [p for p, _d, _t in pair.phases].index(OTHER) > [p for p, _d, _t in pair.phases].index(
        "updates"
    )
    # On the wire: one GetDeployments, last of the protocol's calls (only the audit, our
    # extension, after it), without a deployment anchor (a first sync), with the update
    # list anchor as sync anchor.
    assert pair.wire.operations[-2:] == ["GetDeployments", "GetRevisionSetDigest"]
    (request,) = pair.deployment_requests()
    assert request.deployment_anchor is None
    assert request.sync_anchor == result.update_list_anchor
    assert upstream_state(pair.b, pair.url).deployment_anchor == result.deployment_anchor
    assert Anchor.parse(result.deployment_anchor or "").change_number == 2  # 2 approvals
    # The upstream knows B as a replica now: only a replica calls GetDeployments.
    (downstream,) = downstream_servers(pair.a)
    assert downstream.is_replica


def test_a_delta_replica_sync_gets_only_what_changed_after_the_deployment_anchor(
    pair: Pair,
) -> None:
    u = pair.updates()
    pair.a.approve(u[0].update_id, u[0].revision, UNASSIGNED_COMPUTERS, 0, "admin")
    first = pair.sync(replica=True)
    counter_b = pair.b.deployment_counter()

    later = pair.a.approve(u[3].update_id, u[3].revision, ALL_COMPUTERS, 2, "admin")
    second = pair.sync(replica=True)

    request = pair.deployment_requests()[-1]
    assert request.deployment_anchor == first.deployment_anchor
    assert (second.target_groups, second.deployments_received, second.dead_deployments) == (
        2,
        1,
        0,
    )
    assert second.other_items == 3
    assert pair.other_items()[-1] == (3, 3)
    assert [d.deployment_id for d in pair.b.deployments(since=counter_b)] == [later.deployment_id]
    _mirrors(pair)

    third = pair.sync(replica=True)  # nothing changed: the groups alone come again
    assert (third.deployments_received, third.other_items) == (0, 2)
    assert pair.b.deployment_counter() == counter_b + 1


def test_a_removed_or_replaced_deployment_arrives_dead_and_is_removed(pair: Pair) -> None:
    u = pair.updates()
    gone = pair.a.approve(u[0].update_id, u[0].revision, UNASSIGNED_COMPUTERS, 0, "admin")
    old = pair.a.approve(u[1].update_id, u[1].revision, UNASSIGNED_COMPUTERS, 0, "admin")
    pair.sync(replica=True)
    assert {d.deployment_id for d in pair.b.deployments()} == {
        gone.deployment_id,
        old.deployment_id,
    }

    assert pair.a.remove_deployment(gone.deployment_id)
    new = pair.a.approve(u[1].update_id, u[1].revision, UNASSIGNED_COMPUTERS, 1, "admin")
    assert pair.a.dead_deployments() == [gone.deployment_id, old.deployment_id]

    result = pair.sync(replica=True)

    assert (result.dead_deployments, result.deployments_received) == (2, 1)
    assert result.other_items == 2 + 1 + 2
    assert [d.deployment_id for d in pair.b.deployments()] == [new.deployment_id]
    assert pair.b.deployments()[0].action == 1
    # Kept as dead on B too, for B's own replicas.
    assert set(pair.b.dead_deployments()) == {gone.deployment_id, old.deployment_id}
    _mirrors(pair)


def test_a_group_removed_upstream_goes_with_its_deployments(pair: Pair) -> None:
    u = pair.updates()
    pilot = pair.a.add_target_group("Pilot")
    ring = pair.a.add_target_group("Ring 1", parent_group_id=pilot.target_group_id)
    kept = pair.a.approve(u[0].update_id, u[0].revision, UNASSIGNED_COMPUTERS, 0, "admin")
    pair.a.approve(u[1].update_id, u[1].revision, ring.target_group_id, 0, "admin")
    pair.sync(replica=True)
    assert [g.name for g in pair.b.target_groups()][-2:] == ["Pilot", "Ring 1"]
    assert pair.b.target_groups()[-1].parent_group_id == pilot.target_group_id

    assert pair.a.remove_target_group(ring.target_group_id) == 1
    result = pair.sync(replica=True)

    assert result.dead_deployments == 1
    assert "Ring 1" not in [g.name for g in pair.b.target_groups()]
    assert [d.deployment_id for d in pair.b.deployments()] == [kept.deployment_id]
    _mirrors(pair)


def test_an_autonomous_downstream_never_calls_get_deployments(pair: Pair) -> None:
    u = pair.updates()
    pair.a.add_target_group("Pilot")
    pair.a.approve(u[0].update_id, u[0].revision, UNASSIGNED_COMPUTERS, 0, "admin")

    first = pair.sync()
    pair.a.approve(u[1].update_id, u[1].revision, UNASSIGNED_COMPUTERS, 0, "admin")
    second = pair.sync()

    assert "GetDeployments" not in pair.wire.operations
    assert pair.wire.operations.count("GetRevisionIdList") == 4  # the metadata did sync
    assert pair.b.revision_keys() == pair.a.revision_keys()
    assert pair.b.target_groups() == list(BUILTIN_GROUPS) and pair.b.deployments() == []
    for result in (first, second):
        assert (result.replica, result.other_items, result.deployment_anchor) == (False, 0, None)
    assert OTHER not in [p for p, _d, _t in pair.phases]
    (downstream,) = downstream_servers(pair.a)
    assert not downstream.is_replica


async def _unlisted_group(exchange: Exchange) -> None:
    """The real answer without the group one of its deployments targets."""
    status, payload = await exchange.forward()
    answer = GetDeploymentsResponse.from_xml(payload).result
    groups = tuple(g for g in answer.groups or () if g.name != "Canary")
    broken = ServerSyncDeploymentResult(
        answer.anchor, groups, answer.deployments, answer.dead_deployments, answer.hidden_updates
    )
    await respond(exchange.send, status, GetDeploymentsResponse(broken).to_xml())


@pytest.mark.parametrize(
    ("mischief", "says"),
    [
        (fault(ErrorCode.INTERNAL_SERVER_ERROR), "InternalServerError"),
        (truncated(0.6), "GetDeployments"),
        (garbage(), "GetDeployments"),
        (_unlisted_group, "not among the 2 target groups"),
    ],
    ids=["fault", "truncated", "garbage", "unlisted-group"],
)
def test_a_failure_during_get_deployments_leaves_the_replica_as_it_was(
    pair: Pair, mischief: object, says: str
) -> None:
    u = pair.updates()
    gone = pair.a.approve(u[0].update_id, u[0].revision, UNASSIGNED_COMPUTERS, 0, "admin")
    pair.sync(replica=True)
    before = _snapshot(pair)
    # Much changes upstream: a group with an approval, another approval, a removal, a hidden
    # update. None of it may reach B while GetDeployments fails.
    canary = pair.a.add_target_group("Canary")
    pair.a.approve(u[1].update_id, u[1].revision, canary.target_group_id, 0, "admin")
    pair.a.approve(u[2].update_id, u[2].revision, ALL_COMPUTERS, 0, "admin")
    pair.a.remove_deployment(gone.deployment_id)
    pair.a.set_hidden(u[3].update_id)
    pair.wire.rules.append(Rule("GetDeployments", mischief))  # type: ignore[arg-type]

    with pytest.raises(SyncFailed) as caught:
        pair.sync(replica=True)

    message = str(caught.value)
    assert says in message
    assert pair.url in message
    assert "no target group or deployment of this run was applied" in message
    assert _snapshot(pair) == before
    assert pair.b.history(limit=1)[0].result == "Failed"

    pair.wire.rules.clear()
    result = pair.sync(replica=True)
    assert (result.deployments_received, result.dead_deployments) == (2, 1)
    _mirrors(pair)


def test_a_full_replica_sync_sends_no_deployment_anchor_and_mirrors_the_upstream(
    pair: Pair,
) -> None:
    u = pair.updates()
    pair.a.approve(u[0].update_id, u[0].revision, UNASSIGNED_COMPUTERS, 0, "admin")
    pair.a.approve(u[1].update_id, u[1].revision, ALL_COMPUTERS, 0, "admin")
    pair.sync(replica=True)
    # Something B holds that A does not (an approval made on the replica itself).
    local = pair.b.approve(u[4].update_id, u[4].revision, ALL_COMPUTERS, 0, "local admin")

    result = pair.sync(replica=True, full=True)

    assert pair.deployment_requests()[-1].deployment_anchor is None
    assert result.deployments_received == 2
    assert local.deployment_id not in {d.deployment_id for d in pair.b.deployments()}
    assert local.deployment_id in pair.b.dead_deployments()
    _mirrors(pair)


def test_a_deployment_anchor_the_upstream_never_issued_restarts_from_scratch(
    pair: Pair,
) -> None:
    u = pair.updates()
    pair.a.approve(u[0].update_id, u[0].revision, UNASSIGNED_COMPUTERS, 0, "admin")
    pair.sync(replica=True)
    # As if A had been restored from a backup taken before many approvals.
    state = upstream_state(pair.b, pair.url)
    ahead = Anchor.issue(pair.a.deployment_counter() + 50, datetime.now(UTC)).format()
    save_upstream_state(pair.b, replace(state, deployment_anchor=ahead))

    result = pair.sync(replica=True)

    first, second = pair.deployment_requests()[-2:]
    assert first.deployment_anchor == ahead and second.deployment_anchor is None
    assert result.deployments_received == 1
    _mirrors(pair)


# --------------------------------------------------------------------------- admin API, CLI


def test_the_site_asks_a_replica_sup_for_a_replica_sync_over_its_admin_api(pair: Pair) -> None:
    """Three servers: A, B's admin API (its runner syncs B from A) and the site's client."""
    u = pair.updates()
    pair.a.add_target_group("Pilot")
    pair.a.approve(u[0].update_id, u[0].revision, UNASSIGNED_COMPUTERS, 0, "admin")
    asked: list[UpstreamSyncRequest] = []
    runner = sync_runner(pair.b, pair.url, on_request=asked.append)
    sup = update_server_app(pair.b, runner)
    seen: list[tuple[str, int, int]] = []
    with BackgroundServer(sup) as server, UpdateServerApi(server.url) as api:
        with httpx.Client(base_url=server.url) as http:
            bad = http.post("/api/sync", json={"replica": "yes"})
            assert bad.status_code == 400 and "replica" in bad.json()["error"]
            assert not runner.state.running

        outcome = api.synchronize(
            replica=True, progress=lambda p, d, t, _eta: seen.append((p, d, t))
        )

        assert asked == [UpstreamSyncRequest(replica=True)]
        assert outcome.result["replica"] is True and outcome.result["other_items"] == 4
        assert seen[-1] == (OTHER, 4, 4)
        summary = api.deployments()
        assert [(g["name"], g["deployments"]) for g in summary["target_groups"]] == [
            ("All Computers", 0),
            ("Unassigned Computers", 1),
            ("Pilot", 0),
        ]
        assert summary["deployments"] == 1 and summary["by_action"] == {"install": 1}
        assert "items" in api.deployments(since=0) and len(api.deployments(since=0)["items"]) == 1
        status = api.status()
        assert (status["target_groups"], status["deployments"]) == (3, 1)

        api.synchronize()  # a plain request stays autonomous
        assert asked[-1] == UpstreamSyncRequest()
    assert pair.wire.operations.count("GetDeployments") == 1


def test_the_sync_command_takes_replica(pair: Pair, tmp_path: Path) -> None:
    u = pair.updates()
    pair.a.approve(u[0].update_id, u[0].revision, UNASSIGNED_COMPUTERS, 0, "admin")
    data = tmp_path / "C"
    answer = CliRunner().invoke(
        cli_app, ["updateserver", "sync", "--data", str(data), "--upstream", pair.url, "--replica"]
    )
    assert answer.exit_code == 0, answer.output
    assert "3 other items (2 target groups, 1 deployments, 0 dead deployments)" in answer.output
    with UpdateStore.open(data) as store:
        assert len(store.deployments()) == 1


def test_concurrent_approvals_while_a_replica_syncs_are_not_lost(pair: Pair) -> None:
    """An approval made while GetDeployments is answered comes with this sync or the next."""
    u = pair.updates()
    pair.a.approve(u[0].update_id, u[0].revision, UNASSIGNED_COMPUTERS, 0, "admin")
    approved = threading.Event()

    async def approve_meanwhile(exchange: Exchange) -> None:
        status, payload = await exchange.forward()
        pair.a.approve(u[1].update_id, u[1].revision, UNASSIGNED_COMPUTERS, 0, "admin")
        approved.set()
        await respond(exchange.send, status, payload)

    pair.wire.on("GetDeployments", approve_meanwhile)
    first = pair.sync(replica=True)
    assert approved.is_set() and first.deployments_received == 1
    second = pair.sync(replica=True)
    assert second.deployments_received == 1
    _mirrors(pair)
