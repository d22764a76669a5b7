"""The metadata messages' own rules: an update's document comes as exactly one of the two
blob kinds, and reads the same out of either."""

from __future__ import annotations

import pytest

from updatesync.metadata.model import RevisionKey
from updatesync.wsusss.blobs import BlobError, encode_compressed_blob
from updatesync.wsusss.messages import ServerSyncUpdateData

KEY = RevisionKey("a2fef9b0-7951-4c2c-a42b-9e351dd1c1fe", 200)
DOC = '<upd:Update xmlns:upd="http://schemas.microsoft.com/msus/2002/12/Update" />'


def test_the_document_out_of_either_blob() -> None:
    assert ServerSyncUpdateData(KEY, DOC).document() == DOC
    compressed = encode_compressed_blob(DOC)
    assert ServerSyncUpdateData(KEY, xml_update_blob_compressed=compressed).document() == DOC
    broken = ServerSyncUpdateData(KEY, xml_update_blob_compressed=b"not a cabinet")
    with pytest.raises(BlobError):
        broken.document()


def test_exactly_one_blob() -> None:
    with pytest.raises(ValueError, match="exactly one of XmlUpdateBlob"):
        ServerSyncUpdateData(KEY)
    with pytest.raises(ValueError, match="exactly one"):
        ServerSyncUpdateData(KEY, DOC, xml_update_blob_compressed=b"x")
