"""Webhook events on their way out: registered endpoints, the delivery log, retries with backoff.

The backend owns one :class:`WebhookOutbox` and calls it with its lock held; the background
worker (``background.py``) POSTs the due deliveries and reports each attempt back.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from airflow_provider_waslah.emulator.records import Attempt, Delivery, WebhookEndpoint


class WebhookOutbox:
    """Where each user's events go, and every event delivery with its attempts."""

    def __init__(self) -> None:
        self.endpoints: dict[int, WebhookEndpoint] = {}
        self.deliveries: list[Delivery] = []

    def clear(self) -> None:
        """Forget every endpoint and delivery."""
        self.endpoints.clear()
        self.deliveries.clear()

    def register(self, endpoint: WebhookEndpoint) -> None:
        """Where ``endpoint.user_id``'s events go from now on."""
        self.endpoints[endpoint.user_id] = endpoint

    def enqueue(self, user_id: int, event: str, data: dict[str, Any], now: float, skip_reason: str | None) -> None:
        """Queue ``event`` for the user's endpoint (if any); ``skip_reason`` records it as never sent."""
        endpoint = self.endpoints.get(user_id)
        if endpoint is None:
            return
        body = json.dumps(
            {"event": event, "timestamp": int(now), "data": data}, ensure_ascii=False, separators=(",", ":")
        ).encode()
        delivery = Delivery(
            event_id=str(uuid.uuid4()),
            event=event,
            url=endpoint.url,
            secret=endpoint.secret,
            user_id=user_id,
            body=body,
            created_at=now,
            next_attempt_at=now,
        )
        if skip_reason is not None:
            delivery.status = "skipped"
            delivery.attempts.append(Attempt(number=0, at=None, status_code=None, error=skip_reason))
        self.deliveries.append(delivery)

    def due(self, now: float) -> list[Delivery]:
        """Deliveries whose next attempt is due at ``now``."""
        return [d for d in self.deliveries if d.status == "pending" and d.next_attempt_at <= now]

    def next_attempt_at(self) -> float | None:
        """When the next pending attempt is due."""
        times = [d.next_attempt_at for d in self.deliveries if d.status == "pending"]
        return min(times) if times else None

    def record(
        self,
        delivery: Delivery,
        status_code: int | None,
        error: str | None,
        now: float,
        max_attempts: int,
        backoff: float,
    ) -> None:
        """Note one attempt; settle the delivery, or retry ``backoff * 2**(attempts - 1)`` seconds on."""
        delivery.attempts.append(
            Attempt(number=len(delivery.attempts) + 1, at=now, status_code=status_code, error=error)
        )
        if status_code is not None and 200 <= status_code < 300:
            delivery.status = "delivered"
            delivery.delivered_at = now
        elif len(delivery.attempts) >= max_attempts:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = now + backoff * 2 ** (len(delivery.attempts) - 1)
