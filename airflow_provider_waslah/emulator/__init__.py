"""A local emulator of the Waslah REST API (what moto is to AWS).

``create_app()`` builds the ASGI app (for ``httpx.ASGITransport``), :class:`EmulatorServer` runs
it with uvicorn on 127.0.0.1, :class:`EmulatorHandle` drives its control API. Everything is
imported lazily: the pytest plugin loads this package in every test session, before any
``conftest.py`` sets up Airflow, so importing it must not import Airflow, FastAPI or uvicorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_waslah.emulator.defaults import DEFAULT_API_KEY, DEFAULT_INSTANCE_KEY

if TYPE_CHECKING:
    from airflow_provider_waslah.emulator.app import create_app
    from airflow_provider_waslah.emulator.handle import EmulatorHandle
    from airflow_provider_waslah.emulator.server import EmulatorServer

__all__ = ["DEFAULT_API_KEY", "DEFAULT_INSTANCE_KEY", "EmulatorHandle", "EmulatorServer", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from airflow_provider_waslah.emulator.app import create_app

        return create_app
    if name == "EmulatorServer":
        from airflow_provider_waslah.emulator.server import EmulatorServer

        return EmulatorServer
    if name == "EmulatorHandle":
        from airflow_provider_waslah.emulator.handle import EmulatorHandle

        return EmulatorHandle
    raise AttributeError(name)
