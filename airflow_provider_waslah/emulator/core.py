"""What every part of the emulator's state shares: the lock, the clock and the records.

:class:`StateCore` only declares the shared attributes; :class:`~.state.EmulatorState` sets them
(``reset``) and the parts (``access.py``, ``messaging.py``, ...) add the API's rules as methods.
Every method that reads or writes a record holds :attr:`StateCore.lock` (re-entrant, so parts
calling each other is safe).
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from airflow_provider_waslah.emulator.entities import (
    ApiKey,
    Broadcast,
    Delivery,
    Fault,
    Instance,
    Message,
    RateWindow,
    Upload,
    User,
    WebhookEndpoint,
)


class StateCore:
    """The shared data of the emulator's state (declarations only)."""

    #: Guards every record below.
    lock: threading.RLock
    #: Notified (under ``lock``) when something the background threads wait for changes.
    changed: threading.Condition
    #: The wall clock (``time.time``), replaceable in tests.
    clock: Callable[[], float]
    #: The live settings parsed from the seed (``time_scale``, ``lifecycle``, plan tables, ...).
    config: dict[str, Any]
    #: The emulator's seeded RNG (provider message ids, broadcast delays, fault rates).
    rng: random.Random

    users: dict[int, User]
    api_keys: dict[str, ApiKey]
    instances: dict[str, Instance]
    windows: dict[str, RateWindow]
    messages: dict[int, Message]
    #: Messages with status transitions not yet turned into webhook events.
    active_messages: set[int]
    broadcasts: dict[int, Broadcast]
    uploads: dict[str, Upload]
    webhooks: dict[int, WebhookEndpoint]
    deliveries: list[Delivery]
    faults: list[Fault]
    request_log: deque[dict[str, Any]]

    _next_message_id: int
    _next_broadcast_id: int
    _next_fault_id: int

    def _take_message_id(self) -> int:
        """The id of the next message (inbound or outbound); call with the lock held."""
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def _provider_message_id(self, prefix: str, digits: int) -> str:
        """A WhatsApp-like message id: ``prefix`` and ``digits`` random hex digits (from :attr:`rng`)."""
        return prefix + "".join(self.rng.choice("0123456789ABCDEF") for _ in range(digits))
