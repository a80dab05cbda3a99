"""The receiver's checks on one delivery, without HTTP or database: reject with a status and a reason, or accept.

Order of the checks (the first failure answers): body size, connection id, the signature and the
timestamp (:func:`airflow_provider_waslah.webhooks.verify_signature`), the ``X-Waslah-Event-Id``
header, then the payload fields the asset URI is built from. Every rejection carries an HTTP
status, a short machine-readable ``reason`` and a message that never contains the secret.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_waslah.inbound import asset_uri
from airflow_provider_waslah.webhooks import (
    EVENT_ID_HEADER,
    TIMESTAMP_HEADER,
    WebhookVerificationError,
    verify_signature,
)

#: Bodies above this many bytes are refused with 413 before anything else is looked at. Waslah's
#: events are small (a text is at most 4,000 characters: under 30 KB even fully \\u-escaped).
MAX_BODY_BYTES = 256 * 1024
#: Waslah's documented anti-replay window.
TOLERANCE_SECONDS = 300

_CONN_ID = re.compile(r"[A-Za-z0-9_.\-]{1,250}")
# Waslah sends a UUID; anything short and printable is taken, nothing that could smuggle markup or newlines.
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_MAX_FIELD = 200

#: HTTP status of each rejection reason (documented in docs/inbound.md); unknown reasons get 400.
STATUS_BY_REASON: dict[str, int] = {
    "body_too_large": 413,
    "bad_content_length": 400,
    "unknown_connection": 404,
    "webhook_secret_not_set": 403,
    "missing_secret": 403,
    "missing_signature": 401,
    "bad_signature_format": 401,
    "signature_mismatch": 401,
    "timestamp_out_of_tolerance": 401,
    "missing_timestamp": 400,
    "bad_timestamp": 400,
    "unverifiable": 400,
    "missing_event_id": 400,
    "bad_event_id": 400,
    "bad_payload": 400,
    "missing_event": 422,
    "missing_instance_key": 422,
    "connection_lookup_failed": 503,
    "storage_unavailable": 503,
}


class Rejection(Exception):
    """A delivery the receiver refuses: ``status`` (HTTP), ``reason`` (machine-readable), ``message``."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status if status is not None else STATUS_BY_REASON.get(reason, 400)


@dataclass(frozen=True)
class VerifiedDelivery:
    """A delivery that passed every check: what becomes the asset event."""

    conn_id: str
    event: str
    event_id: str
    instance_key: str
    sent_at: int
    data: dict[str, Any] = field(repr=False)
    #: SHA-256 of the signed content (``timestamp.body``): a captured delivery replayed under
    #: another (unsigned) event id header is still recognised.
    digest: str = field(repr=False)

    @property
    def asset_uri(self) -> str:
        """``waslah://<conn_id>/<instance_key>/<event>``."""
        return asset_uri(self.instance_key, self.event, self.conn_id)

    def extra(self) -> dict[str, Any]:
        """The asset event's ``extra``: the event's ``data`` and its ids (read back by ``inbound_messages``)."""
        return {
            "event_id": self.event_id,
            "event": self.event,
            "conn_id": self.conn_id,
            "instance_key": self.instance_key,
            "sent_at": self.sent_at,
            "data": self.data,
            "delivery_digest": self.digest,
        }


def check_conn_id(conn_id: str) -> None:
    """Refuse connection ids Airflow could not have (before any lookup)."""
    if not _CONN_ID.fullmatch(conn_id):
        raise Rejection("unknown_connection", "No such connection.")


def check_size(content_length: str | None, max_bytes: int = MAX_BODY_BYTES) -> None:
    """Refuse early on a declared ``Content-Length`` over the limit (the body is also counted as read)."""
    if content_length is None:
        return
    value = content_length.strip()
    if not value.isdigit() or not value.isascii():
        raise Rejection("bad_content_length", "Content-Length is not a number.")
    if len(value) > 12 or int(value) > max_bytes:
        raise Rejection("body_too_large", f"Body over the {max_bytes} byte limit.")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def verify_delivery(
    conn_id: str,
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    now: float | None = None,
    tolerance_seconds: int = TOLERANCE_SECONDS,
) -> VerifiedDelivery:
    """Verify one delivery for ``conn_id`` against its ``secret``; raise :class:`Rejection` or return it."""
    try:
        event = verify_signature(body, headers, secret, tolerance_seconds=tolerance_seconds, now=now)
    except WebhookVerificationError as err:
        raise Rejection(err.reason, str(err)) from None
    except Exception as err:  # hostile input must never become a 500: whatever verification trips on is a 400
        raise Rejection("unverifiable", f"The delivery cannot be verified ({type(err).__name__}).") from None

    event_id = _header(headers, EVENT_ID_HEADER)
    if not event_id:
        raise Rejection("missing_event_id", f"No {EVENT_ID_HEADER} header: without it a retry cannot be told apart.")
    if not _EVENT_ID.fullmatch(event_id):
        raise Rejection("bad_event_id", f"{EVENT_ID_HEADER} is not an id (1-128 letters, digits, '._:-').")

    name = event.raw.get("event")
    if not isinstance(name, str) or not name or len(name) > _MAX_FIELD:
        raise Rejection("missing_event", "The body has no 'event' name.")
    data = event.raw.get("data")
    if not isinstance(data, dict):
        raise Rejection("bad_payload", "The body's 'data' is not a JSON object.")
    try:  # NaN/Infinity parse as Python floats, but are not JSON: they would break the stored event for every reader
        json.dumps(data, allow_nan=False)
    except ValueError:
        raise Rejection("bad_payload", "The body contains NaN or Infinity, which JSON does not allow.") from None
    instance_key = data.get("instance_key")
    if not isinstance(instance_key, str) or not instance_key or len(instance_key) > _MAX_FIELD:
        raise Rejection("missing_instance_key", "The event's data has no 'instance_key'.")
    timestamp = _header(headers, TIMESTAMP_HEADER) or ""
    raw = body.encode() if isinstance(body, str) else body
    digest = hashlib.sha256(timestamp.encode("utf-8", "surrogateescape") + b"." + raw).hexdigest()
    return VerifiedDelivery(
        conn_id=conn_id,
        event=name,
        event_id=event_id,
        instance_key=instance_key,
        sent_at=int(timestamp),  # checked by verify_signature: an integer within the tolerance
        data=data,
        digest=digest,
    )
