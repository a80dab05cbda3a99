"""Pre-flight validation: every rule fails before any request, naming the field and the rule.

Each bad input goes through a real client pointed at the emulator over HTTP; the emulator's
request log must stay empty, proving nothing was sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client.client import WaslahClient
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.validation import MAX_UPLOAD_BYTES, check_media_url, normalize_recipient
from tests.client.conftest import api_requests

NOW = datetime.now(timezone.utc)
OK = {"instance_key": "demo", "to": "081234567890"}
PUBLIC = "https://cdn.example.com/promo.jpg"


def text(**kw: Any) -> Callable[[WaslahClient], Any]:
    return lambda c: c.send_text(**{**OK, "text": "Halo", **kw})


def media(**kw: Any) -> Callable[[WaslahClient], Any]:
    return lambda c: c.send_media(**{**OK, "type": "image", "url": PUBLIC, **kw})


def unified(**kw: Any) -> Callable[[WaslahClient], Any]:
    return lambda c: c.send_message(**{**OK, **kw})


def bulk(**kw: Any) -> Callable[[WaslahClient], Any]:
    base = {"instance_key": "demo", "recipients": ["081234567890", "081234567891"], "text": "Promo"}
    return lambda c: c.send_bulk(**{**base, **kw})


BAD_INPUTS = [
    # phone numbers and JIDs
    ("to-too-short", text(to="081234"), "to", "must have 8-15 digits, has 7"),
    ("to-too-long", text(to="+62 8123 4567 8901 23"), "to", "must have 8-15 digits, has 16"),
    ("to-letters", text(to="0812-ABC-7890"), "to", "is not a phone number"),
    ("to-empty", text(to="   "), "to", "must not be empty"),
    ("to-none", text(to=None), "to", "must be a phone number or a WhatsApp JID, got NoneType"),
    ("to-bool", text(to=True), "to", "got bool"),
    ("to-jid-bad-domain", text(to="6281234567890@example.com"), "to", "must end with one of @s.whatsapp.net"),
    (
        "to-jid-bad-local",
        text(to="abc@s.whatsapp.net"),
        "to",
        "the part before '@' must be a phone number in international form",
    ),
    ("to-jid-double-at", text(to="62812@lid@g.us"), "to", "must end with one of"),
    ("instance-key", text(instance_key="demo key!"), "instance_key", "letters, digits, '-' or '_'"),
    # text and caption lengths
    ("text-4001", text(text="x" * 4001), "text", "must be at most 4000 characters, got 4001"),
    ("text-empty", text(text="  "), "text", "must not be empty"),
    ("text-not-str", text(text=42), "text", "must be a string, got int"),
    ("caption-1025", media(caption="c" * 1025), "caption", "must be at most 1024 characters, got 1025"),
    # media URLs
    (
        "url-2049",
        media(url="https://cdn.example.com/" + "a" * 2025),
        "url",
        "must be at most 2048 characters, got 2049",
    ),
    ("url-localhost", media(url="http://localhost/a.jpg"), "url", "host 'localhost' is localhost or a private address"),
    ("url-loopback", media(url="http://127.0.0.2/a.jpg"), "url", "is localhost or a private address"),
    ("url-10.x", media(url="http://10.1.2.3/a.jpg"), "url", "host '10.1.2.3' is localhost or a private address"),
    ("url-192.168", media(url="https://192.168.0.10/a.jpg"), "url", "is localhost or a private address"),
    ("url-ipv6-loopback", media(url="http://[::1]/a.jpg"), "url", "is localhost or a private address"),
    ("url-ipv4-shorthand", media(url="http://127.1/a.jpg"), "url", "host '127.1' is localhost or a private address"),
    ("url-ipv4-decimal", media(url="http://2130706433/a.jpg"), "url", "is localhost or a private address"),
    ("url-ipv4-hex", media(url="http://0x7f000001/a.jpg"), "url", "is localhost or a private address"),
    ("url-ipv4-octal", media(url="http://0177.0.0.1/a.jpg"), "url", "is localhost or a private address"),
    ("url-ipv4-short-private", media(url="http://10.1/a.jpg"), "url", "is localhost or a private address"),
    ("url-localhost-subdomain", media(url="http://api.localhost/a.jpg"), "url", "is localhost or a private address"),
    ("url-link-local", media(url="http://169.254.169.254/latest"), "url", "is localhost or a private address"),
    ("url-file", media(url="file:///etc/passwd"), "url", "must be an absolute http(s) URL"),
    ("url-ftp", media(url="ftp://cdn.example.com/a.jpg"), "url", "must be an absolute http(s) URL"),
    ("url-relative", media(url="/a.jpg"), "url", "must be an absolute http(s) URL"),
    ("url-empty", media(url=""), "url", "is required and must be a URL string"),
    ("unified-localhost", unified(url="http://localhost:8080/x.png"), "url", "localhost or a private address"),
    # type enum
    ("type-sticker", media(type="sticker"), "type", "must be one of image, document, video, audio, got 'sticker'"),
    ("type-text-on-media", media(type="text"), "type", "must be one of image, document, video, audio"),
    ("unified-type-no-url", unified(type="document"), "url", "is required when `type` is given"),
    ("unified-nothing", unified(), "text", "is required: give `text`, or a `url`"),
    # scheduled_at
    ("scheduled-naive", text(scheduled_at=datetime(2030, 1, 1, 9)), "scheduled_at", "must be timezone-aware"),
    ("scheduled-naive-str", text(scheduled_at="2030-01-01T09:00:00"), "scheduled_at", "must be timezone-aware"),
    (
        "scheduled-10s",
        text(scheduled_at=NOW + timedelta(seconds=10)),
        "scheduled_at",
        "at least 30 seconds in the future",
    ),
    (
        "scheduled-past",
        media(scheduled_at=NOW - timedelta(days=1)),
        "scheduled_at",
        "at least 30 seconds in the future",
    ),
    (
        "scheduled-garbage",
        text(scheduled_at="next tuesday"),
        "scheduled_at",
        "must be an ISO 8601 datetime, got 'next tuesday'",
    ),
    ("scheduled-int", text(scheduled_at=1700000000), "scheduled_at", "must be a datetime or ISO 8601 string, got int"),
    # broadcast delays
    ("delay-min-negative", bulk(delay_min_sec=-1), "delay_min_sec", "must be between 0 and 300 seconds, got -1"),
    ("delay-max-301", bulk(delay_max_sec=301), "delay_max_sec", "must be between 0 and 300 seconds, got 301"),
    (
        "delay-min-gt-max",
        bulk(delay_min_sec=10, delay_max_sec=5),
        "delay_min_sec",
        "must not exceed delay_max_sec (10 > 5)",
    ),
    ("delay-str", bulk(delay_min_sec="3"), "delay_min_sec", "must be an integer number of seconds, got '3'"),
    ("delay-float", bulk(delay_max_sec=2.5), "delay_max_sec", "must be an integer number of seconds"),
    # broadcasts
    (
        "bulk-101",
        bulk(recipients=[f"0812{n:08d}" for n in range(101)]),
        "recipients",
        "at most 100 recipients, got 101",
    ),
    (
        "bulk-invalid",
        bulk(recipients=["081234567890", "123", "abc"]),
        "recipients",
        "2 invalid number(s): '123', 'abc'",
    ),
    ("bulk-empty", bulk(recipients=[]), "recipients", "must contain at least one recipient"),
    ("bulk-str", bulk(recipients="081234567890"), "recipients", "must be a list of phone numbers or JIDs"),
    ("bulk-type", bulk(type="sticker"), "type", "must be one of text, image, document, video, audio"),
    ("bulk-text-missing", bulk(text=None), "text", "is required"),
    ("bulk-media-no-url", bulk(type="image", text=None), "url", "is required for a image broadcast"),
    ("bulk-media-private-url", bulk(type="image", url="http://10.0.0.1/a.jpg"), "url", "private address"),
    ("bulk-name-201", bulk(name="n" * 201), "name", "must be at most 200 characters, got 201"),
    # uploads
    (
        "upload-too-big",
        lambda c: c.upload(file=b"x" * (MAX_UPLOAD_BYTES + 1), filename="a.pdf"),
        "file",
        "at most 16777216 bytes (16 MB)",
    ),
    ("upload-empty", lambda c: c.upload(file=b"", filename="a.pdf"), "file", "is empty"),
    (
        "upload-bad-mime",
        lambda c: c.upload(file=b"x", filename="a.bin", mime_type="application/x-foo"),
        "file",
        "MIME type 'application/x-foo' is not accepted",
    ),
    ("upload-exe", lambda c: c.upload(file=b"MZ", filename="setup.exe"), "file", "is not accepted by Waslah uploads"),
    (
        "upload-unguessable",
        lambda c: c.upload(file=b"x", filename="noext"),
        "mime_type",
        "cannot be guessed from 'noext'",
    ),
    ("upload-bytes-no-name", lambda c: c.upload(file=b"x"), "filename", "is required when uploading bytes"),
    (
        "upload-missing-file",
        lambda c: c.upload(file="/nonexistent/report.pdf"),
        "file_path",
        "does not exist or is not a file",
    ),
    # ids
    ("message-id-zero", lambda c: c.get_message(0), "message_id", "must be a positive integer id, got 0"),
    ("message-id-text", lambda c: c.get_message("abc"), "message_id", "must be a positive integer id, got 'abc'"),
    ("message-id-float", lambda c: c.get_message(1.9), "message_id", "must be a positive integer id, got 1.9"),
    ("broadcast-id-bool", lambda c: c.get_broadcast(True), "broadcast_id", "must be a positive integer id, got True"),
    ("instance-key-slash", lambda c: c.get_instance("../me"), "instance_key", "letters, digits"),
]


@pytest.mark.parametrize(("action", "field", "rule"), [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_fails_before_any_request(
    client: WaslahClient, waslah_emulator: Any, action: Callable[[WaslahClient], Any], field: str, rule: str
) -> None:
    with pytest.raises(WaslahInvalidInputError) as caught:
        action(client)
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert str(caught.value).startswith(f"Invalid `{field}`: ")
    assert str(caught.value).endswith("Nothing was sent.")
    assert isinstance(caught.value, ValueError)
    assert api_requests(waslah_emulator) == []


def test_upload_of_a_file_over_16_mb_fails_on_its_size(
    client: WaslahClient, waslah_emulator: Any, tmp_path: Path
) -> None:
    big = tmp_path / "video.mp4"
    with big.open("wb") as handle:  # sparse: 16 MB + 1 byte without writing them
        handle.truncate(MAX_UPLOAD_BYTES + 1)
    with pytest.raises(WaslahInvalidInputError) as caught:
        client.upload(file=big)
    assert caught.value.field == "file_path"
    assert f"is {MAX_UPLOAD_BYTES + 1} bytes" in caught.value.rule
    assert api_requests(waslah_emulator) == []


def test_a_directory_is_not_an_upload(client: WaslahClient, waslah_emulator: Any, tmp_path: Path) -> None:
    with pytest.raises(WaslahInvalidInputError, match="does not exist or is not a file") as caught:
        client.upload(file=tmp_path)
    assert caught.value.field == "file_path"
    assert api_requests(waslah_emulator) == []


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("081234567890", "6281234567890"),
        ("0812-3456-7890", "6281234567890"),
        ("+62 812 3456 7890", "6281234567890"),
        ("(0812) 3456.7890", "6281234567890"),
        ("6281234567890", "6281234567890"),
        (6281234567890, "6281234567890"),
        ("12345678", "12345678"),
        ("123456789012345", "123456789012345"),
        ("6281234567890@s.whatsapp.net", "6281234567890@s.whatsapp.net"),
        ("123456789012345@lid", "123456789012345@lid"),
        ("120363012345678901@g.us", "120363012345678901@g.us"),
    ],
)
def test_recipients_are_normalised_or_kept_as_jids(given: object, sent: str) -> None:
    assert normalize_recipient(given) == sent
    assert calls.send_text(instance_key="demo", to=given, text="Hi").json == {  # type: ignore[arg-type]
        "instance_key": "demo",
        "to": sent,
        "text": "Hi",
    }


def test_bulk_recipients_are_normalised_and_deduplicated() -> None:
    call = calls.send_bulk(
        instance_key="demo", recipients=["081234567890", "+6281234567890", "62812 3456 7891"], text="Promo"
    )
    assert call.json is not None
    assert call.json["recipients"] == ["6281234567890", "6281234567891"]


@pytest.mark.parametrize(
    "url", ["https://cdn.example.com/a.jpg", "http://1.1.1.1/a.jpg", "https://8.8.8.8:8443/a.pdf", "https://cafe/a.jpg"]
)
def test_public_urls_pass(url: str) -> None:
    call = calls.send_media(instance_key="demo", to="081234567890", type="image", url=url)
    assert call.media_urls == (("url", url),)
    assert check_media_url(url) == url


def test_limits_are_inclusive(client: WaslahClient, waslah_emulator: Any) -> None:
    """The largest valid values pass validation and are accepted by the emulator."""
    client.send_text(**OK, text="x" * 4000, scheduled_at=NOW + timedelta(minutes=5))
    client.send_media(**OK, type="image", url="https://cdn.example.com/" + "a" * 2024, caption="c" * 1024)
    client.send_bulk(
        instance_key="demo",
        recipients=[f"0812{n:08d}" for n in range(100)],
        text="Promo",
        name="n" * 200,
        delay_min_sec=0,
        delay_max_sec=300,
    )
    statuses = [entry["status"] for entry in api_requests(waslah_emulator)]
    assert statuses == [202, 202, 202]
