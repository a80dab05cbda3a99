"""Background threads of the emulator: a ticker that turns status transitions into webhook events,
and a worker that POSTs webhook deliveries (signed with :func:`webhooks.signed_headers`) and
retries failed ones with a scaled exponential backoff.
"""

from __future__ import annotations

import threading
import time

from airflow_provider_waslah.emulator.backend import WaslahBackend
from airflow_provider_waslah.emulator.records import Delivery
from airflow_provider_waslah.webhooks import signed_headers

_MAX_SLEEP = 0.25


class BackgroundWorkers:
    """The ticker and webhook-delivery threads of one :class:`WaslahBackend` (idempotent start/stop)."""

    def __init__(self, backend: WaslahBackend) -> None:
        self.backend = backend
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the threads are running."""
        return bool(self._threads) and not self._stop.is_set()

    def start(self) -> None:
        """Start both threads (no-op if already running)."""
        with self._start_lock:
            if self.running:
                return
            self._stop.clear()
            self._threads = [
                threading.Thread(target=self._tick_loop, name="waslah-emulator-ticker", daemon=True),
                threading.Thread(target=self._delivery_loop, name="waslah-emulator-webhooks", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads and wait for them."""
        with self._start_lock:
            self._stop.set()
            with self.backend.changed:
                self.backend.changed.notify_all()
            for thread in self._threads:
                thread.join(timeout)
            self._threads = []

    def _wait(self, until: float | None) -> None:
        now = self.backend.clock()
        delay = _MAX_SLEEP if until is None else min(_MAX_SLEEP, max(0.0, until - now))
        with self.backend.changed:
            if not self._stop.is_set():
                self.backend.changed.wait(delay)

    def _tick_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.backend.tick()
            except Exception:  # pragma: no cover - keep ticking whatever happens
                time.sleep(0.05)
            self._wait(self.backend.next_tick_at())

    def _delivery_loop(self) -> None:
        import httpx  # the worker is the only HTTP client in the emulator

        with httpx.Client() as client:
            while not self._stop.is_set():
                due = self.backend.due_deliveries()
                for delivery in due:
                    if self._stop.is_set():
                        return
                    self._deliver(client, delivery)
                if not due:
                    self._wait(self.backend.next_delivery_at())

    def _deliver(self, client: object, delivery: Delivery) -> None:
        import httpx

        assert isinstance(client, httpx.Client)
        headers = signed_headers(delivery.secret, delivery.body, event=delivery.event, event_id=delivery.event_id)
        try:
            timeout = self.backend.settings.webhook_timeout
            response = client.post(delivery.url, content=delivery.body, headers=headers, timeout=timeout)
        except Exception as exc:  # any failure (transport, a URL httpx refuses) is this attempt's failure
            self.backend.record_attempt(delivery, None, f"{type(exc).__name__}: {exc}")
            return
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        self.backend.record_attempt(delivery, response.status_code, error)
