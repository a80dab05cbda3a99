"""Errors a user can act on: each names what to change (issue 12).

- a connection error names the base URL it tried (client), and the connection and field (hook);
- a 401 names the connection and its "API key" field, in English, with Waslah's own message kept;
- an unknown instance lists the instance keys the API key can see (one extra ``GET /instances``,
  only on that error; a failed lookup never replaces the original error);
- the hint is added once, in sync and async hooks alike, and survives pickling.
"""

from __future__ import annotations

import asyncio
import json
import pickle
from typing import Any

import pytest

from airflow_provider_waslah.client import errors as e
from airflow_provider_waslah.client.client import AsyncWaslahClient, WaslahClient
from airflow_provider_waslah.emulator.process import free_port
from airflow_provider_waslah.hooks.explain import explain
from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook, WaslahHook
from tests.client.conftest import api_requests

WASLAH_401 = "Unauthenticated. API key tidak valid atau sudah dicabut."


@pytest.fixture
def point(waslah_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``point(key=..., base_url=..., **extra)``: connection ``waslah_shop`` on the emulator."""

    def make(key: str | None = None, base_url: str | None = None, **extra: Any) -> str:
        body = {
            "conn_type": "waslah",
            "host": base_url or waslah_emulator.base_url,
            "password": key or waslah_emulator.api_key,
            "extra": extra,
        }
        monkeypatch.setenv("AIRFLOW_CONN_WASLAH_SHOP", json.dumps(body))
        return "waslah_shop"

    return make


def run_both(conn_id: str, method: str, **kwargs: Any) -> list[BaseException]:
    """The error ``method(**kwargs)`` raises through the sync hook and through the async hook."""
    raised: list[BaseException] = []
    with pytest.raises(e.WaslahError) as sync_error:
        getattr(WaslahHook(waslah_conn_id=conn_id), method)(**kwargs)
    raised.append(sync_error.value)

    async def run_async() -> None:
        hook = WaslahAsyncHook(waslah_conn_id=conn_id)
        try:
            await getattr(hook, method)(**kwargs)
        finally:
            await hook.aclose()

    with pytest.raises(e.WaslahError) as async_error:
        asyncio.run(run_async())
    raised.append(async_error.value)
    return raised


# ---------------------------------------------------------------- connection errors


def test_client_connection_error_names_the_base_url_it_tried() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/api/v1"
    with (
        WaslahClient(api_key="wsl_test_0000000000", base_url=base_url, max_retries=0) as client,
        pytest.raises(e.WaslahConnectionError) as caught,
    ):
        client.get_me()
    assert str(caught.value).startswith(f"GET /me: could not connect to {base_url} (ConnectError: ")
    assert caught.value.base_url == base_url
    assert caught.value.hint is None  # the client knows no Airflow connection


async def test_async_client_connection_error_names_the_base_url_without_userinfo() -> None:
    port = free_port()
    async with AsyncWaslahClient(
        api_key="wsl_test_0000000000", base_url=f"http://user:pw@127.0.0.1:{port}/api/v1", max_retries=0
    ) as client:
        with pytest.raises(e.WaslahConnectionError) as caught:
            await client.get_me()
    assert f"could not connect to http://127.0.0.1:{port}/api/v1 (" in str(caught.value)
    assert "pw" not in str(caught.value)


def test_hook_connection_error_names_the_connection_and_the_base_url_field(point: Any) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/api/v1"
    conn_id = point(base_url=base_url, max_retries=0)
    for error in run_both(conn_id, "get_me"):
        assert isinstance(error, e.WaslahConnectionError)
        text = str(error)
        assert f"could not connect to {base_url}" in text
        assert "Check the \"Base URL\" field (host) of connection 'waslah_shop'" in text
        assert error.conn_id == "waslah_shop"


# ---------------------------------------------------------------- 401


def test_401_names_the_connection_and_the_api_key_field_and_keeps_waslahs_message(
    point: Any, waslah_emulator: Any
) -> None:
    conn_id = point(key="wsl_wrong_00000000000")
    for error in run_both(conn_id, "get_me"):
        assert isinstance(error, e.WaslahUnauthorizedError)
        assert error.message == WASLAH_401  # Waslah's own words, untouched
        assert str(error) == (
            f"GET /me failed with HTTP 401 unauthorized: {WASLAH_401} Waslah refused the API key of connection "
            "'waslah_shop': put a valid, unrevoked, unexpired wsl_… key from Waslah's dashboard (API Keys) in its "
            '"API key" field (the connection\'s password).'
        )
    assert "wsl_wrong" not in str(error)


def test_test_connection_shows_the_hint(point: Any) -> None:
    ok, message = WaslahHook(waslah_conn_id=point(key="wsl_wrong_00000000000")).test_connection()
    assert ok is False
    assert message.startswith(f"WaslahUnauthorizedError: GET /me failed with HTTP 401 unauthorized: {WASLAH_401} ")
    assert '"API key" field' in message and "'waslah_shop'" in message


# ---------------------------------------------------------------- unknown instance


def test_unknown_instance_lists_the_instance_keys_the_key_can_see(point: Any, waslah_emulator: Any) -> None:
    conn_id = point()
    for error in run_both(conn_id, "send_text", instance_key="tokoo", to="6281234560001", text="Halo"):
        assert isinstance(error, e.WaslahInstanceNotFoundError)
        assert "Instance `tokoo` tidak ditemukan" in str(error)  # Waslah's message kept
        assert str(error).endswith(
            "Check instance_key: connection 'waslah_shop' has no such instance. "
            "Instance keys its API key can see: demo (connected), offline (disconnected)."
        )
    # One extra GET /instances per failed call (sync, then async), and nothing sent.
    assert [f"{r['method']} {r['path']}" for r in api_requests(waslah_emulator)] == [
        "POST /api/v1/messages/text",
        "GET /api/v1/instances",
    ] * 2
    assert waslah_emulator.ledger() == {}


def test_unknown_instance_when_the_key_may_not_list_instances(point: Any, waslah_emulator: Any) -> None:
    waslah_emulator.seed(api_keys=[{"key": "wsl_sendonly_000000", "user_id": 1, "scopes": ["messages:send"]}])
    conn_id = point(key="wsl_sendonly_000000")
    for error in run_both(conn_id, "send_text", instance_key="tokoo", to="6281234560001", text="Halo"):
        assert isinstance(error, e.WaslahInstanceNotFoundError)  # not the lookup's 403
        assert str(error).endswith(
            "Its API key may not list instances (scope instances:read), so the valid keys cannot be shown."
        )


def test_a_failing_instance_lookup_never_replaces_the_original_error(point: Any, waslah_emulator: Any) -> None:
    waslah_emulator.add_fault(route="GET /api/v1/instances", status=503)
    conn_id = point(max_retries=0)
    for error in run_both(conn_id, "get_instance", instance_key="tokoo"):
        assert isinstance(error, e.WaslahInstanceNotFoundError)
        assert str(error).endswith(
            "Listing the instances this API key can see failed too (WaslahEngineUnavailableError)."
        )


def test_other_errors_make_no_extra_request(point: Any, waslah_emulator: Any) -> None:
    conn_id = point()
    for error in run_both(conn_id, "send_text", instance_key="offline", to="6281234560001", text="Halo"):
        assert isinstance(error, e.WaslahInstanceNotConnectedError)
        assert error.hint is None
    assert [r["path"] for r in api_requests(waslah_emulator)] == ["/api/v1/messages/text"] * 2


# ---------------------------------------------------------------- once, and kept


def test_the_hint_is_added_once_and_survives_pickling() -> None:
    error = e.WaslahUnauthorizedError(
        status_code=401, error="unauthorized", message=WASLAH_401, method="GET", path="/me"
    )
    explain(error, "first", None)
    explain(error, "second", None)
    assert str(error).count("Waslah refused the API key") == 1 and "'first'" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.conn_id) == (type(error), str(error), "first")


def test_bad_input_is_not_given_a_hint(point: Any) -> None:
    with pytest.raises(e.WaslahInvalidInputError) as caught:
        WaslahHook(waslah_conn_id=point()).send_text(instance_key="demo", to="12345", text="Halo")
    assert caught.value.hint is None
    assert str(caught.value).endswith("Nothing was sent.")
