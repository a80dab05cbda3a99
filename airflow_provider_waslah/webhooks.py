"""Waslah webhook signatures: sign (used by the emulator) and verify (used by receivers).

Waslah signs every webhook POST as::

    payload_to_sign = X-Waslah-Timestamp + "." + raw_request_body
    signature       = "sha256=" + hex(HMAC-SHA256(payload_to_sign, webhook_secret))

and sends the signature under five header aliases at once. :func:`verify_signature` accepts any
of them, compares in constant time and rejects timestamps outside a replay window, with a
distinct reason for each kind of failure (the stripe-python verifier's shape). Whatever it is
given (odd header shapes, bytes where text was expected, absurd timestamps, bodies that are not
JSON), it raises only :class:`WebhookVerificationError`.

This module imports nothing from Airflow, so a plain web app can use it too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
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
#: A Unix timestamp as Waslah sends it: ASCII digits only, at most 12 (the year 33658).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


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


def _text(value: object) -> str | None:
    """A header name or value as text: ``str``, or ``bytes`` decoded as Latin-1 (HTTP's charset)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("latin-1")
    return None


def _header(headers: Mapping[Any, Any], name: str) -> str | None:
    """The value of header ``name`` (any case), as text; ``None`` when absent or empty.

    Accepts what web frameworks hand over: ``str`` or ``bytes`` names and values (ASGI's raw
    headers are bytes) and one-item lists or tuples (multi-dicts). Names that are neither are
    skipped; a value of another type, or several different values, is ``bad_headers``.
    """
    lowered = name.lower()
    for key, value in headers.items():
        key_text = _text(key)
        if key_text is None or key_text.lower() != lowered:
            continue
        if isinstance(value, (list, tuple)):
            texts = {_text(item) for item in value}
            if None in texts:
                raise WebhookVerificationError("bad_headers", f"{name} holds a value that is not text or bytes.")
            if len(texts) > 1:
                raise WebhookVerificationError("bad_headers", f"{name} has several different values; expected one.")
            value = texts.pop() if texts else None
        if value is None:
            return None
        text = _text(value)
        if text is None:
            raise WebhookVerificationError(
                "bad_headers", f"{name} is a {type(value).__name__}; expected text or bytes."
            )
        return text or None
    return None


def _body_bytes(body: object) -> bytes:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        try:
            return body.encode("utf-8")
        except UnicodeEncodeError:
            raise WebhookVerificationError(
                "bad_body", "Body is a str that cannot be encoded as UTF-8; pass the raw request bytes."
            ) from None
    raise WebhookVerificationError(
        "bad_body", f"Body is a {type(body).__name__}; pass the raw request body as bytes (or str)."
    )


def _secret_bytes(secret: object) -> bytes:
    if isinstance(secret, (bytes, bytearray, memoryview)) and len(secret):
        return bytes(secret)
    if isinstance(secret, str) and secret:
        try:
            return secret.encode("utf-8")
        except UnicodeEncodeError:
            pass
    raise WebhookVerificationError(
        "missing_secret",
        "No webhook secret is configured to verify against."
        if not secret
        else "The webhook secret must be a non-empty str or bytes.",
    )


def _finite(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` (booleans, non-numbers, NaN, infinities, huge integers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _checked_window(tolerance_seconds: object, now: object) -> tuple[float, float]:
    tolerance = _finite(tolerance_seconds)
    if tolerance is None or tolerance < 0:
        raise WebhookVerificationError("bad_tolerance", "tolerance_seconds must be a finite number of seconds >= 0.")
    if now is None:
        return tolerance, time.time()
    current = _finite(now)
    if current is None:
        raise WebhookVerificationError("bad_tolerance", "now must be a finite Unix time.")
    return tolerance, current


def verify_signature(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str | bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> WebhookEvent:
    """Verify a Waslah webhook delivery and return its parsed event.

    :param body: the raw request body, exactly as received (not re-serialised JSON): ``bytes``
        (or ``bytearray``/``memoryview``), or ``str`` that is encoded as UTF-8.
    :param headers: the request headers (any case; ``str`` or ``bytes`` names and values, or
        one-item lists); any one of the five signature aliases is enough.
    :param secret: the webhook secret from the Waslah dashboard (``str`` or ``bytes``).
    :param tolerance_seconds: reject timestamps further than this from ``now`` (replay protection).
    :param now: the current Unix time (defaults to the clock; for tests).
    :raises WebhookVerificationError: for every failure, whatever the input, with ``reason`` one of
        ``missing_secret`` (no usable secret), ``bad_headers`` (headers not a mapping, or a header
        with several or non-text values), ``bad_body`` (body not bytes or UTF-8 text),
        ``bad_tolerance`` (``tolerance_seconds`` or ``now`` not finite), ``missing_signature``,
        ``missing_timestamp``, ``bad_timestamp`` (not 1-12 ASCII digits), ``bad_signature_format``
        (not ``sha256=`` and 64 hex digits), ``signature_mismatch``, ``timestamp_out_of_tolerance``
        and ``bad_payload`` (signed, but not a JSON object).
    """
    key = _secret_bytes(secret)
    if not isinstance(headers, Mapping):
        raise WebhookVerificationError(
            "bad_headers", f"Headers are a {type(headers).__name__}; expected a mapping of names to values."
        )
    raw = _body_bytes(body)
    tolerance, current = _checked_window(tolerance_seconds, now)
    received = next((v for name in SIGNATURE_HEADERS if (v := _header(headers, name))), None)
    if received is None:
        raise WebhookVerificationError(
            "missing_signature", f"No signature header: expected one of {', '.join(SIGNATURE_HEADERS)}."
        )
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if not timestamp:
        raise WebhookVerificationError("missing_timestamp", f"No {TIMESTAMP_HEADER} header.")
    timestamp = timestamp.strip()
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookVerificationError("bad_timestamp", f"{TIMESTAMP_HEADER} is not a Unix timestamp.")
    ts = int(timestamp)
    received = received.strip()
    if not received.startswith(_SCHEME):
        raise WebhookVerificationError("bad_signature_format", "Signature header does not start with 'sha256='.")
    if not _HEX_DIGEST.fullmatch(received[len(_SCHEME) :]):
        raise WebhookVerificationError(
            "bad_signature_format", "Signature header is not 'sha256=' followed by 64 hexadecimal digits."
        )
    expected = compute_signature(key, timestamp, raw)
    if not hmac.compare_digest(expected.encode(), (_SCHEME + received[len(_SCHEME) :].lower()).encode()):
        raise WebhookVerificationError(
            "signature_mismatch", "Signature does not match the body and the webhook secret."
        )
    if abs(current - ts) > tolerance:
        raise WebhookVerificationError(
            "timestamp_out_of_tolerance",
            f"Timestamp is {int(abs(current - ts))} s away from now; the limit is {tolerance:g} s.",
        )
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise WebhookVerificationError("bad_payload", "Body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationError("bad_payload", "Body is not a JSON object.")
    data = payload.get("data")
    stamp = payload.get("timestamp")
    if isinstance(stamp, str) and _TIMESTAMP.fullmatch(stamp):
        stamp = int(stamp)
    event = payload.get("event")
    return WebhookEvent(
        event=event if isinstance(event, str) and event else _header(headers, EVENT_HEADER) or "",
        timestamp=stamp if isinstance(stamp, int) and not isinstance(stamp, bool) and stamp else ts,
        data=data if isinstance(data, dict) else {},
        event_id=_header(headers, EVENT_ID_HEADER),
        raw=payload,
    )
