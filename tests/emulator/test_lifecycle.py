"""Message and broadcast life cycles, rate limits and uploads over real HTTP."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx

from airflow_provider_waslah.emulator import EmulatorHandle, unreachable_number, wait_until

SEND_TEXT = {"instance_key": "demo", "to": "081234567890", "text": "Halo dari API"}


def test_message_moves_pending_sent_delivered_read(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.seed(time_scale=0.1)  # sent after 0.1 s, delivered 0.3 s, read 0.6 s
    message_id = api.post("/messages/text", json=SEND_TEXT).json()["data"]["id"]
    seen: list[str] = []
    deadline = time.monotonic() + 5
    data: dict[str, object] = {}
    while time.monotonic() < deadline:
        data = api.get(f"/messages/{message_id}").json()["data"]
        if not seen or seen[-1] != data["status"]:
            seen.append(str(data["status"]))
        if data["status"] == "read":
            break
        time.sleep(0.02)
    assert seen == ["pending", "sent", "delivered", "read"]
    assert str(data["provider_message_id"]).startswith("BAE5")
    assert data["sent_at"] is not None and data["error_message"] is None
    assert data["direction"] == "outbound" and data["remote_jid"] == "6281234567890@s.whatsapp.net"
    expected = {
        "id",
        "instance_key",
        "direction",
        "status",
        "message_type",
        "phone_number",
        "remote_jid",
        "body",
        "media_url",
        "media_filename",
        "media_mime_type",
        "provider_message_id",
        "error_message",
        "sent_at",
        "received_at",
        "scheduled_at",
        "created_at",
        "updated_at",
    }
    assert expected <= set(data)


def test_unreachable_recipient_fails_with_error_message(api: httpx.Client) -> None:
    message_id = api.post("/messages/text", json={**SEND_TEXT, "to": "0899912345678"}).json()["data"]["id"]
    data = wait_until(lambda: (d := api.get(f"/messages/{message_id}").json()["data"])["status"] == "failed" and d)
    assert data["error_message"] == "Nomor 62899912345678 tidak terdaftar di WhatsApp"
    assert data["provider_message_id"] is None and data["sent_at"] is None


def test_unreachable_rule_is_seedable(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.seed(unreachable=["62812*"])
    message_id = api.post("/messages/text", json=SEND_TEXT).json()["data"]["id"]
    wait_until(lambda: api.get(f"/messages/{message_id}").json()["data"]["status"] == "failed")


def test_scheduled_message_waits_for_its_time(api: httpx.Client) -> None:
    # 60 emulated seconds ahead at time scale 0.02: due after 1.2 real seconds.
    when = datetime.now(timezone(timedelta(hours=7))) + timedelta(seconds=60)
    receipt = api.post("/messages/text", json={**SEND_TEXT, "scheduled_at": when.isoformat()})
    assert receipt.status_code == 202
    data = receipt.json()["data"]
    assert datetime.fromisoformat(data["scheduled_at"]) == when
    time.sleep(0.6)
    assert api.get(f"/messages/{data['id']}").json()["data"]["status"] == "pending"
    wait_until(lambda: api.get(f"/messages/{data['id']}").json()["data"]["status"] == "read", timeout=5)


def test_broadcast_dedupes_drops_invalid_and_completes(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    unreachable = unreachable_number(111)
    recipients = ["0812-3456-7890", "+6281234567890", "6281234567891", "123", "not a number", unreachable]
    response = api.post(
        "/messages/bulk",
        json={
            "instance_key": "demo",
            "name": "Promo Akhir Bulan",
            "type": "text",
            "text": "Halo, ada promo nih!",
            "recipients": recipients,
            "delay_min_sec": 2,
            "delay_max_sec": 2,
        },
    )
    assert response.status_code == 202
    data = response.json()["data"]
    assert data["total"] == 3 and data["pending"] == 3 and data["sent"] == 0 and data["progress_percent"] == 0
    assert data["status"] == "queued"
    assert data["delay_label"] == "2 detik (fixed)"
    assert data["check_status_url"] == f"{waslah_emulator.base_url}/broadcasts/{data['id']}"
    assert data["completed_at"] is None
    progress: set[int] = set()

    def done() -> dict[str, object] | None:
        current = api.get(f"/broadcasts/{data['id']}").json()["data"]
        progress.add(current["progress_percent"])
        return current if current["status"] in ("completed", "failed") else None

    final = wait_until(done)
    assert final["status"] == "completed"
    assert (final["sent"], final["failed"], final["pending"], final["progress_percent"]) == (2, 1, 0, 100)
    assert final["completed_at"] is not None
    assert progress & {33, 66}, progress
    ledger = waslah_emulator.ledger()
    assert set(ledger) == {"6281234567890", "6281234567891", unreachable}
    assert all(len(items) == 1 and items[0]["broadcast_id"] == data["id"] for items in ledger.values())
    assert ledger[unreachable][0]["status"] == "failed"
    listed = api.get("/broadcasts").json()["data"]
    assert [b["id"] for b in listed] == [data["id"]]


def test_broadcast_of_only_unreachable_numbers_fails(api: httpx.Client) -> None:
    data = api.post(
        "/messages/bulk",
        json={
            "instance_key": "demo",
            "type": "image",
            "url": "https://e.com/a.jpg",
            "recipients": [unreachable_number(111), unreachable_number(222)],
            "delay_min_sec": 0,
            "delay_max_sec": 0,
        },
    ).json()["data"]
    final = wait_until(
        lambda: (
            (b := api.get(f"/broadcasts/{data['id']}").json()["data"])["status"] != "queued" and b["pending"] == 0 and b
        )
    )
    assert final["status"] == "failed" and final["failed"] == 2 and final["progress_percent"] == 100


def test_broadcast_rules(api: httpx.Client) -> None:
    base = {"instance_key": "demo", "type": "text", "text": "Hi", "recipients": ["081234567890"]}
    default = api.post("/messages/bulk", json=base).json()["data"]
    assert (default["delay_min_sec"], default["delay_max_sec"], default["delay_label"]) == (3, 8, "3–8 detik")
    cases = [
        ({"recipients": [f"0812345678{i:02d}" for i in range(101)]}, "recipients"),
        ({"recipients": "081234567890"}, "recipients"),
        ({"name": "n" * 201}, "name"),
        ({"type": "sticker"}, "type"),
        ({"text": None}, "text"),
        ({"type": "image", "text": None}, "url"),
        ({"delay_min_sec": 301}, "delay_min_sec"),
        ({"delay_min_sec": 9, "delay_max_sec": 4}, "delay_min_sec"),
    ]
    for change, field in cases:
        response = api.post("/messages/bulk", json={**base, **change})
        assert response.status_code == 422, (change, response.text)
        assert field in response.json()["errors"], (change, response.text)
    response = api.post("/messages/bulk", json={**base, "recipients": ["123", "abc"]})
    assert response.status_code == 422
    assert response.json() == {
        "ok": False,
        "error": "no_valid_recipients",
        "message": "Tidak ada nomor valid (minimal 8 digit, max 15 digit).",
    }
    offline = api.post("/messages/bulk", json={**base, "instance_key": "offline"})
    assert offline.status_code == 409


def test_rate_limit_window_headers_and_429(waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.seed(plan_limits={"pro": 3}, rate_window_seconds=1.5)
    with httpx.Client(base_url=waslah_emulator.base_url, headers=waslah_emulator.headers) as client:
        remaining = []
        for _ in range(3):
            response = client.get("/me")
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Limit"] == "3"
            assert "X-RateLimit-Reset" not in response.headers and "Retry-After" not in response.headers
            remaining.append(response.headers["X-RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]
        # Requests failing auth do not count against the key.
        assert httpx.get(f"{waslah_emulator.base_url}/me", headers={"X-API-Key": "bad"}).status_code == 401
        limited = client.post("/messages/text", json=SEND_TEXT)
        assert limited.status_code == 429
        assert limited.json() == {"ok": False, "error": "too_many_requests", "message": "Too Many Attempts."}
        assert limited.headers["X-RateLimit-Remaining"] == "0"
        assert limited.headers["Retry-After"] in ("1", "2")
        assert abs(int(limited.headers["X-RateLimit-Reset"]) - (time.time() + int(limited.headers["Retry-After"]))) <= 2
        assert waslah_emulator.ledger() == {}
        time.sleep(float(limited.headers["Retry-After"]))
        wait_until(lambda: client.get("/me").status_code == 200, timeout=3)
    waslah_emulator.seed(rate_limit_reset_header_always=True)
    response = httpx.get(f"{waslah_emulator.base_url}/instances", headers=waslah_emulator.headers)
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())


def test_upload_round_trip_and_media_send(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
    response = api.post("/uploads", files={"file": ("kucing.png", content, "image/png")})
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["mime_type"] == "image/png" and data["type"] == "image" and data["size"] == len(content)
    assert data["filename"] == "kucing.png"
    assert data["path"].startswith("uploads/") and data["path"].endswith(".png")
    assert data["url"] == f"{waslah_emulator.origin}/storage/{data['path']}"
    served = httpx.get(data["url"])
    assert served.status_code == 200 and served.content == content
    assert served.headers["content-type"] == "image/png"
    sent = api.post(
        "/messages/media", json={"instance_key": "demo", "to": "081234567890", "type": "image", "url": data["url"]}
    )
    assert sent.status_code == 202, sent.text
    message = api.get(f"/messages/{sent.json()['data']['id']}").json()["data"]
    assert message["media_url"] == data["url"] and message["media_mime_type"] == "image/png"


def test_upload_rules(api: httpx.Client) -> None:
    guessed = api.post("/uploads", files={"file": ("invoice.pdf", b"%PDF-1.4", "application/octet-stream")})
    assert guessed.status_code == 201 and guessed.json()["data"]["type"] == "document"
    assert guessed.json()["data"]["mime_type"] == "application/pdf"
    foo = api.post("/uploads", files={"file": ("x.foo", b"abc", "application/x-foo")})
    assert foo.status_code == 422
    assert foo.json() == {
        "ok": False,
        "error": "unsupported_media_type",
        "message": "MIME type `application/x-foo` tidak didukung. Cek dokumentasi untuk format yang diterima.",
        "mime_type": "application/x-foo",
    }
    missing = api.post("/uploads", files={"other": ("a.txt", b"abc", "text/plain")})
    assert missing.status_code == 422
    assert missing.json() == {
        "ok": False,
        "error": "validation_failed",
        "message": "File tidak valid: The file field is required.",
        "errors": {"file": ["The file field is required."]},
    }
    assert api.post("/uploads", json={"file": "x"}).json()["errors"] == {"file": ["The file field is required."]}
    big = api.post("/uploads", files={"file": ("big.txt", b"a" * (16 * 1024 * 1024 + 1), "text/plain")})
    assert big.status_code == 422 and "file" in big.json()["errors"]
    assert httpx.get(f"{api.base_url}".replace("/api/v1", "") + "/storage/uploads/2026-01/nope.png").status_code == 404
