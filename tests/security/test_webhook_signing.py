"""Webhook signatures as the Standard Webhooks specification makes them
(`updatesync.security.webhook_signing`), checked against the specification's reference
library."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from standardwebhooks import Webhook as ReferenceVerifier
from standardwebhooks import WebhookVerificationError

from updatesync.security.shared_secret import SecretError
from updatesync.security.webhook_signing import (
    create_webhook_secret,
    load_webhook_secret,
    new_webhook_secret,
    parse_webhook_secret,
    sign,
    webhook_headers,
)

BODY = b'{"event":"raised"}'


def test_headers_verify_with_the_reference_library() -> None:
    text = new_webhook_secret()
    headers = webhook_headers(parse_webhook_secret(text, "test"), "msg_1", BODY)
    assert ReferenceVerifier(text).verify(BODY, headers) == {"event": "raised"}
    with pytest.raises(WebhookVerificationError):
        ReferenceVerifier(text).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        ReferenceVerifier(new_webhook_secret()).verify(BODY, headers)


def test_the_signature_is_the_specifications_example() -> None:
    """The example of the specification's reference tests: the same secret, id, time and
    body give the same signature."""
    secret = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == (
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_timestamp_outside_the_tolerance_is_refused_by_receivers() -> None:
    text = new_webhook_secret()
    secret = parse_webhook_secret(text, "test")
    old = webhook_headers(secret, "msg_1", BODY, clock=lambda: 1_000_000.0)
    with pytest.raises(WebhookVerificationError, match="too old"):
        ReferenceVerifier(text).verify(BODY, old)


def test_the_secret_file_is_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "hook.secret"
    text = create_webhook_secret(path)
    assert text.startswith("whsec_")
    assert load_webhook_secret(path) == parse_webhook_secret(text, "x")
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o640)
    with pytest.raises(SecretError, match=f"chmod 600 {path}"):
        load_webhook_secret(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [("whsec_not*base64", "is not a webhook secret"), ("whsec_" + "QUFB" * 2, "has 6 bytes")],
)
def test_a_bad_secret_says_what_to_do(text: str, match: str) -> None:
    with pytest.raises(SecretError, match=match):
        parse_webhook_secret(text, "hook.secret")
