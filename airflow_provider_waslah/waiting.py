"""When is a wait over? One set of rules for sensors, triggers and the operators' ``wait_for``.

Each check returns ``True`` (done), ``False`` (keep waiting) or raises a failure that Airflow
does not retry (:class:`AirflowFailException` subclasses): a message that Waslah marked
``failed`` will not succeed on a retry, and re-sending is the user's decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from airflow_provider_waslah._compat import AirflowFailException
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.models import Broadcast, Message
from airflow_provider_waslah.client.validation import MESSAGE_STATUSES

#: A message counts as done once sent, or any later status (the default target of sensors).
DEFAULT_MESSAGE_TARGETS: tuple[str, ...] = ("sent", "delivered", "read")


class WaslahMessageFailedError(AirflowFailException):
    """Waslah could not deliver a message; the text is Waslah's ``error_message``."""


class WaslahBroadcastFailedError(AirflowFailException):
    """A broadcast ended ``failed``, or more of it failed than ``max_failed_ratio`` allows."""


def check_target_statuses(target_statuses: Iterable[str] | str, field: str = "target_statuses") -> tuple[str, ...]:
    """Validate message target statuses (a status name or a list of them)."""
    values = (target_statuses,) if isinstance(target_statuses, str) else tuple(target_statuses)
    unknown = [value for value in values if value not in MESSAGE_STATUSES]
    if not values or unknown:
        raise WaslahInvalidInputError(
            field, f"must be a non-empty list of {', '.join(MESSAGE_STATUSES)}; got {list(values)!r}"
        )
    return values


def check_failed_ratio(value: float | None, field: str = "max_failed_ratio") -> float | None:
    """``max_failed_ratio`` is ``None`` or a number between 0 and 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise WaslahInvalidInputError(field, f"must be a number between 0 and 1, got {value!r}")
    return float(value)


def message_reached(message: Message, target_statuses: Sequence[str] = DEFAULT_MESSAGE_TARGETS) -> bool:
    """True when ``message`` is at one of ``target_statuses`` (or past it); raises when it failed.

    A target of ``sent`` is also met by ``delivered`` and ``read``, which can come faster than
    a poll.
    """
    if message.status in target_statuses:
        return True
    if message.is_failed:
        raise WaslahMessageFailedError(
            f"Waslah message {message.id} to {message.phone_number or message.remote_jid} failed: "
            f"{message.error_message or 'no reason given'}"
        )
    return any(message.has_reached(status) for status in target_statuses if status != "failed")


def broadcast_totals(broadcasts: Sequence[Broadcast]) -> dict[str, int]:
    """Counters summed over broadcasts (one entry per chunk of a large send)."""
    total = sum(b.total for b in broadcasts)
    sent = sum(b.sent for b in broadcasts)
    failed = sum(b.failed for b in broadcasts)
    return {
        "total": total,
        "sent": sent,
        "failed": failed,
        "pending": sum(b.pending for b in broadcasts),
        "progress_percent": (sent + failed) * 100 // total if total else 100,
    }


def progress_line(totals: dict[str, Any]) -> str:
    """Progress in words, e.g. ``66% - sent 32/50, failed 1``."""
    return f"{totals['progress_percent']}% - sent {totals['sent']}/{totals['total']}, failed {totals['failed']}"


def broadcasts_finished(broadcasts: Sequence[Broadcast], max_failed_ratio: float | None = None) -> bool:
    """True when every broadcast is ``completed``; raises if one ``failed`` or too many messages failed.

    The ratio is checked on the failures so far, so a broadcast that is already over budget
    fails the wait without waiting for the rest.
    """
    totals = broadcast_totals(broadcasts)
    if max_failed_ratio is not None and totals["total"] and totals["failed"] / totals["total"] > max_failed_ratio:
        raise WaslahBroadcastFailedError(
            f"{totals['failed']} of {totals['total']} broadcast messages failed "
            f"({totals['failed'] / totals['total']:.0%}), more than max_failed_ratio={max_failed_ratio:.0%}"
        )
    for broadcast in broadcasts:
        if broadcast.status == "failed":
            raise WaslahBroadcastFailedError(
                f"Waslah broadcast {broadcast.id} ({broadcast.name or 'unnamed'}) failed: {broadcast.progress_line}"
            )
    return all(broadcast.status == "completed" for broadcast in broadcasts)
