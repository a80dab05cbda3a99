"""Webhook signatures (stripe-python's test shape): one header builder, every failure message pinned."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from airflow_provider_waslah import webhooks
from airflow_provider_waslah.webhooks import (
    SIGNATURE_HEADERS,
    WebhookVerificationError,
    compute_signature,
    signed_headers,
    verify_signature,
)

SECRET = "whsec_test_0123456789"
NOW = 1_748_036_400
BODY = json.dumps(
    {
        "event": "message.received",
        "timestamp": NOW,
        "data": {
            "message_id": 1234,
            "instance_key": "demo",
            "from": "6281234567890",
            "remote_jid": "123456789012345@lid",
            "body": "Halo, info produk",
            "message_type": "text",
        },
    }
).encode()


def generate_header(
    *,
    body: bytes = BODY,
    secret: str = SECRET,
    timestamp: int | str | None = NOW,
    signature: str | None = None,
    scheme: str = "sha256=",
    alias: str | None = "X-Waslah-Signature",
    **extra: str,
) -> dict[str, str]:
    """Headers of one delivery, signed the documented way; override any part to break it."""
    headers: dict[str, str] = {"X-Waslah-Event": "message.received", "X-Waslah-Event-Id": "evt-1", **extra}
    if timestamp is not None:
        headers["X-Waslah-Timestamp"] = str(timestamp)
    if signature is None:
        digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        signature = scheme + digest
    if alias is not None:
        headers[alias] = signature
    return headers


def verify(body: bytes = BODY, now: float = NOW, **overrides: Any) -> webhooks.WebhookEvent:
    return verify_signature(body, generate_header(**overrides), SECRET, now=now)


@pytest.mark.parametrize("alias", SIGNATURE_HEADERS)
def test_each_of_the_five_aliases_is_accepted(alias: str) -> None:
    event = verify(alias=alias)
    assert (event.event, event.timestamp, event.event_id) == ("message.received", NOW, "evt-1")
    assert event.data["message_id"] == 1234
    assert event.reply_to == "123456789012345@lid"


@pytest.mark.parametrize("alias", ["x-waslah-signature", "X-HUB-SIGNATURE-256", "signature"])
def test_header_names_are_case_insensitive(alias: str) -> None:
    assert verify(alias=alias).event == "message.received"


def test_the_documented_algorithm() -> None:
    """``sha256=`` + hex(HMAC-SHA256(timestamp + "." + raw_body, secret)), as in Waslah's reference."""
    expected = "sha256=" + hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, NOW, BODY) == expected
    assert compute_signature(SECRET.encode(), str(NOW), BODY.decode()) == expected


def test_signed_headers_carry_every_documented_header() -> None:
    headers = signed_headers(SECRET, BODY, event="message.received", event_id="evt-9", timestamp=NOW)
    signature = compute_signature(SECRET, NOW, BODY)
    assert {name: headers[name] for name in SIGNATURE_HEADERS} == dict.fromkeys(SIGNATURE_HEADERS, signature)
    assert headers["X-Waslah-Timestamp"] == str(NOW)
    assert (headers["X-Waslah-Event"], headers["X-Waslah-Event-Id"]) == ("message.received", "evt-9")
    assert headers["User-Agent"] == "Waslah-Webhook/1.0"
    assert verify_signature(BODY, headers, SECRET, now=NOW).event_id == "evt-9"


def test_signed_headers_default_to_now() -> None:
    headers = signed_headers(SECRET, BODY, event="message.status", event_id="evt-2")
    assert abs(int(headers["X-Waslah-Timestamp"]) - time.time()) < 5
    assert verify_signature(BODY, headers, SECRET).event == "message.received"  # the body's event wins


FAILURES = [
    (
        "missing-signature",
        {"alias": None},
        "missing_signature",
        "No signature header: expected one of X-Waslah-Signature, X-Signature, Signature, X-Hub-Signature-256, "
        "X-Webhook-Signature.",
    ),
    ("empty-signature", {"signature": ""}, "missing_signature", "No signature header: expected one of"),
    (
        "missing-timestamp",
        {"timestamp": None, "signature": "sha256=00"},
        "missing_timestamp",
        "No X-Waslah-Timestamp header.",
    ),
    ("bad-timestamp", {"timestamp": "yesterday"}, "bad_timestamp", "X-Waslah-Timestamp is not a Unix timestamp."),
    ("float-timestamp", {"timestamp": "1748036400.5"}, "bad_timestamp", "X-Waslah-Timestamp is not a Unix timestamp."),
    ("bad-format-no-scheme", {"scheme": ""}, "bad_signature_format", "Signature header does not start with 'sha256='."),
    ("bad-format-sha1", {"scheme": "sha1="}, "bad_signature_format", "Signature header does not start with 'sha256='."),
    (
        "wrong-secret",
        {"secret": "whsec_other"},
        "signature_mismatch",
        "Signature does not match the body and the webhook secret.",
    ),
    ("tampered-hex", {"signature": "sha256=" + "0" * 64}, "signature_mismatch", "Signature does not match"),
    ("signed-other-body", {"body": b'{"event": "x"}'}, "signature_mismatch", "Signature does not match"),
    (
        "signed-other-timestamp",
        {"signature": compute_signature(SECRET, NOW - 1, BODY)},
        "signature_mismatch",
        "Signature does not match",
    ),
]


@pytest.mark.parametrize(("overrides", "reason", "message"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_failure_reasons(overrides: dict[str, Any], reason: str, message: str) -> None:
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature(BODY, generate_header(**overrides), SECRET, now=NOW)
    assert caught.value.reason == reason
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("age", "message"),
    [
        (301, "Timestamp is 301 s away from now; the limit is 300 s."),
        (-301, "Timestamp is 301 s away from now; the limit is 300 s."),  # from the future, too
        (3600, "Timestamp is 3600 s away from now; the limit is 300 s."),
    ],
)
def test_out_of_tolerance(age: int, message: str) -> None:
    with pytest.raises(WebhookVerificationError) as caught:
        verify(now=NOW + age)
    assert caught.value.reason == "timestamp_out_of_tolerance"
    assert str(caught.value) == message


@pytest.mark.parametrize("age", [0, 300, -300])
def test_within_tolerance(age: int) -> None:
    assert verify(now=NOW + age).timestamp == NOW


def test_custom_tolerance() -> None:
    with pytest.raises(WebhookVerificationError, match="the limit is 10 s"):
        verify_signature(BODY, generate_header(), SECRET, now=NOW + 11, tolerance_seconds=10)


@pytest.mark.parametrize(
    ("body", "message"), [(b"not json", "Body is not valid JSON."), (b"[1, 2]", "Body is not a JSON object.")]
)
def test_bad_payload(body: bytes, message: str) -> None:
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature(body, generate_header(body=body), SECRET, now=NOW)
    assert (caught.value.reason, str(caught.value)) == ("bad_payload", message)


def test_missing_secret() -> None:
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature(BODY, generate_header(), "", now=NOW)
    assert (caught.value.reason, str(caught.value)) == (
        "missing_secret",
        "No webhook secret is configured to verify against.",
    )


def test_the_first_alias_present_is_the_one_checked() -> None:
    headers = generate_header(alias="X-Signature")
    headers["X-Waslah-Signature"] = "sha256=" + "f" * 64
    with pytest.raises(WebhookVerificationError, match="Signature does not match"):
        verify_signature(BODY, headers, SECRET, now=NOW)


def test_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(webhooks.hmac, "compare_digest", spy)
    verify()
    with pytest.raises(WebhookVerificationError):
        verify(secret="whsec_other")
    assert len(seen) == 2
    assert seen[0][0] == seen[0][1] == compute_signature(SECRET, NOW, BODY).encode()


def test_the_secret_never_appears_in_failures_or_events() -> None:
    texts = [repr(verify())]
    for _, overrides, _, _ in FAILURES:
        try:
            verify_signature(BODY, generate_header(**overrides), SECRET, now=NOW)
        except WebhookVerificationError as error:
            texts += [str(error), repr(error)]
    assert len(texts) == 1 + 2 * len(FAILURES)
    assert not any(SECRET in text for text in texts)


def test_event_fields_fall_back_to_the_headers() -> None:
    body = json.dumps({"data": {"from": "6281234567890"}}).encode()
    event = verify_signature(body, generate_header(body=body), SECRET, now=NOW)
    assert (event.event, event.timestamp, event.reply_to) == ("message.received", NOW, "6281234567890")


# ---------------------------------------------------------------- hostile deliveries: only WebhookVerificationError

GOOD = generate_header()
SIGNATURE = GOOD["X-Waslah-Signature"]
SIGNED_AT_NOW = {"X-Waslah-Timestamp": str(NOW), "X-Waslah-Signature": SIGNATURE}

HOSTILE: list[tuple[str, Any, Any, Any, str]] = [
    # (id, body, headers, secret, reason)
    ("timestamp-letters", BODY, {**SIGNED_AT_NOW, "X-Waslah-Timestamp": "soon"}, SECRET, "bad_timestamp"),
    ("timestamp-400-digits", BODY, {**SIGNED_AT_NOW, "X-Waslah-Timestamp": "9" * 400}, SECRET, "bad_timestamp"),
    ("timestamp-5000-digits", BODY, {**SIGNED_AT_NOW, "X-Waslah-Timestamp": "9" * 5000}, SECRET, "bad_timestamp"),
    ("timestamp-arabic", BODY, {**SIGNED_AT_NOW, "X-Waslah-Timestamp": "١٧٤٨٠٣٦٤٠٠"}, SECRET, "bad_timestamp"),
    ("timestamp-negative", BODY, {**SIGNED_AT_NOW, "X-Waslah-Timestamp": "-1"}, SECRET, "bad_timestamp"),
    ("timestamp-float", BODY, {**SIGNED_AT_NOW, "X-Waslah-Timestamp": "1748036400.5"}, SECRET, "bad_timestamp"),
    ("timestamp-underscores", BODY, {**SIGNED_AT_NOW, "X-Waslah-Timestamp": "1_748_036_400"}, SECRET, "bad_timestamp"),
    ("timestamp-surrogate", BODY, {**SIGNED_AT_NOW, "X-Waslah-Timestamp": "17\ud800"}, SECRET, "bad_timestamp"),
    ("timestamp-list-of-two", BODY, {**SIGNED_AT_NOW, "X-Waslah-Timestamp": [str(NOW), "1"]}, SECRET, "bad_headers"),
    ("timestamp-dict", BODY, {**SIGNED_AT_NOW, "X-Waslah-Timestamp": {"a": 1}}, SECRET, "bad_headers"),
    ("signature-list-of-two", BODY, {**SIGNED_AT_NOW, "X-Waslah-Signature": [SIGNATURE, "x"]}, SECRET, "bad_headers"),
    ("signature-int", BODY, {**SIGNED_AT_NOW, "X-Waslah-Signature": 42}, SECRET, "bad_headers"),
    (
        "signature-surrogate",
        BODY,
        {**SIGNED_AT_NOW, "X-Waslah-Signature": "sha256=\ud800" + "0" * 63},
        SECRET,
        "bad_signature_format",
    ),
    (
        "signature-non-hex",
        BODY,
        {**SIGNED_AT_NOW, "X-Waslah-Signature": "sha256=" + "é" * 64},
        SECRET,
        "bad_signature_format",
    ),
    ("signature-short", BODY, {**SIGNED_AT_NOW, "X-Waslah-Signature": "sha256=abc"}, SECRET, "bad_signature_format"),
    ("headers-none", BODY, None, SECRET, "bad_headers"),
    ("headers-list", BODY, [("X-Waslah-Signature", SIGNATURE)], SECRET, "bad_headers"),
    ("headers-str", BODY, "X-Waslah-Signature: x", SECRET, "bad_headers"),
    ("body-none", None, GOOD, SECRET, "bad_body"),
    ("body-int", 42, GOOD, SECRET, "bad_body"),
    ("body-surrogate", '{"event": "\ud800"}', GOOD, SECRET, "bad_body"),
    ("body-dict", {"event": "x"}, GOOD, SECRET, "bad_body"),
    ("secret-none", BODY, GOOD, None, "missing_secret"),
    ("secret-int", BODY, GOOD, 12345, "missing_secret"),
    ("secret-surrogate", BODY, GOOD, "whsec_\ud800", "missing_secret"),
    ("secret-list", BODY, GOOD, ["whsec_x"], "missing_secret"),
]


@pytest.mark.parametrize(("body", "headers", "secret", "reason"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_deliveries_raise_only_the_documented_error(body: Any, headers: Any, secret: Any, reason: str) -> None:
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature(body, headers, secret, now=NOW)
    assert caught.value.reason == reason
    assert len(str(caught.value)) < 300
    assert reason in (verify_signature.__doc__ or "")


def test_signed_but_hostile_payloads_are_bad_payloads() -> None:
    for body in (b"[" * 100_000, b'{"timestamp": "soon", "data": {}}', b'{"timestamp": [1], "event": "x"}'):
        headers = generate_header(body=body)
        try:
            event = verify_signature(body, headers, SECRET, now=NOW)
        except WebhookVerificationError as error:
            assert error.reason == "bad_payload"
        else:
            assert event.timestamp == NOW  # a payload timestamp that is not a number: the header's is used


@pytest.mark.parametrize(
    "headers",
    [
        {k.encode(): v.encode() for k, v in GOOD.items()},  # ASGI's raw headers
        {k: v.encode() for k, v in GOOD.items()},
        {k: [v] for k, v in GOOD.items()},  # a multi-dict's lists
        {k: (v,) for k, v in GOOD.items()},
        {1: "x", None: "y", b"\xff": b"\xff", **GOOD},  # names that are not strings are skipped
    ],
    ids=["bytes-names-and-values", "bytes-values", "one-item-lists", "one-item-tuples", "odd-names"],
)
def test_header_shapes_frameworks_hand_over_verify(headers: Any) -> None:
    assert verify_signature(BODY, headers, SECRET, now=NOW).event == "message.received"


@pytest.mark.parametrize("body", [BODY, BODY.decode(), bytearray(BODY), memoryview(BODY)], ids=type)
def test_bodies_as_bytes_str_bytearray_or_memoryview(body: Any) -> None:
    assert verify_signature(body, GOOD, SECRET, now=NOW).data["message_id"] == 1234


def test_an_upper_case_hex_signature_verifies() -> None:
    headers = {**GOOD, "X-Waslah-Signature": "sha256=" + SIGNATURE[7:].upper()}
    assert verify_signature(BODY, headers, SECRET, now=NOW).event == "message.received"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"tolerance_seconds": float("nan")}, "bad_tolerance"),
        ({"tolerance_seconds": -1}, "bad_tolerance"),
        ({"tolerance_seconds": "300"}, "bad_tolerance"),
        ({"now": float("nan")}, "bad_tolerance"),
        ({"now": float("inf")}, "bad_tolerance"),
    ],
)
def test_settings_that_would_disable_the_replay_window_are_refused(options: dict[str, Any], reason: str) -> None:
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature(BODY, GOOD, SECRET, **{"now": NOW, **options})
    assert caught.value.reason == reason
