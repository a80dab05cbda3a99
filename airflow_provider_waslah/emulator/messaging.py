"""Sending single messages (text, media, the unified endpoint), reading them back, and the ledger.

A message's status is a pure function of the clock: :meth:`Messaging.new_message` fixes, once,
the real time of each transition (``lifecycle`` offsets times ``time_scale``, see ``state.py``).
"""

from __future__ import annotations

import fnmatch
from datetime import datetime, timezone
from typing import Any

from airflow_provider_waslah.client import validation as v
from airflow_provider_waslah.emulator.access import AccessControl
from airflow_provider_waslah.emulator.account import Account
from airflow_provider_waslah.emulator.body import FieldErrors
from airflow_provider_waslah.emulator.entities import AuthContext, Instance, Message, iso
from airflow_provider_waslah.emulator.errors import EmulatorAPIError, validation_failed
from airflow_provider_waslah.emulator.plans import SCHEDULE_FEATURE
from airflow_provider_waslah.emulator.uploads import Uploads


def _preview(text: str) -> str:
    """Laravel's ``Str::limit($text, 20)``."""
    return text if len(text) <= 20 else text[:20].rstrip() + "..."


class Messaging(Account, AccessControl, Uploads):
    """Outbound messages: validation, gating, queueing, the message life cycle and the ledger."""

    def _is_unreachable(self, recipient: str) -> bool:
        number = recipient.split("@", 1)[0]
        patterns = self.config["unreachable"]
        return any(fnmatch.fnmatchcase(number, p) or fnmatch.fnmatchcase(recipient, p) for p in patterns)

    def new_message(
        self,
        ctx: AuthContext,
        instance: Instance,
        to: str,
        message_type: str,
        dispatch_at: float,
        *,
        body: str | None = None,
        media_url: str | None = None,
        filename: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
        scheduled_at: str | None = None,
        broadcast_id: int | None = None,
    ) -> Message:
        """Queue one outbound message dispatched at ``dispatch_at`` (real time); call with the lock held."""
        scale = self.config["time_scale"]
        life = self.config["lifecycle"]
        now = self.clock()
        if self._is_unreachable(to):
            transitions = [("failed", dispatch_at + life.get("sent", 1.0) * scale)]
            error_message = f"Nomor {to.split('@', 1)[0]} tidak terdaftar di WhatsApp"
        else:
            transitions = [
                (status, dispatch_at + life.get(status, default) * scale)
                for status, default in (("sent", 1.0), ("delivered", 3.0), ("read", 6.0))
            ]
            error_message = None
        if "@" in to:
            phone, remote_jid = to.split("@", 1)[0], to
        else:
            phone, remote_jid = to, f"{to}@s.whatsapp.net"
        message = Message(
            id=self._take_message_id(),
            user_id=ctx.user.id,
            instance_key=instance.key,
            direction="outbound",
            message_type=message_type,
            to=to,
            phone_number=phone,
            remote_jid=remote_jid,
            body=body,
            created_at=now,
            transitions=transitions,
            media_url=media_url,
            media_filename=filename,
            media_mime_type=mime_type,
            caption=caption,
            provider_message_id=self._provider_message_id("BAE5", 12),
            error_message=error_message,
            scheduled_at=scheduled_at,
            broadcast_id=broadcast_id,
        )
        self.messages[message.id] = message
        self.active_messages.add(message.id)
        self.changed.notify_all()
        return message

    def _dispatch_time(self, scheduled: datetime | None) -> float:
        now = self.clock()
        if scheduled is None:
            return now
        ahead = max(0.0, scheduled.timestamp() - now)
        return now + ahead * self.config["time_scale"]

    def _check_common(
        self, errors: FieldErrors, body: dict[str, Any]
    ) -> tuple[str | None, str | None, datetime | None]:
        instance_key = errors.required(body, "instance_key", v.check_instance_key)
        to = errors.required(body, "to", v.normalize_recipient, "to")
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        scheduled = errors.run(v.parse_scheduled_at, body.get("scheduled_at"), now)
        return instance_key, to, scheduled

    def _queue_single(
        self,
        ctx: AuthContext,
        instance_key: str | None,
        to: str,
        message_type: str,
        scheduled: datetime | None,
        **fields: Any,
    ) -> Message:
        """Gate (schedule feature, connected instance) and queue one validated single send."""
        if scheduled is not None:
            self.require_feature(ctx.user, SCHEDULE_FEATURE)
        instance = self.connected_instance(ctx, instance_key)
        return self.new_message(
            ctx,
            instance,
            to,
            message_type,
            self._dispatch_time(scheduled),
            scheduled_at=scheduled.isoformat() if scheduled else None,
            **fields,
        )

    @staticmethod
    def _receipt(message: Message, origin: str, **details: Any) -> dict[str, Any]:
        """The 202 receipt of a single send (``details`` go between ``to`` and ``scheduled_at``)."""
        return {
            "id": message.id,
            "status": "pending",
            "instance_key": message.instance_key,
            "to": message.to,
            **details,
            "scheduled_at": message.scheduled_at,
            "check_status_url": f"{origin}/api/v1/messages/{message.id}",
            "created_at": iso(message.created_at),
        }

    def send_text(self, ctx: AuthContext, body: dict[str, Any], origin: str) -> dict[str, Any]:
        """``POST /messages/text``: validate, gate, queue; returns the 202 receipt."""
        errors = FieldErrors()
        with self.lock:
            instance_key, to, scheduled = self._check_common(errors, body)
            text = errors.run(v.check_text, body.get("text"), "text")
            errors.raise_if_any()
            assert to is not None and text is not None
            message = self._queue_single(ctx, instance_key, to, "text", scheduled, body=text)
            return self._receipt(message, origin, preview=_preview(text))

    def send_media(
        self, ctx: AuthContext, body: dict[str, Any], origin: str, default_type: str | None = None
    ) -> dict[str, Any]:
        """``POST /messages/media`` (``default_type`` set by the unified endpoint)."""
        errors = FieldErrors()
        with self.lock:
            instance_key, to, scheduled = self._check_common(errors, body)
            media_type = body.get("type") if body.get("type") is not None else default_type
            errors.media_type(media_type)
            url = errors.media_url(body, origin)
            caption, filename, mimetype = errors.media_extras(body)
            errors.raise_if_any()
            assert to is not None and url is not None and isinstance(media_type, str)
            message = self._queue_single(
                ctx,
                instance_key,
                to,
                media_type,
                scheduled,
                body=caption,
                media_url=url,
                filename=filename,
                mime_type=self.media_mime(url, mimetype, origin),
                caption=caption,
            )
            return self._receipt(message, origin, type=media_type, media_url=url, caption=caption)

    def send_unified(self, ctx: AuthContext, body: dict[str, Any], origin: str) -> dict[str, Any]:
        """``POST /messages``: only text -> text; url, media_url or type -> media (default image)."""
        if any(body.get(k) is not None for k in ("url", "media_url", "type")):
            return self.send_media(ctx, body, origin, default_type="image")
        if body.get("text") is not None:
            return self.send_text(ctx, body, origin)
        raise validation_failed(
            {
                "text": ["The text field is required when none of url / media_url / type is present."],
                "url": ["The url field is required when text is not present."],
            }
        )

    def get_message(self, ctx: AuthContext, raw_id: str) -> dict[str, Any]:
        """``GET /messages/{id}``."""
        with self.lock:
            message = self.messages.get(int(raw_id)) if raw_id.isdigit() else None
            if message is None or message.user_id != ctx.user.id:
                raise EmulatorAPIError(
                    404, "not_found", f"Message dengan ID `{raw_id}` tidak ditemukan atau bukan milik Anda."
                )
            return message.to_api(self.clock())

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        """Every outbound message per recipient (as sent), with its current status."""
        with self.lock:
            now = self.clock()
            result: dict[str, list[dict[str, Any]]] = {}
            for message in self.messages.values():
                if message.direction != "outbound":
                    continue
                status = message.status_at(now)
                result.setdefault(message.to, []).append(
                    {
                        "message_id": message.id,
                        "type": message.message_type,
                        "text": message.body if message.message_type == "text" else None,
                        "media_url": message.media_url,
                        "filename": message.media_filename,
                        "caption": message.caption,
                        "status": status,
                        "error_message": message.error_message if status == "failed" else None,
                        "broadcast_id": message.broadcast_id,
                        "scheduled_at": message.scheduled_at,
                        "created_at": iso(message.created_at),
                    }
                )
            return result
