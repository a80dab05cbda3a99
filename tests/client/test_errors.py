"""Every documented error answer becomes its own exception class, with the body's fields as attributes.

All cases run against the emulator over real HTTP; calls the client would refuse before sending
(bad bodies) are pushed through ``client.call(Call(...))`` with validation bypassed.
"""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_waslah.client import errors as e
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.client import AsyncWaslahClient, WaslahClient
from airflow_provider_waslah.client.errors import error_class_for
from tests.client.conftest import api_requests, fast

MSG = {"instance_key": "demo", "to": "081234567890", "text": "Halo"}


def raw(payload: Any) -> Any:
    return payload


def seed_key(emulator: Any, *, key: str, plan: str = "pro", scopes: list[str] | None = None, **extra: Any) -> None:
    """A second user (id 2) with its own key."""
    emulator.seed(
        users=[{"id": 2, "name": "Second", "email": "second@example.com", "plan": plan}],
        api_keys=[{"key": key, "user_id": 2, "name": "Second key", "scopes": scopes or ["messages:read"]}],
        **extra,
    )


def other_client(emulator: Any, key: str, **options: Any) -> WaslahClient:
    return fast(WaslahClient(api_key=key, base_url=emulator.base_url, **options))


def test_401_unauthorized(waslah_emulator: Any) -> None:
    with (
        other_client(waslah_emulator, "wsl_wrong_key_000000") as client,
        pytest.raises(e.WaslahUnauthorizedError) as caught,
    ):
        client.get_me()
    error = caught.value
    assert (error.http_status, error.error) == (401, "unauthorized")
    assert error.message == "Unauthenticated. API key tidak valid atau sudah dicabut."
    assert (error.method, error.path) == ("GET", "/me")
    assert str(error) == f"GET /me failed with HTTP 401 unauthorized: {error.message}"
    assert len(api_requests(waslah_emulator)) == 1  # never retried


def test_401_for_a_revoked_and_an_expired_key(waslah_emulator: Any) -> None:
    waslah_emulator.seed(
        api_keys=[
            {"key": "wsl_revoked_00000000", "user_id": 1, "revoked": True},
            {"key": "wsl_expired_00000000", "user_id": 1, "expires_at": "2020-01-01T00:00:00+00:00"},
        ]
    )
    for key in ("wsl_revoked_00000000", "wsl_expired_00000000"):
        with other_client(waslah_emulator, key) as client, pytest.raises(e.WaslahUnauthorizedError):
            client.list_instances()


def test_403_forbidden_scope(waslah_emulator: Any) -> None:
    seed_key(waslah_emulator, key="wsl_readonly_0000000", scopes=["messages:read"])
    with (
        other_client(waslah_emulator, "wsl_readonly_0000000") as client,
        pytest.raises(e.WaslahForbiddenScopeError) as caught,
    ):
        client.send_text(**MSG)
    assert (caught.value.http_status, caught.value.error) == (403, "forbidden_scope")
    assert "messages:send" in caught.value.message
    assert caught.value.extra == {"required_scope": "messages:send"}
    assert len(api_requests(waslah_emulator, "POST")) == 1


def test_403_plan_feature_required_for_rest_access_on_free(waslah_emulator: Any) -> None:
    seed_key(waslah_emulator, key="wsl_free_00000000000", plan="free", scopes=["messages:send"])
    with (
        other_client(waslah_emulator, "wsl_free_00000000000") as client,
        pytest.raises(e.WaslahPlanFeatureRequiredError) as caught,
    ):
        client.get_me()
    error = caught.value
    assert (error.http_status, error.error) == (403, "plan_feature_required")
    assert error.required_feature == "REST API access"
    assert error.active_plan == "Free"
    assert error.message == "REST API access butuh plan Pro atau lebih tinggi."


def test_403_plan_feature_required_for_scheduling(waslah_emulator: Any) -> None:
    # Let Free use the REST API at all, so the request reaches the scheduling gate.
    seed_key(
        waslah_emulator,
        key="wsl_free_00000000000",
        plan="free",
        scopes=["messages:send"],
        plan_features={"REST API access": ["free", "basic", "pro", "enterprise"]},
    )
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    with (
        other_client(waslah_emulator, "wsl_free_00000000000") as client,
        pytest.raises(e.WaslahPlanFeatureRequiredError) as caught,
    ):
        client.send_text(instance_key="demo", to="081234567890", text="Later", scheduled_at=later)
    assert caught.value.required_feature == "Schedule message"
    assert caught.value.active_plan == "Free"


def test_404_not_found(client: WaslahClient) -> None:
    with pytest.raises(e.WaslahNotFoundError) as caught:
        client.get_message(99999)
    assert type(caught.value) is e.WaslahNotFoundError
    assert (caught.value.http_status, caught.value.error) == (404, "not_found")
    assert "99999" in caught.value.message
    with pytest.raises(e.WaslahNotFoundError):
        client.get_broadcast(99999)


def test_404_instance_not_found(client: WaslahClient) -> None:
    with pytest.raises(e.WaslahInstanceNotFoundError) as caught:
        client.get_instance("no-such-instance")
    assert (caught.value.http_status, caught.value.error) == (404, "instance_not_found")
    assert isinstance(caught.value, e.WaslahNotFoundError)  # callers catching "not found" get both
    with pytest.raises(e.WaslahInstanceNotFoundError):
        client.send_text(**{**MSG, "instance_key": "no-such-instance"})


def test_409_instance_not_connected(client: WaslahClient, waslah_emulator: Any) -> None:
    with pytest.raises(e.WaslahInstanceNotConnectedError) as caught:
        client.send_text(**{**MSG, "instance_key": "offline"})
    assert (caught.value.http_status, caught.value.error) == (409, "instance_not_connected")
    assert caught.value.instance_status == "disconnected"
    assert waslah_emulator.ledger() == {}
    assert len(api_requests(waslah_emulator, "POST")) == 1


def test_422_validation_failed_with_field_errors(client: WaslahClient, waslah_emulator: Any) -> None:
    bad = Call("POST", "/messages/text", raw, json={"instance_key": "demo", "to": "081234567890"}, is_send=True)
    with pytest.raises(e.WaslahValidationError) as caught:
        client.call(bad)
    assert (caught.value.http_status, caught.value.error) == (422, "validation_failed")
    assert set(caught.value.errors) == {"text"}
    assert all(isinstance(m, str) for m in caught.value.errors["text"])
    assert len(api_requests(waslah_emulator, "POST")) == 1


def test_422_upload_without_a_file(client: WaslahClient) -> None:
    with pytest.raises(e.WaslahValidationError) as caught:
        client.call(Call("POST", "/uploads", raw, files={"other": ("a.txt", b"x", "text/plain")}, is_send=True))
    assert "file" in caught.value.errors


def test_422_no_valid_recipients(client: WaslahClient) -> None:
    body = {"instance_key": "demo", "type": "text", "text": "Promo", "recipients": ["123", "abc"]}
    with pytest.raises(e.WaslahNoValidRecipientsError) as caught:
        client.call(Call("POST", "/messages/bulk", raw, json=body, is_send=True))
    assert (caught.value.http_status, caught.value.error) == (422, "no_valid_recipients")
    assert caught.value.message == "Tidak ada nomor valid (minimal 8 digit, max 15 digit)."


def test_422_unsupported_media_type(client: WaslahClient) -> None:
    upload = Call("POST", "/uploads", raw, files={"file": ("a.foo", b"x", "application/x-foo")}, is_send=True)
    with pytest.raises(e.WaslahUnsupportedMediaTypeError) as caught:
        client.call(upload)
    assert (caught.value.http_status, caught.value.error) == (422, "unsupported_media_type")
    assert caught.value.mime_type == "application/x-foo"


def test_429_over_max_retry_wait_raises_at_once(waslah_emulator: Any) -> None:
    waslah_emulator.seed(plan_limits={"pro": 2})
    for _ in range(2):  # another process spends the key's budget
        httpx.get(f"{waslah_emulator.base_url}/me", headers=waslah_emulator.headers).raise_for_status()
    with (
        other_client(waslah_emulator, waslah_emulator.api_key, max_retry_wait=5) as client,
        pytest.raises(e.WaslahRateLimitError) as caught,
    ):
        client.get_me()
    assert caught.value.http_status == 429
    assert caught.value.retry_after is not None
    assert 5 < caught.value.retry_after <= 60
    assert [r["status"] for r in api_requests(waslah_emulator)] == [200, 200, 429]


def test_500_on_a_send_is_outcome_unknown(client: WaslahClient, waslah_emulator: Any) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/text", status=500)
    with pytest.raises(e.WaslahSendOutcomeUnknownError) as caught:
        client.send_text(**MSG)
    assert "NOT retried" in str(caught.value)
    assert "HTTP 500" in str(caught.value)
    assert isinstance(caught.value.__cause__, e.WaslahServerError)
    assert len(api_requests(waslah_emulator, "POST")) == 1


def test_500_on_a_read_is_a_server_error_after_retries(client: WaslahClient, waslah_emulator: Any) -> None:
    waslah_emulator.add_fault(route="GET /api/v1/instances", status=500)
    with pytest.raises(e.WaslahServerError) as caught:
        client.list_instances()
    assert caught.value.http_status == 500
    assert caught.value.error == "server_error"
    assert len(api_requests(waslah_emulator, "GET")) == client.settings.max_retries + 1


@pytest.mark.parametrize("status", [502, 503])
def test_engine_down_is_retried_then_engine_unavailable(
    client: WaslahClient, waslah_emulator: Any, status: int
) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/text", status=status)
    with pytest.raises(e.WaslahEngineUnavailableError) as caught:
        client.send_text(**MSG)
    assert caught.value.http_status == status
    posts = api_requests(waslah_emulator, "POST")
    assert [p["status"] for p in posts] == [status] * (client.settings.max_retries + 1)
    assert waslah_emulator.ledger() == {}


async def test_async_client_raises_the_same_classes(waslah_emulator: Any) -> None:
    async with AsyncWaslahClient(api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url) as client:
        fast(client)
        with pytest.raises(e.WaslahInstanceNotConnectedError) as caught:
            await client.send_text(**{**MSG, "instance_key": "offline"})
        assert caught.value.instance_status == "disconnected"
        with pytest.raises(e.WaslahInstanceNotFoundError):
            await client.get_instance("nope")
        waslah_emulator.add_fault(route="POST /api/v1/messages", status=500)
        with pytest.raises(e.WaslahSendOutcomeUnknownError):
            await client.send_message(**MSG)
    assert len(api_requests(waslah_emulator, "POST", "/api/v1/messages")) == 1


# ---------------------------------------------------------------- the class table itself

ALL_CLASSES = [
    e.WaslahInvalidInputError,
    e.WaslahConnectionError,
    e.WaslahTimeoutError,
    e.WaslahSendOutcomeUnknownError,
    e.WaslahUnauthorizedError,
    e.WaslahForbiddenScopeError,
    e.WaslahPlanFeatureRequiredError,
    e.WaslahNotFoundError,
    e.WaslahInstanceNotFoundError,
    e.WaslahInstanceNotConnectedError,
    e.WaslahValidationError,
    e.WaslahNoValidRecipientsError,
    e.WaslahUnsupportedMediaTypeError,
    e.WaslahRateLimitError,
    e.WaslahServerError,
    e.WaslahEngineUnavailableError,
]


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_every_error_is_an_airflow_exception(cls: type[Exception]) -> None:
    assert issubclass(cls, e.WaslahError)
    assert issubclass(cls, AirflowException)


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, "unauthorized", e.WaslahUnauthorizedError),
        (401, None, e.WaslahUnauthorizedError),
        (403, "forbidden_scope", e.WaslahForbiddenScopeError),
        (403, "plan_feature_required", e.WaslahPlanFeatureRequiredError),
        (403, None, e.WaslahAPIError),
        (404, "not_found", e.WaslahNotFoundError),
        (404, "instance_not_found", e.WaslahInstanceNotFoundError),
        (404, None, e.WaslahNotFoundError),
        (409, "instance_not_connected", e.WaslahInstanceNotConnectedError),
        (422, "validation_failed", e.WaslahValidationError),
        (422, "no_valid_recipients", e.WaslahNoValidRecipientsError),
        (422, "unsupported_media_type", e.WaslahUnsupportedMediaTypeError),
        (422, None, e.WaslahValidationError),
        (429, "too_many_requests", e.WaslahRateLimitError),
        (500, None, e.WaslahServerError),
        (502, None, e.WaslahEngineUnavailableError),
        (503, None, e.WaslahEngineUnavailableError),
        (504, None, e.WaslahServerError),
        (418, "teapot", e.WaslahAPIError),
    ],
)
def test_error_class_for(status: int, code: str | None, cls: type[e.WaslahAPIError]) -> None:
    assert error_class_for(status, code) is cls


@pytest.mark.parametrize("cls", [c for c in ALL_CLASSES if issubclass(c, e.WaslahAPIError)], ids=lambda c: c.__name__)
def test_api_errors_survive_pickling(cls: type[e.WaslahAPIError]) -> None:
    error = cls(
        status_code=409,
        error="instance_not_connected",
        message="Instance `x` sedang `disconnected`.",
        method="POST",
        path="/messages/text",
        extra={"instance_status": "disconnected", "retry_after": 3},
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert (copy.http_status, copy.error, copy.message, copy.extra) == (
        409,
        "instance_not_connected",
        "Instance `x` sedang `disconnected`.",
        {"instance_status": "disconnected", "retry_after": 3},
    )
    assert str(copy) == str(error)


@pytest.mark.parametrize(
    "error",
    [
        e.WaslahInvalidInputError("to", "must have 8-15 digits"),
        e.WaslahConnectionError("ConnectError: refused", method="GET", path="/me"),
        e.WaslahSendOutcomeUnknownError("ReadTimeout: timed out", method="POST", path="/messages"),
    ],
    ids=type,
)
def test_other_errors_survive_pickling(error: e.WaslahError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (
            502,
            b"<html><body>502 Bad Gateway</body></html>",
            e.WaslahEngineUnavailableError,
            "<html><body>502 Bad Gateway",
        ),
        (500, b"", e.WaslahServerError, "HTTP 500"),
        (404, b'{"ok": false}', e.WaslahNotFoundError, '{"ok": false}'),  # no message: the raw body
        (
            418,
            b'{"ok": false, "error": "teapot", "message": "I am a teapot", "hint": 1}',
            e.WaslahAPIError,
            "I am a teapot",
        ),
    ],
)
def test_error_bodies_that_are_not_waslahs_envelope(
    status: int, body: bytes, cls: type[e.WaslahAPIError], message: str
) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    client = fast(
        WaslahClient(api_key="wsl_test_key_123456", base_url="https://waslah.test/api/v1", transport=transport)
    )
    with pytest.raises(cls) as caught:
        client.list_broadcasts()
    assert type(caught.value) is cls
    assert caught.value.http_status == status
    assert caught.value.message.startswith(message)
    assert caught.value.extra == ({"hint": 1} if status == 418 else {})
