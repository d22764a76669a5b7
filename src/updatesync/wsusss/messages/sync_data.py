"""The metadata messages: GetConfigData (3.1.4.4), GetRevisionIdList (3.1.4.5) and
GetUpdateData (3.1.4.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from updatesync.metadata.model import RevisionKey
from updatesync.wsusss.blobs import DEFAULT_MAX_BLOB_BYTES, decode_compressed_blob
from updatesync.wsusss.messages.auth import Cookie
from updatesync.wsusss.messages.codec import Field, Message
from updatesync.wsusss.messages.scalars import IDENTITY

# --- GetConfigData (3.1.4.4) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetConfigDataRequest(Message):
    cookie: Cookie | None
    config_anchor: str | None = None
    OPERATION: ClassVar = "GetConfigData"
    _FIELDS: ClassVar = (
        Field("cookie", "cookie", Cookie),
        Field("configAnchor", "config_anchor", "str"),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncLanguageData:
    language_id: int
    short_language: str | None
    long_language: str | None
    enabled: bool
    _FIELDS: ClassVar = (
        Field("LanguageID", "language_id", "int", required=True),
        Field("ShortLanguage", "short_language", "str"),
        Field("LongLanguage", "long_language", "str"),
        Field("Enabled", "enabled", "bool", required=True),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncConfigData:
    """3.1.4.4.3.1, in the element order of the section 6 WSDL and of real servers."""

    catalog_only_sync: bool
    lazy_sync: bool
    server_hosts_psf_files: bool
    max_number_of_computer_ids_in_request: int
    max_number_of_driver_sets_per_request: int
    max_number_of_pnp_hardware_ids_in_request: int
    max_number_of_updates_per_request: int
    new_config_anchor: str | None
    protocol_version: str | None = "1.20"
    language_update_list: tuple[ServerSyncLanguageData, ...] | None = ()
    max_updates_per_request_in_get_update_decryption_data: int | None = None
    _FIELDS: ClassVar = (
        Field("CatalogOnlySync", "catalog_only_sync", "bool", required=True),
        Field("LazySync", "lazy_sync", "bool", required=True),
        Field("ServerHostsPsfFiles", "server_hosts_psf_files", "bool", required=True),
        Field(
            "MaxNumberOfComputerIdsInRequest",
            "max_number_of_computer_ids_in_request",
            "int",
            required=True,
        ),
        Field(
            "MaxNumberOfDriverSetsPerRequest",
            "max_number_of_driver_sets_per_request",
            "int",
            required=True,
        ),
        Field(
            "MaxNumberOfPnpHardwareIdsInRequest",
            "max_number_of_pnp_hardware_ids_in_request",
            "int",
            required=True,
        ),
        Field(
            "MaxNumberOfUpdatesPerRequest",
            "max_number_of_updates_per_request",
            "int",
            required=True,
        ),
        Field("NewConfigAnchor", "new_config_anchor", "str"),
        Field("ProtocolVersion", "protocol_version", "str"),
        Field(
            "LanguageUpdateList",
            "language_update_list",
            ServerSyncLanguageData,
            item="ServerSyncLanguageData",
        ),
        # minOccurs 1, but absent before Windows Server 2012 (note 33).
        Field(
            "MaxUpdatesPerRequestInGetUpdateDecryptionData",
            "max_updates_per_request_in_get_update_decryption_data",
            "int",
        ),
    )


@dataclass(frozen=True, slots=True)
class GetConfigDataResponse(Message):
    result: ServerSyncConfigData
    OPERATION: ClassVar = "GetConfigData"
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (
        Field("GetConfigDataResult", "result", ServerSyncConfigData, required=True),
    )


# --- GetRevisionIdList (3.1.4.5) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdAndDelta:
    """A category or classification id; `delta` true asks only for what changed since the
    anchor (with an anchor, Windows needs it true or sends everything again: 000010/11)."""

    id: str
    delta: bool
    _FIELDS: ClassVar = (
        Field("Id", "id", "guid", required=True),
        Field("Delta", "delta", "bool", required=True),
    )


@dataclass(frozen=True, slots=True)
class LanguageAndDelta:
    id: int
    delta: bool
    _FIELDS: ClassVar = (
        Field("Id", "id", "int", required=True),
        Field("Delta", "delta", "bool", required=True),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncFilter:
    """3.1.4.5.3.1. `DssProtocolVersion` is reserved ("MUST NOT be sent") and not modeled."""

    get_config: bool
    anchor: str | None = None
    get_63_language_only: bool | None = None
    categories: tuple[IdAndDelta, ...] | None = None
    classifications: tuple[IdAndDelta, ...] | None = None
    languages: tuple[LanguageAndDelta, ...] | None = None
    _FIELDS: ClassVar = (
        Field("Anchor", "anchor", "str"),
        Field("GetConfig", "get_config", "bool", required=True),
        Field("Get63LanguageOnly", "get_63_language_only", "bool"),
        Field("Categories", "categories", IdAndDelta, item="IdAndDelta"),
        Field("Classifications", "classifications", IdAndDelta, item="IdAndDelta"),
        Field("Languages", "languages", LanguageAndDelta, item="LanguageAndDelta"),
    )


@dataclass(frozen=True, slots=True)
class GetRevisionIdListRequest(Message):
    cookie: Cookie | None
    filter: ServerSyncFilter | None
    OPERATION: ClassVar = "GetRevisionIdList"
    _FIELDS: ClassVar = (
        Field("cookie", "cookie", Cookie),
        Field("filter", "filter", ServerSyncFilter),
    )


@dataclass(frozen=True, slots=True)
class RevisionIdList:
    anchor: str | None
    new_revisions: tuple[RevisionKey, ...] | None = ()
    _FIELDS: ClassVar = (
        Field("Anchor", "anchor", "str"),
        Field("NewRevisions", "new_revisions", IDENTITY, item="UpdateIdentity"),
    )


@dataclass(frozen=True, slots=True)
class GetRevisionIdListResponse(Message):
    result: RevisionIdList
    OPERATION: ClassVar = "GetRevisionIdList"
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (Field("GetRevisionIdListResult", "result", RevisionIdList, required=True),)


# --- GetUpdateData (3.1.4.6) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetUpdateDataRequest(Message):
    cookie: Cookie | None
    update_ids: tuple[RevisionKey, ...] | None
    OPERATION: ClassVar = "GetUpdateData"
    _FIELDS: ClassVar = (
        Field("cookie", "cookie", Cookie),
        Field("updateIds", "update_ids", IDENTITY, item="UpdateIdentity"),
    )


@dataclass(frozen=True, slots=True)
class ServerSyncUpdateData:
    """One revision's document: exactly one of `xml_update_blob` (the text) and
    `xml_update_blob_compressed` (a cabinet, see `blobs`). `file_digest_list` holds the
    SHA-1 of each content file, base64 as on the wire (like `UpdateFile.sha1`)."""

    id: RevisionKey
    xml_update_blob: str | None = None
    file_digest_list: tuple[str, ...] | None = None
    xml_update_blob_compressed: bytes | None = None
    _FIELDS: ClassVar = (
        Field("Id", "id", IDENTITY, required=True),
        Field("XmlUpdateBlob", "xml_update_blob", "str"),
        Field("FileDigestList", "file_digest_list", "digest", item="base64Binary"),
        Field("XmlUpdateBlobCompressed", "xml_update_blob_compressed", "base64"),
    )

    def __post_init__(self) -> None:
        if (self.xml_update_blob is None) == (self.xml_update_blob_compressed is None):
            raise ValueError(
                f"update {self.id}: exactly one of XmlUpdateBlob and XmlUpdateBlobCompressed "
                "must be present (3.1.4.6.3.3)"
            )

    def document(self, *, max_size: int = DEFAULT_MAX_BLOB_BYTES) -> str:
        """The update document as text, decompressing `xml_update_blob_compressed`.

        Raises `blobs.BlobError` for a compressed blob that does not decode.
        """
        if self.xml_update_blob is not None:
            return self.xml_update_blob
        assert self.xml_update_blob_compressed is not None
        return decode_compressed_blob(
            self.xml_update_blob_compressed,
            max_size=max_size,
            where=f"XmlUpdateBlobCompressed of update {self.id}",
        )


@dataclass(frozen=True, slots=True)
class ServerSyncUrlData:
    """Where a content file can be fetched. `uss_url` is sent empty by Windows (000014)."""

    file_digest: str | None
    mu_url: str | None = None
    uss_url: str | None = ""
    decryption_key: bytes | None = None
    _FIELDS: ClassVar = (
        Field("FileDigest", "file_digest", "digest"),
        Field("MUUrl", "mu_url", "str"),
        Field("UssUrl", "uss_url", "str"),
        Field("DecryptionKey", "decryption_key", "base64"),
    )


@dataclass(frozen=True, slots=True)
class ServerUpdateData:
    updates: tuple[ServerSyncUpdateData, ...] | None = ()
    file_urls: tuple[ServerSyncUrlData, ...] | None = ()
    _FIELDS: ClassVar = (
        Field("updates", "updates", ServerSyncUpdateData, item="ServerSyncUpdateData"),
        Field("fileUrls", "file_urls", ServerSyncUrlData, item="ServerSyncUrlData"),
    )


@dataclass(frozen=True, slots=True)
class GetUpdateDataResponse(Message):
    result: ServerUpdateData
    OPERATION: ClassVar = "GetUpdateData"
    IS_RESPONSE: ClassVar = True
    _FIELDS: ClassVar = (Field("GetUpdateDataResult", "result", ServerUpdateData, required=True),)
