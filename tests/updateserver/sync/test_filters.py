"""What a sync sends (the update list filter and its key) and how it reads a GetDeployments
answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from updatesync.updateserver.deployments import ALL_COMPUTERS
from updatesync.updateserver.store import Subscription
from updatesync.updateserver.sync.filters import (
    FilterKey,
    filter_key,
    read_filter_key,
    replica_items,
    update_filter,
)
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.messages import (
    NO_DEADLINE,
    GetRevisionIdListRequest,
    IdAndDelta,
    LanguageAndDelta,
    ServerSyncDeployment,
    ServerSyncDeploymentResult,
    ServerSyncTargetGroup,
)

P1, P2 = "AAAAAAAA-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002"
C1 = "cccccccc-0000-4000-8000-000000000001"


def test_the_filter_key_is_sorted_lower_case_and_reads_back() -> None:
    key = filter_key(Subscription((P2, P1), (C1,), ("EN", "de")))
    assert key == (
        '{"products":["aaaaaaaa-0000-4000-8000-000000000001",'
        '"aaaaaaaa-0000-4000-8000-000000000002"],'
        '"classifications":["cccccccc-0000-4000-8000-000000000001"],'
        '"languages":["de","en"]}'
    )
    assert read_filter_key(key) == FilterKey(
        frozenset({P1.lower(), P2}), frozenset({C1}), frozenset({"de", "en"})
    )
    # A key from before languages were sent reads with no languages (every one came).
    old = f'{{"products":["{P2}"],"classifications":["{C1}"]}}'
    assert read_filter_key(old) == FilterKey(frozenset({P2}), frozenset({C1}), None)
    assert read_filter_key(None) is None and read_filter_key("") is None
    assert read_filter_key("{not json") is None and read_filter_key('{"x": 1}') is None


def test_delta_only_for_what_was_in_the_filter_when_the_anchor_was_taken() -> None:
    before = filter_key(Subscription((P1,), (C1,)))
    now = Subscription((P1, P2), (C1,))
    sent = update_filter(now, "5,anchor", before)
    assert sent.get_config is False and sent.anchor == "5,anchor"
    assert sent.categories == (IdAndDelta(P1.lower(), True), IdAndDelta(P2, False))
    assert sent.classifications == (IdAndDelta(C1, True),)
    # Without an anchor nothing is a delta; an empty subscription sends no lists.
    first = update_filter(now, None, before)
    assert first.categories is not None
    assert all(not item.delta for item in first.categories)
    empty = update_filter(Subscription(), "5,anchor", before)
    assert (empty.categories, empty.classifications) == (None, None)


def test_languages_are_sent_by_id_with_delta_only_for_those_the_anchor_was_taken_with() -> None:
    ids = {"en": 1033, "de": 1031}
    now = Subscription((P1,), (C1,), ("en", "de"))
    # The anchor was taken with English only: German is new, its older updates must come.
    sent = update_filter(now, "5,anchor", filter_key(Subscription((P1,), (C1,), ("en",))), ids)
    assert sent.languages == (LanguageAndDelta(1033, True), LanguageAndDelta(1031, False))
    # Taken for every language (a key of no languages, or one from before languages were
    # sent): nothing is missing, every language is a delta.
    for taken in (
        filter_key(Subscription((P1,), (C1,))),
        f'{{"products":["{P1.lower()}"],"classifications":["{C1}"]}}',
    ):
        again = update_filter(now, "5,anchor", taken, ids)
        assert again.languages == (LanguageAndDelta(1033, True), LanguageAndDelta(1031, True))
    # No anchor: nothing is a delta. No ids (no languages, or an upstream before 1.3): no
    # Languages element at all, which a WSUS reads as every language.
    first = update_filter(now, None, None, ids)
    assert first.languages == (LanguageAndDelta(1033, False), LanguageAndDelta(1031, False))
    assert update_filter(now, "5,anchor", None).languages is None
    wire = GetRevisionIdListRequest(None, sent).to_xml()
    parsed = GetRevisionIdListRequest.from_xml(wire).filter
    assert parsed is not None and parsed.languages == sent.languages
    assert b"<Languages><LanguageAndDelta><Id>1033</Id><Delta>true</Delta>" in wire


def test_a_get_deployments_answer_as_replica_items() -> None:
    group = ServerSyncTargetGroup(
        "0e1c7a52-0000-4000-8000-000000000001", ALL_COMPUTERS, None, False
    )
    deployment = ServerSyncDeployment(
        update_id=P2,
        revision_number=200,
        action=0,
        admin_name="admin",
        deadline=NO_DEADLINE,
        is_assigned=True,
        go_live_time=datetime(2026, 10, 4, tzinfo=UTC),
        deployment_guid="dddddddd-0000-4000-8000-000000000001",
        target_group_id=group.target_group_id,
        download_priority=1,
    )
    answer = ServerSyncDeploymentResult(
        "9", groups=(group,), deployments=(deployment,), dead_deployments=("x",)
    )
    items = replica_items(answer, complete=True, where="http://up.test")
    assert items.groups[0].name == "" and items.groups[0].parent_group_id == ALL_COMPUTERS
    assert items.deployments[0].deployment_id == deployment.deployment_guid
    assert (items.dead, items.hidden, items.complete, items.count) == (("x",), (), True, 3)
    with pytest.raises(ProtocolError, match="no Anchor"):
        replica_items(ServerSyncDeploymentResult(None), complete=False, where="up")
    with pytest.raises(ProtocolError, match="no Groups"):
        replica_items(ServerSyncDeploymentResult("1", groups=None), complete=False, where="up")
