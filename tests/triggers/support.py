"""Helpers shared by the sensor and trigger tests: a fresh API key per test, sends, request counts."""

from __future__ import annotations

from typing import Any

from airflow_provider_waslah.client.client import WaslahClient
from airflow_provider_waslah.emulator import UNREACHABLE_NUMBER, EmulatorHandle

UNREACHABLE = UNREACHABLE_NUMBER
REACHABLE = "081234567890"


def client(emulator: EmulatorHandle) -> WaslahClient:
    """A sync client on the emulator (for arranging state: sends and broadcasts)."""
    return WaslahClient(api_key=emulator.api_key, base_url=emulator.base_url)


def send_text(emulator: EmulatorHandle, to: str = REACHABLE, text: str = "Halo") -> int:
    """Send a text through the emulator; return the message id."""
    with client(emulator) as waslah:
        return waslah.send_text(instance_key=emulator.instance_key, to=to, text=text).id


def send_bulk(emulator: EmulatorHandle, recipients: list[str], **kwargs: Any) -> int:
    """Start a broadcast; return its id."""
    kwargs.setdefault("delay_min_sec", 0)
    kwargs.setdefault("delay_max_sec", 1)
    with client(emulator) as waslah:
        return waslah.send_bulk(instance_key=emulator.instance_key, recipients=recipients, text="Promo", **kwargs).id


def api_requests(
    emulator: EmulatorHandle, method: str = "GET", contains: str = "", any_key: bool = False
) -> list[dict[str, Any]]:
    """Requests of the handle's key (any key's with ``any_key``) with ``contains`` in the path."""
    return emulator.api_requests(method, f"*{contains}*", key=None if any_key else emulator.api_key)
