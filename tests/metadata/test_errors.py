"""Tests of `updatesync.metadata.errors`: the message a user sees, `where`, and the hierarchy."""

from __future__ import annotations

import pytest

from updatesync.metadata.errors import (
    CabinetError,
    ExportFormatError,
    MalformedXmlError,
    MetadataError,
    UnsafeXmlError,
)


def test_message_is_prefixed_with_where() -> None:
    err = MetadataError("truncated record", where="metadata.txt line 4")
    assert str(err) == "metadata.txt line 4: truncated record"
    assert err.message == "truncated record"
    assert err.where == "metadata.txt line 4"


def test_message_alone_without_where() -> None:
    err = MetadataError("not a cabinet")
    assert str(err) == "not a cabinet"
    assert err.where is None


def test_empty_where_is_not_shown() -> None:
    assert str(MetadataError("bad", where="")) == "bad"


@pytest.mark.parametrize(
    "cls", [UnsafeXmlError, MalformedXmlError, CabinetError, ExportFormatError]
)
def test_subclasses_are_caught_as_metadata_error(cls: type[MetadataError]) -> None:
    with pytest.raises(MetadataError) as info:
        raise cls("oops", where="package.xml")
    assert str(info.value) == "package.xml: oops"
    assert info.value.message == "oops"
    assert isinstance(info.value, Exception)
