"""What a site's sync ends with: `SyncFailure` (where a phase failed, what failed and the
HRESULT of `LE=`), `SiteSyncResult`, the error codes, and `origin`, which names the
`module.function` an unexpected exception was raised in (ISTR0 of the 6703)."""

from __future__ import annotations

import dataclasses

import pytest

from updatesync.site.sync.outcome import GENERIC_ERROR, SiteSyncResult, SyncFailure, origin
from updatesync.updateserver.failures import ADMIN_PROXY, CANNOT_CONNECT, Failure

MODULE = "test_outcome"
"""This file's name, as `origin` writes it."""


def _raise_key_error() -> None:
    raise KeyError("WSUSServerName")


def _call_through() -> None:
    _raise_key_error()


def _wrap() -> None:
    try:
        _raise_key_error()
    except KeyError as exc:
        raise RuntimeError("could not read the SUPs") from exc


class Reader:
    class Failure(Exception):
        pass

    def read(self) -> None:
        raise OSError("share unreachable")


def caught(call: object) -> BaseException:
    try:
        call()  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("nothing was raised")


def test_sync_failure_carries_what_where_and_the_error_code() -> None:
    failure = SyncFailure(
        "Request for principal permission failed",
        "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer",
        0x8013150A,
    )
    assert str(failure) == "Request for principal permission failed"
    assert failure.source == "Microsoft.UpdateServices.Administration.AdminProxy.CreateUpdateServer"
    assert failure.last_error == 0x8013150A
    assert f"LE=0X{failure.last_error:08x}" == "LE=0X8013150a"


def test_sync_failure_is_raised_and_caught_as_an_exception() -> None:
    with pytest.raises(SyncFailure, match="cannot connect") as info:
        raise SyncFailure("cannot connect", "UpdateServer http://sup:8530", CANNOT_CONNECT)
    assert info.value.source == "UpdateServer http://sup:8530"
    assert info.value.last_error == CANNOT_CONNECT
    assert isinstance(info.value, Exception)


def test_a_failure_as_configmgr_writes_it_becomes_the_phase_s_failure() -> None:
    failure = Failure(
        "System.Net.WebException", "Unable to connect to the remote server", ADMIN_PROXY, 0x80072EFD
    )
    raised = SyncFailure.of(failure)
    assert (str(raised), raised.source, raised.last_error) == (
        "Unable to connect to the remote server",
        ADMIN_PROXY,
        CANNOT_CONNECT,
    )


def test_the_error_codes_are_the_windows_hresults() -> None:
    assert GENERIC_ERROR == 0x80131500
    assert CANNOT_CONNECT == 0x80072EFD
    assert f"0X{GENERIC_ERROR:08X}" == "0X80131500"
    assert f"0X{CANNOT_CONNECT:08X}" == "0X80072EFD"


def test_a_site_sync_result_succeeds_without_an_error() -> None:
    result = SiteSyncResult(
        succeeded=True, content_version=34, items_updated=130, cis_changed=5, seconds=233.0
    )
    assert result.error is None
    assert result == SiteSyncResult(True, 34, 130, 5, 233.0, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.succeeded = False  # type: ignore[misc]


def test_a_failed_site_sync_result_keeps_its_error() -> None:
    result = SiteSyncResult(False, 33, 0, 0, 12.5, error="The operation has timed out")
    assert not result.succeeded
    assert result.error == "The operation has timed out"


def test_origin_names_the_function_that_raised() -> None:
    assert origin(caught(_raise_key_error)) == f"{MODULE}._raise_key_error"


def test_origin_names_the_innermost_function_not_the_caller() -> None:
    assert origin(caught(_call_through)) == f"{MODULE}._raise_key_error"


def test_origin_of_a_wrapped_exception_is_where_the_wrapper_was_raised() -> None:
    exc = caught(_wrap)
    assert isinstance(exc, RuntimeError)
    assert origin(exc) == f"{MODULE}._wrap"
    assert exc.__cause__ is not None
    assert origin(exc.__cause__) == f"{MODULE}._raise_key_error"


def test_origin_of_a_method_names_the_method() -> None:
    assert origin(caught(Reader().read)) == f"{MODULE}.read"


def test_origin_of_an_exception_raised_here_names_this_test() -> None:
    try:
        raise ValueError("bad content version")
    except ValueError as exc:
        where = origin(exc)
    assert where == f"{MODULE}.test_origin_of_an_exception_raised_here_names_this_test"


def test_origin_of_an_exception_never_raised_is_its_type() -> None:
    assert origin(ValueError("never raised")) == "ValueError"
    assert origin(SyncFailure("x", "y", GENERIC_ERROR)) == "SyncFailure"
    assert origin(Reader.Failure()) == "Reader.Failure"
