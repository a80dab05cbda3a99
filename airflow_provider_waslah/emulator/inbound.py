"""Inbound messages: a customer writes in (``POST /_emulator/inbound``), ``message.received`` fires."""

from __future__ import annotations

from typing import Any

from airflow_provider_waslah.client import validation as v
from airflow_provider_waslah.emulator.body import FieldErrors, require_object
from airflow_provider_waslah.emulator.defaults import DEFAULT_INSTANCE_KEY
from airflow_provider_waslah.emulator.entities import Message, iso
from airflow_provider_waslah.emulator.errors import EmulatorAPIError
from airflow_provider_waslah.emulator.webhooks import Webhooks


class Inbound(Webhooks):
    """Records messages customers send to an instance and notifies the instance's owner."""

    def inbound(self, data: object) -> dict[str, Any]:
        """A customer writes in (``POST /_emulator/inbound``): record it and fire ``message.received``."""
        data = require_object(data, "inbound message")
        errors = FieldErrors()
        with self.lock:
            instance = self.instances.get(data.get("instance_key") or DEFAULT_INSTANCE_KEY)
            if instance is None:
                raise EmulatorAPIError(
                    404, "instance_not_found", f"Instance `{data.get('instance_key')}` tidak ditemukan."
                )
            sender = None
            if data.get("from") is not None:
                sender = errors.run(v.normalize_recipient, data["from"], "from")
            remote_jid = data.get("remote_jid")
            if remote_jid is not None:
                remote_jid = errors.run(v.normalize_recipient, remote_jid, "remote_jid")
            elif sender is None:
                errors.add("from", "is required")
            body_text = errors.run(v.check_text, data.get("body", ""), "body", v.MAX_TEXT, False)
            errors.raise_if_any()
            if remote_jid is None:
                if data.get("lid"):
                    lid = str(self.rng.randint(10**14, 10**15 - 1))
                    remote_jid = f"{lid}@lid"
                else:
                    remote_jid = f"{sender}@s.whatsapp.net" if "@" not in str(sender) else str(sender)
            if sender is None:
                sender = str(remote_jid).split("@", 1)[0]
            now = self.clock()
            message = Message(
                id=self._take_message_id(),
                user_id=instance.user_id,
                instance_key=instance.key,
                direction="inbound",
                message_type=str(data.get("message_type", "text")),
                to=instance.phone_number or instance.key,
                phone_number=str(sender).split("@", 1)[0],
                remote_jid=str(remote_jid),
                body=body_text,
                created_at=now,
                transitions=[],
                received_at=now,
                provider_message_id=self._provider_message_id("3EB0", 16),
            )
            self.messages[message.id] = message
            self.enqueue_event(
                instance.user_id,
                "message.received",
                {
                    "message_id": message.id,
                    "instance_key": instance.key,
                    "from": message.phone_number,
                    "remote_jid": message.remote_jid,
                    "body": message.body,
                    "message_type": message.message_type,
                    "received_at": iso(now),
                },
            )
            return message.to_api(now)
