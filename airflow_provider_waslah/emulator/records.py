"""The emulator's records: what :class:`~.backend.WaslahBackend` stores and returns.

Plain dataclasses with no rules beyond facts derived from their own fields (a message's status
at a moment); how each one shows itself in the API is built by ``responses.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class User:
    """A Waslah account."""

    id: int
    name: str
    email: str
    plan: str = "pro"


@dataclass
class ApiKey:
    """An API key with its scopes and usage counters; the full key is only ever shown as ``prefix``."""

    id: int
    key: str
    user_id: int
    name: str
    scopes: tuple[str, ...]
    revoked: bool = False
    expires_at: float | None = None
    request_count: int = 0
    last_used_at: float | None = None

    @property
    def prefix(self) -> str:
        """The first 12 characters, what the dashboard shows."""
        return self.key[:12]


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request."""

    key: ApiKey
    user: User


@dataclass(frozen=True)
class RateDecision:
    """One request counted against its key's fixed window.

    :param retry_after: seconds until the window ends; set when the request is refused.
    """

    allowed: bool
    limit: int
    remaining: int
    window_end: float
    retry_after: int | None = None


@dataclass
class Message:
    """One message, outbound (sent through the API) or inbound (``POST /_emulator/inbound``).

    ``transitions`` maps each status the message will reach to the real time it reaches it;
    ``notified`` counts the transitions already turned into webhook events.
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
    transitions: tuple[tuple[str, float], ...]
    media_url: str | None = None
    media_filename: str | None = None
    media_mime_type: str | None = None
    caption: str | None = None
    provider_message_id: str | None = None
    error_message: str | None = None
    scheduled_at: datetime | None = None
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


@dataclass(frozen=True)
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
    message_ids: tuple[int, ...]


@dataclass(frozen=True)
class BroadcastProgress:
    """A broadcast and its counters at one moment (counted from the status of its messages)."""

    broadcast: Broadcast
    status: str
    total: int
    sent: int
    failed: int
    pending: int
    completed_at: float | None


@dataclass(frozen=True)
class Upload:
    """A file stored by ``POST /uploads`` and served back at its URL."""

    path: str
    filename: str
    mime_type: str
    type: str
    data: bytes
    user_id: int


@dataclass(frozen=True)
class FaultSpec:
    """What an injected fault does; see ``control.py`` for the meaning of each field."""

    route: str = "*"
    status: int | None = 500
    rate: float = 1.0
    count: int | None = None
    latency: float = 0.0
    answer_late: bool = False
    drop_connection: bool = False
    lose_response: bool = False
    garbage: bool = False
    body: str = "random"
    retry_after: int | None = None
    error: str | None = None
    message: str | None = None

    @property
    def kind(self) -> str:
        """``drop_connection``, ``lose_response``, ``garbage``, ``answer_late``, ``status``, ``latency`` or ``pass``."""
        for flag in ("drop_connection", "lose_response", "garbage", "answer_late"):
            if getattr(self, flag):
                return flag
        if self.status is not None:
            return "status"
        return "latency" if self.latency > 0 else "pass"

    @property
    def processes(self) -> bool:
        """Whether a request it hits is handled (its effects happen) before the fault shapes the answer."""
        return self.kind in ("lose_response", "garbage", "answer_late", "latency", "pass")


@dataclass
class Fault:
    """An installed fault: its spec, how often it fired and how many firings it has left."""

    id: int
    spec: FaultSpec
    remaining: int | None
    hits: int = 0


@dataclass(frozen=True)
class WebhookEndpoint:
    """Where a user's events go, as registered in the dashboard."""

    user_id: int
    url: str
    secret: str


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt of a webhook event (``number`` 0: skipped, never sent)."""

    number: int
    at: float | None
    status_code: int | None
    error: str | None


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
    attempts: list[Attempt] = field(default_factory=list)
    delivered_at: float | None = None


@dataclass
class RateWindow:
    """Laravel's fixed throttle window: starts at the key's first request in it."""

    start: float
    hits: int = 0


@dataclass(frozen=True)
class LoggedRequest:
    """One API request as the request log keeps it (API key prefix only).

    :param status: the status answered, ``None`` when no answer reached the client.
    :param fault_id: the fault that hit it, if any (``fault_kind`` is its kind).
    """

    method: str
    path: str
    query: str
    status: int | None
    started: float
    duration_ms: float
    api_key_prefix: str | None
    note: str | None
    fault_id: int | None = None
    fault_kind: str | None = None


@dataclass(frozen=True)
class Summary:
    """A short description of the live state."""

    users: int
    api_key_prefixes: tuple[str, ...]
    instances: dict[str, str]
    time_scale: float
    rate_window_seconds: float
    messages: int
    broadcasts: int


@dataclass(frozen=True)
class Content:
    """What an outbound message carries: text, or media by URL with its caption and file facts."""

    message_type: str
    text: str | None = None
    media_url: str | None = None
    caption: str | None = None
    filename: str | None = None
    mime_type: str | None = None


@dataclass(frozen=True)
class SendRequest:
    """A validated single send (``POST /messages``, ``/messages/text``, ``/messages/media``)."""

    instance_key: str
    to: str
    content: Content
    scheduled_at: datetime | None = None


@dataclass(frozen=True)
class BulkRequest:
    """A validated broadcast (``POST /messages/bulk``); ``recipients`` are the valid, unique numbers."""

    instance_key: str
    recipients: tuple[str, ...]
    content: Content
    name: str | None
    delay_min_sec: int
    delay_max_sec: int


@dataclass(frozen=True)
class InboundRequest:
    """A validated customer message (``POST /_emulator/inbound``).

    :param sender: the customer's number; ``remote_jid`` the chat (``lid`` invents an ``@lid`` one).
    """

    instance_key: str
    sender: str | None
    remote_jid: str | None
    lid: bool
    body: str | None
    message_type: str
