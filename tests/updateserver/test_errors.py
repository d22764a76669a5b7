"""Tests of `updatesync.updateserver.errors`: messages of refused revisions and the hierarchy."""

from __future__ import annotations

import pytest

from updatesync.metadata.model import RevisionKey
from updatesync.updateserver.errors import ImportFailed, UnknownRevisions, UpdateServerError

_IDS = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(1, 6)]


def test_unknown_revisions_names_up_to_three() -> None:
    keys = [RevisionKey(_IDS[0], 100), RevisionKey(_IDS[1], 200)]
    err = UnknownRevisions(keys)
    assert str(err) == f"this server does not hold {_IDS[0]} rev 100, {_IDS[1]} rev 200"
    assert err.missing == tuple(keys)


def test_unknown_revisions_exactly_three_has_no_more_suffix() -> None:
    keys = [RevisionKey(u, 1) for u in _IDS[:3]]
    assert "more" not in str(UnknownRevisions(keys))


def test_unknown_revisions_counts_the_rest() -> None:
    keys = [RevisionKey(u, 7) for u in _IDS]
    err = UnknownRevisions(keys)
    assert str(err).endswith(f"{_IDS[2]} rev 7 and 2 more")
    assert _IDS[3] not in str(err)
    assert len(err.missing) == 5


def test_missing_is_a_tuple_even_from_a_generator() -> None:
    err = UnknownRevisions(RevisionKey(u, 1) for u in _IDS[:1])  # type: ignore[arg-type]
    assert isinstance(err.missing, tuple)
    assert err.missing == (RevisionKey(_IDS[0], 1),)


@pytest.mark.parametrize(
    "err",
    [ImportFailed("refused: not a WSUS export"), UnknownRevisions([RevisionKey(_IDS[0], 1)])],
)
def test_errors_are_caught_as_update_server_error(err: UpdateServerError) -> None:
    with pytest.raises(UpdateServerError):
        raise err


def test_import_failed_keeps_its_message() -> None:
    assert str(ImportFailed("refused: not a WSUS export")) == "refused: not a WSUS export"
