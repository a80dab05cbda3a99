"""The installed faults and which one a request hits (the middleware carries the fault out).

One random draw per request decides: the faults matching the request take consecutive slices
of ``[0, 1)`` as wide as their ``rate``, in the order they were added, so the rates of faults
on the same route add up (seven faults at rate 0.02 hit 14% of requests, 2% each). A fault at
rate 1 always fires while it lasts, so faults with a ``count`` queue up in order.
"""

from __future__ import annotations

import fnmatch
import random

from airflow_provider_waslah.emulator.records import Fault, FaultSpec

#: Wrong bodies a ``garbage`` fault can answer with, by name (``random`` picks one per hit).
GARBAGE_BODIES = ("html", "truncated", "wrong_shape", "empty")
_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Waslah</title></head>"
    b"<body><h1>Sedang dalam pemeliharaan</h1><p>Silakan coba beberapa saat lagi.</p></body></html>\n"
)
_WRONG_SHAPES = (b'{"status":"success","result":{"queued":true}}', b'["ok"]', b'{"ok":true,"data":"queued"}')


class FaultTable:
    """The installed faults, in order, and the random source that decides which one fires.

    Not thread-safe on its own: the backend calls it with its lock held.
    """

    def __init__(self, random_seed: int) -> None:
        self.faults: list[Fault] = []
        self.rng = random.Random(random_seed)
        self._next_id = 1

    def reseed(self, random_seed: int) -> None:
        """Restart the random choices from ``random_seed``."""
        self.rng = random.Random(random_seed)

    def clear(self) -> None:
        """Remove every fault (ids keep counting)."""
        self.faults.clear()

    def add(self, spec: FaultSpec) -> Fault:
        """Install a fault."""
        fault = Fault(id=self._next_id, spec=spec, remaining=spec.count)
        self._next_id += 1
        self.faults.append(fault)
        return fault

    def pick(self, method: str, path: str) -> Fault | None:
        """The fault that ``"METHOD /path"`` hits this time (counted, and removed once used up), if any."""
        target = f"{method.upper()} {path}"
        matching = [f for f in self.faults if fnmatch.fnmatchcase(target, f.spec.route)]
        if not matching:
            return None
        chosen = matching[0] if matching[0].spec.rate >= 1.0 else self._draw(matching)
        if chosen is None:
            return None
        chosen.hits += 1
        if chosen.remaining is not None:
            chosen.remaining -= 1
            if chosen.remaining <= 0:
                self.faults.remove(chosen)
        return chosen

    def _draw(self, matching: list[Fault]) -> Fault | None:
        draw = self.rng.random()
        edge = 0.0
        for fault in matching:
            edge += fault.spec.rate
            if draw < edge:
                return fault
        return None

    def garbage(self, spec: FaultSpec, body: bytes) -> tuple[bytes, bytes]:
        """``(content_type, content)`` a ``garbage`` fault answers instead of ``body``."""
        kind = self.rng.choice(GARBAGE_BODIES) if spec.body == "random" else spec.body
        if kind == "html":
            return b"text/html; charset=utf-8", _HTML
        if kind == "truncated":
            return b"application/json", body[: max(1, len(body) // 2)] if len(body) > 1 else b"{"
        if kind == "wrong_shape":
            return b"application/json", self.rng.choice(_WRONG_SHAPES)
        return b"application/json", b""
