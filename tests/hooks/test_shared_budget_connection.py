"""The ``rate_limit_storage`` connection extra: read by both hooks, checked, and never shown."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import airflow.sdk.log
import pytest
from airflow.sdk import Connection

from airflow_provider_waslah.client import shared_budget
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.shared_budget import SharedBudget
from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook, WaslahHook, client_options
from tests.redis_server import PASSWORD, RedisServer

KEY = "wsl_live_abcdef0123456789"


@pytest.fixture(autouse=True)
def fresh_budgets() -> Iterator[None]:
    saved = dict(shared_budget._registry)
    shared_budget._registry.clear()
    yield
    shared_budget._registry.clear()
    shared_budget._registry.update(saved)


def conn(extra: dict[str, Any]) -> Connection:
    return Connection(conn_id="waslah_test", conn_type="waslah", password=KEY, extra=json.dumps(extra))


def use_storage(handle: Any, monkeypatch: pytest.MonkeyPatch, storage: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_DEFAULT",
        json.dumps(
            {
                "conn_type": "waslah",
                "host": handle.base_url,
                "password": handle.api_key,
                "extra": {"rate_limit_storage": storage},
            }
        ),
    )


def test_the_extra_reaches_the_client_options() -> None:
    url = f"rediss://:{PASSWORD}@redis.internal:6380/2"
    assert client_options(conn({"rate_limit_storage": f" {url} "}))["rate_limit_storage"] == url
    assert "rate_limit_storage" not in client_options(conn({}))
    assert "rate_limit_storage" not in client_options(conn({"rate_limit_storage": ""}))


@pytest.mark.parametrize(
    "value",
    [
        f"http://:{PASSWORD}@redis:6379/0",
        f"redis://:{PASSWORD}@redis:6379/zero",
        f"redis://:{PASSWORD}@:6379",
        f"redis://:{PASSWORD}@redis:123456",
        12,
        ["redis://redis"],
    ],
)
def test_a_bad_extra_names_the_connection_and_field_without_quoting_it(value: Any) -> None:
    with pytest.raises(WaslahInvalidInputError) as raised:
        client_options(conn({"rate_limit_storage": value}))
    assert raised.value.field == "connection 'waslah_test' extra.rate_limit_storage"
    assert PASSWORD not in str(raised.value)


def test_the_sync_hook_paces_through_redis(
    waslah_emulator_conn: Any, redis_storage: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_storage(waslah_emulator_conn, monkeypatch, redis_storage.url)
    hook = WaslahHook()
    assert isinstance(hook.client.limiter, SharedBudget)
    hook.get_me()
    assert any(name.startswith("waslah:budget/") for name in redis_storage.stored_keys())


async def test_the_async_hook_paces_through_redis(
    waslah_emulator_conn: Any, redis_storage: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_storage(waslah_emulator_conn, monkeypatch, redis_storage.url)
    hook = WaslahAsyncHook()
    try:
        client = await hook.get_async_conn()
        assert isinstance(client.limiter, SharedBudget)
        assert client.limiter is WaslahHook().client.limiter  # one budget per key in the process
        await hook.get_me()
    finally:
        await hook.aclose()


def test_test_connection_and_logs_never_show_the_storage_password(
    waslah_emulator_conn: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow_provider_waslah.emulator.process import free_port

    use_storage(waslah_emulator_conn, monkeypatch, f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0")
    with caplog.at_level(logging.DEBUG):
        ok, message = WaslahHook().test_connection()
    assert ok, message  # the storage is down: sending goes on with the process's limiter
    texts = [message, *(record.getMessage() for record in caplog.records)]
    assert not [text for text in texts if PASSWORD in text]
    assert any("unreachable" in text for text in texts)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_the_hooks_register_the_storage_password_with_airflows_masker(
    waslah_emulator_conn: Any, monkeypatch: pytest.MonkeyPatch, flavour: str
) -> None:
    from airflow.providers.common.compat.sdk import redact

    password = f"masked-{flavour}-9c1e77a2b3"
    use_storage(waslah_emulator_conn, monkeypatch, f"redis://:{password}@127.0.0.1:6379/0")
    if flavour == "sync":
        WaslahHook().get_conn()
    else:

        async def lease() -> None:
            hook = WaslahAsyncHook()
            await hook.get_async_conn()
            await hook.aclose()

        asyncio.run(lease())
    redacted = redact(f"redis://:{password}@127.0.0.1:6379/0")
    if flavour == "async" and not hasattr(airflow.sdk.log, "amask_secret"):
        assert redacted == f"redis://:{password}@127.0.0.1:6379/0"  # Airflow 3.1: no async masker (see the hook)
    else:
        assert password not in str(redacted)
