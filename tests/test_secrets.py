"""The API key and the webhook secret never appear in logs, reprs, exception text, pickles or XCom values."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import traceback
from typing import Any

import httpx
import pytest

from airflow_provider_waslah.client import errors as e
from airflow_provider_waslah.client import ratelimit
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.client import AsyncWaslahClient, WaslahClient
from airflow_provider_waslah.emulator.process import free_port
from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook, WaslahHook
from airflow_provider_waslah.webhooks import WebhookVerificationError, signed_headers, verify_signature
from tests.client.conftest import fast, fresh_limiters  # noqa: F401  (autouse fixture)

KEY = "wsl_SECRETKEY_9f8e7d6c5b4a3210"
WRONG_KEY = "wsl_WRONGKEY_1a2b3c4d5e6f7890"
WEBHOOK_SECRET = "whsec_TOPSECRET_0a1b2c3d4e5f"
#: Waslah shows a key's first 12 characters as its ``prefix``; the rest must never show.
SECRETS = (KEY, KEY[12:], WRONG_KEY, WRONG_KEY[12:], WEBHOOK_SECRET)


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def exception_texts(error: BaseException) -> list[str]:
    return [
        str(error),
        repr(error),
        repr(error.args),
        "".join(traceback.format_exception(error)),
        pickle.dumps(error).decode("latin-1"),
        repr(getattr(error, "__dict__", {})),
    ]


@pytest.fixture
def secret_emulator(waslah_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    waslah_emulator.seed(api_keys=[{"key": KEY, "user_id": 1, "name": "Secret key"}])
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_DEFAULT",
        json.dumps(
            {
                "conn_type": "waslah",
                "host": waslah_emulator.base_url,
                "password": KEY,
                "extra": {"webhook_secret": WEBHOOK_SECRET, "max_retries": 2},
            }
        ),
    )
    return waslah_emulator


def test_no_secret_in_logs_reprs_errors_or_xcom(
    secret_emulator: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "airflow_provider_waslah", "airflow"):
        caplog.set_level(logging.DEBUG, logger=name)
    hook = WaslahHook()
    fast(hook.client)
    texts: list[str] = [
        repr(hook),
        repr(hook.client),
        repr(vars(hook)),
        repr(vars(hook.client)),
        repr(hook.client.limiter),
    ]
    assert hook.webhook_secret == WEBHOOK_SECRET

    # Successful sends and reads; their XCom-shaped dumps.
    receipt = hook.send_text(instance_key="demo", to="081234567890", text="Halo")
    me = hook.get_me()
    texts += [json.dumps(receipt.model_dump(mode="json")), json.dumps(me.model_dump(mode="json")), repr(me)]
    assert me.api_key.prefix == KEY[:12]

    # Retries (engine down, then up; reads failing with 500s) and every error class the API can answer.
    secret_emulator.add_fault(route="POST /api/v1/messages/text", status=502, count=1)
    hook.send_text(instance_key="demo", to="081234567890", text="Lagi")
    secret_emulator.add_fault(route="GET /api/v1/instances", status=500, count=10)
    failures: list[BaseException] = []
    for action in (
        lambda: hook.list_instances(),
        lambda: hook.send_text(instance_key="offline", to="081234567890", text="x"),
        lambda: hook.get_instance("missing"),
        lambda: hook.get_message(424242),
        lambda: hook.client.call(
            Call("POST", "/messages/text", lambda d: d, json={"instance_key": "demo"}, is_send=True)
        ),
        lambda: hook.client.call(
            Call("POST", "/uploads", lambda d: d, files={"file": ("a", b"x", "x/y")}, is_send=True)
        ),
        lambda: hook.send_text(instance_key="demo", to="1", text="x"),
    ):
        with pytest.raises(e.WaslahError) as caught:
            action()
        failures.append(caught.value)
    secret_emulator.add_fault(route="POST /api/v1/messages/text", lose_response=True, count=1)
    with pytest.raises(e.WaslahSendOutcomeUnknownError) as unknown:
        hook.send_text(instance_key="demo", to="081234567890", text="Hilang")
    failures.append(unknown.value)

    # A wrong key (401), a connection refused, a plan gate, a 429 over the cap.
    with fast(WaslahClient(api_key=WRONG_KEY, base_url=secret_emulator.base_url)) as wrong:
        with pytest.raises(e.WaslahUnauthorizedError) as unauthorized:
            wrong.get_me()
        texts.append(repr(wrong))
    failures.append(unauthorized.value)
    down = fast(WaslahClient(api_key=KEY, base_url=f"http://127.0.0.1:{free_port()}/api/v1", max_retries=1))
    with down, pytest.raises(e.WaslahConnectionError) as refused:
        down.send_text(instance_key="demo", to="081234567890", text="x")
    failures.append(refused.value)
    texts.append(hook.test_connection()[1])
    # The key's budget is already spent on the server; a fresh limiter (another process) learns it from a 429.
    secret_emulator.seed(plan_limits={"pro": 1})
    ratelimit._registry.clear()
    limited = fast(WaslahClient(api_key=KEY, base_url=secret_emulator.base_url, max_retry_wait=1))
    with limited, pytest.raises(e.WaslahRateLimitError) as limited_error:
        limited.get_me()
    failures.append(limited_error.value)

    assert {type(f).__name__ for f in failures} >= {
        "WaslahServerError", "WaslahInstanceNotConnectedError", "WaslahInstanceNotFoundError", "WaslahNotFoundError",
        "WaslahValidationError", "WaslahUnsupportedMediaTypeError", "WaslahInvalidInputError",
        "WaslahSendOutcomeUnknownError", "WaslahUnauthorizedError", "WaslahConnectionError", "WaslahRateLimitError",
    }  # fmt: skip
    for failure in failures:
        texts += exception_texts(failure)
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    texts.append(caplog.text)
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]

    assert any("HTTP Request: POST" in record.getMessage() for record in caplog.records)  # httpx logged
    assert any(record.name.startswith("httpcore") for record in caplog.records)  # httpcore logged at DEBUG
    assert any("retry 1 of 2" in record.getMessage() for record in caplog.records)  # our retries logged
    assert [leak for text in texts for leak in leaks(text)] == []


async def test_no_secret_in_the_async_path(secret_emulator: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    hook = WaslahAsyncHook()
    client = await hook.get_async_conn()
    fast(client)
    texts = [repr(hook), repr(client), repr(vars(client))]
    await hook.send_text(instance_key="demo", to="081234567890", text="Halo")
    secret_emulator.add_fault(route="GET /api/v1/me", status=500, count=10)
    with pytest.raises(e.WaslahServerError) as caught:
        await hook.get_me()
    texts += exception_texts(caught.value)
    async with AsyncWaslahClient(api_key=WRONG_KEY, base_url=secret_emulator.base_url) as wrong:
        with pytest.raises(e.WaslahUnauthorizedError) as unauthorized:
            await wrong.list_broadcasts()
    texts += exception_texts(unauthorized.value)
    await hook.aclose()
    await asyncio.sleep(0)
    texts.append(caplog.text)
    assert [leak for text in texts for leak in leaks(text)] == []


def test_no_webhook_secret_in_verification_results_or_failures() -> None:
    body = b'{"event": "message.received", "data": {"from": "6281234567890"}}'
    headers = signed_headers(WEBHOOK_SECRET, body, event="message.received", event_id="evt-1")
    event = verify_signature(body, headers, WEBHOOK_SECRET)
    texts = [repr(event), repr(headers)]
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature(body + b" ", headers, WEBHOOK_SECRET)
    texts += exception_texts(caught.value)
    assert [leak for text in texts for leak in leaks(text)] == []


def test_a_client_without_a_key_says_where_to_put_it() -> None:
    with pytest.raises(e.WaslahInvalidInputError, match="the connection's Password field"):
        WaslahClient(api_key="")


XCOM_DAG = """
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_waslah.hooks.waslah import WaslahHook

with DAG("secrets_in_xcom", start_date=datetime(2026, 1, 1), schedule=None):

    @task
    def send():
        hook = WaslahHook()
        receipt = hook.send_text(instance_key="demo", to="081234567890", text="Halo")
        me = hook.get_me()
        return {"receipt": receipt.model_dump(mode="json"), "me": me.model_dump(mode="json"), "hook": repr(hook),
                "client": repr(hook.client)}

    send()
"""


def test_no_api_key_in_xcom_of_a_real_task(dag_runner: Any, waslah_emulator: Any) -> None:
    result = dag_runner.run("secrets_in_xcom", XCOM_DAG)
    assert result.state == "success", result.task_states()
    value = result.xcom("send")
    assert value["receipt"]["status"] == "pending"
    assert value["me"]["api_key"]["prefix"] == waslah_emulator.api_key[:12]
    stored = json.dumps(list(result.xcom_all().values()), default=str)
    assert waslah_emulator.api_key not in stored
    assert waslah_emulator.api_key[12:] not in stored


# ---------------------------------------------------------------- hostile keys: never in any exception text

#: Characters people paste by accident, and worse: whitespace, controls, non-ASCII, zero-width, surrogates.
_ODD = "\n\r\t \x00\x0b\x0c\x1b\x7f\x85\xa0\u2028\u200b\ufeffé日\ud800\udfff"


def _hostile_keys() -> Any:
    from hypothesis import strategies as st

    token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=16, max_size=24)
    odd = st.text(alphabet=_ODD, max_size=3)
    return st.tuples(odd, token, odd, token, odd).map(lambda p: (f"{p[0]}wsl_{p[1]}{p[2]}{p[3]}{p[4]}", p[1], p[3]))


def _echoing_transport(request: httpx.Request) -> httpx.Response:
    """A transport that fails the way h11 does for a bad header: with the header's value in the message."""
    raise httpx.LocalProtocolError(f"Illegal header value {request.headers.get('authorization', '')!r}")


def _answering_401(request: httpx.Request) -> httpx.Response:
    return httpx.Response(401, json={"ok": False, "error": "unauthorized", "message": "Unauthenticated."})


def _error_texts_for_key(key: str) -> list[str]:
    texts: list[str] = []
    for transport in (httpx.MockTransport(_echoing_transport), httpx.MockTransport(_answering_401)):
        try:
            client = WaslahClient(api_key=key, base_url="https://waslah.test/api/v1", transport=transport)
        except e.WaslahError as error:
            texts += exception_texts(error)
            continue
        texts.append(repr(client))
        fast(client, backoff_base=0.0, backoff_max=0.0)
        for action in (
            client.get_me,
            lambda c=client: c.send_text(instance_key="demo", to="081234567890", text="x"),
        ):
            with pytest.raises(e.WaslahError) as caught:
                action()
            texts += exception_texts(caught.value)
        client.close()
    return texts


def test_no_hostile_key_reaches_exception_text_or_reprs() -> None:
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_hostile_keys())
    def check(case: tuple[str, str, str]) -> None:
        key, first, second = case
        ratelimit._registry.clear()
        for text in _error_texts_for_key(key):
            assert first not in text and second not in text
            assert key.strip() not in text

    check()


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\t", "  ", " \r\n\t"])
def test_a_key_pasted_with_a_trailing_newline_works_over_real_http(secret_emulator: Any, suffix: str) -> None:
    with fast(WaslahClient(api_key=KEY + suffix, base_url=secret_emulator.base_url)) as client:
        assert client.get_me().api_key.prefix == KEY[:12]
    with fast(WaslahClient(api_key=" " + KEY + suffix, base_url=secret_emulator.base_url)) as client:
        assert client.send_text(instance_key="demo", to="081234567890", text="Halo").status == "pending"


def test_a_hook_with_a_pasted_newline_sends(secret_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_DEFAULT",
        json.dumps({"conn_type": "waslah", "host": secret_emulator.base_url, "password": KEY + "\r\n"}),
    )
    assert WaslahHook().send_text(instance_key="demo", to="081234567890", text="Halo").status == "pending"
