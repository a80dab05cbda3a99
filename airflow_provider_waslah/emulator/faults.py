"""Fault injection: failures the control API installs for matching requests (``POST /_emulator/faults``)."""

from __future__ import annotations

import fnmatch
from typing import Any

from airflow_provider_waslah.emulator.body import require_object
from airflow_provider_waslah.emulator.core import StateCore
from airflow_provider_waslah.emulator.entities import Fault
from airflow_provider_waslah.emulator.errors import validation_failed


class FaultInjection(StateCore):
    """The installed faults and which one a request triggers."""

    def add_fault(self, data: object) -> dict[str, Any]:
        """Install a fault (``POST /_emulator/faults``)."""
        data = require_object(data, "fault")
        allowed = {"route", "status", "rate", "count", "latency", "drop_connection", "lose_response"}
        allowed |= {"error", "message"}
        unknown = set(data) - allowed
        if unknown:
            raise validation_failed({key: [f"Unknown fault field `{key}`."] for key in sorted(unknown)})
        try:
            status = data.get("status", 500)
            fault = Fault(
                id=0,
                route=str(data.get("route", "*")),
                status=None if status is None else int(status),
                rate=float(data.get("rate", 1.0)),
                count=None if data.get("count") is None else int(data["count"]),
                latency=float(data.get("latency", 0.0)),
                drop_connection=bool(data.get("drop_connection", False)),
                lose_response=bool(data.get("lose_response", False)),
                error=None if data.get("error") is None else str(data["error"]),
                message=None if data.get("message") is None else str(data["message"]),
            )
        except (TypeError, ValueError) as exc:
            raise validation_failed({"fault": [f"Invalid fault: {exc}"]}) from None
        with self.lock:
            fault.id = self._next_fault_id
            self._next_fault_id += 1
            self.faults.append(fault)
            return fault.to_api()

    def list_faults(self) -> list[dict[str, Any]]:
        """The installed faults (``GET /_emulator/faults``)."""
        with self.lock:
            return [f.to_api() for f in self.faults]

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self.lock:
            self.faults.clear()

    def pick_fault(self, method: str, path: str) -> Fault | None:
        """The first active fault matching ``"METHOD /path"`` that fires this time (uses up ``count``)."""
        target = f"{method.upper()} {path}"
        with self.lock:
            for fault in list(self.faults):
                if not fnmatch.fnmatchcase(target, fault.route):
                    continue
                if fault.rate < 1.0 and self.rng.random() >= fault.rate:
                    continue
                fault.hits += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                return fault
        return None
