"""Waslah webhook signatures: sign (used by the emulator) and verify (used by receivers).

Waslah signs every webhook POST as::

    payload_to_sign = X-Waslah-Timestamp + "." + raw_request_body
    signature       = "sha256=" + hex(HMAC-SHA256(payload_to_sign, webhook_secret))

and sends the signature under five header aliases at once. :func:`verify_signature` accepts any
of them, compares in constant time and rejects timestamps outside a replay window, with a
distinct reason for each kind of failure (the stripe-python verifier's shape).

This module imports nothing from Airflow, so a plain web app can use it too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Header names Waslah puts the same signature under, primary first.
SIGNATURE_HEADERS: tuple[str, ...] = (
    "X-Waslah-Signature",
    "X-Signature",
    "Signature",
    "X-Hub-Signature-256",
    "X-Webhook-Signature",
)
TIMESTAMP_HEADER = "X-Waslah-Timestamp"
EVENT_HEADER = "X-Waslah-Event"
EVENT_ID_HEADER = "X-Waslah-Event-Id"
USER_AGENT = "Waslah-Webhook/1.0"
#: Waslah's documented anti-replay window, in seconds.
DEFAULT_TOLERANCE_SECONDS = 300
_SCHEME = "sha256="


class WebhookVerificationError(ValueError):
    """A webhook failed verification; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def compute_signature(secret: str | bytes, timestamp: str | int, body: bytes | str) -> str:
    """Return the header value (``sha256=<hex>``) Waslah sends for ``body`` signed at ``timestamp``."""
    key = secret.encode() if isinstance(secret, str) else secret
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(key, f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return _SCHEME + digest


def signed_headers(
    secret: str | bytes, body: bytes, *, event: str, event_id: str, timestamp: int | None = None
) -> dict[str, str]:
    """Every header of a Waslah webhook delivery for ``body``: the five signature aliases and the rest."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    signature = compute_signature(secret, ts, body)
    headers = dict.fromkeys(SIGNATURE_HEADERS, signature)
    headers.update(
        {
            TIMESTAMP_HEADER: str(ts),
            EVENT_HEADER: event,
            EVENT_ID_HEADER: event_id,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
        }
    )
    return headers


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook delivery: ``event`` (e.g. ``message.received``), its ``data`` and ids."""

    event: str
    timestamp: int
    data: dict[str, Any]
    event_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def reply_to(self) -> str | None:
        """The JID to reply to (``remote_jid``): use it as ``to``; ``@lid`` customers need it verbatim."""
        value = self.data.get("remote_jid") or self.data.get("from")
        return str(value) if value else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def verify_signature(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> WebhookEvent:
    """Verify a Waslah webhook delivery and return its parsed event.

    :param body: the raw request body, exactly as received (not re-serialised JSON).
    :param headers: the request headers (any case); any one of the five signature aliases is enough.
    :param secret: the webhook secret from the Waslah dashboard.
    :param tolerance_seconds: reject timestamps further than this from ``now`` (replay protection).
    :raises WebhookVerificationError: with ``reason`` one of ``missing_signature``,
        ``missing_timestamp``, ``bad_timestamp``, ``bad_signature_format``, ``signature_mismatch``,
        ``timestamp_out_of_tolerance``, ``bad_payload``.
    """
    if not secret:
        raise WebhookVerificationError("missing_secret", "No webhook secret is configured to verify against.")
    received = next((v for name in SIGNATURE_HEADERS if (v := _header(headers, name))), None)
    if received is None:
        raise WebhookVerificationError(
            "missing_signature", f"No signature header: expected one of {', '.join(SIGNATURE_HEADERS)}."
        )
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if not timestamp:
        raise WebhookVerificationError("missing_timestamp", f"No {TIMESTAMP_HEADER} header.")
    try:
        ts = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("bad_timestamp", f"{TIMESTAMP_HEADER} is not a Unix timestamp.") from None
    if not received.startswith(_SCHEME):
        raise WebhookVerificationError("bad_signature_format", "Signature header does not start with 'sha256='.")
    expected = compute_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), received.strip().encode()):
        raise WebhookVerificationError(
            "signature_mismatch", "Signature does not match the body and the webhook secret."
        )
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_seconds:
        raise WebhookVerificationError(
            "timestamp_out_of_tolerance",
            f"Timestamp is {int(abs(current - ts))} s away from now; the limit is {tolerance_seconds} s.",
        )
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookVerificationError("bad_payload", "Body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationError("bad_payload", "Body is not a JSON object.")
    data = payload.get("data")
    return WebhookEvent(
        event=str(payload.get("event") or _header(headers, EVENT_HEADER) or ""),
        timestamp=int(payload.get("timestamp") or ts),
        data=data if isinstance(data, dict) else {},
        event_id=_header(headers, EVENT_ID_HEADER),
        raw=payload,
    )
