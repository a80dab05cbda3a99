"""Faults, webhooks, inbound, the request log and ledger, the CLI and in-process (ASGI) use."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid

import httpx
import pytest

from airflow_provider_waslah.emulator import UNREACHABLE_NUMBER, EmulatorHandle, create_app, wait_until
from airflow_provider_waslah.emulator.app import DroppedConnection
from airflow_provider_waslah.webhooks import SIGNATURE_HEADERS, verify_signature
from tests.emulator.conftest import WebhookReceiver

SEND_TEXT = {"instance_key": "demo", "to": "081234567890", "text": "Halo dari API"}
SECRET = "whsec_test_secret"


@pytest.mark.parametrize("status", [500, 502])
def test_status_faults(api: httpx.Client, waslah_emulator: EmulatorHandle, status: int) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/text", status=status, count=1)
    response = api.post("/messages/text", json=SEND_TEXT)
    assert response.status_code == status
    assert response.json()["ok"] is False
    assert waslah_emulator.ledger() == {}
    assert api.post("/messages/text", json=SEND_TEXT).status_code == 202  # count=1 used up
    assert api.get("/me").status_code == 200


def test_faults_match_globs_and_clear(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.add_fault(route="GET /api/v1/instances*", status=503)
    assert api.get("/instances").status_code == 503
    assert api.get("/instances/demo").status_code == 503
    assert api.get("/me").status_code == 200
    waslah_emulator.clear_faults()
    assert api.get("/instances").status_code == 200


def test_drop_connection_does_not_process(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/text", drop_connection=True, count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/messages/text", json=SEND_TEXT)
    assert waslah_emulator.ledger() == {}
    log = waslah_emulator.requests()
    assert log[-1]["path"] == "/api/v1/messages/text" and log[-1]["status"] is None


def test_lose_response_processes_then_drops(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.add_fault(route="POST /api/v1/messages/*", lose_response=True, count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/messages/text", json=SEND_TEXT)
    ledger = waslah_emulator.ledger()
    assert list(ledger) == ["6281234567890"] and len(ledger["6281234567890"]) == 1
    assert "response lost" in waslah_emulator.requests()[-1]["note"]


def test_latency_fault(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.add_fault(route="GET /api/v1/me", status=None, latency=0.5, count=1)
    with pytest.raises(httpx.ReadTimeout):
        api.get("/me", timeout=0.2)
    assert api.get("/me").status_code == 200
    # The timed-out request is still answered by the server (after its latency) and logged.
    wait_until(lambda: [r["status"] for r in waslah_emulator.api_requests("GET", "/api/v1/me")] == [200, 200])


def test_request_log_and_ledger(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    api.post("/messages/text", json=SEND_TEXT)
    api.post(
        "/messages/media",
        json={**SEND_TEXT, "type": "document", "url": "https://e.com/a.pdf", "filename": "a.pdf", "caption": "Invoice"},
    )
    httpx.get(f"{waslah_emulator.base_url}/me", headers={"X-API-Key": "wsl_wrong_key_value"})
    log = waslah_emulator.requests()
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("POST", "/api/v1/messages/text", 202),
        ("POST", "/api/v1/messages/media", 202),
        ("GET", "/api/v1/me", 401),
    ]
    assert log[0]["api_key_prefix"] == "wsl_demo_012"
    assert waslah_emulator.api_key not in json.dumps(log)
    entries = waslah_emulator.ledger()["6281234567890"]
    assert [(e["type"], e["text"], e["filename"], e["caption"]) for e in entries] == [
        ("text", "Halo dari API", None, None),
        ("document", None, "a.pdf", "Invoice"),
    ]
    assert set(entries[0]) == {
        "message_id",
        "type",
        "text",
        "media_url",
        "filename",
        "caption",
        "status",
        "error_message",
        "broadcast_id",
        "scheduled_at",
        "created_at",
    }


def test_reset_restores_the_seed(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.seed(instances=[{"key": "demo", "user_id": 1, "status": "disconnected"}])
    api.post("/messages/text", json=SEND_TEXT)
    waslah_emulator.add_fault(route="*", status=500)
    waslah_emulator.reset()
    assert waslah_emulator.ledger() == {} and waslah_emulator.requests() == []
    assert api.post("/messages/text", json=SEND_TEXT).status_code == 202


def _verified(receiver: WebhookReceiver, event: str) -> list[dict[str, object]]:
    result = []
    for headers, body in receiver.events(event):
        verified = verify_signature(body, headers, SECRET)
        signatures = {headers[name] for name in SIGNATURE_HEADERS}
        assert len(signatures) == 1
        assert headers["User-Agent"] == "Waslah-Webhook/1.0"
        assert headers["X-Waslah-Event"] == event
        uuid.UUID(headers["X-Waslah-Event-Id"])
        assert verified.event == event
        result.append(verified.data)
    return result


def test_inbound_from_lid_fires_message_received(
    api: httpx.Client, waslah_emulator: EmulatorHandle, receiver: WebhookReceiver
) -> None:
    waslah_emulator.register_webhook(receiver.url, SECRET)
    inbound = waslah_emulator.inbound("081234567890", "Halo, info produk", lid=True)
    assert inbound["direction"] == "inbound" and inbound["remote_jid"].endswith("@lid")
    assert api.get(f"/messages/{inbound['id']}").json()["data"]["body"] == "Halo, info produk"
    wait_until(lambda: receiver.events("message.received"))
    (data,) = _verified(receiver, "message.received")
    assert data["remote_jid"] == inbound["remote_jid"]
    assert data["from"] == "6281234567890"
    assert data["body"] == "Halo, info produk" and data["message_type"] == "text"
    assert {"message_id", "instance_key", "received_at"} <= set(data)
    reply = api.post("/messages/text", json={**SEND_TEXT, "to": data["remote_jid"]})
    assert reply.status_code == 202 and reply.json()["data"]["to"] == inbound["remote_jid"]


def test_outbound_events_and_retry(
    api: httpx.Client, waslah_emulator: EmulatorHandle, receiver: WebhookReceiver
) -> None:
    receiver.fail_first = 1
    waslah_emulator.register_webhook(receiver.url, SECRET)
    message_id = api.post("/messages/text", json=SEND_TEXT).json()["data"]["id"]
    wait_until(lambda: len(receiver.events("message.status")) >= 2)
    sent = _verified(receiver, "message.sent")
    assert len(sent) == 2  # first delivery answered 500, then retried
    assert sent[0] == sent[1] and sent[0]["message_id"] == message_id and sent[0]["status"] == "sent"
    first, second = receiver.events("message.sent")
    assert first[0]["X-Waslah-Event-Id"] == second[0]["X-Waslah-Event-Id"]
    statuses = [d["status"] for d in _verified(receiver, "message.status")]
    assert statuses == ["delivered", "read"]
    deliveries = waslah_emulator.webhook_deliveries()
    retried = next(d for d in deliveries if d["event"] == "message.sent")
    assert retried["status"] == "delivered" and retried["attempt_count"] == 2
    assert retried["attempts"][0]["status_code"] == 500


def test_failed_message_fires_status_failed(
    api: httpx.Client, waslah_emulator: EmulatorHandle, receiver: WebhookReceiver
) -> None:
    waslah_emulator.register_webhook(receiver.url, SECRET)
    api.post("/messages/text", json={**SEND_TEXT, "to": UNREACHABLE_NUMBER})
    wait_until(lambda: receiver.events("message.status"))
    (data,) = _verified(receiver, "message.status")
    assert data["status"] == "failed" and "tidak terdaftar" in str(data["error_message"])


def test_airflow_connection(waslah_emulator: EmulatorHandle) -> None:
    conn = json.loads(waslah_emulator.airflow_connection(timeout=5))
    assert conn == {
        "conn_type": "waslah",
        "host": waslah_emulator.base_url,
        "password": waslah_emulator.api_key,
        "extra": {"timeout": 5},
    }


def test_cli_serves_and_stops(tmp_path: object) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_waslah.emulator", "--port", "0", "--time-scale", "0.02"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        second = process.stdout.readline()
        assert first.startswith("Waslah emulator listening on http://127.0.0.1:"), first
        base_url = first.rsplit(" ", 1)[1].strip()
        assert base_url.endswith("/api/v1")
        api_key = second.split(": ", 1)[1].strip()
        assert api_key == "wsl_demo_0123456789abcdef"
        response = httpx.get(f"{base_url}/me", headers={"Authorization": f"Bearer {api_key}"})
        assert response.status_code == 200 and response.json()["data"]["user"]["name"] == "Demo User"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_in_process_asgi() -> None:
    app = create_app(time_scale=0.02)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": "Bearer wsl_demo_0123456789abcdef"}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1", headers=headers) as c:
            assert (await c.get("/me")).json()["data"]["api_key"]["prefix"] == "wsl_demo_012"
            receipt = (await c.post("/messages/text", json=SEND_TEXT)).json()["data"]
            assert receipt["check_status_url"] == f"http://testserver/api/v1/messages/{receipt['id']}"
            assert (await c.get("/instances/offline")).json()["data"]["status"] == "disconnected"
            await c.post(
                "http://testserver/_emulator/faults", json={"route": "GET /api/v1/me", "drop_connection": True}
            )
            with pytest.raises(DroppedConnection):
                await c.get("/me")
        assert app.state.backend.outbound_messages()[0].body == "Halo dari API"
    finally:
        app.state.workers.stop()


def test_webhooks_need_basic_plan(waslah_emulator: EmulatorHandle, receiver: WebhookReceiver) -> None:
    waslah_emulator.seed(users=[{"id": 1, "plan": "free"}])
    waslah_emulator.register_webhook(receiver.url, SECRET)
    waslah_emulator.inbound("081234567890", "Halo")
    (delivery,) = waslah_emulator.webhook_deliveries()
    assert delivery["status"] == "skipped" and delivery["event"] == "message.received"
    waslah_emulator.seed(users=[{"id": 1, "plan": "basic"}])
    waslah_emulator.inbound("081234567890", "Halo lagi")
    wait_until(lambda: receiver.events("message.received"))
    assert len(receiver.events()) == 1
