"""The checkpoint protocol: which rows Waslah accepted, written as the batch goes, read by the next try.

A checkpoint is a sequence of JSON *parts* in a :class:`CheckpointStore` (``part-000001``,
``part-000002``, ...). Parts are only ever added, so each write is small (the rows of the last
few seconds) however large the batch. A part holds:

- ``reserved``: keys of rows about to be sent. Written *before* they are handed to the senders,
  so a worker that dies mid-send leaves them ``unknown`` (maybe sent), never "not sent";
- ``accepted``: ``[key, message_id, row]``: Waslah queued the row's message;
- ``failed``: ``[key, error, row]``: Waslah refused it (nothing was sent; a retry sends it again);
- ``unknown``: ``[key, reason, row]``: the answer was lost (it may have been sent);
- ``released``: keys reserved but never sent (the batch stopped first).

Reading the parts in order (:meth:`Checkpoint.load`) gives each key's last state: accepted rows
are never sent again; reserved or unknown rows are listed, not sent, unless forced; failed and
released rows are sent again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Keys a store holds, in order: ``part-000001``, ...
PART_PREFIX = "part-"
ACCEPTED, FAILED, UNKNOWN, RESERVED = "accepted", "failed", "unknown", "reserved"


class CheckpointStore(Protocol):
    """Where parts go: any JSON key-value store every try of the task instance can read.

    ``location`` says where, for logs and the XCom (e.g. ``task_state_store`` or an ``s3://`` path).
    """

    location: str

    def read(self, name: str) -> Any:
        """The JSON value stored under ``name``, or ``None``."""

    def write(self, name: str, value: Any) -> None:
        """Store ``value`` under ``name`` (replacing any)."""

    def delete(self, name: str) -> None:
        """Remove ``name`` (no error when missing)."""


def part_name(number: int) -> str:
    """``part-000012``."""
    return f"{PART_PREFIX}{number:06d}"


@dataclass
class RowState:
    """A key's last known state in the checkpoint."""

    status: str
    message_id: int | None = None
    detail: str | None = None
    row: int | None = None


@dataclass
class Resume:
    """What earlier tries left: every key's last state."""

    rows: dict[str, RowState] = field(default_factory=dict)
    parts: int = 0

    def state(self, key: str) -> RowState | None:
        """The key's state, ``None`` when no earlier try touched it (or it was released)."""
        return self.rows.get(key)

    def count(self, status: str) -> int:
        """How many keys are in ``status`` (``reserved`` counts as ``unknown``)."""
        wanted = {UNKNOWN, RESERVED} if status == UNKNOWN else {status}
        return sum(1 for state in self.rows.values() if state.status in wanted)

    def apply(self, part: dict[str, Any]) -> None:
        """Fold one part into the states (parts must be applied in order)."""
        for key in part.get("reserved", ()):
            current = self.rows.get(key)
            if current is None or current.status != ACCEPTED:
                self.rows[key] = RowState(RESERVED, detail="the try that sent it stopped before Waslah answered")
        for key, message_id, row in part.get("accepted", ()):
            self.rows[key] = RowState(ACCEPTED, message_id=message_id, row=row)
        for key, error, row in part.get("failed", ()):
            if self.rows.get(key, RowState(FAILED)).status != ACCEPTED:
                self.rows[key] = RowState(FAILED, detail=error, row=row)
        for key, reason, row in part.get("unknown", ()):
            if self.rows.get(key, RowState(UNKNOWN)).status != ACCEPTED:
                self.rows[key] = RowState(UNKNOWN, detail=reason, row=row)
        for key in part.get("released", ()):
            current = self.rows.get(key)
            if current is not None and current.status == RESERVED:
                del self.rows[key]


class Checkpoint:
    """Buffers row outcomes and writes them, with the next reservation, as one new part per write.

    :meth:`record` may be called from any thread; :meth:`reserve`, :meth:`flush` and
    :meth:`load` from one thread only (Airflow's task state store and Variables are not
    thread-safe in a worker).
    """

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self.parts = 0
        self._lock = threading.Lock()
        self._pending: dict[str, list[Any]] = {ACCEPTED: [], FAILED: [], UNKNOWN: [], "released": []}

    @property
    def location(self) -> str:
        """Where the parts are (the store's ``location``)."""
        return self.store.location

    def load(self) -> Resume:
        """Read every part written so far (by this try or earlier ones); later writes continue after them."""
        resume = Resume()
        while (part := self.store.read(part_name(resume.parts + 1))) is not None:
            resume.apply(part)
            resume.parts += 1
        self.parts = resume.parts
        return resume

    def record(self, status: str, key: str, row: int, value: Any = None) -> None:
        """Buffer one outcome: ``accepted`` with the message id, ``failed``/``unknown`` with the reason."""
        with self._lock:
            self._pending[status].append([key, value, row])

    def release(self, keys: Iterable[str]) -> None:
        """Buffer keys that were reserved but will not be sent by this try."""
        with self._lock:
            self._pending["released"].extend(keys)

    @property
    def pending(self) -> int:
        """Outcomes buffered and not yet written."""
        with self._lock:
            return sum(len(items) for items in self._pending.values())

    def reserve(self, keys: list[str]) -> None:
        """Write a part with every buffered outcome and ``keys`` as reserved, before those rows are sent."""
        self._write(keys)

    def flush(self) -> None:
        """Write the buffered outcomes, if any."""
        if self.pending:
            self._write([])

    def _write(self, reserved: list[str]) -> None:
        with self._lock:
            taken = self._pending
            self._pending = {name: [] for name in taken}
        part: dict[str, Any] = {name: items for name, items in taken.items() if items}
        if reserved:
            part["reserved"] = reserved
        try:
            self.store.write(part_name(self.parts + 1), part)
        except BaseException:
            with self._lock:  # put them back: a later write (the final flush) may still succeed
                for name, items in taken.items():
                    self._pending[name][:0] = items
            raise
        self.parts += 1

    def delete(self) -> None:
        """Remove every part (after a success, where the store keeps nothing on its own)."""
        for number in range(1, self.parts + 1):
            self.store.delete(part_name(number))
        self.parts = 0


def iter_results(store: CheckpointStore) -> Iterator[tuple[str, RowState]]:
    """Every row's last state in a checkpoint: ``(key, RowState)``, e.g. to export per-row results."""
    checkpoint = Checkpoint(store)
    yield from checkpoint.load().rows.items()
