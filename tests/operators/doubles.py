"""A hook double for fast operator tests (the slack provider's style): it records every call made.

It has the real hook's endpoint methods (they build the same validated :class:`Call`), but
``call`` answers from a function instead of the network.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.client import Endpoints
from airflow_provider_waslah.client.validation import check_media_url


class HookDouble(Endpoints):
    """Stands in for ``WaslahHook``: ``calls`` lists ``"METHOD /path"`` and ``bodies`` the JSON sent."""

    def __init__(self, answer: Callable[[Call[Any]], Any]) -> None:
        self.answer = answer
        self.calls: list[str] = []
        self.bodies: list[Any] = []
        self.client = SimpleNamespace(base_url="https://waslah.id/api/v1")

    def call(self, call: Call[Any]) -> Any:
        for field, url in call.media_urls:  # the real client's pre-flight check, before any request
            check_media_url(url, field, trusted_origin=self.client.base_url)
        self.calls.append(f"{call.method} {call.path}")
        self.bodies.append(call.json if call.json is not None else call.files)
        return call.parse(self.answer(call))


class FakeTI:
    """The task-instance attributes and XCom methods the operators use."""

    def __init__(self, dag_id: str = "d", task_id: str = "t", map_index: int = -1) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self.map_index = map_index
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int) -> Any:
        return self.xcoms.get(key)


def context(ti: FakeTI | None = None, run_id: str = "manual__1") -> Any:
    """A minimal task context."""
    return {"ti": ti or FakeTI(), "run_id": run_id}


def receipt(id: int = 1, to: str = "6281234567890", **extra: Any) -> dict[str, Any]:
    """A 202 answer's ``data`` for a send."""
    return {"id": id, "status": "pending", "to": to, "instance_key": "demo", **extra}


class Accessor:
    """``context["task_state_store"]`` in memory."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
