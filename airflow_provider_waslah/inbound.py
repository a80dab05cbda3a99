"""Inbound Waslah events in DAGs: the asset to schedule on, and typed messages from a run's asset events.

The provider's webhook receiver (a FastAPI app on the Airflow api-server, see
:mod:`airflow_provider_waslah.receiver`) turns every verified Waslah webhook into an Airflow asset
event on ``waslah://<conn_id>/<instance_key>/<event>``. A DAG that answers customers schedules on
that asset and reads the messages back from ``triggering_asset_events``::

    from airflow_provider_waslah.inbound import inbound_messages, waslah_asset

    with DAG("auto_reply", schedule=[waslah_asset("toko-utama")], ...):

        @task
        def replies(triggering_asset_events=None) -> list[dict]:
            return [
                {"instance_key": m.instance_key, "to": m.reply_to, "text": "Terima kasih!"}
                for m in inbound_messages(triggering_asset_events)
            ]

Airflow batches: one DAG run may carry several events (all that arrived since the previous run),
so always handle a list. This module is cheap to import (pydantic only; ``Asset`` is imported when
:func:`waslah_asset` is called), so DAG files stay fast to parse.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from airflow.sdk import Asset

log = logging.getLogger(__name__)

#: The asset URI scheme of Waslah webhook events.
SCHEME = "waslah"
#: The events Waslah sends (API reference, "Webhooks").
MESSAGE_RECEIVED: Final = "message.received"
MESSAGE_SENT: Final = "message.sent"
MESSAGE_STATUS: Final = "message.status"
EVENTS: tuple[str, ...] = (MESSAGE_RECEIVED, MESSAGE_SENT, MESSAGE_STATUS)
DEFAULT_CONN_ID = "waslah_default"
#: The asset group shown in the Airflow UI.
ASSET_GROUP = "waslah"


def asset_uri(instance_key: str, event: str = MESSAGE_RECEIVED, conn_id: str = DEFAULT_CONN_ID) -> str:
    """The asset URI the receiver writes ``event`` of ``instance_key`` to, for connection ``conn_id``.

    Each part is percent-encoded, so any instance key or connection id gives a valid, unambiguous URI:
    ``asset_uri("toko-utama")`` is ``waslah://waslah_default/toko-utama/message.received``.
    """
    for name, value in (("instance_key", instance_key), ("event", event), ("conn_id", conn_id)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return f"{SCHEME}://{quote(conn_id, safe='')}/{quote(instance_key, safe='')}/{quote(event, safe='')}"


def parse_asset_uri(uri: str) -> tuple[str, str, str] | None:
    """``(conn_id, instance_key, event)`` of a Waslah asset URI, or ``None`` for any other URI."""
    prefix = f"{SCHEME}://"
    if not isinstance(uri, str) or not uri.startswith(prefix):
        return None
    parts = uri[len(prefix) :].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    conn_id, instance_key, event = (unquote(part) for part in parts)
    return conn_id, instance_key, event


def waslah_asset(instance_key: str, event: str = MESSAGE_RECEIVED, conn_id: str = DEFAULT_CONN_ID) -> Asset:
    """The Airflow asset the receiver updates for ``event`` on ``instance_key``: use it in ``schedule=[...]``.

    :param instance_key: the Waslah instance (the paired phone) the customers write to.
    :param event: ``message.received`` (default), ``message.sent`` or ``message.status``.
    :param conn_id: the Waslah connection whose receiver URL (``/waslah/webhook/<conn_id>``) is
        registered in Waslah's dashboard.
    """
    from airflow.sdk import Asset

    uri = asset_uri(instance_key, event, conn_id)
    return Asset(uri=uri, name=uri, group=ASSET_GROUP)


class WaslahEvent(BaseModel):
    """One verified Waslah webhook delivery, as stored in an asset event's ``extra`` by the receiver."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, coerce_numbers_to_str=True)

    event_id: str = Field(description="Waslah's X-Waslah-Event-Id: unique per delivery, kept across retries.")
    event: str = Field(description="message.received, message.sent or message.status.")
    conn_id: str = Field(description="The connection whose webhook URL received it.")
    instance_key: str = Field(description="The Waslah instance (phone) the event belongs to.")
    sent_at: int = Field(description="Waslah's signed timestamp (Unix seconds).")
    data: dict[str, Any] = Field(default_factory=dict, description="The event's data, exactly as Waslah sent it.")
    stored_at: datetime | None = Field(default=None, description="When Airflow stored the asset event.")

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any], stored_at: datetime | None = None) -> WaslahEvent:
        """Build from an asset event's ``extra`` (the receiver's format)."""
        fields = {key: extra.get(key) for key in ("event_id", "event", "conn_id", "instance_key", "sent_at", "data")}
        return cls.model_validate({**fields, "stored_at": stored_at})


class InboundMessage(WaslahEvent):
    """A customer's message (``message.received``). Reply to :attr:`reply_to`, verbatim."""

    event: Literal["message.received"] = MESSAGE_RECEIVED
    message_id: int | str | None = None
    from_: str = Field(default="", alias="from", description="The sender's digits (for @lid customers: not a phone).")
    remote_jid: str = Field(description="The chat's full JID: 628…@s.whatsapp.net, …@lid or …@g.us.")
    body: str = ""
    message_type: str = "text"
    received_at: str | None = None

    @property
    def reply_to(self) -> str:
        """Where a reply must go: ``remote_jid`` as received (``…@lid`` customers get nothing sent to ``from``)."""
        return self.remote_jid

    @property
    def is_lid(self) -> bool:
        """Whether the customer uses WhatsApp's privacy mode (an ``@lid`` JID)."""
        return self.remote_jid.endswith("@lid")

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any], stored_at: datetime | None = None) -> InboundMessage:
        """Build from an asset event's ``extra``: the envelope plus the documented ``data`` fields."""
        data = extra.get("data")
        data = data if isinstance(data, Mapping) else {}
        fields = {key: extra.get(key) for key in ("event_id", "event", "conn_id", "instance_key", "sent_at")}
        known = ("message_id", "from", "remote_jid", "body", "message_type", "received_at")
        return cls.model_validate(
            {**fields, **{k: data[k] for k in known if data.get(k) is not None}, "data": data, "stored_at": stored_at}
        )


class MessageUpdate(WaslahEvent):
    """What happened to a message you sent (``message.sent`` or ``message.status``)."""

    event: Literal["message.sent", "message.status"]
    message_id: int | str | None = None
    to: str | None = None
    remote_jid: str | None = None
    status: str | None = Field(default=None, description="sent, delivered, read, played or failed.")
    message_type: str | None = None
    provider_message_id: str | None = None
    error_message: str | None = None
    broadcast_id: int | None = None
    status_at: str | None = Field(default=None, description="The data's own timestamp (ISO 8601).")

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any], stored_at: datetime | None = None) -> MessageUpdate:
        """Build from an asset event's ``extra``."""
        data = extra.get("data")
        data = data if isinstance(data, Mapping) else {}
        fields = {key: extra.get(key) for key in ("event_id", "event", "conn_id", "instance_key", "sent_at")}
        known = (
            "message_id",
            "to",
            "remote_jid",
            "status",
            "message_type",
            "provider_message_id",
            "error_message",
            "broadcast_id",
        )
        typed = {k: data[k] for k in known if data.get(k) is not None}
        if data.get("timestamp") is not None:
            typed["status_at"] = str(data["timestamp"])
        return cls.model_validate({**fields, **typed, "data": data, "stored_at": stored_at})


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _flatten(triggering_asset_events: Any) -> Iterable[Any]:
    """Asset events from ``triggering_asset_events`` (a mapping asset -> events) or from a flat list."""
    if triggering_asset_events is None:
        return []
    if isinstance(triggering_asset_events, Mapping):
        return [event for events in triggering_asset_events.values() for event in events]
    return list(triggering_asset_events)


def webhook_events(triggering_asset_events: Any, *, events: Iterable[str] | None = None) -> list[WaslahEvent]:
    """Every Waslah webhook event of a run, oldest first, each once (typed by its ``event``).

    :param triggering_asset_events: the task context's ``triggering_asset_events`` (a mapping of
        asset to its events; events reached through several assets or aliases count once), or a
        list of asset events. Events on non-Waslah assets are ignored; events whose ``extra`` is not
        the receiver's (e.g. created by hand in the UI) are skipped with a warning.
    :param events: keep only these event names (default: all).
    :return: :class:`InboundMessage` for ``message.received``, :class:`MessageUpdate` for
        ``message.sent`` / ``message.status``, :class:`WaslahEvent` for anything else.
    """
    wanted = None if events is None else set(events)
    found: dict[str, WaslahEvent] = {}
    for asset_event in _flatten(triggering_asset_events):
        asset = _get(asset_event, "asset")
        uri = _get(asset, "uri") if asset is not None else None
        if uri is not None and parse_asset_uri(str(uri)) is None:
            continue
        extra = _get(asset_event, "extra")
        if not isinstance(extra, Mapping) or not extra.get("event_id"):
            log.warning("Skipping an asset event on %s that the Waslah receiver did not write: %r", uri, extra)
            continue
        name = extra.get("event")
        if wanted is not None and name not in wanted:
            continue
        model: type[WaslahEvent] = (
            InboundMessage
            if name == MESSAGE_RECEIVED
            else MessageUpdate
            if name in (MESSAGE_SENT, MESSAGE_STATUS)
            else WaslahEvent
        )
        try:
            parsed = model.from_extra(extra, _get(asset_event, "timestamp"))
        except ValidationError as err:
            log.warning("Skipping a malformed Waslah event on %s: %s", uri, err)
            continue
        found.setdefault(parsed.event_id, parsed)
    return sorted(found.values(), key=lambda e: (e.stored_at.timestamp() if e.stored_at else float("inf"), e.sent_at))


def inbound_messages(triggering_asset_events: Any) -> list[InboundMessage]:
    """The customers' messages (``message.received``) of a run, oldest first, each once."""
    found = webhook_events(triggering_asset_events, events=[MESSAGE_RECEIVED])
    return [event for event in found if isinstance(event, InboundMessage)]


def message_updates(triggering_asset_events: Any) -> list[MessageUpdate]:
    """The ``message.sent`` / ``message.status`` events of a run, oldest first, each once."""
    return [
        e
        for e in webhook_events(triggering_asset_events, events=[MESSAGE_SENT, MESSAGE_STATUS])
        if isinstance(e, MessageUpdate)
    ]


__all__ = [
    "EVENTS",
    "MESSAGE_RECEIVED",
    "MESSAGE_SENT",
    "MESSAGE_STATUS",
    "InboundMessage",
    "MessageUpdate",
    "WaslahEvent",
    "asset_uri",
    "inbound_messages",
    "message_updates",
    "parse_asset_uri",
    "waslah_asset",
    "webhook_events",
]
