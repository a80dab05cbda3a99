"""Helpers shared by the sensor and trigger tests: a fresh API key per test, sends, request counts."""

from __future__ import annotations

from typing import Any

from airflow_provider_waslah.client.client import WaslahClient
from airflow_provider_waslah.emulator import EmulatorHandle

UNREACHABLE = "6289991234567"
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
    """Request-log entries of the handle's key (or of any key: faults answer before auth) matching a path."""
    prefix = emulator.api_key[:12]
    return [
        entry
        for entry in emulator.requests()
        if entry["method"] == method
        and contains in entry["path"]
        and (any_key or entry.get("api_key_prefix") == prefix)
    ]
