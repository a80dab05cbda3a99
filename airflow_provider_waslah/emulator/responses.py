"""The API's JSON, built from the backend's records: replies of the REST and control APIs, webhook events.

Each function returns the ``data`` part of an answer (the routes wrap it in ``{"ok": true, ...}``).
``origin`` is the emulator's own origin (``http://127.0.0.1:8787``), never taken from a request header.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from typing import Any

from airflow_provider_waslah.emulator.records import (
    Attempt,
    BroadcastProgress,
    Caller,
    Delivery,
    Fault,
    Instance,
    LoggedRequest,
    Message,
    Summary,
    Upload,
    WebhookEndpoint,
)
from airflow_provider_waslah.emulator.settings import Seed


def iso(ts: float | None) -> str | None:
    """A Unix timestamp as ISO 8601 with offset, e.g. ``2026-05-11T17:24:02+00:00``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _iso_datetime(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _preview(text: str) -> str:
    """Laravel's ``Str::limit($text, 20)``."""
    return text if len(text) <= 20 else text[:20].rstrip() + "..."


# ---------------------------------------------------------------- REST API


def me_json(caller: Caller) -> dict[str, Any]:
    """``GET /me``."""
    key = caller.key
    return {
        "user": {"id": caller.user.id, "name": caller.user.name, "email": caller.user.email},
        "api_key": {
            "id": key.id,
            "name": key.name,
            "prefix": key.prefix,
            "scopes": list(key.scopes),
            "request_count": key.request_count,
            "last_used_at": iso(key.last_used_at),
            "expires_at": iso(key.expires_at),
        },
    }


def instance_json(instance: Instance, now: float) -> dict[str, Any]:
    """An instance as ``GET /instances`` shows it."""
    return {
        "id": instance.id,
        "key": instance.key,
        "name": instance.name,
        "status": instance.status,
        "phone_number": instance.phone_number,
        "connected_at": iso(instance.connected_at),
        "last_seen_at": iso(now if instance.status == "connected" else instance.disconnected_at),
        "created_at": iso(instance.created_at),
        "disconnected_at": iso(instance.disconnected_at),
    }


def receipt_json(message: Message, origin: str) -> dict[str, Any]:
    """The 202 receipt of a single send: a text's ``preview``, or a media's ``type``, ``media_url``, ``caption``."""
    if message.message_type == "text":
        details: dict[str, Any] = {"preview": _preview(message.body or "")}
    else:
        details = {"type": message.message_type, "media_url": message.media_url, "caption": message.caption}
    return {
        "id": message.id,
        "status": "pending",
        "instance_key": message.instance_key,
        "to": message.to,
        **details,
        "scheduled_at": _iso_datetime(message.scheduled_at),
        "check_status_url": f"{origin}/api/v1/messages/{message.id}",
        "created_at": iso(message.created_at),
    }


def message_json(message: Message, now: float) -> dict[str, Any]:
    """A message as ``GET /messages/{id}`` shows it at ``now``."""
    done = message.reached(now)
    status = message.status_at(now)
    return {
        "id": message.id,
        "instance_key": message.instance_key,
        "direction": message.direction,
        "status": status,
        "message_type": message.message_type,
        "phone_number": message.phone_number,
        "remote_jid": message.remote_jid,
        "body": message.body,
        "media_url": message.media_url,
        "media_filename": message.media_filename,
        "media_mime_type": message.media_mime_type,
        "provider_message_id": message.provider_message_id if status not in ("pending", "failed") else None,
        "error_message": message.error_message if status == "failed" else None,
        "sent_at": iso(message.time_of("sent", now)),
        "received_at": iso(message.received_at),
        "scheduled_at": _iso_datetime(message.scheduled_at),
        "created_at": iso(message.created_at),
        "updated_at": iso(done[-1][1] if done else message.created_at),
        "broadcast_id": message.broadcast_id,
    }


def broadcast_json(progress: BroadcastProgress, origin: str) -> dict[str, Any]:
    """A broadcast and its counters, as ``POST /messages/bulk`` and ``GET /broadcasts`` show it."""
    broadcast = progress.broadcast
    if broadcast.delay_min_sec == broadcast.delay_max_sec:
        delay_label = f"{broadcast.delay_min_sec} detik (fixed)"
    else:
        delay_label = f"{broadcast.delay_min_sec}–{broadcast.delay_max_sec} detik"
    done = progress.sent + progress.failed
    return {
        "id": broadcast.id,
        "name": broadcast.name,
        "message_type": broadcast.message_type,
        "instance_key": broadcast.instance_key,
        "status": progress.status,
        "total": progress.total,
        "sent": progress.sent,
        "failed": progress.failed,
        "pending": progress.pending,
        "progress_percent": done * 100 // progress.total if progress.total else 100,
        "delay_min_sec": broadcast.delay_min_sec,
        "delay_max_sec": broadcast.delay_max_sec,
        "delay_label": delay_label,
        "created_at": iso(broadcast.created_at),
        "completed_at": iso(progress.completed_at),
        "check_status_url": f"{origin}/api/v1/broadcasts/{broadcast.id}",
    }


def upload_json(upload: Upload, origin: str) -> dict[str, Any]:
    """The 201 answer of ``POST /uploads``."""
    return {
        "url": f"{origin}/storage/{upload.path}",
        "path": upload.path,
        "filename": upload.filename,
        "size": len(upload.data),
        "mime_type": upload.mime_type,
        "type": upload.type,
    }


# ---------------------------------------------------------------- webhook events


def received_event(message: Message) -> dict[str, Any]:
    """The ``data`` of a ``message.received`` event."""
    return {
        "message_id": message.id,
        "instance_key": message.instance_key,
        "from": message.phone_number,
        "remote_jid": message.remote_jid,
        "body": message.body,
        "message_type": message.message_type,
        "received_at": iso(message.received_at),
    }


def status_event(message: Message, status: str, at: float) -> dict[str, Any]:
    """The ``data`` of a ``message.sent`` or ``message.status`` event for ``status`` reached at ``at``."""
    return {
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
    }


# ---------------------------------------------------------------- control API


def ledger_json(messages: list[Message], now: float) -> dict[str, list[dict[str, Any]]]:
    """Every outbound message per recipient (as sent), in order, with its current status."""
    result: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
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
                "scheduled_at": _iso_datetime(message.scheduled_at),
                "created_at": iso(message.created_at),
            }
        )
    return result


def fault_json(fault: Fault) -> dict[str, Any]:
    """A fault as the control API lists it (``count``: firings left, ``None`` for no limit)."""
    spec = fault.spec
    return {
        "id": fault.id,
        "kind": spec.kind,
        "route": spec.route,
        "status": spec.status,
        "rate": spec.rate,
        "count": fault.remaining,
        "latency": spec.latency,
        "answer_late": spec.answer_late,
        "drop_connection": spec.drop_connection,
        "lose_response": spec.lose_response,
        "garbage": spec.garbage,
        "body": spec.body if spec.garbage else None,
        "retry_after": spec.retry_after,
        "error": spec.error,
        "message": spec.message,
        "hits": fault.hits,
    }


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    if attempt.number == 0:
        return {"attempt": 0, "error": attempt.error}
    return {
        "attempt": attempt.number,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "at": iso(attempt.at),
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """A webhook delivery as ``GET /_emulator/webhook-deliveries`` shows it."""
    return {
        "event_id": delivery.event_id,
        "event": delivery.event,
        "url": delivery.url,
        "user_id": delivery.user_id,
        "status": delivery.status,
        "attempt_count": len(delivery.attempts),
        "attempts": [_attempt_json(a) for a in delivery.attempts],
        "payload": json.loads(delivery.body),
        "created_at": iso(delivery.created_at),
        "delivered_at": iso(delivery.delivered_at),
    }


def webhook_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """A registered webhook endpoint (the secret is not shown)."""
    return {"user_id": endpoint.user_id, "url": endpoint.url}


def seed_json(seed: Seed, full_keys: bool = False) -> dict[str, Any]:
    """A seed as ``GET /_emulator/seed`` shows it (API keys by prefix unless ``full_keys``): postable back."""
    settings = seed.settings
    return {
        "time_scale": settings.time_scale,
        "rate_window_seconds": settings.rate_window_seconds,
        "rate_limit_reset_header_always": settings.rate_limit_reset_header_always,
        "random_seed": settings.random_seed,
        "webhook_max_attempts": settings.webhook_max_attempts,
        "webhook_timeout": settings.webhook_timeout,
        "webhook_backoff": settings.webhook_backoff,
        "unreachable": list(settings.unreachable),
        "plan_features": {feature: list(plans) for feature, plans in settings.plan_features.items()},
        "plan_limits": dict(settings.plan_limits),
        "lifecycle": dataclasses.asdict(settings.lifecycle),
        "users": [dataclasses.asdict(user) for user in seed.users],
        "api_keys": [
            {**dataclasses.asdict(key), "key": key.key if full_keys else key.key[:12], "scopes": list(key.scopes)}
            for key in seed.api_keys
        ],
        "instances": [dataclasses.asdict(instance) for instance in seed.instances],
    }


def summary_json(summary: Summary) -> dict[str, Any]:
    """What ``POST /_emulator/reset`` and ``POST /_emulator/seed`` answer."""
    return {
        "users": summary.users,
        "api_keys": list(summary.api_key_prefixes),
        "instances": dict(summary.instances),
        "time_scale": summary.time_scale,
        "rate_window_seconds": summary.rate_window_seconds,
        "messages": summary.messages,
        "broadcasts": summary.broadcasts,
    }


def request_json(entry: LoggedRequest) -> dict[str, Any]:
    """A request-log entry (``fault``: ``{"id", "kind"}`` of the fault that hit it, else ``None``)."""
    return {
        "method": entry.method,
        "path": entry.path,
        "query": entry.query,
        "status": entry.status,
        "time": datetime.fromtimestamp(entry.started, timezone.utc).isoformat(timespec="milliseconds"),
        "duration_ms": entry.duration_ms,
        "api_key_prefix": entry.api_key_prefix,
        "note": entry.note,
        "fault": {"id": entry.fault_id, "kind": entry.fault_kind} if entry.fault_id is not None else None,
    }
