"""WhatsApp answers to Airflow's human-in-the-loop questions (docs/hitl.md).

In a DAG: put :func:`whatsapp_user` entries in a HITL operator's ``assigned_users`` and a
:class:`WaslahHITLNotifier` in its ``notifiers``; the webhook receiver turns the replies into answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_waslah.hitl.text import short_code, whatsapp_identity, whatsapp_user

if TYPE_CHECKING:
    from airflow_provider_waslah.hitl.notifier import WaslahHITLNotifier


def __getattr__(name: str) -> Any:
    # The notifier imports the Task SDK and the hook; the text helpers alone stay light.
    if name == "WaslahHITLNotifier":
        from airflow_provider_waslah.hitl.notifier import WaslahHITLNotifier

        return WaslahHITLNotifier
    raise AttributeError(name)


__all__ = ["WaslahHITLNotifier", "short_code", "whatsapp_identity", "whatsapp_user"]
