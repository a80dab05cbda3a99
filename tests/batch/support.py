"""Test doubles for the batch engine: an in-memory checkpoint store and a manual clock."""

from __future__ import annotations

import copy
import json
from typing import Any


class MemoryStore:
    """A :class:`~airflow_provider_waslah.batch.checkpoint.CheckpointStore` in a dict (values JSON round-tripped)."""

    location = "memory:"

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes: list[str] = []
        self.fail_writes = False

    def read(self, name: str) -> Any:
        return copy.deepcopy(self.values.get(name))

    def write(self, name: str, value: Any) -> None:
        if self.fail_writes:
            raise OSError("store down")
        self.values[name] = json.loads(json.dumps(value))
        self.writes.append(name)

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
