"""Property tests: for any input, validators, builders and parsers end in their documented errors.

Each property draws arbitrary values (text with Unicode digits and surrogates, huge integers,
floats with NaN and infinity, Decimals, bytes, None, nested lists and dicts) and checks two
things: nothing but the documented error type escapes, and what passes satisfies its invariant.
Each runs 200 examples; set ``WASLAH_PROPERTY_EXAMPLES`` (e.g. 5000) for a longer fuzzing run.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from datetime import timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_waslah import recipients
from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client import validation as v
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.errors import WaslahInvalidInputError

FAST = settings(
    max_examples=int(os.environ.get("WASLAH_PROPERTY_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# ---------------------------------------------------------------- strategies

#: Digits of other scripts, look-alikes and the punctuation numbers are written with.
NUMBERISH = "0123456789+-() .@\t\n٠١٢٣٤٥٦٧٨٩۰۱۲０１２²³¹①𝟎𝟏०१₀:\ud800\u200b"
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**15, max_value=10**5000),
    st.integers(max_value=-1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.fractions(),
    st.complex_numbers(),
    st.text(),
    st.text(alphabet=NUMBERISH, max_size=30),
    st.binary(max_size=20),
    st.datetimes(),
    st.datetimes(timezones=st.just(timezone.utc)),
    st.timedeltas(),
)
anything = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.sampled_from(["phone", "to", "name", "x"]) | st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
phone_like = st.text(alphabet=NUMBERISH, min_size=1, max_size=25)
jid_like = st.builds(
    lambda local, suffix: local + suffix,
    st.text(alphabet="0123456789-:٣０", max_size=40)
    | st.from_regex(r"[1-9][0-9]{0,25}(-[0-9]{1,12})?", fullmatch=True),
    st.sampled_from([*v.JID_SUFFIXES, "@S.WHATSAPP.NET", "@c.us", "@", "@lid@g.us"]),
)
recipient_like = st.one_of(anything, phone_like, jid_like, st.from_regex(r"\+?(0|62)8[0-9]{7,12}", fullmatch=True))
bracketed = st.builds(
    lambda open_, inner, close: open_ + inner + close,
    st.text(alphabet="[({", max_size=60),
    st.text(alphabet="'\"0123456789,: []{}()a", max_size=60),
    st.text(alphabet="])}", max_size=60),
)


def valid_number_or_jid(value: str) -> bool:
    """The invariant of a normalised recipient."""
    if "@" not in value:
        return re.fullmatch(r"[0-9]{8,15}", value) is not None
    local, _, suffix = value.partition("@")
    if "@" + suffix == "@g.us":
        return re.fullmatch(r"[1-9][0-9]{0,19}(-[1-9][0-9]{0,19})?", local) is not None
    if "@" + suffix == "@lid":
        return re.fullmatch(r"[1-9][0-9]{0,19}", local) is not None
    return "@" + suffix == "@s.whatsapp.net" and re.fullmatch(r"[1-9][0-9]{7,14}", local) is not None


def sendable(call: Call[Any]) -> None:
    """A built call's body encodes as JSON in UTF-8 and makes a valid HTTP request."""
    if call.json is not None:
        json.dumps(call.json, ensure_ascii=False).encode("utf-8")
    httpx.Request(call.method, "https://waslah.test/api/v1" + call.path, json=call.json, files=call.files)


# ---------------------------------------------------------------- recipients


@FAST
@given(recipient_like)
def test_normalize_recipient_returns_a_valid_recipient_or_our_error(value: object) -> None:
    try:
        result = v.normalize_recipient(value)
    except WaslahInvalidInputError as error:
        assert error.field == "to"
        assert len(error.rule) < 250
        return
    assert valid_number_or_jid(result), result
    assert v.normalize_recipient(result) == result  # idempotent
    if isinstance(value, str) and "@" in value:
        assert result == value.strip()  # JIDs are kept as they are, suffix included


@FAST
@given(st.lists(recipient_like, max_size=8))
def test_normalize_recipients_partitions_without_raising(values: list[object]) -> None:
    valid, invalid = v.normalize_recipients(values)
    assert all(valid_number_or_jid(number) for number in valid)
    assert len(set(valid)) == len(valid)
    assert all(isinstance(item, str) for item in invalid)
    assert len(valid) + len(invalid) <= len(values)
    assert isinstance(v.invalid_recipients_rule(invalid, "hint"), str)


@FAST
@given(st.one_of(anything, bracketed, st.text(alphabet="[{(", max_size=3000)), st.sampled_from([None, "phone", "x"]))
def test_recipient_shapes_unwrap_or_fail_with_our_error(value: object, key: str | None) -> None:
    for action in (recipients.flatten_recipients, recipients.resolve_single_recipient):
        try:
            action(value, "recipients", key)
        except WaslahInvalidInputError as error:
            assert len(str(error)) < 500
    try:
        valid, invalid = recipients.resolve_recipients(value, "recipients", key)
    except WaslahInvalidInputError:
        return
    assert all(valid_number_or_jid(number) for number in valid)
    assert all(isinstance(item, str) for item in invalid)


@FAST
@given(st.text())
def test_mask_number_never_raises_and_hides_the_middle(value: str) -> None:
    masked = recipients.mask_number(value)
    local = value.partition("@")[0]
    if len(local) >= 6:
        assert local not in masked


# ---------------------------------------------------------------- validators


def only_our_error(action: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return action(*args, **kwargs)
    except WaslahInvalidInputError as error:
        assert len(str(error)) < 400, str(error)[:500]
        return error


@FAST
@given(anything)
def test_check_id(value: object) -> None:
    result = only_our_error(v.check_id, value, "message_id")
    if not isinstance(result, WaslahInvalidInputError):
        assert type(result) is int and 1 <= result < 2**63
        # A string of ASCII digits reads as its number ("01" is message 1); anything else must equal it.
        assert result == value or (isinstance(value, str) and str(result) == value.strip().lstrip("0"))


@FAST
@given(anything)
def test_check_positive_seconds(value: object) -> None:
    result = only_our_error(v.check_positive_seconds, value, "poke_interval")
    if result is not None and not isinstance(result, WaslahInvalidInputError):
        assert type(result) is float and 0 < result < float("inf")


@FAST
@given(anything | st.text(alphabet="abcXYZ019-_ \n/é", max_size=20))
def test_check_instance_key(value: object) -> None:
    result = only_our_error(v.check_instance_key, value)
    if not isinstance(result, WaslahInvalidInputError):
        assert re.fullmatch(r"[A-Za-z0-9_-]+", result)


@FAST
@given(anything, st.booleans())
def test_check_text(value: object, required: bool) -> None:
    result = only_our_error(v.check_text, value, "text", 50, required)
    if isinstance(result, str):
        assert len(result) <= 50
        result.encode("utf-8")


URL_PARTS = st.builds(
    lambda scheme, host, rest: f"{scheme}://{host}{rest}",
    st.sampled_from(["http", "https", "ftp", "HTTP", "javascript", ""]),
    st.one_of(
        st.ip_addresses(v=4).map(str),
        st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
        st.from_regex(
            r"[a-z0-9-]{1,10}(\.[a-z0-9-]{1,10}){0,3}\.(nip\.io|sslip\.io|com|local|internal|me)", fullmatch=True
        ),
        st.text(max_size=20),
    ),
    st.text(max_size=20),
)


@FAST
@given(st.one_of(anything, URL_PARTS))
def test_check_media_url(value: object) -> None:
    result = only_our_error(v.check_media_url, value, "url")
    if isinstance(result, str):
        assert result == value
        assert result.lower().startswith(("http://", "https://"))
        result.encode("utf-8")
        assert not any(ord(char) < 0x20 or ord(char) == 0x7F for char in result)


@FAST
@given(st.ip_addresses(), st.sampled_from(["http", "https"]))
def test_an_ip_literal_passes_only_when_global(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, scheme: str
) -> None:
    host = f"[{address}]" if address.version == 6 else str(address)
    result = only_our_error(v.check_media_url, f"{scheme}://{host}/a.jpg", "url")
    if isinstance(result, str):
        assert address.is_global and not address.is_multicast
    elif address.version == 4:
        assert not address.is_global or address.is_multicast


@FAST
@given(st.text(max_size=60))
def test_is_private_host_is_a_bool(host: str) -> None:
    assert isinstance(v.is_private_host(host), bool)


@FAST
@given(anything)
def test_check_media_type(value: object) -> None:
    result = only_our_error(v.check_media_type, value)
    if isinstance(result, str):
        assert result in v.MEDIA_TYPES


@FAST
@given(anything | st.text(alphabet="0123456789-T:+Z.", max_size=30))
def test_parse_scheduled_at(value: object) -> None:
    result = only_our_error(v.parse_scheduled_at, value)
    if result is not None and not isinstance(result, WaslahInvalidInputError):
        assert result.utcoffset() is not None


@FAST
@given(anything, anything)
def test_check_delays(low: object, high: object) -> None:
    result = only_our_error(v.check_delays, low, high)
    if isinstance(result, tuple):
        assert all(value is None or 0 <= value <= v.MAX_DELAY_SECONDS for value in result)


@FAST
@given(anything | st.sampled_from(sorted(v.ALLOWED_MIME_TYPES)))
def test_mime_helpers(value: object) -> None:
    result = only_our_error(v.media_type_for_mime, value)
    if isinstance(result, str):
        assert result in v.MEDIA_TYPES
    assert v.media_type_of_mime(value) in (None, *v.MEDIA_TYPES)  # type: ignore[arg-type]
    assert isinstance(v.normalize_mime(value), str)  # type: ignore[arg-type]


@FAST
@given(anything)
def test_check_upload_size(value: object) -> None:
    result = only_our_error(v.check_upload_size, value)
    if isinstance(result, int) and not isinstance(result, bool):
        assert 1 <= result <= v.MAX_UPLOAD_BYTES


@FAST
@given(anything | st.text(alphabet="wsl_abc123 \n\t\r\x00é\u200b\ud800", max_size=30))
def test_check_api_key(value: object) -> None:
    result = only_our_error(v.check_api_key, value, "api_key")
    if isinstance(result, str):
        assert result and all(0x21 <= ord(char) <= 0x7E for char in result)
    else:
        secret = str(value).strip() if isinstance(value, str) else ""
        if len(secret) >= 8:
            assert secret not in str(result)


# ---------------------------------------------------------------- builders

text_or_anything = st.one_of(anything, st.text(max_size=30), st.just("Halo"), st.just("demo"))


def build(builder: Any, **kwargs: Any) -> None:
    result = only_our_error(builder, **kwargs)
    if isinstance(result, Call):
        sendable(result)
        if result.json and "to" in result.json:
            assert valid_number_or_jid(result.json["to"])
        if result.json and "recipients" in result.json:
            assert all(valid_number_or_jid(number) for number in result.json["recipients"])


@FAST
@given(text_or_anything, recipient_like, text_or_anything, anything)
def test_send_text_builder(instance_key: Any, to: Any, text: Any, scheduled_at: Any) -> None:
    build(calls.send_text, instance_key=instance_key, to=to, text=text, scheduled_at=scheduled_at)


MEDIA_URLS = st.one_of(st.just("https://cdn.example.com/a.jpg"), URL_PARTS, anything)


@FAST
@given(
    recipient_like,
    st.sampled_from([*v.MEDIA_TYPES, "text"]) | anything,
    MEDIA_URLS,
    text_or_anything,
    text_or_anything,
    text_or_anything,
)
def test_send_media_and_send_message_builders(
    to: Any, kind: Any, url: Any, caption: Any, filename: Any, mimetype: Any
) -> None:
    fields = {"instance_key": "demo", "to": to, "url": url, "caption": caption, "filename": filename}
    build(calls.send_media, type=kind, mimetype=mimetype, **fields)
    build(calls.send_message, type=kind, text=caption, mimetype=mimetype, **fields)


@FAST
@given(
    st.lists(recipient_like, max_size=5) | anything,
    st.sampled_from(list(v.BROADCAST_TYPES)) | anything,
    text_or_anything,
    MEDIA_URLS,
    text_or_anything,
    anything,
    anything,
)
def test_send_bulk_builder(recipients_: Any, kind: Any, text: Any, url: Any, name: Any, low: Any, high: Any) -> None:
    build(
        calls.send_bulk,
        instance_key="demo",
        recipients=recipients_,
        type=kind,
        text=text,
        url=url,
        name=name,
        caption=text,
        filename=name,
        delay_min_sec=low,
        delay_max_sec=high,
    )


@FAST
@given(st.binary(min_size=1, max_size=20) | anything, text_or_anything | st.just("a.pdf"), text_or_anything)
def test_upload_builder(content: Any, filename: Any, mime_type: Any) -> None:
    if isinstance(content, str):  # a path: only the paths made here, never the machine's files
        content = "/nonexistent/" + content
    build(calls.upload, file=content, filename=filename, mime_type=mime_type)


@FAST
@given(anything, anything)
def test_id_and_instance_builders(identifier: Any, key: Any) -> None:
    build(calls.get_message, message_id=identifier)
    build(calls.get_broadcast, broadcast_id=identifier)
    build(calls.get_instance, instance_key=key)


# ---------------------------------------------------------------- webhooks

from airflow_provider_waslah.webhooks import WebhookVerificationError, signed_headers, verify_signature  # noqa: E402

NOW = 1_748_036_400
header_values = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=40),
    st.lists(st.text(max_size=20), max_size=3),
    st.integers(),
    st.none(),
    st.from_regex(r"sha256=[0-9a-f]{64}", fullmatch=True),
    st.from_regex(r"[0-9]{1,400}", fullmatch=True),
)
header_names = st.sampled_from(["X-Waslah-Signature", "x-signature", "X-Waslah-Timestamp", "Signature", "Other"])


@FAST
@given(
    st.one_of(st.binary(max_size=200), st.text(max_size=200), anything),
    st.one_of(st.dictionaries(header_names | st.binary(max_size=5), header_values, max_size=5), anything),
    st.one_of(st.text(max_size=20), st.binary(max_size=20), anything),
    st.one_of(st.integers(min_value=-10, max_value=10**6), st.floats(), anything),
)
def test_verify_signature_only_raises_its_error(body: Any, headers: Any, secret: Any, tolerance: Any) -> None:
    try:
        event = verify_signature(body, headers, secret, tolerance_seconds=tolerance, now=NOW)
    except WebhookVerificationError as error:
        assert error.reason and len(str(error)) < 300
    else:
        assert isinstance(event.data, dict)


secrets_ = st.one_of(
    st.text(min_size=1, max_size=40).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)),
    st.binary(min_size=1, max_size=40),
)
json_objects = st.dictionaries(
    st.text(max_size=10),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
        max_leaves=6,
    ),
    max_size=4,
)


@FAST
@given(secrets_, json_objects, st.integers(min_value=-300, max_value=300))
def test_a_signature_made_with_the_secret_always_verifies(secret: Any, payload: dict[str, Any], age: int) -> None:
    body = json.dumps(payload).encode()
    headers = signed_headers(secret, body, event="message.received", event_id="evt", timestamp=NOW)
    event = verify_signature(body, headers, secret, now=NOW + age)
    assert event.raw == payload


@FAST
@given(secrets_, json_objects, st.data())
def test_a_flipped_byte_never_verifies(secret: Any, payload: dict[str, Any], data: st.DataObject) -> None:
    body = bytearray(json.dumps(payload).encode())
    headers = signed_headers(secret, bytes(body), event="message.received", event_id="evt", timestamp=NOW)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    body[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(WebhookVerificationError) as caught:
        verify_signature(bytes(body), headers, secret, now=NOW)
    assert caught.value.reason == "signature_mismatch"
    signature = headers["X-Waslah-Signature"]
    position = data.draw(st.integers(min_value=7, max_value=len(signature) - 1))
    flipped = signature[:position] + ("0" if signature[position] != "0" else "1") + signature[position + 1 :]
    tampered = dict.fromkeys(headers, "")
    tampered.update({"X-Waslah-Signature": flipped, "X-Waslah-Timestamp": str(NOW)})
    with pytest.raises(WebhookVerificationError):
        verify_signature(json.dumps(payload).encode(), tampered, secret, now=NOW)


@settings(max_examples=50, deadline=None)
@given(st.timedeltas(min_value=timedelta(seconds=-(10**6)), max_value=timedelta(seconds=10**6)))
def test_check_positive_seconds_of_timedeltas(value: timedelta) -> None:
    result = only_our_error(v.check_positive_seconds, value, "timeout")
    if isinstance(result, float):
        assert result == value.total_seconds() > 0
