"""Hostile and broken input: every answer is the documented envelope (never a 500), bad control
input changes nothing, faults answer what they say, the origin is the emulator's own."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_waslah.emulator import EmulatorHandle, EmulatorServer, create_app, wait_until
from tests.emulator.conftest import InProcessClient

SEND_TEXT = {"instance_key": "demo", "to": "081234567890", "text": "Halo dari API"}
JSON_ROUTES = [
    "/api/v1/messages",
    "/api/v1/messages/text",
    "/api/v1/messages/media",
    "/api/v1/messages/bulk",
    "/_emulator/seed",
    "/_emulator/faults",
    "/_emulator/webhooks",
    "/_emulator/inbound",
]


def _envelope(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """The documented error envelope, with a 4xx status (``status`` if given)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if status is not None:
        assert response.status_code == status, response.text[:300]
    body: dict[str, Any] = response.json()
    assert body["ok"] is False and isinstance(body["error"], str) and isinstance(body["message"], str)
    return body


def _state(emu: EmulatorHandle) -> dict[str, Any]:
    """Everything the control API shows of the emulator's state."""
    return {
        "seed": emu.current_seed(),
        "faults": emu.faults(),
        "webhooks": emu.webhooks(),
        "ledger": emu.ledger(),
        "deliveries": emu.webhook_deliveries(),
    }


# ---------------------------------------------------------------- request bodies and ids


@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 50_000, b"[" * 500 + b"]" * 500])
def test_deeply_nested_json_is_a_4xx(
    api: httpx.Client, waslah_emulator: EmulatorHandle, route: str, raw: bytes
) -> None:
    before = _state(waslah_emulator)
    response = httpx.post(
        f"{waslah_emulator.origin}{route}",
        content=raw,
        headers={**waslah_emulator.headers, "Content-Type": "application/json"},
    )
    body = _envelope(response, 422)
    assert body["error"] == "validation_failed" and "body" in body["errors"]
    assert _state(waslah_emulator) == before


@pytest.mark.parametrize(
    "raw",
    [
        b'{"instance_key": "demo", "to": "081234567890", "text": "\\ud800"}',
        b'{"instance_key": "demo", "to": "081234567890", "text": "a\\udfffb"}',
        b'{"instance_key": "demo", "to": "081234567890", "text": "x", "\\ud800": 1}',
        b'{"instance_key": "demo", "to": "081234567890", "text": NaN}',
        b'{"instance_key": "demo", "to": "081234567890", "text": "x", "delay_min_sec": Infinity}',
    ],
)
def test_lone_surrogates_and_nan_literals_are_invalid_json(
    api: httpx.Client, waslah_emulator: EmulatorHandle, raw: bytes
) -> None:
    response = api.post("/messages/text", content=raw, headers={"Content-Type": "application/json"})
    body = _envelope(response, 422)
    assert "body" in body["errors"]
    assert waslah_emulator.ledger() == {}


@pytest.mark.parametrize("kind", ["messages", "broadcasts"])
@pytest.mark.parametrize("raw_id", ["²", "٣", "１", "9" * 5000, "0", "-1", "1.0", "9" * 30, "1e3", "0x1"])
def test_odd_ids_are_404_not_found(api: httpx.Client, kind: str, raw_id: str) -> None:
    api.post("/messages/text", json=SEND_TEXT)  # message 1 exists
    body = _envelope(api.get(f"/{kind}/{raw_id}"), 404)
    assert body["error"] == "not_found"
    assert len(body["message"]) < 200


# ---------------------------------------------------------------- the control API refuses bad input


NAN_SEEDS = [
    (b'{"time_scale": NaN}', "time_scale"),
    (b'{"time_scale": Infinity}', "time_scale"),
    (b'{"time_scale": 1e999}', "time_scale"),
    (b'{"rate_window_seconds": -Infinity}', "rate_window_seconds"),
    (b'{"webhook_backoff": NaN}', "webhook_backoff"),
    (b'{"lifecycle": {"sent": NaN}}', "lifecycle.sent"),
]


@pytest.mark.parametrize(("raw", "field"), NAN_SEEDS)
def test_non_finite_settings_are_refused(waslah_emulator: EmulatorHandle, raw: bytes, field: str) -> None:
    before = _state(waslah_emulator)
    response = httpx.post(f"{waslah_emulator.origin}/_emulator/seed", content=raw)
    body = _envelope(response, 422)
    assert body["error"] == "validation_failed"
    assert any(field in key or field in " ".join(value) for key, value in body["errors"].items()), body
    assert _state(waslah_emulator) == before


BAD_CONTROL = [
    ("seed", {"time_scale": "fast"}, "time_scale"),
    ("seed", {"time_scale": 0}, "time_scale"),
    ("seed", {"time_scale": True}, "time_scale"),
    ("seed", {"rate_window_seconds": [60]}, "rate_window_seconds"),
    ("seed", {"rate_limit_reset_header_always": "yes"}, "rate_limit_reset_header_always"),
    ("seed", {"random_seed": 1.5}, "random_seed"),
    ("seed", {"webhook_max_attempts": 0}, "webhook_max_attempts"),
    ("seed", {"webhook_timeout": -1}, "webhook_timeout"),
    ("seed", {"unreachable": "628999*"}, "unreachable"),
    ("seed", {"unreachable": [1]}, "unreachable"),
    ("seed", {"plan_limits": {"pro": "many"}}, "plan_limits"),
    ("seed", {"plan_limits": {"platinum": 10}}, "plan_limits"),
    ("seed", {"plan_limits": []}, "plan_limits"),
    ("seed", {"plan_features": {"Webhooks": "pro"}}, "plan_features"),
    ("seed", {"plan_features": {"Webhooks": ["gold"]}}, "plan_features"),
    ("seed", {"lifecycle": {"sent": -1}}, "lifecycle"),
    ("seed", {"lifecycle": {"sent": "soon"}}, "lifecycle"),
    ("seed", {"lifecycle": {"eaten": 1}}, "lifecycle"),
    ("seed", {"users": {"id": 1}}, "users"),
    ("seed", {"users": [{"id": "x"}]}, "users"),
    ("seed", {"users": [{"id": 1, "plan": "gold"}]}, "users"),
    ("seed", {"users": [[1]]}, "users"),
    ("seed", {"api_keys": [{"user_id": 1}]}, "api_keys"),
    ("seed", {"api_keys": [{"key": ["k"]}]}, "api_keys"),
    ("seed", {"api_keys": [{"key": "wsl_x_1234567890", "scopes": "messages:send"}]}, "api_keys"),
    ("seed", {"api_keys": [{"key": "wsl_x_1234567890", "expires_at": "tomorrow"}]}, "api_keys"),
    ("seed", {"api_keys": [{"key": "wsl_x_1234567890", "expires_at": 1e999}]}, "api_keys"),
    ("seed", {"api_keys": [{"key": "wsl_x_1234567890", "revoked": "no"}]}, "api_keys"),
    ("seed", {"instances": [{"key": "bad key!"}]}, "instances"),
    ("seed", {"instances": [{"key": "x", "status": 3}]}, "instances"),
    ("seed", {"instances": [{"key": "x", "user_id": None}]}, "instances"),
    ("seed", {"time_sclae": 0.1}, "time_sclae"),
    ("seed", [1, 2], "body"),
    ("faults", {"status": 0}, "status"),
    ("faults", {"status": 99999}, "status"),
    ("faults", {"status": 100}, "status"),
    ("faults", {"status": -500}, "status"),
    ("faults", {"status": 200}, "status"),
    ("faults", {"status": 204}, "status"),
    ("faults", {"status": 304}, "status"),
    ("faults", {"status": "500"}, "status"),
    ("faults", {"status": 500.5}, "status"),
    ("faults", {"count": 0}, "count"),
    ("faults", {"count": -1}, "count"),
    ("faults", {"count": 1.5}, "count"),
    ("faults", {"rate": 0}, "rate"),
    ("faults", {"rate": 1.5}, "rate"),
    ("faults", {"rate": "often"}, "rate"),
    ("faults", {"latency": -1}, "latency"),
    ("faults", {"latency": "slow"}, "latency"),
    ("faults", {"route": ["*"]}, "route"),
    ("faults", {"drop_connection": "yes"}, "drop_connection"),
    ("faults", {"status": 502, "drop_connection": True}, "status"),
    ("faults", {"drop_connection": True, "lose_response": True}, "drop_connection"),
    ("faults", {"answer_late": True}, "latency"),
    ("faults", {"garbage": True, "body": "xml"}, "body"),
    ("faults", {"status": 503, "body": "html"}, "body"),
    ("faults", {"retry_after": 3}, "retry_after"),
    ("faults", {"statuss": 500}, "statuss"),
    ("webhooks", {"url": "http://127.0.0.1:1/h", "secret": "s", "user_id": "abc"}, "user_id"),
    ("webhooks", {"url": "http://127.0.0.1:1/h", "secret": "s", "user_id": 99}, "user_id"),
    ("webhooks", {"url": ["x"], "secret": "s"}, "url"),
    ("webhooks", {"url": "not a url", "secret": "s"}, "url"),
    ("webhooks", {"url": "http://127.0.0.1:1/h", "secret": 5}, "secret"),
    ("inbound", {"instance_key": ["demo"], "from": "081234567890"}, "instance_key"),
    ("inbound", {"from": "081234567890", "body": 5}, "body"),
    ("inbound", {"from": "081234567890", "lid": "yes"}, "lid"),
    ("inbound", {"from": "081234567890", "message_type": ["text"]}, "message_type"),
    ("inbound", {"from": {"n": 1}}, "from"),
]


@pytest.mark.parametrize(("route", "payload", "field"), BAD_CONTROL)
def test_bad_control_input_is_422_naming_the_field_and_changes_nothing(
    waslah_emulator: EmulatorHandle, route: str, payload: Any, field: str
) -> None:
    waslah_emulator.register_webhook("http://127.0.0.1:9/hook", "whsec_x")  # something to keep
    before = _state(waslah_emulator)
    raw = json.dumps(payload).encode()  # with Infinity/NaN tokens, which httpx's json= refuses to send
    response = httpx.post(f"{waslah_emulator.origin}/_emulator/{route}", content=raw)
    body = _envelope(response, 422)
    assert body["error"] == "validation_failed"
    named = [key for key in body["errors"] if key == field or key.startswith((f"{field}.", f"{field}["))]
    assert named, body
    assert all(isinstance(m, str) and m for messages in body["errors"].values() for m in messages)
    assert _state(waslah_emulator) == before


def test_nan_time_scale_attempt_leaves_messages_moving(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    httpx.post(f"{waslah_emulator.origin}/_emulator/seed", content=b'{"time_scale": NaN}')
    message_id = api.post("/messages/text", json=SEND_TEXT).json()["data"]["id"]
    wait_until(lambda: api.get(f"/messages/{message_id}").json()["data"]["status"] == "read", timeout=5)


def test_get_seed_round_trips(waslah_emulator: EmulatorHandle) -> None:
    seed = waslah_emulator.current_seed()
    del seed["api_keys"]  # shown by prefix only
    before = _state(waslah_emulator)
    waslah_emulator.seed(**seed)
    assert _state(waslah_emulator) == before


# ---------------------------------------------------------------- faults answer what they say


def test_fault_count_zero_is_refused_and_count_one_fires_once(
    api: httpx.Client, waslah_emulator: EmulatorHandle
) -> None:
    with pytest.raises(RuntimeError, match="422"):
        waslah_emulator.add_fault(route="GET /api/v1/me", status=503, count=0)
    assert api.get("/me").status_code == 200
    waslah_emulator.add_fault(route="GET /api/v1/me", status=503, count=1)
    assert [api.get("/me").status_code for _ in range(3)] == [503, 200, 200]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 418, 422, 429, 500, 502, 503, 504, 599])
def test_every_accepted_fault_status_is_answered(
    api: httpx.Client, waslah_emulator: EmulatorHandle, status: int
) -> None:
    waslah_emulator.add_fault(route="GET /api/v1/me", status=status, count=1)
    response = api.get("/me")
    assert response.status_code == status
    body = response.json()
    assert body["ok"] is False and body["error"] and body["message"]


def test_429_fault_says_when_to_retry(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/text", status=429, retry_after=7, count=1)
    response = api.post("/messages/text", json=SEND_TEXT)
    assert response.status_code == 429 and response.json()["error"] == "too_many_requests"
    assert response.headers["Retry-After"] == "7" and response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time()) + 6
    assert waslah_emulator.ledger() == {}


@pytest.mark.parametrize("kind", ["html", "truncated", "wrong_shape", "empty"])
def test_garbage_fault_processes_then_answers_2xx_garbage(
    api: httpx.Client, waslah_emulator: EmulatorHandle, kind: str
) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/*", garbage=True, body=kind, count=1)
    response = api.post("/messages/text", json=SEND_TEXT)
    assert response.status_code == 202
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    assert not (isinstance(parsed, dict) and parsed.get("ok") is True and isinstance(parsed.get("data"), dict))
    (entry,) = waslah_emulator.ledger()["6281234567890"]
    assert entry["text"] == "Halo dari API"
    (logged,) = waslah_emulator.api_requests("POST")
    assert logged["status"] == 202 and logged["fault"]["kind"] == "garbage"
    assert api.post("/messages/text", json=SEND_TEXT).json()["ok"] is True


def test_garbage_fault_picks_a_kind_at_random(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/text", garbage=True, count=40)
    bodies = {api.post("/messages/text", json=SEND_TEXT).content for _ in range(40)}
    assert len(bodies) >= 3
    assert len(waslah_emulator.ledger()["6281234567890"]) == 40


# ---------------------------------------------------------------- the origin is the emulator's own


def test_check_status_url_ignores_the_host_header(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    response = api.post("/messages/text", json=SEND_TEXT, headers={"Host": "evil.example"})
    assert response.json()["data"]["check_status_url"].startswith(f"{waslah_emulator.origin}/api/v1/messages/")
    bulk = api.post(
        "/messages/bulk",
        json={"instance_key": "demo", "type": "text", "text": "x", "recipients": ["081234567890"]},
        headers={"Host": "evil.example"},
    )
    assert bulk.json()["data"]["check_status_url"].startswith(waslah_emulator.origin)
    upload = api.post("/uploads", files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")}, headers={"Host": "x.y"})
    assert upload.json()["data"]["url"].startswith(f"{waslah_emulator.origin}/storage/")


@pytest.mark.parametrize("host", ["169.254.169.254", "localhost", "10.0.0.1:8080"])
def test_private_media_urls_stay_refused_with_a_forged_host(api: httpx.Client, host: str) -> None:
    response = api.post(
        "/messages/media",
        json={**SEND_TEXT, "type": "image", "url": f"http://{host}/latest/meta-data"},
        headers={"Host": host},
    )
    body = _envelope(response, 422)
    assert "url" in body["errors"]


def test_public_url_setting_sets_the_origin() -> None:
    with InProcessClient(create_app(public_url="https://emu.example/")) as client:
        receipt = client.post("/api/v1/messages/text", json=SEND_TEXT, headers={"Host": "evil.example"})
        assert receipt.json()["data"]["check_status_url"] == "https://emu.example/api/v1/messages/1"


def test_in_process_origin_is_the_transport_address_not_the_host_header() -> None:
    with InProcessClient(create_app()) as client:
        receipt = client.post("/api/v1/messages/text", json=SEND_TEXT, headers={"Host": "evil.example"})
        assert receipt.json()["data"]["check_status_url"] == "http://testserver/api/v1/messages/1"


# ---------------------------------------------------------------- disconnects and late answers (real HTTP)


@pytest.fixture
def quiet_server(caplog: pytest.LogCaptureFixture) -> Iterator[EmulatorServer]:
    """Its own server, so that its log records are this test's alone."""
    with EmulatorServer(time_scale=0.02) as server:
        # uvicorn's loggers do not propagate to the root logger, where caplog listens.
        uvicorn_logger = logging.getLogger("uvicorn.error")
        uvicorn_logger.addHandler(caplog.handler)
        try:
            yield server
        finally:
            uvicorn_logger.removeHandler(caplog.handler)


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]


def test_client_disconnect_mid_body_is_quiet(quiet_server: EmulatorServer, caplog: pytest.LogCaptureFixture) -> None:
    host, port = quiet_server.host, quiet_server.port
    for path, content_type in (
        ("/api/v1/messages/text", "application/json"),
        ("/_emulator/seed", "application/json"),
        ("/api/v1/uploads", "multipart/form-data; boundary=xyz"),
    ):
        with socket.create_connection((host, port)) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wsl_demo_0123456789abcdef\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n--xyz\r\n".encode()
            )
            time.sleep(0.05)
        time.sleep(0.1)
    handle = quiet_server.handle()
    wait_until(lambda: len(handle.requests()) == 2)
    assert [r["status"] for r in handle.requests()] == [None, None]
    assert all("disconnect" in r["note"] for r in handle.requests())
    assert _errors(caplog) == []
    assert handle.ledger() == {}


def test_client_giving_up_during_latency_is_quiet(
    quiet_server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    handle = quiet_server.handle()
    handle.add_fault(route="POST /api/v1/messages/text", status=None, latency=0.4, count=1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{handle.base_url}/messages/text", json=SEND_TEXT, headers=handle.headers, timeout=0.1)
    wait_until(lambda: handle.requests())
    time.sleep(0.1)
    # The old latency fault waits before processing: the client hung up, the send never happened.
    assert handle.ledger() == {}
    assert _errors(caplog) == []


def test_answer_late_processes_first_even_if_the_client_hangs_up(
    quiet_server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    handle = quiet_server.handle()
    handle.add_fault(route="POST /api/v1/messages/text", latency=0.5, answer_late=True, count=1)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{handle.base_url}/messages/text", json=SEND_TEXT, headers=handle.headers, timeout=0.2)
    ledger = handle.ledger()
    assert [e["text"] for e in ledger["6281234567890"]] == ["Halo dari API"]
    wait_until(lambda: handle.requests())
    (logged,) = handle.requests()
    assert logged["status"] == 202 and logged["fault"]["kind"] == "answer_late"
    assert _errors(caplog) == []
    # And a patient client gets the real answer, late.
    handle.add_fault(route="POST /api/v1/messages/text", latency=0.3, answer_late=True, count=1)
    started = time.monotonic()
    response = httpx.post(f"{handle.base_url}/messages/text", json=SEND_TEXT, headers=handle.headers, timeout=5)
    assert response.status_code == 202 and response.json()["data"]["id"] == 2
    assert time.monotonic() - started >= 0.3


def test_soak_of_every_fault_kind_at_a_rate_on_send_routes(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    rate = 0.2 / 7
    route = "POST /api/v1/messages*"
    kinds: list[dict[str, Any]] = [
        {"status": 502},
        {"status": 503},
        {"status": 429, "retry_after": 1},
        {"latency": 0.05, "answer_late": True},
        {"drop_connection": True},
        {"lose_response": True},
        {"garbage": True},
    ]
    for fault in kinds:
        waslah_emulator.add_fault(route=route, rate=rate, **fault)
    sent = 600
    outcomes: dict[str, int] = {}
    for n in range(sent):
        try:
            response = api.post("/messages/text", json={**SEND_TEXT, "text": f"soak {n}"})
            outcome = str(response.status_code)
        except httpx.RemoteProtocolError:
            outcome = "dropped"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    log = waslah_emulator.api_requests("POST")
    assert len(log) == sent
    by_kind: dict[str, int] = {}
    for entry in log:
        if entry["fault"] is not None:
            by_kind[entry["fault"]["kind"]] = by_kind.get(entry["fault"]["kind"], 0) + 1
    assert set(by_kind) == {"status", "answer_late", "drop_connection", "lose_response", "garbage"}
    assert 0.12 * sent <= sum(by_kind.values()) <= 0.28 * sent, by_kind
    queued = [e["text"] for e in waslah_emulator.ledger()["6281234567890"]]
    assert len(queued) == len(set(queued))
    processed = sent - sum(1 for e in log if e["fault"] and e["fault"]["kind"] in ("status", "drop_connection"))
    assert len(queued) == processed
    assert outcomes.get("500", 0) == 0, outcomes
    json.dumps(log)
