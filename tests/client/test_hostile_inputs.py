"""Hostile and broken inputs: each ends in the documented error type, never a raw exception.

Unreadable answers go through a real proxy on 127.0.0.1 in front of the emulator (the emulator
acts on the request, the proxy garbles the answer), so the ledger proves a send happened once.
Bad input goes through a real client pointed at the emulator; its request log must stay empty.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest

from airflow_provider_waslah import recipients
from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client import errors as e
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.client import AsyncWaslahClient, WaslahClient
from airflow_provider_waslah.client.validation import (
    check_id,
    check_media_url,
    is_private_host,
    normalize_recipient,
    normalize_recipients,
)
from tests.client.conftest import ManglingProxy, api_requests, fast

MSG = {"instance_key": "demo", "to": "081234567890", "text": "Halo"}
HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>" + b"x" * 5000 + b"</body></html>"

# (id, body, content type) of 2xx answers the client cannot read.
UNREADABLE = [
    ("html-page", HTML, "text/html"),
    ("truncated-json", b'{"ok": true, "data": {"id": 7, "sta', "application/json"),
    ("other-shape", b'{"ok": true, "data": {"foo": 1}}', "application/json"),
    ("a-list", b'[{"id": 7, "status": "pending"}]', "application/json"),
    ("empty", b"", "application/json"),
    ("not-utf8", b"\xff\xfe\x00garbage", "application/json"),
    ("error-envelope", b'{"ok": false, "error": "server_error", "message": "oops"}', "application/json"),
    ("data-null", b'{"ok": true, "data": null}', "application/json"),
]


def assert_bounded(error: BaseException) -> None:
    """The message names no raw body longer than ~200 characters."""
    assert "x" * 200 not in str(error)
    assert len(str(error)) < 700


# ---------------------------------------------------------------- 1. unreadable 2xx answers


@pytest.mark.parametrize(("body", "content_type"), [u[1:] for u in UNREADABLE], ids=[u[0] for u in UNREADABLE])
def test_a_send_answered_2xx_with_an_unreadable_body_is_outcome_unknown_and_sent_once(
    waslah_emulator: Any, mangling_proxy: ManglingProxy, body: bytes, content_type: str
) -> None:
    mangling_proxy.mangle("POST /api/v1/messages/text", body, status=202, content_type=content_type, count=5)
    client = fast(WaslahClient(api_key=waslah_emulator.api_key, base_url=mangling_proxy.base_url))
    with client, pytest.raises(e.WaslahSendOutcomeUnknownError) as caught:
        client.send_text(**MSG)
    message = str(caught.value)
    assert "could not be read" in message
    assert "may already have queued" in message and "NOT retried" in message
    assert "before sending again" in message
    assert_bounded(caught.value)
    assert len(api_requests(waslah_emulator, "POST", "/api/v1/messages/text")) == 1
    assert len(waslah_emulator.ledger()["6281234567890"]) == 1  # Waslah did queue it, once


async def test_the_async_client_treats_an_unreadable_send_answer_the_same(
    waslah_emulator: Any, mangling_proxy: ManglingProxy
) -> None:
    mangling_proxy.mangle("POST /api/v1/messages/bulk", HTML, status=202, count=5)
    async with AsyncWaslahClient(api_key=waslah_emulator.api_key, base_url=mangling_proxy.base_url) as client:
        with pytest.raises(e.WaslahSendOutcomeUnknownError, match="could not be read"):
            await fast(client).send_bulk(instance_key="demo", recipients=["081234567890"], text="Promo")
    assert len(api_requests(waslah_emulator, "POST", "/api/v1/messages/bulk")) == 1


def test_an_upload_answered_with_an_unreadable_body_is_outcome_unknown(
    waslah_emulator: Any, mangling_proxy: ManglingProxy
) -> None:
    mangling_proxy.mangle("POST /api/v1/uploads", b'{"ok": true, "data": {"path": 1}}', content_type="application/json")
    client = fast(WaslahClient(api_key=waslah_emulator.api_key, base_url=mangling_proxy.base_url))
    with client, pytest.raises(e.WaslahSendOutcomeUnknownError):
        client.upload(file=b"%PDF-1.4", filename="a.pdf")
    assert len(api_requests(waslah_emulator, "POST", "/api/v1/uploads")) == 1


def test_a_read_answered_2xx_with_an_unreadable_body_is_retried_then_succeeds(
    client: WaslahClient, waslah_emulator: Any
) -> None:
    # The emulator answers 200 with JSON of another shape, twice.
    waslah_emulator.add_fault(route="GET /api/v1/me", garbage=True, body="wrong_shape", count=2)
    assert client.get_me().user.id == 1
    assert len(api_requests(waslah_emulator, "GET", "/api/v1/me")) == 3


@pytest.mark.parametrize(("body", "content_type"), [u[1:] for u in UNREADABLE], ids=[u[0] for u in UNREADABLE])
def test_a_read_that_stays_unreadable_raises_a_response_error_after_the_retries(
    waslah_emulator: Any, mangling_proxy: ManglingProxy, body: bytes, content_type: str
) -> None:
    mangling_proxy.mangle("GET /api/v1/messages/1", body, status=200, content_type=content_type, count=10)
    client = fast(WaslahClient(api_key=waslah_emulator.api_key, base_url=mangling_proxy.base_url, max_retries=2))
    with client, pytest.raises(e.WaslahResponseError) as caught:
        client.get_message(1)
    assert isinstance(caught.value, e.WaslahTransportError)  # transient: sensors and triggers poll again
    assert caught.value.http_status == 200
    assert (caught.value.method, caught.value.path) == ("GET", "/messages/1")
    assert "could not be read" in str(caught.value)
    assert_bounded(caught.value)
    assert len(api_requests(waslah_emulator, "GET", "/api/v1/messages/1")) == 3


@pytest.mark.parametrize(("body", "content_type"), [u[1:] for u in UNREADABLE], ids=[u[0] for u in UNREADABLE])
@pytest.mark.parametrize("is_send", [True, False], ids=["send", "read"])
def test_unreadable_answers_in_process(body: bytes, content_type: str, is_send: bool) -> None:
    """The same table through ``httpx.MockTransport``: exact bytes, exact request counts."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202 if is_send else 200, content=body, headers={"content-type": content_type})

    client = WaslahClient(
        api_key="wsl_test_key_123456", base_url="https://waslah.test/api/v1", transport=httpx.MockTransport(answer)
    )
    fast(client, backoff_base=0.0, backoff_max=0.0)
    expected = e.WaslahSendOutcomeUnknownError if is_send else e.WaslahResponseError
    with client, pytest.raises(expected) as caught:
        client.send_text(**MSG) if is_send else client.get_broadcast(3)
    assert len(seen) == (1 if is_send else 4)
    assert_bounded(caught.value)
    assert caught.value.__cause__ is None or isinstance(caught.value.__cause__, e.WaslahError)


def test_a_redirect_is_not_followed_and_says_so() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"location": "https://waslah.id/api/v2/me"})

    transport = httpx.MockTransport(answer)
    with WaslahClient(api_key="wsl_k_0123456789", base_url="http://waslah.id/api/v1", transport=transport) as client:
        with pytest.raises(e.WaslahResponseError, match="HTTP 301") as caught:
            client.get_me()
        assert "redirect" in str(caught.value)
        with pytest.raises(e.WaslahSendOutcomeUnknownError, match="HTTP 301"):
            client.send_text(**MSG)


def test_response_errors_pickle() -> None:
    import pickle

    error = e.WaslahResponseError("could not be read", method="GET", path="/me", http_status=200)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.http_status, copy.path) == (type(error), str(error), 200, "/me")


# ---------------------------------------------------------------- 3. numbers that are not numbers

BAD_NUMBERS = [
    ("arabic-indic", "٠٨١٢٣٤٥٦٧٨٩٠"),
    ("extended-arabic-indic", "۰۸۱۲۳۴۵۶۷۸۹۰"),
    ("fullwidth", "０８１２３４５６７８９０"),
    ("devanagari", "०८१२३४५६७८९०"),
    ("superscripts", "0812345678²³"),
    ("mixed-fullwidth", "0812３４５６７８９０"),
    ("minus-str", "-81234567890"),
    ("minus-int", -81234567890),
    ("double-plus", "++6281234567890"),
    ("plus-inside", "62+81234567890"),
    ("nbsp", "0812\u00a03456\u00a07890"),
    ("newline-inside", "0812\n34567890"),
    ("huge-int", 10**5000),
    ("float", 6281234567890.0),
    ("bytes", b"081234567890"),
    ("zero-lid", "0@lid"),
    ("empty-lid", "@lid"),
    ("long-lid", "1" * 21 + "@lid"),
    ("leading-zero-lid", "0123456789012345@lid"),
    ("fullwidth-lid", "１２３４５@lid"),
    ("lid-with-colon", "12345:6@lid"),
    ("empty-jid", "@s.whatsapp.net"),
    ("short-jid", "1234567@s.whatsapp.net"),
    ("long-jid", "1234567890123456@s.whatsapp.net"),
    ("local-jid", "081234567890@s.whatsapp.net"),
    ("device-jid", "6281234567890:12@s.whatsapp.net"),
    ("group-5000", "1" * 5000 + "@g.us"),
    ("group-empty", "@g.us"),
    ("group-letters", "abc-def@g.us"),
    ("group-two-dashes", "6281234567890-1589876543-1@g.us"),
    ("group-trailing-dash", "6281234567890-@g.us"),
    ("group-arabic", "١٢٠٣٦٣٠١٢٣٤٥@g.us"),
    ("upper-suffix", "6281234567890@S.WHATSAPP.NET"),
    ("two-ats", "62812@lid@g.us"),
    ("surrogate", "0812345\ud80067890"),
]


@pytest.mark.parametrize("value", [b[1] for b in BAD_NUMBERS], ids=[b[0] for b in BAD_NUMBERS])
def test_numbers_that_are_not_numbers_are_refused(client: WaslahClient, waslah_emulator: Any, value: object) -> None:
    with pytest.raises(e.WaslahInvalidInputError) as caught:
        normalize_recipient(value)
    assert caught.value.field == "to"
    assert len(caught.value.rule) < 250  # at most ~40 characters of the value
    valid, invalid = normalize_recipients([value, "081234567890"])
    assert valid == ["6281234567890"]
    assert invalid == [value if isinstance(value, str) else invalid[0]] and isinstance(invalid[0], str)
    with pytest.raises(e.WaslahInvalidInputError):
        client.send_text(instance_key="demo", to=value, text="Halo")  # type: ignore[arg-type]
    with pytest.raises(e.WaslahInvalidInputError, match="1 invalid number"):
        client.send_bulk(instance_key="demo", recipients=[value, "081234567890"], text="Promo")  # type: ignore[list-item]
    assert api_requests(waslah_emulator) == []


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("12345@lid", "12345@lid"),  # the reference's own example
        ("4639135154355@lid", "4639135154355@lid"),
        ("1" * 20 + "@lid", "1" * 20 + "@lid"),
        ("12345678@s.whatsapp.net", "12345678@s.whatsapp.net"),
        ("120363012345678901@g.us", "120363012345678901@g.us"),
        ("6281234567890-1589876543@g.us", "6281234567890-1589876543@g.us"),  # a legacy group id
        ("  6281234567890@s.whatsapp.net\n", "6281234567890@s.whatsapp.net"),
        ("+62 (812) 3456-7890", "6281234567890"),
        (" 081234567890\t", "6281234567890"),
    ],
)
def test_real_numbers_and_jids_still_pass(given: str, sent: str) -> None:
    assert normalize_recipient(given) == sent


def test_a_5000_character_value_is_cut_in_the_message() -> None:
    with pytest.raises(e.WaslahInvalidInputError) as caught:
        normalize_recipient("1" * 5000 + "@g.us")
    assert "1" * 41 not in str(caught.value)


# ---------------------------------------------------------------- 4. raw exceptions instead of ours

BAD_IDS = [
    ("decimal-fraction", Decimal("1.9")),
    ("decimal-infinity", Decimal("Infinity")),
    ("decimal-nan", Decimal("NaN")),
    ("decimal-snan", Decimal("sNaN")),
    ("float-inf", float("inf")),
    ("float-nan", float("nan")),
    ("float-huge", 1e30),
    ("int-huge", 10**5000),
    ("negative", -3),
    ("fullwidth", "１２"),
    ("superscript", "²"),
    ("arabic", "٣"),
    ("signed-str", "+5"),
    ("bytes", b"12"),
    ("fraction", Fraction(3, 2)),
    ("complex", 3 + 0j),
    ("list", [1]),
    ("none", None),
]


@pytest.mark.parametrize("value", [b[1] for b in BAD_IDS], ids=[b[0] for b in BAD_IDS])
def test_ids_that_are_not_ids_are_refused(client: WaslahClient, waslah_emulator: Any, value: object) -> None:
    for action, field in ((client.get_message, "message_id"), (client.get_broadcast, "broadcast_id")):
        with pytest.raises(e.WaslahInvalidInputError) as caught:
            action(value)  # type: ignore[operator]
        assert caught.value.field == field
        assert "must be a positive integer id" in caught.value.rule
        assert len(str(caught.value)) < 200
    assert api_requests(waslah_emulator) == []


@pytest.mark.parametrize(("value", "number"), [(Decimal("12"), 12), ("  42 ", 42), (7.0, 7), (Fraction(8, 1), 8)])
def test_whole_ids_in_other_types_are_accepted(value: object, number: int) -> None:
    assert check_id(value, "message_id") == number
    assert calls.get_message(value).path == f"/messages/{number}"  # type: ignore[arg-type]


SURROGATE = "Halo \ud800 dunia"
MEDIA = {"instance_key": "demo", "to": "081234567890", "type": "image", "url": "https://cdn.example.com/a.jpg"}
BULK = {"instance_key": "demo", "recipients": ["081234567890"], "text": "Promo"}

UNENCODABLE: list[tuple[str, Callable[[WaslahClient], Any], str]] = [
    ("text", lambda c: c.send_text(**{**MSG, "text": SURROGATE}), "text"),
    ("unified-text", lambda c: c.send_message(instance_key="demo", to="081234567890", text=SURROGATE), "text"),
    ("caption", lambda c: c.send_media(**MEDIA, caption=SURROGATE), "caption"),
    ("filename", lambda c: c.send_media(**MEDIA, filename=SURROGATE), "filename"),
    ("filename-int", lambda c: c.send_media(**MEDIA, filename=3), "filename"),
    ("mimetype", lambda c: c.send_media(**MEDIA, mimetype=SURROGATE), "mimetype"),
    ("url", lambda c: c.send_media(**{**MEDIA, "url": "https://cdn.example.com/\ud800.jpg"}), "url"),
    ("url-newline", lambda c: c.send_media(**{**MEDIA, "url": "https://cdn.example.com/a.jpg\r\nX: y"}), "url"),
    ("bulk-text", lambda c: c.send_bulk(**{**BULK, "text": SURROGATE}), "text"),
    ("bulk-name", lambda c: c.send_bulk(**BULK, name=SURROGATE), "name"),
    (
        "bulk-caption",
        lambda c: c.send_bulk(**{**BULK, "type": "image", "url": MEDIA["url"]}, caption=SURROGATE),
        "caption",
    ),
    ("upload-filename", lambda c: c.upload(file=b"%PDF", filename="a\ud800.pdf"), "filename"),
    ("upload-mime", lambda c: c.upload(file=b"%PDF", filename="a.pdf", mime_type="\ud800"), "mime_type"),
    ("upload-path-nul", lambda c: c.upload(file="/tmp/a\x00.pdf"), "file_path"),
    ("upload-not-a-file", lambda c: c.upload(file=12345), "file"),
    ("scheduled-surrogate", lambda c: c.send_text(**MSG, scheduled_at="2030-01-01T00:00:00\ud800"), "scheduled_at"),
    ("scheduled-year-1", lambda c: c.send_text(**MSG, scheduled_at="0001-01-01T00:00:00+01:00"), "scheduled_at"),
    ("type-huge", lambda c: c.send_media(**{**MEDIA, "type": "x" * 100_000}), "type"),
    ("delay-huge", lambda c: c.send_bulk(**BULK, delay_min_sec="x" * 100_000), "delay_min_sec"),
]


@pytest.mark.parametrize(("action", "field"), [u[1:] for u in UNENCODABLE], ids=[u[0] for u in UNENCODABLE])
def test_unencodable_or_odd_fields_fail_naming_the_field(
    client: WaslahClient, waslah_emulator: Any, action: Callable[[WaslahClient], Any], field: str
) -> None:
    with pytest.raises(e.WaslahInvalidInputError) as caught:
        action(client)
    assert caught.value.field == field
    assert len(str(caught.value)) < 300
    assert api_requests(waslah_emulator) == []


def test_a_lone_surrogate_is_named_as_such() -> None:
    with pytest.raises(e.WaslahInvalidInputError, match="UTF-8") as caught:
        calls.send_text(instance_key="demo", to="081234567890", text=SURROGATE)
    assert caught.value.field == "text"


@pytest.mark.parametrize(
    "value",
    [
        "[" * 100_000,
        "(" * 100_000,
        "{" * 100_000,
        "[" * 50 + "]" * 50,
        "[" + "1," * 600_000 + "]",
        "{[1]: 2}",
        "{{}}",
        "[" + "9" * 5000 + "]",
        "['0812\x00']",
    ],
    ids=["brackets", "parens", "braces", "deep", "too-long", "unhashable-key", "set-of-dict", "huge-int", "nul"],
)
def test_hostile_recipient_strings_end_in_our_error(value: str) -> None:
    for action in (recipients.flatten_recipients, recipients.resolve_recipients, recipients.resolve_single_recipient):
        try:
            action(value)
        except e.WaslahInvalidInputError as error:
            assert len(str(error)) < 400
        else:  # parsed as plain text: then every part is refused as a number
            valid, _invalid = recipients.resolve_recipients(value)
            assert valid == []


def test_bounded_recipient_strings_say_why() -> None:
    with pytest.raises(e.WaslahInvalidInputError, match="nested") as deep:
        recipients.flatten_recipients("[" * 100_000)
    assert deep.value.field == "recipients"
    with pytest.raises(e.WaslahInvalidInputError, match="characters"):
        recipients.flatten_recipients("[" + "'081234567890'," * 100_000 + "]")


def test_a_rendered_list_of_rows_still_parses() -> None:
    rendered = str([{"phone": "0812-3456-7890", "name": "A"}, {"phone": "(0812) 3456 7891"}])
    assert recipients.resolve_recipients(rendered) == (["6281234567890", "6281234567891"], [])


# ---------------------------------------------------------------- 5. URL checks

PRIVATE_URLS = [
    ("shared-address-space", "http://100.64.0.1/a.jpg"),
    ("shared-address-space-top", "http://100.127.255.254/a.jpg"),
    ("ipv4-mapped", "http://[::ffff:127.0.0.1]/a.jpg"),
    ("ipv4-mapped-private", "http://[::ffff:10.0.0.1]/a.jpg"),
    ("ipv6-unique-local", "http://[fd12:3456:789a::1]/a.jpg"),
    ("ipv6-unique-local-fc", "http://[fc00::1]/a.jpg"),
    ("ipv6-link-local-zone", "http://[fe80::1%25eth0]/a.jpg"),
    ("nat64", "http://[64:ff9b::7f00:1]/a.jpg"),
    ("6to4", "http://[2002:7f00:1::1]/a.jpg"),
    ("multicast", "http://224.0.0.1/a.jpg"),
    ("benchmarking", "http://198.18.0.1/a.jpg"),
    ("this-network", "http://0.1.2.3/a.jpg"),
    ("documentation", "http://192.0.2.1/a.jpg"),
    ("broadcast", "http://255.255.255.255/a.jpg"),
    ("nip-io", "http://127.0.0.1.nip.io/a.jpg"),
    ("nip-io-prefixed", "https://app.10.0.0.1.nip.io/a.jpg"),
    ("nip-io-dashes", "https://app-192-168-1-10.nip.io/a.jpg"),
    ("nip-io-hex", "https://7f000001.nip.io/a.jpg"),
    ("nip-io-metadata", "http://169.254.169.254.nip.io/latest"),
    ("sslip-io", "http://10-0-0-1.sslip.io/a.jpg"),
    ("sslip-io-ipv6", "http://--1.sslip.io/a.jpg"),
    ("sslip-io-ipv6-ula", "http://fd00--1.sslip.io/a.jpg"),
    ("xip-io", "http://127.0.0.1.xip.io/a.jpg"),
    ("traefik-me", "http://10.0.0.1.traefik.me/a.jpg"),
    ("nip-io-trailing-dot", "http://127.0.0.1.nip.io./a.jpg"),
    ("nip-io-upper", "http://127.0.0.1.NIP.IO/a.jpg"),
    ("localtest-me", "http://localtest.me/a.jpg"),
    ("localtest-me-sub", "http://files.localtest.me/a.jpg"),
    ("lvh-me", "http://app.lvh.me/a.jpg"),
    ("vcap-me", "http://vcap.me/a.jpg"),
    ("localhost-direct", "http://a.localhost.direct/a.jpg"),
    ("metadata-internal", "http://metadata.google.internal/computeMetadata/v1/"),
    ("mdns-local", "http://printer.local/a.jpg"),
    ("home-arpa", "http://nas.home.arpa/a.jpg"),
    ("ip6-localhost", "http://ip6-localhost/a.jpg"),
    ("fullwidth-localhost", "http://ｌｏｃａｌｈｏｓｔ/a.jpg"),
    ("fullwidth-ip", "http://１２７.０.０.１/a.jpg"),
    ("ideographic-dots", "http://127。0。0。1/a.jpg"),
    ("backslash-authority", "http://127.0.0.1\\@cdn.example.com/a.jpg"),
]


@pytest.mark.parametrize("url", [u[1] for u in PRIVATE_URLS], ids=[u[0] for u in PRIVATE_URLS])
def test_private_and_special_addresses_are_refused(client: WaslahClient, waslah_emulator: Any, url: str) -> None:
    with pytest.raises(e.WaslahInvalidInputError) as caught:
        check_media_url(url)
    assert caught.value.field == "url"
    with pytest.raises(e.WaslahInvalidInputError):
        client.send_media(**{**MEDIA, "url": url})
    assert api_requests(waslah_emulator) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8.nip.io/a.jpg",  # a public address written in a wildcard name
        "https://app-1-1-1-1.sslip.io/a.jpg",
        "https://nip.io/a.jpg",
        "https://[2606:4700:4700::1111]/a.jpg",
        "https://cdn.example.com/promo%20photo.jpg",
        "https://例え.jp/画像.jpg",
        "https://notlocalhost.example/a.jpg",
        "https://localtest.me.example.com/a.jpg",
    ],
)
def test_public_urls_still_pass(url: str) -> None:
    assert check_media_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/a.jpg",
        "http://[zz::1]/a.jpg",
        "http://exa mple.com/a.jpg",
        "http://\x00/a.jpg",
        "http://١٢٧.0.0.1/a.jpg",
        "http://" + "a" * 300 + ".com/a.jpg",
        "http://:80/a.jpg",
    ],
)
def test_malformed_urls_end_in_our_error(url: str) -> None:
    try:
        check_media_url(url)
    except e.WaslahInvalidInputError as error:
        assert error.field == "url"
        assert len(str(error)) < 300


@pytest.mark.parametrize("host", ["\x00", "١٢٧.0.0.1", "[", "a" * 10_000, "127.0.0.1\x00.nip.io", ""])
def test_is_private_host_never_raises(host: str) -> None:
    assert isinstance(is_private_host(host), bool)


def test_the_gateways_own_storage_is_still_trusted(waslah_emulator: Any) -> None:
    with WaslahClient(api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url) as client:
        uploaded = client.upload(file=b"%PDF-1.4", filename="a.pdf")
        assert client.send_media(**{**MEDIA, "url": uploaded.url, "type": "document"}).status == "pending"


def test_calls_built_by_hand_get_the_same_url_check(client: WaslahClient, waslah_emulator: Any) -> None:
    call: Call[Any] = Call(
        "POST",
        "/messages/media",
        lambda d: d,
        json={**MEDIA, "url": "http://100.64.0.1/a.jpg"},
        is_send=True,
        media_urls=(("url", "http://100.64.0.1/a.jpg"),),
    )
    with pytest.raises(e.WaslahInvalidInputError):
        client.call(call)
    assert api_requests(waslah_emulator) == []
