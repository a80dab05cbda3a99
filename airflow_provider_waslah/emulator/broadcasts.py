"""Broadcasts: ``POST /messages/bulk`` queues one message per recipient, paced by a random delay."""

from __future__ import annotations

from typing import Any

from airflow_provider_waslah.client import validation as v
from airflow_provider_waslah.emulator.body import FieldErrors
from airflow_provider_waslah.emulator.entities import AuthContext, Broadcast, iso
from airflow_provider_waslah.emulator.errors import EmulatorAPIError
from airflow_provider_waslah.emulator.messaging import Messaging

MAX_BROADCASTS_LISTED = 50


def _check_recipients(errors: FieldErrors, recipients: object) -> list[Any] | None:
    """The ``recipients`` array: present, a list, 1 to ``MAX_BROADCAST_RECIPIENTS`` items (numbers unchecked)."""
    if recipients is None:
        errors.add("recipients", "is required")
    elif not isinstance(recipients, list):
        errors.add("recipients", f"must be an array, got {type(recipients).__name__}")
    elif not recipients:
        errors.add("recipients", "is required")
    elif len(recipients) > v.MAX_BROADCAST_RECIPIENTS:
        errors.add(
            "recipients",
            f"must not have more than {v.MAX_BROADCAST_RECIPIENTS} items, got {len(recipients)}",
        )
    else:
        return recipients
    return None


def _check_delays(errors: FieldErrors, low_raw: object, high_raw: object) -> tuple[int, int] | None:
    """``(delay_min_sec, delay_max_sec)`` between messages; defaults 3 and ``max(8, min)``."""
    delays = errors.run(v.check_delays, low_raw, None)
    if delays is None:
        return None
    low = delays[0] if delays[0] is not None else 3
    default_high = max(8, low)
    delays = errors.run(v.check_delays, low, high_raw if high_raw is not None else default_high)
    if delays is None:
        return None
    return int(delays[0] or 0), int(delays[1] or 0)


class Broadcasts(Messaging):
    """Bulk sends and their progress, counted from the status of their messages."""

    def _broadcast_api(self, broadcast: Broadcast, origin: str, now: float) -> dict[str, Any]:
        """The broadcast as ``GET /broadcasts/{id}`` shows it at ``now`` (counts from its messages)."""
        messages = [self.messages[i] for i in broadcast.message_ids]
        statuses = [m.status_at(now) for m in messages]
        failed = statuses.count("failed")
        sent = sum(1 for s in statuses if s in ("sent", "delivered", "read"))
        total = len(messages)
        pending = total - sent - failed
        completed_at = None
        if pending == 0:
            status = "failed" if failed == total else "completed"
            completed_at = max(m.final_at() for m in messages)
        elif now < broadcast.start_at:
            status = "queued"
        else:
            status = "processing"
        return {
            "id": broadcast.id,
            "name": broadcast.name,
            "message_type": broadcast.message_type,
            "instance_key": broadcast.instance_key,
            "status": status,
            "total": total,
            "sent": sent,
            "failed": failed,
            "pending": pending,
            "progress_percent": (sent + failed) * 100 // total if total else 100,
            "delay_min_sec": broadcast.delay_min_sec,
            "delay_max_sec": broadcast.delay_max_sec,
            "delay_label": broadcast.delay_label,
            "created_at": iso(broadcast.created_at),
            "completed_at": iso(completed_at),
            "check_status_url": f"{origin}/api/v1/broadcasts/{broadcast.id}",
        }

    def list_broadcasts(self, ctx: AuthContext, origin: str) -> list[dict[str, Any]]:
        """``GET /broadcasts``: the user's last 50, newest first."""
        with self.lock:
            now = self.clock()
            mine = [b for b in self.broadcasts.values() if b.user_id == ctx.user.id]
            mine.sort(key=lambda b: b.id, reverse=True)
            return [self._broadcast_api(b, origin, now) for b in mine[:MAX_BROADCASTS_LISTED]]

    def get_broadcast(self, ctx: AuthContext, raw_id: str, origin: str) -> dict[str, Any]:
        """``GET /broadcasts/{id}``."""
        with self.lock:
            broadcast = self.broadcasts.get(int(raw_id)) if raw_id.isdigit() else None
            if broadcast is None or broadcast.user_id != ctx.user.id:
                raise EmulatorAPIError(
                    404, "not_found", f"Broadcast dengan ID `{raw_id}` tidak ditemukan atau bukan milik Anda."
                )
            return self._broadcast_api(broadcast, origin, self.clock())

    def send_bulk(self, ctx: AuthContext, body: dict[str, Any], origin: str) -> dict[str, Any]:
        """``POST /messages/bulk``: one broadcast record plus one message per valid, unique recipient."""
        errors = FieldErrors()
        with self.lock:
            instance_key = errors.required(body, "instance_key", v.check_instance_key)
            recipients = _check_recipients(errors, body.get("recipients"))
            name = errors.run(v.check_text, body.get("name"), "name", v.MAX_BROADCAST_NAME, False)
            message_type = body.get("type")
            errors.media_type(message_type, v.BROADCAST_TYPES)
            text = url = None
            if message_type == "text":
                text = errors.run(v.check_text, body.get("text"), "text")
            elif message_type in v.MEDIA_TYPES:
                url = errors.media_url(body, origin)
            caption, filename, mimetype = errors.media_extras(body)
            delays = _check_delays(errors, body.get("delay_min_sec"), body.get("delay_max_sec"))
            errors.raise_if_any()
            assert delays is not None and recipients is not None and isinstance(message_type, str)
            low_delay, high_delay = delays
            instance = self.connected_instance(ctx, instance_key)
            valid, _invalid = v.normalize_recipients(recipients)
            if not valid:
                raise EmulatorAPIError(
                    422, "no_valid_recipients", "Tidak ada nomor valid (minimal 8 digit, max 15 digit)."
                )
            now = self.clock()
            scale = self.config["time_scale"]
            start_at = now + self.config["lifecycle"].get("broadcast_start", 1.0) * scale
            broadcast = Broadcast(
                id=self._next_broadcast_id,
                user_id=ctx.user.id,
                name=name,
                message_type=message_type,
                instance_key=instance.key,
                delay_min_sec=low_delay,
                delay_max_sec=high_delay,
                created_at=now,
                start_at=start_at,
                message_ids=[],
            )
            self._next_broadcast_id += 1
            mime = self.media_mime(url, mimetype, origin) if url else None
            dispatch = start_at
            for index, recipient in enumerate(valid):
                if index:
                    dispatch += self.rng.uniform(low_delay, high_delay) * scale
                message = self.new_message(
                    ctx,
                    instance,
                    recipient,
                    message_type,
                    dispatch,
                    body=text if message_type == "text" else caption,
                    media_url=url,
                    filename=filename,
                    mime_type=mime,
                    caption=caption,
                    broadcast_id=broadcast.id,
                )
                broadcast.message_ids.append(message.id)
            self.broadcasts[broadcast.id] = broadcast
            return self._broadcast_api(broadcast, origin, now)
