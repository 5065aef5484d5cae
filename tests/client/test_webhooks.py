"""``verify_webhook``: the ``Tierflow-Signature`` header of SPEC §4 over the raw body."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import pytest

from client.webhooks import WebhookVerificationError, sign_webhook, verify_webhook

SECRET = "whsec_test_0123456789"
EVENT = {
    "id": "evt_1",
    "type": "ClaimSplit",
    "created_at": "2026-11-01T00:00:00Z",
    "data": {"event": {"fromId": 1, "toId": 2, "value": 10**30}},
}
BODY = json.dumps(EVENT, separators=(",", ":")).encode()


def header(secret: str, body: bytes, t: int) -> str:
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def test_a_good_signature_answers_the_event() -> None:
    now = int(time.time())
    assert verify_webhook(SECRET, header(SECRET, BODY, now), BODY) == EVENT
    assert verify_webhook(SECRET, header(SECRET, BODY, now), BODY.decode()) == EVENT
    assert verify_webhook(SECRET.encode(), sign_webhook(SECRET, BODY), BODY) == EVENT
    # Big integers stay exact (the raw body is what is signed and parsed).
    assert verify_webhook(SECRET, sign_webhook(SECRET, BODY), BODY)["data"]["event"]["value"] == (
        10**30
    )
    # Spaces after commas, upper-case hex and unknown schemes are tolerated.
    t = now
    mac = header(SECRET, BODY, t).split("v1=")[1].upper()
    assert verify_webhook(SECRET, f"t={t}, v0=deadbeef, v1={mac}", BODY) == EVENT


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda t: header("another-secret", BODY, t), "no v1 signature matches"),
        (lambda t: header(SECRET, BODY + b" ", t), "no v1 signature matches"),
        (lambda t: header(SECRET, BODY, t).replace(f"t={t}", f"t={t + 1}"), "no v1 signature"),
        (lambda t: f"t={t}", "no v1 value"),
        (lambda t: "v1=" + "00" * 32, "no timestamp"),
        (lambda t: f"t={t},t={t},v1=00", "not one number"),
        (lambda t: "t=abc,v1=00", "not one number"),
        (lambda t: "garbage", "malformed"),
        (lambda t: "", "no Tierflow-Signature"),
    ],
)
def test_a_bad_signature_is_refused(make: Callable[[int], str], reason: str) -> None:
    t = int(time.time())
    with pytest.raises(WebhookVerificationError, match=reason):
        verify_webhook(SECRET, make(t), BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, None, BODY)


def test_an_old_or_future_delivery_is_refused_as_a_replay() -> None:
    now = 1_800_000_000
    old = header(SECRET, BODY, now - 301)
    with pytest.raises(WebhookVerificationError, match="replay"):
        verify_webhook(SECRET, old, BODY, now=now)
    with pytest.raises(WebhookVerificationError, match="replay"):
        verify_webhook(SECRET, header(SECRET, BODY, now + 301), BODY, now=now)
    assert verify_webhook(SECRET, old, BODY, tolerance_s=600, now=now) == EVENT
    assert verify_webhook(SECRET, header(SECRET, BODY, now - 299), BODY, now=now) == EVENT


def test_rotation_several_v1_values_and_several_secrets() -> None:
    t = int(time.time())
    old_mac = header("old-secret", BODY, t).split("v1=")[1]
    new_mac = header("new-secret", BODY, t).split("v1=")[1]
    during_rotation = f"t={t},v1={old_mac},v1={new_mac}"
    # A receiver that knows only one of the two secrets accepts it either way.
    assert verify_webhook("old-secret", during_rotation, BODY) == EVENT
    assert verify_webhook("new-secret", during_rotation, BODY) == EVENT
    with pytest.raises(WebhookVerificationError):
        verify_webhook("third-secret", during_rotation, BODY)
    # A receiver rotating its own copy tries each secret it holds.
    only_new = f"t={t},v1={new_mac}"
    assert verify_webhook(["old-secret", "new-secret"], only_new, BODY) == EVENT


def test_a_signed_body_that_is_not_json_is_refused() -> None:
    body = b"not json"
    with pytest.raises(WebhookVerificationError, match="not JSON"):
        verify_webhook(SECRET, sign_webhook(SECRET, body), body)
