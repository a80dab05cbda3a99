"""The retry policy, pinned: which failures are retried, how many requests each case makes.

The ``Retry-After`` and status tables use ``httpx.MockTransport`` with a recording sleep (the
openai-python way); the rules that matter for duplicates run against the emulator over real
HTTP and are checked in its request log and ledger.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from airflow_provider_waslah.client import errors as e
from airflow_provider_waslah.client._engine import parse_retry_after
from airflow_provider_waslah.client.client import WaslahClient
from airflow_provider_waslah.emulator.process import free_port
from tests.client.conftest import api_requests, fast

ME = {"ok": True, "data": {"user": {"id": 1}, "api_key": {"id": 1, "scopes": []}}}
RECEIPT = {"ok": True, "data": {"id": 7, "status": "pending"}}
MSG = {"instance_key": "demo", "to": "081234567890", "text": "Halo"}


class Script:
    """A MockTransport handler that plays a list of answers (status, headers) or exceptions in order."""

    def __init__(self, *answers: Any, body: dict[str, Any] = ME) -> None:
        self.answers = list(answers)
        self.body = body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, type) and issubclass(answer, Exception):
            raise answer("scripted failure", request=request)
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        if status < 400:
            return httpx.Response(status, json=self.body, headers=headers)
        return httpx.Response(status, json={"ok": False, "error": None, "message": "nope"}, headers=headers)


class FakeTime:
    """A monotonic clock that only the client's sleeps move; each sleep is recorded."""

    def __init__(self) -> None:
        self.now = 10_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr("airflow_provider_waslah.client.client.time.sleep", fake.sleep)
    return fake


@pytest.fixture
def sleeps(fake_time: FakeTime) -> list[float]:
    """The client's sleeps, recorded instead of slept (the limiter's clock follows them)."""
    return fake_time.sleeps


@pytest.fixture
def mock_client(fake_time: FakeTime) -> Any:
    def make(script: Script, **options: Any) -> WaslahClient:
        options.setdefault("max_retries", 3)
        client = WaslahClient(
            api_key="wsl_test_key_123456",
            base_url="https://waslah.test/api/v1",
            transport=httpx.MockTransport(script),
            **options,
        )
        client.limiter._clock = fake_time
        return client

    return make


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now), usegmt=True)


# (id, Retry-After header ("@N": an HTTP date N s from now), requests made, total slept (approx), raises)
RETRY_AFTER_TABLE = [
    ("seconds", "2", 2, 2.0, None),
    ("fraction", "0.5", 2, 0.5, None),
    ("zero", "0", 2, 0.0, None),
    ("http-date", "@30", 2, 30.0, None),
    ("at-the-cap", "120", 2, 120.0, None),
    ("over-the-cap", "121", 1, 0.0, e.WaslahRateLimitError),
    ("http-date-over-the-cap", "@600", 1, 0.0, e.WaslahRateLimitError),
    ("absurd-a-year", "31536000", 2, None, None),  # ignored: backoff instead
    ("negative", "-5", 2, None, None),
    ("http-date-in-the-past", "@-3600", 2, None, None),
    ("garbage", "soon", 2, None, None),
    ("nan", "nan", 2, None, None),
    ("missing", None, 2, None, None),
]


@pytest.mark.parametrize(
    ("header", "requests", "slept", "raises"),
    [row[1:] for row in RETRY_AFTER_TABLE],
    ids=[row[0] for row in RETRY_AFTER_TABLE],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_retry_after_table(
    sleeps: list[float],
    mock_client: Any,
    method: str,
    header: str | None,
    requests: int,
    slept: float | None,
    raises: type[Exception] | None,
) -> None:
    if header and header.startswith("@"):  # an HTTP date this many seconds from now
        header = http_date(float(header[1:]))
    script = Script((429, {"Retry-After": header} if header else {}), 200, body=ME if method == "GET" else RECEIPT)
    client = mock_client(script)
    if raises:
        with pytest.raises(raises) as caught:
            client.get_me() if method == "GET" else client.send_text(**MSG)
        assert caught.value.retry_after is not None and caught.value.retry_after > client.settings.max_retry_wait
    else:
        client.get_me() if method == "GET" else client.send_text(**MSG)
    assert len(script.requests) == requests
    if slept is None:  # header ignored: exponential backoff with jitter, 0.25-0.5 s for the first retry
        assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5
    else:
        assert sum(sleeps) == pytest.approx(slept, abs=1.5)


def test_429_forever_gives_up_after_max_retries(sleeps: list[float], mock_client: Any) -> None:
    script = Script((429, {"Retry-After": "1"}))
    with pytest.raises(e.WaslahRateLimitError) as caught:
        mock_client(script, max_retries=2).send_text(**MSG)
    assert len(script.requests) == 3
    assert caught.value.retry_after == 1.0
    assert sleeps == pytest.approx([1.0, 1.0], abs=0.1)


def test_a_429_stops_other_callers_sharing_the_key(sleeps: list[float], mock_client: Any) -> None:
    """After a 429 the shared limiter makes the next call (another hook, same key) wait too."""
    first = mock_client(Script((429, {"Retry-After": "30"})), max_retries=0)
    with pytest.raises(e.WaslahRateLimitError):
        first.get_me()
    assert sleeps == []
    second = mock_client(Script(200))
    assert second.limiter is first.limiter
    second.get_me()
    assert sleeps and sleeps[0] == pytest.approx(30, abs=1)


def test_a_429_over_the_cap_stops_other_callers_without_a_request(sleeps: list[float], mock_client: Any) -> None:
    """A Retry-After past max_retry_wait still pauses the key: the next caller raises and sends nothing."""
    first = mock_client(Script((429, {"Retry-After": "600"})))
    with pytest.raises(e.WaslahRateLimitError):
        first.get_me()
    second_script = Script(200)
    second = mock_client(second_script)
    with pytest.raises(e.WaslahRateLimitError) as caught:
        second.send_text(**MSG)
    assert second_script.requests == []
    assert sleeps == []
    assert "nothing was sent" in str(caught.value)
    assert caught.value.retry_after == pytest.approx(600, abs=1)


# (id, method, answers in order, requests made, raises)
STATUS_TABLE = [
    ("get-500-then-ok", "GET", [500, 200], 2, None),
    ("get-500-forever", "GET", [500], 4, e.WaslahServerError),
    ("get-502-forever", "GET", [502], 4, e.WaslahEngineUnavailableError),
    ("get-504-then-ok", "GET", [504, 200], 2, None),
    ("get-read-timeout-forever", "GET", [httpx.ReadTimeout], 4, e.WaslahTimeoutError),
    ("get-connect-timeout-then-ok", "GET", [httpx.ConnectTimeout, 200], 2, None),
    ("get-dropped-then-ok", "GET", [httpx.RemoteProtocolError, 200], 2, None),
    ("get-connect-error-forever", "GET", [httpx.ConnectError], 4, e.WaslahConnectionError),
    ("get-404", "GET", [404], 1, e.WaslahNotFoundError),
    ("get-401", "GET", [401], 1, e.WaslahUnauthorizedError),
    ("post-500", "POST", [500, 200], 1, e.WaslahSendOutcomeUnknownError),
    ("post-504", "POST", [504, 200], 1, e.WaslahSendOutcomeUnknownError),
    ("post-502-then-ok", "POST", [502, 200], 2, None),
    ("post-503-forever", "POST", [503], 4, e.WaslahEngineUnavailableError),
    ("post-read-timeout", "POST", [httpx.ReadTimeout, 200], 1, e.WaslahSendOutcomeUnknownError),
    ("post-write-timeout", "POST", [httpx.WriteTimeout, 200], 1, e.WaslahSendOutcomeUnknownError),
    ("post-dropped", "POST", [httpx.RemoteProtocolError, 200], 1, e.WaslahSendOutcomeUnknownError),
    ("post-connect-error-then-ok", "POST", [httpx.ConnectError, 200], 2, None),
    ("post-connect-timeout-then-ok", "POST", [httpx.ConnectTimeout, 200], 2, None),
    ("post-pool-timeout-then-ok", "POST", [httpx.PoolTimeout, 200], 2, None),
    ("post-connect-error-forever", "POST", [httpx.ConnectError], 4, e.WaslahConnectionError),
    ("post-409", "POST", [409], 1, e.WaslahAPIError),
    ("post-422", "POST", [422], 1, e.WaslahValidationError),
]


@pytest.mark.parametrize(
    ("method", "answers", "requests", "raises"), [row[1:] for row in STATUS_TABLE], ids=[row[0] for row in STATUS_TABLE]
)
def test_status_table(
    sleeps: list[float],
    mock_client: Any,
    method: str,
    answers: list[Any],
    requests: int,
    raises: type[Exception] | None,
) -> None:
    script = Script(*answers, body=ME if method == "GET" else RECEIPT)
    client = mock_client(script)
    action = client.get_me if method == "GET" else lambda: client.send_text(**MSG)
    if raises:
        with pytest.raises(raises) as caught:
            action()
        if raises is e.WaslahSendOutcomeUnknownError:
            assert "NOT retried" in str(caught.value)
    else:
        action()
    assert len(script.requests) == requests
    assert {r.method for r in script.requests} == {method}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("1.25", 1.25),
        ("0", 0.0),
        ("86400", 86400.0),
        ("86401", None),
        ("-1", None),
        ("inf", None),
        ("nan", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("later", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 5, 19, 9, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("Tue, 19 May 2026 09:00:42 GMT", now=now) == 42.0


# ---------------------------------------------------------------- against the emulator (real HTTP)


def test_post_that_got_a_500_was_sent_exactly_once(client: WaslahClient, waslah_emulator: Any) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/text", status=500, count=1)
    with pytest.raises(e.WaslahSendOutcomeUnknownError):
        client.send_text(**MSG)
    assert [r["status"] for r in api_requests(waslah_emulator, "POST")] == [500]


def test_lost_response_is_outcome_unknown_sent_once_and_delivered(client: WaslahClient, waslah_emulator: Any) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/text", lose_response=True, count=1)
    with pytest.raises(e.WaslahSendOutcomeUnknownError) as caught:
        client.send_text(**MSG)
    assert "RemoteProtocolError" in str(caught.value)
    assert len(api_requests(waslah_emulator, "POST")) == 1
    ledger = waslah_emulator.ledger()
    assert list(ledger) == ["6281234567890"]
    assert [m["text"] for m in ledger["6281234567890"]] == ["Halo"]


def test_read_timeout_on_a_send_is_not_retried(waslah_emulator: Any) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/text", status=None, latency=1.0, count=1)
    client = fast(WaslahClient(api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url, timeout=0.3))
    with client, pytest.raises(e.WaslahSendOutcomeUnknownError, match="ReadTimeout"):
        client.send_text(**MSG)
    # The emulator logs the request once its (delayed) handling ends: exactly one POST, never a retry.
    waslah_emulator.wait_until(lambda: api_requests(waslah_emulator, "POST"), timeout=3)
    time.sleep(0.3)
    assert len(api_requests(waslah_emulator, "POST")) == 1


def test_dropped_connection_on_a_send_is_not_retried(client: WaslahClient, waslah_emulator: Any) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/bulk", drop_connection=True, count=1)
    with pytest.raises(e.WaslahSendOutcomeUnknownError):
        client.send_bulk(instance_key="demo", recipients=["081234567890"], text="Promo")
    assert len(api_requests(waslah_emulator, "POST")) == 1


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens (connection refused)."""
    yield free_port()


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        return super().handle_request(request)


def test_post_that_hit_connection_refused_is_retried(closed_port: int) -> None:
    transport = CountingTransport()
    client = fast(
        WaslahClient(
            api_key="wsl_test_key_123456",
            base_url=f"http://127.0.0.1:{closed_port}/api/v1",
            max_retries=2,
            transport=transport,
        )
    )
    with pytest.raises(e.WaslahConnectionError, match="ConnectError") as caught:
        client.send_text(**MSG)
    assert not isinstance(caught.value, e.WaslahSendOutcomeUnknownError)
    assert transport.attempts == 3


def test_get_with_500s_is_retried_up_to_max_retries_then_succeeds(client: WaslahClient, waslah_emulator: Any) -> None:
    waslah_emulator.add_fault(route="GET /api/v1/instances", status=500, count=3)
    assert [i.key for i in client.list_instances()] == ["demo", "offline"]
    assert [r["status"] for r in api_requests(waslah_emulator, "GET")] == [500, 500, 500, 200]


def test_get_with_timeouts_is_retried_up_to_max_retries(waslah_emulator: Any) -> None:
    waslah_emulator.add_fault(route="GET /api/v1/me", status=None, latency=0.6)
    with (
        fast(
            WaslahClient(api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url, timeout=0.2, max_retries=2)
        ) as client,
        pytest.raises(e.WaslahTimeoutError, match="ReadTimeout"),
    ):
        client.get_me()
    waslah_emulator.wait_until(lambda: len(api_requests(waslah_emulator, "GET")) == 3, timeout=3)


class RecordingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, int, httpx.Headers]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.seen.append((time.monotonic(), response.status_code, response.headers))
        return response


def test_a_429_waits_at_least_retry_after(waslah_emulator: Any) -> None:
    waslah_emulator.seed(plan_limits={"pro": 3}, rate_window_seconds=2)
    for _ in range(3):  # another process spends the key's budget
        httpx.get(f"{waslah_emulator.base_url}/me", headers=waslah_emulator.headers).raise_for_status()
    transport = RecordingTransport()
    with WaslahClient(
        api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url, transport=transport
    ) as client:
        client.get_me()
    (refused_at, first, headers), (answered_at, second, _) = transport.seen
    assert (first, second) == (429, 200)
    assert answered_at - refused_at >= float(headers["Retry-After"])
    assert [r["status"] for r in api_requests(waslah_emulator)][-2:] == [429, 200]
