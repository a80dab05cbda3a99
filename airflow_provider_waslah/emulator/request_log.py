"""The request log the control API serves (``GET /_emulator/requests``), capped at the newest entries."""

from __future__ import annotations

from typing import Any

from airflow_provider_waslah.emulator.core import StateCore

#: How many requests the log keeps (the oldest go first).
REQUEST_LOG_MAX = 5000


class RequestLog(StateCore):
    """Appending to and reading the request log the middleware writes."""

    def log_request(self, entry: dict[str, Any]) -> None:
        """Append to the request log."""
        with self.lock:
            self.request_log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first."""
        with self.lock:
            return list(self.request_log)
