"""Where checkpoints live in Airflow: stores every try of a task instance can read, on any worker.

What survives a retry in Airflow 3 (checked on 3.3.2): a new try starts with the task
instance's XComs cleared (the execution API hands the worker their keys to purge), so an XCom
cannot carry anything to the next try. The worker's local disk is not shared. What every worker
reaches is the metadata database, through the execution API:

- **the task state store** (Airflow 3.3+, ``context["task_state_store"]``): key-value JSON scoped
  to the task instance (DAG, run, task, map index), kept across tries, removed with the DAG run
  or after ``[state_store] default_retention_days`` (30), shown by the REST API under
  ``/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store``. Made for exactly this
  (Airflow's own ``ResumableJobMixin`` keeps job ids there). The default where it exists.
- **Variables** (every Airflow 3): global keys; the fallback on Airflow 3.1 and 3.2, under
  ``<namespace>__<16 hex digits of the task instance>__<name>``, removed when the task succeeds.
- **object storage** (``checkpoint_path="s3://bucket/prefix"``, any ``ObjectStoragePath``): for
  very large batches, or when other tasks should read the per-row results; files
  ``<path>/<dag_id>/<task_id>/<map_index>/<run_id>/<name>.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_waslah.batch.checkpoint import CheckpointStore

log = logging.getLogger(__name__)


def _task_identity(context: Mapping[str, Any]) -> tuple[str, str, str, int]:
    ti = context["ti"]
    map_index = ti.map_index if getattr(ti, "map_index", None) is not None else -1
    return str(ti.dag_id), str(ti.task_id), str(context["run_id"]), int(map_index)


class TaskStateStoreCheckpoint:
    """Parts in Airflow's task state store (3.3+), under ``<namespace>/<name>``."""

    def __init__(self, accessor: Any, namespace: str) -> None:
        self._accessor = accessor
        self.namespace = namespace
        self.location = f"task_state_store:{namespace}/"

    def read(self, name: str) -> Any:
        """The stored value, or ``None``."""
        return self._accessor.get(f"{self.namespace}/{name}")

    def write(self, name: str, value: Any) -> None:
        """Store ``value`` (JSON) under ``name``."""
        self._accessor.set(f"{self.namespace}/{name}", value)

    def delete(self, name: str) -> None:
        """Remove ``name``."""
        self._accessor.delete(f"{self.namespace}/{name}")


class VariableCheckpoint:
    """Parts as Airflow Variables ``<namespace>__<task instance digest>__<name>`` (any Airflow 3)."""

    def __init__(self, context: Mapping[str, Any], namespace: str) -> None:
        dag_id, task_id, run_id, map_index = _task_identity(context)
        digest = hashlib.sha256("\x1f".join((dag_id, task_id, run_id, str(map_index))).encode()).hexdigest()[:16]
        self._prefix = f"{namespace}__{digest}__"
        self._description = f"Waslah checkpoint of {dag_id}.{task_id}[{map_index}] in run {run_id}"
        self.location = f"variables:{self._prefix}*"

    def read(self, name: str) -> Any:
        """The stored value, or ``None``."""
        from airflow.sdk import Variable

        return Variable.get(self._prefix + name, default=None, deserialize_json=True)

    def write(self, name: str, value: Any) -> None:
        """Store ``value`` (JSON) under ``name``."""
        from airflow.sdk import Variable

        Variable.set(self._prefix + name, value, description=self._description, serialize_json=True)

    def delete(self, name: str) -> None:
        """Remove ``name``."""
        from airflow.sdk import Variable

        Variable.delete(self._prefix + name)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ObjectStorageCheckpoint:
    """Parts as JSON files under an ``ObjectStoragePath`` (``s3://``, ``gs://``, ``file://``, ...)."""

    def __init__(self, base: str, context: Mapping[str, Any]) -> None:
        from airflow.sdk import ObjectStoragePath

        dag_id, task_id, run_id, map_index = _task_identity(context)
        parts = (dag_id, task_id, str(map_index), run_id)
        self._root = ObjectStoragePath(base.rstrip("/")).joinpath(*(_UNSAFE.sub("_", part) for part in parts))
        self.location = str(self._root)

    def _path(self, name: str) -> Any:
        return self._root / f"{name}.json"

    def read(self, name: str) -> Any:
        """The stored value, or ``None``."""
        path = self._path(name)
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def write(self, name: str, value: Any) -> None:
        """Store ``value`` as ``<name>.json``."""
        self._root.mkdir(parents=True, exist_ok=True)
        self._path(name).write_text(json.dumps(value, ensure_ascii=False))

    def delete(self, name: str) -> None:
        """Remove ``<name>.json``."""
        path = self._path(name)
        if path.exists():
            path.unlink()


def checkpoint_store(context: Mapping[str, Any], namespace: str, path: str | None = None) -> CheckpointStore:
    """The store for this task instance: ``path`` if given, else the task state store, else Variables."""
    if path:
        return ObjectStorageCheckpoint(path, context)
    accessor = context.get("task_state_store")
    if accessor is not None:
        return TaskStateStoreCheckpoint(accessor, namespace)
    return VariableCheckpoint(context, namespace)


def keeps_itself(store: CheckpointStore) -> bool:
    """True when the store cleans up after itself (task state store, object storage lifecycle rules).

    Variables are global and never expire, so a checkpoint kept there is deleted on success.
    """
    return not isinstance(store, VariableCheckpoint)


#: The single-message operators' namespace in the task state store.
MESSAGE_NAMESPACE = "waslah_message"


class MessageCheckpoint:
    """What a single-message operator's earlier try sent, so a retry waits again instead of sending again.

    One key, ``waslah_message/sent``: ``{"state": "in_flight"}`` is written just before the send,
    ``{"state": "accepted", "result": <the XCom>}`` once Waslah queued it; a refused send deletes
    it. Kept in the task state store only (Airflow 3.3+): on older Airflow there is no checkpoint
    and a failure after the send fails the task without retrying, as before.
    """

    NAME = "sent"

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store

    @classmethod
    def open(cls, context: Mapping[str, Any]) -> MessageCheckpoint | None:
        """The checkpoint of this task instance, or ``None`` where Airflow has no task state store."""
        accessor = context.get("task_state_store")
        return None if accessor is None else cls(TaskStateStoreCheckpoint(accessor, MESSAGE_NAMESPACE))

    def earlier(self) -> dict[str, Any] | None:
        """What an earlier try left (``state`` ``in_flight`` or ``accepted`` with ``result``), if anything."""
        value = self.store.read(self.NAME)
        return value if isinstance(value, dict) else None

    def begin(self, to: str) -> None:
        """Just before the send: the message to ``to`` (masked) may be on its way."""
        self.store.write(self.NAME, {"state": "in_flight", "to": to})

    def accepted(self, result: dict[str, Any]) -> None:
        """Waslah queued it: ``result`` is the operator's XCom."""
        self.store.write(self.NAME, {"state": "accepted", "result": result})

    def forget(self) -> None:
        """Nothing to remember: refused, or the task is done."""
        self.store.delete(self.NAME)

    @property
    def location(self) -> str:
        """The key, for messages: ``task_state_store:waslah_message/sent``."""
        return f"{self.store.location}{self.NAME}"
