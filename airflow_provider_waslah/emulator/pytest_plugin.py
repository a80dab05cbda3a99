"""Pytest fixtures for the Waslah emulator (registered as the ``waslah_emulator`` pytest11 plugin).

* ``waslah_emulator_server``: a session-wide :class:`EmulatorServer` on 127.0.0.1 (time scale
  0.02, i.e. 50x faster; 60 s rate windows).
* ``waslah_emulator``: per test, resets that server to its seed and returns an
  :class:`EmulatorHandle` (``base_url``, ``api_key``, ``instance_key``, ``seed()``,
  ``add_fault()``, ``ledger()``, ``api_requests()``, ``airflow_connection()``, ...).
* ``waslah_emulator_conn``: the same, with a fresh API key of its own (its own rate-limit
  budget) that Airflow's ``waslah_default`` connection uses for the test.

Imports stay light: FastAPI and uvicorn are imported inside the fixtures only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_waslah.emulator.handle import EmulatorHandle
    from airflow_provider_waslah.emulator.server import EmulatorServer

#: Time scale of the fixture's server: 50x faster than real time.
FIXTURE_TIME_SCALE = 0.02


@pytest.fixture(scope="session")
def waslah_emulator_server() -> Iterator[EmulatorServer]:
    """A running emulator for the whole session (reset it per test with ``waslah_emulator``)."""
    from airflow_provider_waslah.emulator.server import EmulatorServer

    with EmulatorServer(time_scale=FIXTURE_TIME_SCALE, rate_window_seconds=60) as server:
        yield server


@pytest.fixture
def waslah_emulator(waslah_emulator_server: EmulatorServer) -> EmulatorHandle:
    """The session's emulator, reset to the default seed, as an :class:`EmulatorHandle`."""
    handle = waslah_emulator_server.handle()
    handle.reset()
    return handle


@pytest.fixture
def waslah_emulator_conn(waslah_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    """The reset emulator with a fresh API key; ``AIRFLOW_CONN_WASLAH_DEFAULT`` points at it for the test.

    The client's rate limiter is shared per (base URL, key) in a process: a key per test keeps
    one test's request budget from slowing the next. Seed more with ``.seed(time_scale=...)``.
    """
    handle = waslah_emulator.new_key()
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", handle.airflow_connection())
    return handle
