"""Tests of `updatesync.wsusss.errors`: how `ProtocolError` words where a message went wrong."""

from __future__ import annotations

import pytest

from updatesync.wsusss.errors import ProtocolError, WsusssError


def test_message_alone() -> None:
    err = ProtocolError("not XML")
    assert str(err) == "not XML"
    assert (err.where, err.operation, err.element) == (None, None, None)
    assert err.message == "not XML"


def test_where_prefixes_the_message() -> None:
    assert str(ProtocolError("an HTML error page", where="HTTP body")) == (
        "HTTP body: an HTML error page"
    )


def test_operation_and_where_are_joined() -> None:
    err = ProtocolError("missing", where="cookie/Expiration", operation="GetRevisionIdList")
    assert str(err) == "GetRevisionIdList cookie/Expiration: missing"


def test_where_starting_with_operation_is_not_repeated() -> None:
    err = ProtocolError(
        "not a number",
        where="GetRevisionIdList/filter/Anchor",
        operation="GetRevisionIdList",
        element="filter",
    )
    assert str(err) == "GetRevisionIdList/filter/Anchor: not a number"
    assert err.element == "filter"
    assert err.operation == "GetRevisionIdList"


def test_operation_alone_prefixes_the_message() -> None:
    assert str(ProtocolError("empty body", operation="GetCookie")) == "GetCookie: empty body"


def test_element_is_not_part_of_the_text() -> None:
    err = ProtocolError("bad", element="cookie")
    assert str(err) == "bad"
    assert err.element == "cookie"


def test_caught_as_wsusss_error() -> None:
    with pytest.raises(WsusssError):
        raise ProtocolError("x")
