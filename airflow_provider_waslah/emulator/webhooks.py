"""Webhooks: where a user's events go, the events the message life cycle fires, and their delivery log.

The background threads (``background.py``) drive this part: the ticker calls :meth:`Webhooks.tick`
at :meth:`Webhooks.next_tick_at`; the worker POSTs :meth:`Webhooks.due_deliveries` and reports
each attempt to :meth:`Webhooks.record_attempt`, which schedules retries with a scaled backoff.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from airflow_provider_waslah.emulator.access import AccessControl
from airflow_provider_waslah.emulator.body import FieldErrors, require_object
from airflow_provider_waslah.emulator.entities import Delivery, WebhookEndpoint, iso
from airflow_provider_waslah.emulator.errors import validation_failed
from airflow_provider_waslah.emulator.plans import WEBHOOK_FEATURE, plan_label


class Webhooks(AccessControl):
    """Webhook endpoints, event deliveries (with retries) and status-transition events."""

    def register_webhook(self, data: object) -> dict[str, Any]:
        """Register where a user's events go (``POST /_emulator/webhooks``)."""
        data = require_object(data, "webhook")
        errors = FieldErrors()
        errors.require(data, "url")
        errors.require(data, "secret")
        errors.raise_if_any()
        with self.lock:
            user_id = int(data.get("user_id") or next(iter(self.users), 1))
            if user_id not in self.users:
                raise validation_failed({"user_id": [f"Unknown user {user_id}."]})
            self.webhooks[user_id] = WebhookEndpoint(user_id=user_id, url=str(data["url"]), secret=str(data["secret"]))
            return {"user_id": user_id, "url": str(data["url"])}

    def enqueue_event(self, user_id: int, event: str, data: dict[str, Any]) -> Delivery | None:
        """Queue a webhook delivery of ``event`` for ``user_id`` (if registered and on the plan)."""
        with self.lock:
            endpoint = self.webhooks.get(user_id)
            user = self.users.get(user_id)
            if endpoint is None or user is None:
                return None
            now = self.clock()
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
            if not self.has_feature(user, WEBHOOK_FEATURE):
                delivery.status = "skipped"
                delivery.attempts.append({"attempt": 0, "error": f"plan {plan_label(user.plan)} has no webhooks"})
            self.deliveries.append(delivery)
            self.changed.notify_all()
            return delivery

    def tick(self) -> None:
        """Fire webhook events for every status transition reached since the last tick."""
        with self.lock:
            now = self.clock()
            for message_id in sorted(self.active_messages):
                message = self.messages.get(message_id)
                if message is None:
                    self.active_messages.discard(message_id)
                    continue
                reached = message.reached(now)
                for status, at in reached[message.notified :]:
                    event = "message.sent" if status == "sent" else "message.status"
                    self.enqueue_event(
                        message.user_id,
                        event,
                        {
                            "message_id": message.id,
                            "instance_key": message.instance_key,
                            "to": message.to,
                            "remote_jid": message.remote_jid,
                            "status": status,
                            "message_type": message.message_type,
                            "provider_message_id": message.provider_message_id if status != "failed" else None,
                            "error_message": message.error_message if status == "failed" else None,
                            "broadcast_id": message.broadcast_id,
                            "timestamp": iso(at),
                        },
                    )
                message.notified = len(reached)
                if message.notified >= len(message.transitions):
                    self.active_messages.discard(message_id)

    def next_tick_at(self) -> float | None:
        """The next real time at which some message changes status."""
        with self.lock:
            times = [
                message.transitions[message.notified][1]
                for mid in self.active_messages
                if (message := self.messages.get(mid)) is not None and message.notified < len(message.transitions)
            ]
            return min(times) if times else None

    def due_deliveries(self) -> list[Delivery]:
        """Deliveries whose next attempt is due now."""
        with self.lock:
            now = self.clock()
            return [d for d in self.deliveries if d.status == "pending" and d.next_attempt_at <= now]

    def next_delivery_at(self) -> float | None:
        """When the next pending delivery attempt is due."""
        with self.lock:
            times = [d.next_attempt_at for d in self.deliveries if d.status == "pending"]
            return min(times) if times else None

    def record_attempt(self, delivery: Delivery, status_code: int | None, error: str | None) -> None:
        """Note one delivery attempt and schedule a retry (scaled backoff) or settle it."""
        with self.lock:
            now = self.clock()
            delivery.attempts.append(
                {"attempt": len(delivery.attempts) + 1, "status_code": status_code, "error": error, "at": iso(now)}
            )
            if status_code is not None and 200 <= status_code < 300:
                delivery.status = "delivered"
                delivery.delivered_at = now
            elif len(delivery.attempts) >= int(self.config["webhook_max_attempts"]):
                delivery.status = "failed"
            else:
                backoff = float(self.config["webhook_backoff"]) * 2 ** (len(delivery.attempts) - 1)
                delivery.next_attempt_at = now + backoff * self.config["time_scale"]
            self.changed.notify_all()

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """The delivery log."""
        with self.lock:
            return [d.to_api() for d in self.deliveries]
