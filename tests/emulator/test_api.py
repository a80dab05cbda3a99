"""The REST API over real HTTP: auth, scopes, plans, instances, sends, validation, routing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from airflow_provider_waslah.emulator import EmulatorHandle

SEND_TEXT = {"instance_key": "demo", "to": "081234567890", "text": "Halo dari API"}


def _extra_user(emu: EmulatorHandle, plan: str, key: str, scopes: list[str] | None = None, **key_fields: Any) -> None:
    emu.seed(
        users=[{"id": 2, "name": "Other", "email": "other@waslah.local", "plan": plan}],
        api_keys=[
            {
                "key": key,
                "user_id": 2,
                "name": "Other key",
                "scopes": scopes or ["messages:send", "messages:read", "instances:read"],
                **key_fields,
            }
        ],
        instances=[{"key": "other", "user_id": 2, "status": "connected", "phone_number": "6281100000009"}],
    )


def _error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["ok"] is False
    assert body["error"] == error
    assert isinstance(body["message"], str) and body["message"]
    return body


def test_me_reports_key_and_counts_requests(api: httpx.Client) -> None:
    api.get("/me")
    body = api.get("/me").json()
    assert body["ok"] is True
    data = body["data"]
    assert data["user"] == {"id": 1, "name": "Demo User", "email": "demo@waslah.local"}
    key = data["api_key"]
    assert key["prefix"] == "wsl_demo_012"
    assert key["request_count"] == 2
    assert key["last_used_at"].endswith("+00:00")
    assert key["expires_at"] is None
    assert set(key["scopes"]) == {"messages:send", "messages:read", "instances:read", "instances:write"}
    assert "wsl_demo_0123456789abcdef" not in str(body)


def test_x_api_key_header_is_accepted(waslah_emulator: EmulatorHandle) -> None:
    response = httpx.get(f"{waslah_emulator.base_url}/me", headers={"X-API-Key": waslah_emulator.api_key})
    assert response.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wsl_wrong"}, {"X-API-Key": "nope"}])
def test_missing_or_wrong_key_is_401(waslah_emulator: EmulatorHandle, headers: dict[str, str]) -> None:
    _error(httpx.get(f"{waslah_emulator.base_url}/me", headers=headers), 401, "unauthorized")


def test_revoked_and_expired_keys_are_401(waslah_emulator: EmulatorHandle) -> None:
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    waslah_emulator.seed(
        api_keys=[
            {"key": "wsl_revoked_key_1234", "user_id": 1, "revoked": True},
            {"key": "wsl_expired_key_1234", "user_id": 1, "expires_at": past},
        ]
    )
    for key in ("wsl_revoked_key_1234", "wsl_expired_key_1234"):
        response = httpx.get(f"{waslah_emulator.base_url}/me", headers={"Authorization": f"Bearer {key}"})
        _error(response, 401, "unauthorized")
        assert "x-ratelimit-limit" not in response.headers


def test_missing_scope_is_403_forbidden_scope(waslah_emulator: EmulatorHandle) -> None:
    _extra_user(waslah_emulator, "pro", "wsl_readonly_12345", scopes=["messages:read"])
    headers = {"Authorization": "Bearer wsl_readonly_12345"}
    base = waslah_emulator.base_url
    assert httpx.get(f"{base}/me", headers=headers).status_code == 200
    _error(httpx.post(f"{base}/messages/text", headers=headers, json=SEND_TEXT), 403, "forbidden_scope")
    _error(httpx.get(f"{base}/instances", headers=headers), 403, "forbidden_scope")
    _error(httpx.post(f"{base}/uploads", headers=headers, files={"file": ("a.txt", b"x")}), 403, "forbidden_scope")
    assert httpx.get(f"{base}/broadcasts", headers=headers).status_code == 200


def test_free_plan_has_no_rest_access(waslah_emulator: EmulatorHandle) -> None:
    _extra_user(waslah_emulator, "free", "wsl_free_key_12345")
    response = httpx.get(f"{waslah_emulator.base_url}/instances", headers={"X-API-Key": "wsl_free_key_12345"})
    body = _error(response, 403, "plan_feature_required")
    assert body["required_feature"] == "REST API access"
    assert body["active_plan"] == "Free"
    assert body["message"] == "REST API access butuh plan Pro atau lebih tinggi."
    assert response.headers["x-ratelimit-limit"] == "60"


def test_scheduled_at_needs_basic(waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.seed(plan_features={"REST API access": ["free", "basic", "pro", "enterprise"]})
    _extra_user(waslah_emulator, "free", "wsl_free_key_12345")
    when = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
    response = httpx.post(
        f"{waslah_emulator.base_url}/messages/text",
        headers={"X-API-Key": "wsl_free_key_12345"},
        json={**SEND_TEXT, "instance_key": "other", "scheduled_at": when},
    )
    body = _error(response, 403, "plan_feature_required")
    assert body == {
        "ok": False,
        "error": "plan_feature_required",
        "message": "Schedule message butuh plan Basic atau lebih tinggi.",
        "required_feature": "Schedule message",
        "active_plan": "Free",
    }


def test_instances(api: httpx.Client) -> None:
    data = api.get("/instances").json()["data"]
    assert {i["key"]: i["status"] for i in data} == {"demo": "connected", "offline": "disconnected"}
    fields = {
        "id",
        "key",
        "name",
        "status",
        "phone_number",
        "connected_at",
        "last_seen_at",
        "created_at",
        "disconnected_at",
    }
    assert fields <= set(data[0])
    assert api.get("/instances/demo").json()["data"]["phone_number"] == "6281100000001"
    body = _error(api.get("/instances/nope"), 404, "instance_not_found")
    assert "nope" in body["message"]


def test_other_users_instance_is_not_found(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    _extra_user(waslah_emulator, "pro", "wsl_other_key_1234")
    _error(api.get("/instances/other"), 404, "instance_not_found")
    _error(api.post("/messages/text", json={**SEND_TEXT, "instance_key": "other"}), 404, "instance_not_found")


def test_send_text_receipt(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    response = api.post(
        "/messages/text",
        json={"instance_key": "demo", "to": "+62 812-3456-7890", "text": "Halo, ini notifikasi dari sistem kami."},
    )
    assert response.status_code == 202
    data = response.json()["data"]
    assert data["status"] == "pending"
    assert data["to"] == "6281234567890"
    assert data["preview"] == "Halo, ini notifikasi..."
    assert data["scheduled_at"] is None
    assert data["check_status_url"] == f"{waslah_emulator.base_url}/messages/{data['id']}"
    assert datetime.fromisoformat(data["created_at"]).utcoffset() == timedelta(0)
    assert set(data) == {
        "id",
        "status",
        "instance_key",
        "to",
        "preview",
        "scheduled_at",
        "check_status_url",
        "created_at",
    }


def test_send_to_disconnected_instance_is_409(api: httpx.Client) -> None:
    body = _error(
        api.post("/messages/text", json={**SEND_TEXT, "instance_key": "offline"}), 409, "instance_not_connected"
    )
    assert body["instance_status"] == "disconnected"
    assert body["message"] == ("Instance `offline` sedang `disconnected`. Hanya bisa kirim saat status `connected`.")


def test_connecting_instance_is_409(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.seed(instances=[{"key": "demo", "user_id": 1, "status": "connecting"}])
    body = _error(api.post("/messages", json=SEND_TEXT), 409, "instance_not_connected")
    assert body["instance_status"] == "connecting"


def test_unknown_message_is_404_with_documented_message(api: httpx.Client) -> None:
    body = _error(api.get("/messages/99999"), 404, "not_found")
    assert body["message"] == "Message dengan ID `99999` tidak ditemukan atau bukan milik Anda."
    _error(api.get("/broadcasts/424242"), 404, "not_found")


def test_other_users_message_is_404(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    message_id = api.post("/messages/text", json=SEND_TEXT).json()["data"]["id"]
    _extra_user(waslah_emulator, "pro", "wsl_other_key_1234")
    response = httpx.get(
        f"{waslah_emulator.base_url}/messages/{message_id}", headers={"X-API-Key": "wsl_other_key_1234"}
    )
    body = _error(response, 404, "not_found")
    assert body["message"] == f"Message dengan ID `{message_id}` tidak ditemukan atau bukan milik Anda."
    assert api.get(f"/messages/{message_id}").status_code == 200


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/messages/text", {**SEND_TEXT, "text": "x" * 4001}, "text"),
        ("/messages/text", {**SEND_TEXT, "text": 12}, "text"),
        ("/messages/text", {"instance_key": "demo", "to": "081234567890"}, "text"),
        ("/messages/text", {"to": "081234567890", "text": "hi"}, "instance_key"),
        ("/messages/text", {"instance_key": "demo", "text": "hi"}, "to"),
        ("/messages/text", {**SEND_TEXT, "to": "0812"}, "to"),
        ("/messages/text", {**SEND_TEXT, "to": ["081234567890"]}, "to"),
        ("/messages/text", {**SEND_TEXT, "to": "123@example.com"}, "to"),
        ("/messages/text", {**SEND_TEXT, "scheduled_at": "tomorrow"}, "scheduled_at"),
        ("/messages/text", {**SEND_TEXT, "scheduled_at": "2020-01-01T00:00:00+07:00"}, "scheduled_at"),
        (
            "/messages/media",
            {**SEND_TEXT, "type": "image", "url": "https://e.com/a.jpg", "caption": "c" * 1025},
            "caption",
        ),
        ("/messages/media", {**SEND_TEXT, "type": "image", "url": "https://e.com/" + "a" * 2048}, "url"),
        ("/messages/media", {**SEND_TEXT, "type": "sticker", "url": "https://e.com/a.webp"}, "type"),
        ("/messages/media", {**SEND_TEXT, "type": "image", "url": "http://localhost/a.jpg"}, "url"),
        ("/messages/media", {**SEND_TEXT, "type": "image", "url": "http://10.1.2.3/a.jpg"}, "url"),
        ("/messages/media", {**SEND_TEXT, "type": "image", "url": "http://127.0.0.1:1/a.jpg"}, "url"),
        ("/messages/media", {**SEND_TEXT, "type": "image", "url": "ftp://e.com/a.jpg"}, "url"),
        ("/messages/media", {**SEND_TEXT, "url": "https://e.com/a.jpg"}, "type"),
        ("/messages/media", {**SEND_TEXT, "type": "document"}, "url"),
        ("/messages", {**SEND_TEXT, "type": "document"}, "url"),
        ("/messages", {"instance_key": "demo", "to": "081234567890"}, "text"),
    ],
)
def test_validation_failed_per_field(api: httpx.Client, path: str, payload: dict[str, Any], field: str) -> None:
    body = _error(api.post(path, json=payload), 422, "validation_failed")
    assert body["message"] == "The given data was invalid."
    assert isinstance(body["errors"][field], list) and body["errors"][field][0]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_malformed_bodies_are_422(api: httpx.Client, raw: bytes) -> None:
    response = api.post("/messages/text", content=raw, headers={"Content-Type": "application/json"})
    body = _error(response, 422, "validation_failed")
    assert "body" in body["errors"]


def test_empty_body_lists_required_fields(api: httpx.Client) -> None:
    body = _error(api.post("/messages/text"), 422, "validation_failed")
    assert set(body["errors"]) == {"instance_key", "to", "text"}
    assert body["errors"]["to"] == ["The to field is required."]


def test_unified_routing_table(api: httpx.Client) -> None:
    text = api.post("/messages", json=SEND_TEXT)
    assert text.status_code == 202 and text.json()["data"]["preview"] == "Halo dari API"
    image = api.post("/messages", json={**SEND_TEXT, "text": None, "url": "https://picsum.photos/600/400"})
    assert image.status_code == 202
    assert image.json()["data"]["type"] == "image"
    assert image.json()["data"]["media_url"] == "https://picsum.photos/600/400"
    alias = api.post(
        "/messages",
        json={"instance_key": "demo", "to": "081234567890", "media_url": "https://e.com/a.mp4", "caption": "Foto"},
    )
    assert alias.json()["data"]["type"] == "image" and alias.json()["data"]["caption"] == "Foto"
    doc = api.post(
        "/messages",
        json={
            "instance_key": "demo",
            "to": "081234567890",
            "type": "document",
            "url": "https://example.com/invoice.pdf",
            "filename": "Invoice.pdf",
        },
    )
    assert doc.status_code == 202 and doc.json()["data"]["type"] == "document"
    message = api.get(f"/messages/{doc.json()['data']['id']}").json()["data"]
    assert message["message_type"] == "document"
    assert message["media_filename"] == "Invoice.pdf"
    assert message["media_mime_type"] == "application/pdf"


def test_media_receipt_fields(api: httpx.Client) -> None:
    response = api.post(
        "/messages/media",
        json={**SEND_TEXT, "type": "image", "url": "https://picsum.photos/600/400", "caption": "Foto promo bulan ini"},
    )
    assert response.status_code == 202
    data = response.json()["data"]
    assert set(data) == {
        "id",
        "status",
        "instance_key",
        "to",
        "type",
        "media_url",
        "caption",
        "scheduled_at",
        "check_status_url",
        "created_at",
    }
    assert data["caption"] == "Foto promo bulan ini"


def test_full_jids_are_kept(api: httpx.Client) -> None:
    for jid in ("6281234567890@s.whatsapp.net", "123456789012345@lid", "120363000000000001@g.us"):
        data = api.post("/messages/text", json={**SEND_TEXT, "to": jid}).json()["data"]
        assert data["to"] == jid
        assert api.get(f"/messages/{data['id']}").json()["data"]["remote_jid"] == jid


def test_emulator_errors_use_the_envelope(api: httpx.Client) -> None:
    _error(api.get("/nope"), 404, "not_found")
    _error(api.delete("/me"), 405, "method_not_allowed")
    _error(api.post("/messages/text", content=b"x" * (21 * 1024 * 1024)), 413, "payload_too_large")
    _error(api.get("/messages/abc"), 404, "not_found")
