"""How every message reads and writes its XML: one `Field` per child element, in wire
order, and one writer and one reader that walk those fields; `Message` is the base of every
request and response (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final, Self

from lxml import etree

from updatesync.metadata.model import RevisionKey
from updatesync.wsusss.errors import ProtocolError
from updatesync.wsusss.faults import fault_from_element, is_fault
from updatesync.wsusss.messages.scalars import (
    GUID_RE,
    IDENTITY,
    INT32_MAX,
    SCALARS,
    format_guid,
    format_int,
    parse_int,
)
from updatesync.wsusss.soap import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    SOFTWARE_DISTRIBUTION_NS,
    XSI_NS,
    build_envelope,
    escape_text,
    local_name,
    parse_envelope,
)

_XSI_NIL: Final = "{" + XSI_NS + "}nil"


@dataclass(frozen=True, slots=True)
class Field:
    """One child element: its XML name, the attribute holding it and its kind.

    `kind` is a scalar kind (a key of `SCALARS`), "identity" (an `UpdateIdentity`), or a
    class with its own `_FIELDS`. With `item` set the element is an array whose children
    are `item` elements of that kind.
    """

    xml: str
    attr: str
    kind: str | type
    item: str | None = None
    required: bool = False


# --------------------------------------------------------------------------- writing


def _write_value(
    out: list[str], name: str, kind: str | type, value: Any, escaped: frozenset[str] = frozenset()
) -> None:
    """Write `value` as element `name`. `escaped` names fields of a struct whose text the
    caller escaped already (`soap.escape_text`): they are written as they are."""
    if kind == IDENTITY:
        if not isinstance(value, RevisionKey):
            raise TypeError(f"<{name}> expects an UpdateIdentity (RevisionKey), not {value!r}")
        out.append(
            f"<{name}><UpdateID>{format_guid(value.update_id)}</UpdateID>"
            f"<RevisionNumber>{format_int(value.revision)}</RevisionNumber></{name}>"
        )
    elif isinstance(kind, type):
        if not isinstance(value, kind):
            raise TypeError(f"<{name}> expects {kind.__name__}, not {type(value).__name__}")
        out.append(f"<{name}>")
        mark = len(out)
        _write_fields(out, value, escaped)
        if len(out) == mark:
            out[-1] = f"<{name} />"
        else:
            out.append(f"</{name}>")
    else:
        _, formatter, needs_escaping = SCALARS[kind]
        try:
            text = formatter(value)
        except (TypeError, ValueError) as err:
            raise type(err)(f"<{name}>: {err}") from err
        if needs_escaping:
            text = escape_text(text, element=name)
        out.append(f"<{name}>{text}</{name}>" if text else f"<{name} />")


def _write_fields(out: list[str], obj: Any, escaped: frozenset[str] = frozenset()) -> None:
    for spec in obj._FIELDS:
        value = getattr(obj, spec.attr)
        if value is None:
            if spec.required:
                raise ValueError(
                    f"{type(obj).__name__}.{spec.attr} (<{spec.xml}>) is required; give a value"
                )
            continue
        if spec.attr in escaped and spec.kind == "str" and spec.item is None:
            if not isinstance(value, str):
                raise TypeError(f"<{spec.xml}> expects a str, not {type(value).__name__}")
            out.append(f"<{spec.xml}>{value}</{spec.xml}>" if value else f"<{spec.xml} />")
            continue
        if spec.item is None:
            _write_value(out, spec.xml, spec.kind, value)
            continue
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            raise TypeError(f"<{spec.xml}> expects a sequence of values, not {value!r}")
        items = tuple(value)
        if not items:
            out.append(f"<{spec.xml} />")
            continue
        out.append(f"<{spec.xml}>")
        for item in items:
            _write_value(out, spec.item, spec.kind, item)
        out.append(f"</{spec.xml}>")


# --------------------------------------------------------------------------- reading


def _locate(element: etree._Element) -> tuple[str, str | None, str | None]:
    """(path from the operation element, operation, top-level parameter) of `element`."""
    names: list[str] = []
    node: etree._Element | None = element
    while node is not None and local_name(node.tag) != "Body":
        names.append(local_name(node.tag))
        node = node.getparent()
    names.reverse()
    return "/".join(names), names[0] if names else None, names[1] if len(names) > 1 else None


def _bad(element: etree._Element, message: str) -> ProtocolError:
    path, operation, parameter = _locate(element)
    return ProtocolError(message, where=path, operation=operation, element=parameter)


_TAG_CACHE: dict[tuple[type, str], dict[str, Field]] = {}


def _tags(cls: type, namespace: str) -> dict[str, Field]:
    key = (cls, namespace)
    tags = _TAG_CACHE.get(key)
    if tags is None:
        tags = {"{" + namespace + "}" + spec.xml: spec for spec in cls._FIELDS}
        _TAG_CACHE[key] = tags
    return tags


def _read_identity(element: etree._Element, namespace: str) -> RevisionKey:
    uid_tag = "{" + namespace + "}UpdateID"
    rev_tag = "{" + namespace + "}RevisionNumber"
    uid = rev = None
    for child in element:  # the first of each counts, as for every other element
        if child.tag == uid_tag and uid is None:
            uid = child.text or ""
        elif child.tag == rev_tag and rev is None:
            rev = child.text or ""
    if uid is None or GUID_RE.fullmatch(uid.strip()) is None:
        raise _bad(element, f"UpdateID is missing or not a GUID: {uid!r}")
    if rev is None:
        raise _bad(element, "RevisionNumber is missing")
    try:
        revision = parse_int(rev)
    except ValueError as err:
        raise _bad(element, f"RevisionNumber: {err}") from err
    return RevisionKey(uid.strip().lower(), revision)


@dataclass(frozen=True, slots=True)
class _IdentityPaths:
    total: etree.XPath
    well_formed: etree.XPath
    update_ids: etree.XPath
    revisions: etree.XPath


_IDENTITY_PATHS: dict[tuple[str, str], _IdentityPaths] = {}


def _identity_paths(namespace: str, item: str) -> _IdentityPaths:
    paths = _IDENTITY_PATHS.get((namespace, item))
    if paths is None:
        ns = {"x": namespace}
        paths = _IdentityPaths(
            etree.XPath(f"count(x:{item})", namespaces=ns),
            etree.XPath(
                f"count(x:{item}[count(x:UpdateID) = 1 and count(x:RevisionNumber) = 1])",
                namespaces=ns,
            ),
            etree.XPath(f"x:{item}/x:UpdateID/text()", namespaces=ns, smart_strings=False),
            etree.XPath(f"x:{item}/x:RevisionNumber/text()", namespaces=ns, smart_strings=False),
        )
        _IDENTITY_PATHS[(namespace, item)] = paths
    return paths


def _read_identities(array: etree._Element, namespace: str, item: str) -> tuple[RevisionKey, ...]:
    """An ArrayOfUpdateIdentity. A `GetRevisionIdList` answer holds tens of thousands, so
    the texts are collected by compiled XPath (no Python object per element); anything
    irregular falls back to the element walk, which reports the exact faulty item."""
    paths = _identity_paths(namespace, item)
    total = int(paths.total(array))
    if total == int(paths.well_formed(array)):
        uids = paths.update_ids(array)
        revisions = paths.revisions(array)
        if len(uids) == len(revisions) == total:
            keys: list[RevisionKey] = []
            for uid, rev in zip(uids, revisions, strict=True):
                uid = uid.strip()
                rev = rev.strip()
                if (
                    GUID_RE.fullmatch(uid) is None
                    or not rev.isascii()
                    or not rev.isdigit()
                    or int(rev) > INT32_MAX
                ):
                    break
                keys.append(RevisionKey(uid.lower(), int(rev)))
            else:
                return tuple(keys)
    item_tag = "{" + namespace + "}" + item
    return tuple(_read_identity(i, namespace) for i in array if i.tag == item_tag)


def _read_value(element: etree._Element, kind: str | type, namespace: str) -> Any:
    if element.get(_XSI_NIL) in ("true", "1"):
        return None
    if kind == IDENTITY:
        return _read_identity(element, namespace)
    if isinstance(kind, type):
        return _read_struct(kind, element, namespace)
    parser = SCALARS[kind][0]
    try:
        return parser(element.text or "")
    except ValueError as err:
        raise _bad(element, str(err)) from err


def _read_struct(cls: type, element: etree._Element, namespace: str) -> Any:
    tags = _tags(cls, namespace)
    values: dict[str, Any] = {}
    for child in element:
        spec = tags.get(child.tag)
        if spec is None or spec.attr in values:
            continue  # unknown (newer) element, or a repeat of a single one
        if spec.item is None:
            value = _read_value(child, spec.kind, namespace)
        else:
            item_tag = "{" + namespace + "}" + spec.item
            if spec.kind == IDENTITY:
                value = _read_identities(child, namespace, spec.item)
            else:
                items = (_read_value(i, spec.kind, namespace) for i in child if i.tag == item_tag)
                value = tuple(v for v in items if v is not None)
        if value is None and spec.required:
            raise _bad(child, f"<{spec.xml}> is nil but required")
        values[spec.attr] = value
    for spec in cls._FIELDS:
        if spec.attr not in values:
            if spec.required:
                raise _bad(
                    element,
                    f"required element <{spec.xml}> (namespace {namespace}) is missing",
                )
            values[spec.attr] = None  # absent on the wire, whatever the builder's default
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise _bad(element, str(err)) from err


# --------------------------------------------------------------------------- messages


class Message:
    """Base of every request and response: the SOAP body element and its fields."""

    __slots__ = ()
    OPERATION: ClassVar[str]
    NAMESPACE: ClassVar[str] = SOFTWARE_DISTRIBUTION_NS
    IS_RESPONSE: ClassVar[bool] = False
    _FIELDS: ClassVar[tuple[Field, ...]] = ()

    @classmethod
    def element_name(cls) -> str:
        """Local name of the body element: the operation, or `<operation>Response`."""
        return cls.OPERATION + "Response" if cls.IS_RESPONSE else cls.OPERATION

    def to_payload(self) -> str:
        """The body element as serialized XML text (without the envelope)."""
        name = self.element_name()
        out: list[str] = []
        _write_fields(out, self)
        if not out:
            return f'<{name} xmlns="{self.NAMESPACE}" />'
        return f'<{name} xmlns="{self.NAMESPACE}">{"".join(out)}</{name}>'

    def to_xml(self) -> bytes:
        """The whole SOAP 1.1 envelope, UTF-8 bytes, ready to send."""
        return build_envelope(self.to_payload(), response=self.IS_RESPONSE)

    @classmethod
    def from_element(cls, element: etree._Element) -> Self:
        """Read the message from its body element (as `soap.parse_envelope` returns it)."""
        expected = "{" + cls.NAMESPACE + "}" + cls.element_name()
        if element.tag != expected:
            raise ProtocolError(
                f"expected {expected} in soap:Body, found {element.tag}",
                where="soap:Body",
                operation=cls.OPERATION,
            )
        return _read_struct(cls, element, cls.NAMESPACE)

    @classmethod
    def from_xml(cls, data: bytes, *, max_bytes: int | None = None) -> Self:
        """Read the message from a whole SOAP body.

        For a response, a fault body raises `WsusssFault`. Anything unreadable raises
        `ProtocolError`. `max_bytes` defaults to `DEFAULT_MAX_RESPONSE_BYTES` for
        responses and `DEFAULT_MAX_REQUEST_BYTES` for requests.
        """
        if max_bytes is None:
            max_bytes = DEFAULT_MAX_RESPONSE_BYTES if cls.IS_RESPONSE else DEFAULT_MAX_REQUEST_BYTES
        element = parse_envelope(data, max_bytes=max_bytes, operation=cls.OPERATION)
        if is_fault(element):
            if cls.IS_RESPONSE:
                raise fault_from_element(element, operation=cls.OPERATION)
            raise ProtocolError(
                "a request body holds a soap:Fault", where="soap:Body", operation=cls.OPERATION
            )
        return cls.from_element(element)
