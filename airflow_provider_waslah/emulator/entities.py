"""The emulator's records: users, API keys, instances, messages, broadcasts, uploads, faults, webhooks.

Plain dataclasses with no rules beyond how each one shows itself in the API (``to_api``); the
rules live in the state's parts (``access.py``, ``messaging.py``, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def iso(ts: float | None) -> str | None:
    """A Unix timestamp as ISO 8601 with offset, e.g. ``2026-05-11T17:24:02+00:00``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


@dataclass
class User:
    """A Waslah account."""

    id: int
    name: str
    email: str
    plan: str = "pro"


@dataclass
class ApiKey:
    """An API key with its scopes; the full key never leaves the state except as ``prefix``."""

    id: int
    key: str
    user_id: int
    name: str
    scopes: list[str]
    revoked: bool = False
    expires_at: float | None = None
    request_count: int = 0
    last_used_at: float | None = None

    @property
    def prefix(self) -> str:
        """The first 12 characters, what the dashboard shows."""
        return self.key[:12]


@dataclass
class Instance:
    """A WhatsApp instance (one phone) of a user."""

    id: int
    key: str
    user_id: int
    name: str
    status: str
    phone_number: str | None
    created_at: float
    connected_at: float | None = None
    disconnected_at: float | None = None

    def to_api(self, now: float) -> dict[str, Any]:
        """The instance as ``GET /instances`` shows it."""
        return {
            "id": self.id,
            "key": self.key,
            "name": self.name,
            "status": self.status,
            "phone_number": self.phone_number,
            "connected_at": iso(self.connected_at),
            "last_seen_at": iso(now if self.status == "connected" else self.disconnected_at),
            "created_at": iso(self.created_at),
            "disconnected_at": iso(self.disconnected_at),
        }


@dataclass
class Message:
    """One message, outbound (sent through the API) or inbound (``POST /_emulator/inbound``).

    ``transitions`` maps each status the message will reach to the real time it reaches it.
    """

    id: int
    user_id: int
    instance_key: str
    direction: str
    message_type: str
    to: str
    phone_number: str
    remote_jid: str
    body: str | None
    created_at: float
    transitions: list[tuple[str, float]]
    media_url: str | None = None
    media_filename: str | None = None
    media_mime_type: str | None = None
    caption: str | None = None
    provider_message_id: str | None = None
    error_message: str | None = None
    scheduled_at: str | None = None
    broadcast_id: int | None = None
    received_at: float | None = None
    notified: int = 0

    def reached(self, now: float) -> list[tuple[str, float]]:
        """The transitions reached at ``now``, in order."""
        return [(status, at) for status, at in self.transitions if at <= now]

    def status_at(self, now: float) -> str:
        """The status at ``now``."""
        if self.direction == "inbound":
            return "received"
        done = self.reached(now)
        return done[-1][0] if done else "pending"

    def time_of(self, status: str, now: float) -> float | None:
        """When the message reached ``status`` (``None`` if it has not yet)."""
        for name, at in self.reached(now):
            if name == status:
                return at
        return None

    def final_at(self) -> float:
        """When a broadcast counts this message as done: sent or failed."""
        return self.transitions[0][1]

    def to_api(self, now: float) -> dict[str, Any]:
        """The message as ``GET /messages/{id}`` shows it."""
        done = self.reached(now)
        status = self.status_at(now)
        return {
            "id": self.id,
            "instance_key": self.instance_key,
            "direction": self.direction,
            "status": status,
            "message_type": self.message_type,
            "phone_number": self.phone_number,
            "remote_jid": self.remote_jid,
            "body": self.body,
            "media_url": self.media_url,
            "media_filename": self.media_filename,
            "media_mime_type": self.media_mime_type,
            "provider_message_id": self.provider_message_id if status not in ("pending", "failed") else None,
            "error_message": self.error_message if status == "failed" else None,
            "sent_at": iso(self.time_of("sent", now)),
            "received_at": iso(self.received_at),
            "scheduled_at": self.scheduled_at,
            "created_at": iso(self.created_at),
            "updated_at": iso(done[-1][1] if done else self.created_at),
            "broadcast_id": self.broadcast_id,
        }


@dataclass
class Broadcast:
    """A bulk send: one record plus ``len(message_ids)`` real messages."""

    id: int
    user_id: int
    name: str | None
    message_type: str
    instance_key: str
    delay_min_sec: int
    delay_max_sec: int
    created_at: float
    start_at: float
    message_ids: list[int]

    @property
    def delay_label(self) -> str:
        """``3–8 detik`` or ``3 detik (fixed)``."""
        if self.delay_min_sec == self.delay_max_sec:
            return f"{self.delay_min_sec} detik (fixed)"
        return f"{self.delay_min_sec}–{self.delay_max_sec} detik"


@dataclass
class Upload:
    """A file stored by ``POST /uploads`` and served back at its URL."""

    path: str
    filename: str
    mime_type: str
    type: str
    data: bytes
    user_id: int


@dataclass
class Fault:
    """An injected failure for requests whose ``"METHOD /path"`` matches ``route`` (fnmatch)."""

    id: int
    route: str = "*"
    status: int | None = 500
    rate: float = 1.0
    count: int | None = None
    latency: float = 0.0
    drop_connection: bool = False
    lose_response: bool = False
    error: str | None = None
    message: str | None = None
    hits: int = 0

    def to_api(self) -> dict[str, Any]:
        """The fault as the control API lists it."""
        return {
            "id": self.id,
            "route": self.route,
            "status": self.status,
            "rate": self.rate,
            "count": self.count,
            "latency": self.latency,
            "drop_connection": self.drop_connection,
            "lose_response": self.lose_response,
            "error": self.error,
            "message": self.message,
            "hits": self.hits,
        }


@dataclass
class WebhookEndpoint:
    """Where a user's events go, as registered in the dashboard."""

    user_id: int
    url: str
    secret: str


@dataclass
class Delivery:
    """One webhook event on its way to a receiver; ``event_id`` stays the same across retries."""

    event_id: str
    event: str
    url: str
    secret: str
    user_id: int
    body: bytes
    created_at: float
    next_attempt_at: float
    status: str = "pending"
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered_at: float | None = None

    def to_api(self) -> dict[str, Any]:
        """The delivery as ``GET /_emulator/webhook-deliveries`` shows it."""
        return {
            "event_id": self.event_id,
            "event": self.event,
            "url": self.url,
            "user_id": self.user_id,
            "status": self.status,
            "attempt_count": len(self.attempts),
            "attempts": list(self.attempts),
            "payload": json.loads(self.body),
            "created_at": iso(self.created_at),
            "delivered_at": iso(self.delivered_at),
        }


@dataclass
class RateWindow:
    """Laravel's fixed throttle window: starts at the key's first request in it."""

    start: float
    hits: int = 0


@dataclass
class AuthContext:
    """The authenticated caller of one request."""

    key: ApiKey
    user: User
