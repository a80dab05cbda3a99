"""A local emulator of the Waslah REST API (what moto is to AWS).

``create_app()`` builds the ASGI app (for ``httpx.ASGITransport``), :class:`EmulatorServer` runs
it with uvicorn on 127.0.0.1, :class:`EmulatorHandle` drives its control API. For tests:
:data:`UNREACHABLE_NUMBER` / :func:`unreachable_number` (numbers not on WhatsApp: sends to them
fail), :func:`wait_until`, :func:`emulator_process` and :func:`free_port`; the pytest plugin
adds the ``waslah_emulator`` and ``waslah_emulator_conn`` fixtures.

Layout (moto's): ``backend.py`` holds the state and Waslah's rules (:class:`WaslahBackend`,
typed arguments in, records out); ``parsing.py`` and ``control.py`` turn requests into its
arguments; ``responses.py`` turns its records into the API's JSON; ``app.py`` and
``control.py`` are the routes, ``middleware.py`` the faults and the request log.

Everything is imported lazily: the pytest plugin loads this package in every test session,
before any ``conftest.py`` sets up Airflow, so importing it must not import Airflow, FastAPI or
uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_waslah.emulator.defaults import (
    DEFAULT_API_KEY,
    DEFAULT_INSTANCE_KEY,
    UNREACHABLE_NUMBER,
    UNREACHABLE_PATTERN,
    unreachable_number,
)

if TYPE_CHECKING:
    from airflow_provider_waslah.emulator.app import create_app
    from airflow_provider_waslah.emulator.handle import EmulatorHandle, wait_until
    from airflow_provider_waslah.emulator.process import emulator_process, free_port
    from airflow_provider_waslah.emulator.server import EmulatorServer

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_INSTANCE_KEY",
    "UNREACHABLE_NUMBER",
    "UNREACHABLE_PATTERN",
    "EmulatorHandle",
    "EmulatorServer",
    "create_app",
    "emulator_process",
    "free_port",
    "unreachable_number",
    "wait_until",
]

#: Where each lazily imported name lives.
_LAZY = {
    "create_app": "app",
    "EmulatorServer": "server",
    "EmulatorHandle": "handle",
    "wait_until": "handle",
    "emulator_process": "process",
    "free_port": "process",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"airflow_provider_waslah.emulator.{module}"), name)
