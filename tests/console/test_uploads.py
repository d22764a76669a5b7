"""Log uploads of the console's `/logs` page (`updatesync.console.uploads`): the size and
file-count limits, names kept safe, archive members that would leave their folder (zip-slip)
refused, encrypted or binary files dropped with a warning, and duplicates kept apart; on bytes
and zip files built in tmp_path."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import UploadFile
from starlette.requests import Request

from updatesync.console.uploads import (
    MB,
    Stored,
    Upload,
    UploadLimits,
    UploadRefused,
    looks_binary,
    member_parts,
    receive,
    safe_name,
    size_text,
    store,
)

LOG = b"Starting Sync\tSMS_WSUS_SYNC_MANAGER\r\nSync time: 0d00h03m53s\tSMS_WSUS_SYNC_MANAGER\r\n"


def upload_of(*files: tuple[str, bytes]) -> Upload:
    return Upload(files=[UploadFile(io.BytesIO(data), filename=name) for name, data in files])


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def rooted(tmp_path: Path) -> Path:
    root = tmp_path / "upload"
    root.mkdir()
    return root


# -- small helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (2048, "2 KB"),
        (50 * MB, "50 MB"),
        (MB + MB // 2, "1.5 MB"),
    ],
)
def test_size_text(count: int, text: str) -> None:
    assert size_text(count) == text


def test_default_limits_and_drain() -> None:
    limits = UploadLimits()
    assert (limits.max_bytes, limits.max_files, limits.max_extracted) == (50 * MB, 200, 200 * MB)
    assert UploadLimits(max_bytes=10).drain == 40


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("C:\\logs\\CS1-WSyncMgr.log", "CS1-WSyncMgr.log"),
        ("a/b/WSyncMgr.lo_", "WSyncMgr.lo_"),
        ("..", "upload-3.log"),
        ("", "upload-3.log"),
        (None, "upload-3.log"),
        ("Wsync\x00mgr\n.log", "Wsyncmgr.log"),
    ],
    ids=["windows-path", "posix-path", "dot-dot", "empty", "none", "control-characters"],
)
def test_safe_name_keeps_the_last_part_only(raw: str | None, name: str) -> None:
    assert safe_name(raw, 3) == name


@pytest.mark.parametrize(
    "member",
    [
        "../evil.log",
        "a/../../WSyncMgr.log",
        "/etc/WSyncMgr.log",
        "C:\\x\\WSyncMgr.log",
        "C:WSyncMgr.log",
        "a/b:c/WSyncMgr.log",
        "bad\x01/WSyncMgr.log",
        "",
    ],
    ids=[
        "parent",
        "parent-nested",
        "absolute",
        "drive-backslash",
        "drive-relative",
        "colon",
        "control-character",
        "empty",
    ],
)
def test_member_parts_refuses_paths_leaving_the_folder(member: str) -> None:
    assert member_parts(member) is None


def test_member_parts_of_a_safe_path() -> None:
    assert member_parts("CS1\\logs/./WSyncMgr.log") == ["CS1", "logs", "WSyncMgr.log"]
    assert member_parts("/".join(["d"] * 16) + "/x.log") is None


def test_looks_binary() -> None:
    assert looks_binary(b"abc\x00def")
    assert looks_binary(bytes(range(1, 9)) * 4)
    assert not looks_binary(LOG)
    assert not looks_binary(b"")
    assert not looks_binary("Starting Sync".encode("utf-16"))


# -- storing files ----------------------------------------------------------------------------


def test_a_text_log_is_stored_under_its_name(tmp_path: Path) -> None:
    root = rooted(tmp_path)
    stored = store(upload_of(("C:\\x\\CS1-WSyncMgr.log", LOG)), root, UploadLimits())
    target = root / "CS1-WSyncMgr.log"
    assert stored.paths == [target]
    assert target.read_bytes() == LOG
    assert stored.shown(target) == "CS1-WSyncMgr.log"
    assert stored.warnings == []


def test_a_second_file_of_the_same_name_goes_to_folder_2(tmp_path: Path) -> None:
    root = rooted(tmp_path)
    stored = store(
        upload_of(("WSyncMgr.log", LOG), ("WSyncMgr.log", LOG + b"x")), root, UploadLimits()
    )
    assert stored.paths == [root / "WSyncMgr.log", root / "2" / "WSyncMgr.log"]
    assert stored.shown(root / "2" / "WSyncMgr.log") == "WSyncMgr.log (#2)"


def test_a_binary_file_is_dropped_with_a_warning(tmp_path: Path) -> None:
    root = rooted(tmp_path)
    stored = store(upload_of(("WSyncMgr.log", b"MZ\x90\x00\x03")), root, UploadLimits())
    assert stored.paths == []
    assert stored.warnings == [
        "WSyncMgr.log is not a text log (it holds binary data): it was not read."
    ]
    assert list(root.iterdir()) == []


def test_a_zip_is_unpacked_into_a_folder_named_after_it(tmp_path: Path) -> None:
    root = rooted(tmp_path)
    data = zipped({"logs/WSyncMgr.log": LOG, "logs/readme.md": b"hello", "logs/SMSProv.log": LOG})
    stored = store(upload_of(("CS1.zip", data)), root, UploadLimits())
    assert stored.paths == [root / "CS1"]
    assert (root / "CS1" / "logs" / "WSyncMgr.log").read_bytes() == LOG
    assert (root / "CS1" / "logs" / "SMSProv.log").exists()
    assert not (root / "CS1" / "logs" / "readme.md").exists()
    assert stored.skipped == ["CS1.zip: logs/readme.md"]
    assert stored.shown(root / "CS1" / "logs" / "WSyncMgr.log") == "CS1.zip: logs/WSyncMgr.log"
    assert stored.extracted == 2 * len(LOG)


def test_a_zip_is_recognised_by_its_content(tmp_path: Path) -> None:
    root = rooted(tmp_path)
    stored = store(upload_of(("PS1", zipped({"WSyncMgr.log": LOG}))), root, UploadLimits())
    assert stored.paths == [root / "PS1"]
    assert (root / "PS1" / "WSyncMgr.log").read_bytes() == LOG


def test_zip_slip_members_are_refused(tmp_path: Path) -> None:
    root = rooted(tmp_path)
    data = zipped(
        {
            "../WSyncMgr.log": LOG,
            "/tmp/WSyncMgr.log": LOG,
            "C:/x/WSyncMgr.log": LOG,
            "ok/WSyncMgr.log": LOG,
        }
    )
    stored = store(upload_of(("CS1.zip", data)), root, UploadLimits())
    leaving = [w for w in stored.warnings if "its path leaves the archive's folder" in w]
    assert len(leaving) == 3
    assert "CS1.zip: ../WSyncMgr.log: its path leaves the archive's folder; skipped." in leaving
    assert not (tmp_path / "WSyncMgr.log").exists()
    assert not (root / "WSyncMgr.log").exists()
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == ["CS1/ok/WSyncMgr.log"]


def test_an_encrypted_member_is_skipped(tmp_path: Path) -> None:
    root = rooted(tmp_path)
    data = bytearray(zipped({"WSyncMgr.log": LOG}))
    # Set the "encrypted" flag bit in both the local header and the central directory entry.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + offset
        data[at] |= 0x1
    stored = store(upload_of(("CS1.zip", bytes(data))), root, UploadLimits())
    assert stored.warnings == ["CS1.zip: WSyncMgr.log is encrypted; skipped."]
    assert not (root / "CS1" / "WSyncMgr.log").exists()


def test_a_binary_member_is_dropped(tmp_path: Path) -> None:
    root = rooted(tmp_path)
    stored = store(
        upload_of(("CS1.zip", zipped({"WSyncMgr.log": b"\x00" * 100}))), root, UploadLimits()
    )
    assert stored.warnings == [
        "CS1.zip: WSyncMgr.log is not a text log (it holds binary data): not read."
    ]
    assert not (root / "CS1" / "WSyncMgr.log").exists()


def test_archives_unpacking_past_the_limit_stop_there(tmp_path: Path) -> None:
    root = rooted(tmp_path)
    big = b"x" * 3000
    data = zipped({"a/WSyncMgr.log": big, "b/WSyncMgr.log": big, "c/WSyncMgr.log": big})
    stored = store(upload_of(("CS1.zip", data)), root, UploadLimits(max_extracted=5000))
    assert (root / "CS1" / "a" / "WSyncMgr.log").exists()
    assert not (root / "CS1" / "b" / "WSyncMgr.log").exists()
    assert not (root / "CS1" / "c" / "WSyncMgr.log").exists()
    assert stored.extracted == 3000
    assert stored.warnings == [
        "CS1.zip: b/WSyncMgr.log: the archives unpack to more than 5 KB, the most this page "
        "takes out; it and the files after it were not read."
    ]


def test_an_archive_with_too_many_entries_is_not_read(tmp_path: Path) -> None:
    root = rooted(tmp_path)
    data = zipped({f"{i}/WSyncMgr.log": LOG for i in range(3)})
    stored = store(upload_of(("CS1.zip", data)), root, UploadLimits(max_members=2))
    assert stored.warnings == [
        "CS1.zip has 3 entries, more than the 2 this page opens: it was not read."
    ]
    assert stored.paths == []


def test_a_broken_zip_is_reported(tmp_path: Path) -> None:
    root = rooted(tmp_path)
    stored = store(upload_of(("CS1.zip", b"not a zip at all")), root, UploadLimits())
    assert len(stored.warnings) == 1
    assert stored.warnings[0].startswith("CS1.zip is not a zip archive that can be read (")
    assert stored.paths == []


def test_shown_falls_back_to_the_path_below_the_root(tmp_path: Path) -> None:
    stored = Stored(tmp_path)
    stored.names[tmp_path / "WSyncMgr.lo_"] = "WSyncMgr.lo_"
    assert stored.shown(None) == "—"
    assert stored.shown(tmp_path / "WSyncMgr.log") == "WSyncMgr.lo_"
    assert stored.shown(tmp_path / "a" / "SMSProv.log") == "a/SMSProv.log"
    assert stored.shown(Path("/elsewhere/SMSProv.log")) == "SMSProv.log"


# -- receiving the request --------------------------------------------------------------------


def request_of(body: bytes, headers: dict[str, str]) -> Request:
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)] or [b""]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive_message() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/logs",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    return Request(scope, receive_message)


def multipart(files: list[tuple[str, bytes]], field: str = "logs") -> tuple[bytes, str]:
    boundary = "XyZboundary"
    out = b""
    for name, data in files:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def refusal(request: Request, limits: UploadLimits) -> UploadRefused:
    with pytest.raises(UploadRefused) as info:
        asyncio.run(receive(request, limits))
    return info.value


def test_an_upload_that_is_not_a_form_is_refused() -> None:
    refused = refusal(request_of(b"x", {"content-type": "text/plain"}), UploadLimits())
    assert refused.status == 415
    assert str(refused) == "Send the logs with the page's form (multipart/form-data)."


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    body, kind = multipart([("WSyncMgr.log", LOG)])
    request = request_of(body, {"content-type": kind, "content-length": str(len(body))})
    refused = refusal(request, UploadLimits(max_bytes=100))
    assert refused.status == 413
    assert str(refused).startswith("The upload is larger than 100 bytes in all")


def test_a_body_over_the_limit_is_refused_whatever_its_declared_length() -> None:
    body, kind = multipart([("WSyncMgr.log", LOG * 100)])
    request = request_of(body, {"content-type": kind, "content-length": "10"})
    refused = refusal(request, UploadLimits(max_bytes=2048))
    assert refused.status == 413
    assert "larger than 2 KB" in str(refused)


def test_too_many_files_are_refused() -> None:
    body, kind = multipart([(f"{i}-WSyncMgr.log", LOG) for i in range(3)])
    refused = refusal(request_of(body, {"content-type": kind}), UploadLimits(max_files=2))
    assert refused.status == 400
    assert str(refused) == (
        "The upload could not be read: Too many files: at most 2 at once (a .zip counts as one)."
    )


def test_a_form_without_files_is_refused() -> None:
    body, kind = multipart([("WSyncMgr.log", LOG)], field="other")
    refused = refusal(request_of(body, {"content-type": kind}), UploadLimits())
    assert str(refused) == "Choose at least one log file (or a .zip of a logs folder)."


def test_the_files_of_the_form_are_received() -> None:
    body, kind = multipart([("CS1-WSyncMgr.log", LOG), ("PS1.zip", zipped({"WSyncMgr.log": LOG}))])

    async def go() -> list[tuple[str | None, bytes]]:
        upload = await receive(request_of(body, {"content-type": kind}), UploadLimits())
        try:
            return [(f.filename, await f.read()) for f in upload.files]
        finally:
            await upload.close()

    got = asyncio.run(go())
    assert [name for name, _ in got] == ["CS1-WSyncMgr.log", "PS1.zip"]
    assert got[0][1] == LOG
