"""Fixtures shared by the client and hook tests: fresh rate limiters and clients on the emulator."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_waslah.client import ratelimit
from airflow_provider_waslah.client.client import AsyncWaslahClient, WaslahClient


@pytest.fixture(autouse=True)
def fresh_limiters() -> Iterator[None]:
    """Each test starts with no shared limiter, so budgets and windows never leak between tests."""
    saved = dict(ratelimit._registry)
    ratelimit._registry.clear()
    yield
    ratelimit._registry.clear()
    ratelimit._registry.update(saved)


def fast(client: Any, **settings: Any) -> Any:
    """Shrink the client's backoff so retry tests run in milliseconds (the rules stay the same)."""
    defaults = {"backoff_base": 0.01, "backoff_max": 0.05}
    client.settings = dataclasses.replace(client.settings, **{**defaults, **settings})
    return client


@pytest.fixture
def client(waslah_emulator: Any) -> Iterator[WaslahClient]:
    """A sync client on the emulator over real HTTP (127.0.0.1), with fast backoff."""
    with WaslahClient(api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url) as made:
        yield fast(made)


@pytest.fixture
async def aclient(waslah_emulator: Any) -> Any:
    """An async client on the emulator over real HTTP, with fast backoff."""
    async with AsyncWaslahClient(api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url) as made:
        yield fast(made)


def api_requests(emulator: Any, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
    """The emulator's log of API requests (control calls excluded), filtered by method and path."""
    return [
        entry
        for entry in emulator.requests()
        if (method is None or entry["method"] == method) and (path is None or entry["path"] == path)
    ]
