"""Signatures of webhook calls, as the Standard Webhooks specification makes them.

Every event POSTed to a webhook carries three headers:

- `webhook-id`: the message's id, the same on every retry of it (a receiver drops a
  message it has had);
- `webhook-timestamp`: when this attempt was signed, whole seconds since the epoch (a
  receiver refuses one outside its tolerance, 5 minutes in the reference libraries);
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` with the
  webhook's secret.

The secret is written as the specification does, `whsec_` and the base64 of its bytes (24
to 64 random bytes), in a file readable by its owner only; the same text is given to the
receiver. The algorithm is the specification's (and its reference libraries', such as the
`standardwebhooks` package): a receiver verifies with them unchanged.

- `create_webhook_secret(path)` / `load_webhook_secret(path)`: the secret file;
- `webhook_headers(secret, message_id, body)`: the three headers for one attempt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from updatesync.security.private_files import create_private_file
from updatesync.security.shared_secret import SecretError, read_private_text

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


def new_webhook_secret() -> str:
    """A new secret as the specification writes it: `whsec_` and base64 of 32 bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def parse_webhook_secret(text: str, where: str) -> bytes:
    """The secret's bytes from its `whsec_...` text; `SecretError` naming `where`."""
    value = text.strip()
    if value.startswith(SECRET_PREFIX):
        value = value[len(SECRET_PREFIX) :]
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(
            f"{where} is not a webhook secret (`whsec_` and base64); "
            "`updatesync secret webhook FILE` writes one"
        ) from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise SecretError(
            f"the webhook secret in {where} has {len(raw)} bytes; it needs "
            f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} (`updatesync secret webhook FILE` "
            "writes a good one)"
        )
    return raw


def create_webhook_secret(path: str | os.PathLike[str]) -> str:
    """Write a new webhook secret to `path` (a new file, mode 0600); returns its text."""
    value = new_webhook_secret()
    create_private_file(path, (value + "\n").encode("ascii"))
    return value


def load_webhook_secret(path: str | os.PathLike[str]) -> bytes:
    """The secret in the webhook secret file `path`; `SecretError` when it is missing, not
    a secret, or readable or writable by group or others."""
    target = Path(path)
    text = read_private_text(
        target,
        "the webhook secret file",
        f"create it with `updatesync secret webhook {target}` and give the receiver its text",
    )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise SecretError(f"the webhook secret file {target} must hold one line, the secret")
    return parse_webhook_secret(lines[0], str(target))


def sign(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 signature>` of one attempt."""
    content = f"{message_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def webhook_headers(
    secret: bytes, message_id: str, body: bytes, *, clock: Callable[[], float] = time.time
) -> dict[str, str]:
    """The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers of one attempt
    to send `body`."""
    timestamp = int(clock())
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, message_id, timestamp, body),
    }
