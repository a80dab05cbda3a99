"""The emulator's state model: users, API keys, instances, messages, broadcasts, uploads, webhooks.

Plain Python objects behind one :class:`threading.RLock`, with the API's rules as methods that
raise :class:`~airflow_provider_waslah.emulator.errors.EmulatorAPIError`. Nothing here knows
about HTTP; ``app.py`` is a thin layer of routes over :class:`EmulatorState`.

:class:`EmulatorState` owns the lock, the clock and the seed (start, reset, live re-seeding);
the API's rules come from one part per concern, each in its own module over the shared
:class:`~airflow_provider_waslah.emulator.core.StateCore`:

* ``access.py``: authentication, rate limits, plan features and scopes;
* ``account.py``: ``GET /me`` and the caller's instances;
* ``messaging.py``: text, media and unified sends, ``GET /messages/{id}``, the ledger;
* ``broadcasts.py``: bulk sends and broadcast progress;
* ``uploads.py``: stored files;
* ``webhooks.py``: endpoints, event deliveries and retries, status-transition events;
* ``inbound.py``: messages customers send in;
* ``faults.py`` and ``request_log.py``: fault injection and the request log.

Time: every message stores the *real* (wall-clock) moments at which it reaches each status,
computed once at creation from the seed's ``lifecycle`` offsets (emulated seconds) times
``time_scale`` (real seconds per emulated second). Status is then a pure function of the clock
(moto-style, deterministic); a background ticker only fires webhooks for transitions.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from airflow_provider_waslah.emulator.body import require_object
from airflow_provider_waslah.emulator.broadcasts import Broadcasts
from airflow_provider_waslah.emulator.errors import validation_failed
from airflow_provider_waslah.emulator.faults import FaultInjection
from airflow_provider_waslah.emulator.inbound import Inbound
from airflow_provider_waslah.emulator.request_log import REQUEST_LOG_MAX, RequestLog
from airflow_provider_waslah.emulator.seed import DEFAULT_SEED, merge_seed, parse_seed, seed_form


class EmulatorState(Broadcasts, Inbound, FaultInjection, RequestLog):
    """Everything the emulator knows, behind one lock; the API's rules are its methods.

    :param seed: seed data merged over :data:`DEFAULT_SEED` (the state :meth:`reset` returns to).
    :param clock: the wall clock (``time.time``), replaceable in tests.
    """

    def __init__(self, seed: dict[str, Any] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.changed = threading.Condition(self.lock)
        self._initial_seed = merge_seed(copy.deepcopy(DEFAULT_SEED), seed or {})
        self.reset()

    @property
    def initial_seed(self) -> dict[str, Any]:
        """A copy of the seed :meth:`reset` returns to."""
        return copy.deepcopy(self._initial_seed)

    def reset(self) -> None:
        """Back to the seed the emulator started with; clears messages, faults, logs and windows."""
        with self.lock:
            self.users = {}
            self.api_keys = {}
            self.instances = {}
            self.messages = {}
            self.broadcasts = {}
            self.uploads = {}
            self.webhooks = {}
            self.faults = []
            self.deliveries = []
            self.request_log = deque(maxlen=REQUEST_LOG_MAX)
            self.windows = {}
            self.active_messages = set()
            self._next_message_id = 1
            self._next_broadcast_id = 1
            self._next_fault_id = 1
            self.config = {}
            self._apply(copy.deepcopy(self._initial_seed))
            self.rng = random.Random(self.config["random_seed"])
            self.changed.notify_all()

    def seed(self, data: object) -> dict[str, Any]:
        """Merge seed data into the live state (same id/key replaces); returns the summary."""
        data = require_object(data, "seed")
        with self.lock:
            current = self.current_seed()
            try:
                merged = merge_seed(current, data)
                self._apply(merged, keep_counters=True)
            except (KeyError, TypeError, ValueError) as exc:
                raise validation_failed({"seed": [f"Invalid seed: {exc!r}"]}) from None
            if "random_seed" in data:
                self.rng = random.Random(self.config["random_seed"])
            return self.summary()

    def current_seed(self) -> dict[str, Any]:
        """The live configuration in seed form."""
        with self.lock:
            return seed_form(self.config, self.users, self.api_keys, self.instances)

    def _apply(self, seed: dict[str, Any], keep_counters: bool = False) -> None:
        """Replace the configuration, users, keys and instances by the full ``seed``'s (all or nothing)."""
        world = parse_seed(
            seed,
            self.clock(),
            keys_before=self.api_keys if keep_counters else None,
            instances_before=self.instances if keep_counters else None,
        )
        self.config = world.config
        self.users, self.api_keys, self.instances = world.users, world.api_keys, world.instances

    def summary(self) -> dict[str, Any]:
        """A short description of the live state (no full API keys)."""
        with self.lock:
            return {
                "users": len(self.users),
                "api_keys": [k.prefix for k in self.api_keys.values()],
                "instances": {i.key: i.status for i in self.instances.values()},
                "time_scale": self.config["time_scale"],
                "rate_window_seconds": self.config["rate_window_seconds"],
                "messages": len(self.messages),
                "broadcasts": len(self.broadcasts),
            }
