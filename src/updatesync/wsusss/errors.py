"""Errors of the server-to-server protocol layer.

`ProtocolError` is what a peer sent that is not a usable MS-WSUSSS message: not XML, an
HTML error page, a refused construct (DTD, entities, oversize), a missing or malformed
element. It names where the problem is (the element path) and, when it lies inside one
parameter of an operation, that parameter (`element`), which is what an upstream service
puts in the `Message` of an `InvalidParameters` fault (MS-WSUSSS 2.2.9.3).

The application-level fault a peer returned on purpose is `faults.WsusssFault`, not this.
"""

from __future__ import annotations


class WsusssError(Exception):
    """Base of every error raised by `updatesync.wsusss`."""


class ProtocolError(WsusssError):
    """A body that is not a usable SOAP message of this protocol.

    `where` is the element path (or "HTTP body") where it went wrong, `operation` the
    operation being read when known, `element` the top-level parameter the problem lies in
    (for example "filter" or "cookie") when there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        operation: str | None = None,
        element: str | None = None,
    ) -> None:
        self.message = message
        self.where = where
        self.operation = operation
        self.element = element
        if operation and where and where.split("/", 1)[0] == operation:
            prefix = where  # the path already starts with the operation
        else:
            prefix = " ".join(part for part in (operation, where) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)
