"""Helpers shared by the benchmarks: an emulator in its own process on 127.0.0.1, and its request log.

The emulator runs as a separate process (``python -m airflow_provider_waslah.emulator``), as the
real Waslah would, so its work does not compete with the client for this process's GIL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from airflow_provider_waslah.emulator.handle import EmulatorHandle
from airflow_provider_waslah.emulator.process import emulator_process


@contextlib.contextmanager
def emulator(**seed: Any) -> Iterator[EmulatorHandle]:
    """Start the emulator CLI on a free port (50x faster than real time), seed it, yield a handle."""
    with emulator_process("--time-scale", "0.02", seed=seed) as handle:
        yield handle


def api_log(handle: EmulatorHandle, key_prefix: str | None = None) -> list[dict[str, Any]]:
    """API requests in the emulator's log (control calls are not logged), optionally for one key."""
    return [r for r in handle.requests() if key_prefix is None or r.get("api_key_prefix") == key_prefix]
