"""Helpers for the receiver tests: signed deliveries, an in-memory store, a TestClient on the receiver app."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from airflow_provider_waslah.receiver.app import Receiver, create_app
from airflow_provider_waslah.receiver.store import StoreResult
from airflow_provider_waslah.receiver.verify import Rejection, VerifiedDelivery
from airflow_provider_waslah.webhooks import signed_headers

SECRET = "whsec_receiver_test_0123456789"
CONN_ID = "waslah_default"
NO_SECRET_CONN_ID = "waslah_nosecret"
RECEIVED_URI = "waslah://waslah_default/demo/message.received"


def received_data(remote_jid: str = "6281234567890@s.whatsapp.net", body: str = "Halo", **extra: Any) -> dict[str, Any]:
    """``data`` of a ``message.received`` event, shaped as in the API reference."""
    return {
        "message_id": 1234,
        "instance_key": "demo",
        "from": remote_jid.split("@", 1)[0],
        "remote_jid": remote_jid,
        "body": body,
        "message_type": "text",
        "received_at": "2026-05-12T11:05:23+07:00",
        **extra,
    }


def delivery(
    data: dict[str, Any] | None = None,
    *,
    event: str = "message.received",
    event_id: str | None = None,
    secret: str = SECRET,
    timestamp: int | None = None,
    body: bytes | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A delivery as Waslah sends it: the raw body and every header (five signature aliases)."""
    ts = int(time.time()) if timestamp is None else timestamp
    if body is None:
        payload = {"event": event, "timestamp": ts, "data": received_data() if data is None else data}
        body = json.dumps(payload, separators=(",", ":")).encode()
    headers = signed_headers(secret, body, event=event, event_id=event_id or str(uuid.uuid4()), timestamp=ts)
    return body, headers


class FakeStore:
    """The store's contract in memory: stores once per event id and per signed content."""

    def __init__(self, consumed: tuple[str, ...] = (RECEIVED_URI,)) -> None:
        self.consumed = set(consumed)
        self.stored: list[VerifiedDelivery] = []
        self.calls = 0

    def store(self, delivery: VerifiedDelivery) -> StoreResult:
        self.calls += 1
        if delivery.asset_uri not in self.consumed:
            return StoreResult("no_consumer", delivery.asset_uri)
        for index, earlier in enumerate(self.stored, start=1):
            if earlier.event_id == delivery.event_id or earlier.digest == delivery.digest:
                return StoreResult("duplicate", delivery.asset_uri, index)
        self.stored.append(delivery)
        return StoreResult("stored", delivery.asset_uri, len(self.stored))


def secrets(mapping: dict[str, str | None]) -> Callable[[str], str]:
    """A ``secret_for`` over a dict: missing -> unknown_connection, ``None`` -> webhook_secret_not_set."""

    def secret_for(conn_id: str) -> str:
        if conn_id not in mapping:
            raise Rejection("unknown_connection", "No such connection.")
        value = mapping[conn_id]
        if not value:
            raise Rejection("webhook_secret_not_set", "The connection has no webhook_secret: receiving is off.")
        return value

    return secret_for


def client(store: Any = None, clock: Callable[[], float] = time.time, max_body_bytes: int | None = None) -> TestClient:
    """A TestClient on the receiver app mounted at ``/waslah``, as the api-server mounts it."""
    from fastapi import FastAPI

    kwargs: dict[str, Any] = {} if max_body_bytes is None else {"max_body_bytes": max_body_bytes}
    receiver = Receiver(
        secret_for=secrets({CONN_ID: SECRET, NO_SECRET_CONN_ID: None}),
        store=store if store is not None else FakeStore(),
        clock=clock,
        **kwargs,
    )
    root = FastAPI()
    root.mount("/waslah", create_app(receiver))
    return TestClient(root, raise_server_exceptions=False)


def url(conn_id: str = CONN_ID) -> str:
    """The route for ``conn_id``."""
    return f"/waslah/webhook/{conn_id}"
