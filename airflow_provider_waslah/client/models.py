"""Pydantic models of Waslah's responses; field names are the API's own.

Models accept fields Waslah may add later (``extra="allow"``) and are frozen, so a value read
from XCom or a log can be trusted to be what the API said. ``model_dump(mode="json")`` gives a
JSON-safe dict for XCom.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from airflow_provider_waslah.client.validation import STATUS_ORDER


class WaslahModel(BaseModel):
    """Base of every response model."""

    model_config = ConfigDict(extra="allow", frozen=True)


class User(WaslahModel):
    """The user who owns the API key."""

    id: int
    name: str | None = None
    email: str | None = None


class ApiKeyInfo(WaslahModel):
    """Metadata of the API key in use (never the key itself: only its ``prefix``)."""

    id: int | None = None
    name: str | None = None
    prefix: str | None = None
    scopes: list[str] = []
    request_count: int | None = None
    last_used_at: datetime | None = None
    expires_at: datetime | None = None


class Me(WaslahModel):
    """``GET /me``: the key's owner and the key's metadata."""

    user: User
    api_key: ApiKeyInfo


class Instance(WaslahModel):
    """A WhatsApp instance (a paired phone); only ``connected`` instances can send."""

    id: int | None = None
    key: str
    name: str | None = None
    status: str
    phone_number: str | None = None
    connected_at: datetime | None = None
    last_seen_at: datetime | None = None
    created_at: str | None = None
    disconnected_at: datetime | None = None


class MessageReceipt(WaslahModel):
    """The 202 answer to a send: the message is queued as ``pending``; poll ``check_status_url``."""

    id: int
    status: str
    instance_key: str | None = None
    to: str | None = None
    preview: str | None = None
    type: str | None = None
    media_url: str | None = None
    caption: str | None = None
    scheduled_at: datetime | None = None
    check_status_url: str | None = None
    created_at: str | None = None


class Message(WaslahModel):
    """``GET /messages/{id}``: a message and its status (pending, sent, delivered, read, failed)."""

    id: int
    status: str
    instance_key: str | None = None
    direction: str | None = None
    message_type: str | None = None
    phone_number: str | None = None
    remote_jid: str | None = None
    body: str | None = None
    media_url: str | None = None
    media_filename: str | None = None
    media_mime_type: str | None = None
    provider_message_id: str | None = None
    error_message: str | None = None
    sent_at: str | None = None
    received_at: str | None = None
    scheduled_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def is_failed(self) -> bool:
        """True when Waslah gave up on the message (see ``error_message``)."""
        return self.status == "failed"

    def has_reached(self, status: str) -> bool:
        """True when the message is at ``status`` or further along pending → sent → delivered → read."""
        if self.status == status:
            return True
        return STATUS_ORDER.get(self.status, -1) >= STATUS_ORDER.get(status, 99)


class Broadcast(WaslahModel):
    """A broadcast (``POST /messages/bulk``) and its progress counters."""

    id: int
    name: str | None = None
    message_type: str | None = None
    instance_key: str | None = None
    status: str
    total: int = 0
    sent: int = 0
    failed: int = 0
    pending: int = 0
    progress_percent: int = 0
    delay_min_sec: int | None = None
    delay_max_sec: int | None = None
    delay_label: str | None = None
    created_at: str | None = None
    completed_at: str | None = None
    check_status_url: str | None = None

    @property
    def is_final(self) -> bool:
        """True once the broadcast is ``completed`` or ``failed``."""
        return self.status in ("completed", "failed")

    @property
    def progress_line(self) -> str:
        """Progress in words, e.g. ``66% - sent 32/50, failed 1``."""
        return f"{self.progress_percent}% - sent {self.sent}/{self.total}, failed {self.failed}"


class Upload(WaslahModel):
    """``POST /uploads``: where the file now lives; ``url`` is ready for media sends."""

    url: str
    path: str | None = None
    filename: str | None = None
    size: int | None = None
    mime_type: str | None = None
    type: str | None = None
