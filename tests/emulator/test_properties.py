"""Property tests: whatever a client or a test sends, the emulator answers its documented envelope.

In-process (``httpx.ASGITransport`` over the ASGI app) for speed; one app per module, reset
between examples where an example can change its state.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_waslah.emulator import create_app
from tests.emulator.conftest import InProcessClient

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SEND_ROUTES = ["/api/v1/messages", "/api/v1/messages/text", "/api/v1/messages/media", "/api/v1/messages/bulk"]
CONTROL_ROUTES = ["/_emulator/seed", "/_emulator/faults", "/_emulator/webhooks", "/_emulator/inbound"]
API_FIELDS = [
    "instance_key",
    "to",
    "text",
    "type",
    "url",
    "media_url",
    "caption",
    "filename",
    "mimetype",
    "scheduled_at",
    "recipients",
    "name",
    "delay_min_sec",
    "delay_max_sec",
]
SEED_FIELDS = [
    "time_scale",
    "rate_window_seconds",
    "rate_limit_reset_header_always",
    "random_seed",
    "webhook_max_attempts",
    "webhook_timeout",
    "webhook_backoff",
    "unreachable",
    "plan_limits",
    "plan_features",
    "lifecycle",
    "users",
    "api_keys",
    "instances",
]
CONTROL_FIELDS_BY_ROUTE = {
    "/_emulator/seed": SEED_FIELDS,
    "/_emulator/faults": [
        "route",
        "status",
        "rate",
        "count",
        "latency",
        "drop_connection",
        "lose_response",
        "answer_late",
        "garbage",
        "body",
        "retry_after",
        "error",
        "message",
    ],
    "/_emulator/webhooks": ["url", "secret", "user_id"],
    "/_emulator/inbound": ["instance_key", "from", "remote_jid", "body", "lid", "message_type"],
}
CONTROL_FIELDS = [
    *SEED_FIELDS,
    "route",
    "status",
    "rate",
    "count",
    "latency",
    "drop_connection",
    "lose_response",
    "answer_late",
    "garbage",
    "body",
    "retry_after",
    "error",
    "message",
    "url",
    "secret",
    "user_id",
    "instance_key",
    "from",
    "remote_jid",
    "lid",
    "message_type",
]

# Strings with what breaks parsers: non-ASCII, control characters, lone surrogates.
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
texts = (
    st.text(max_size=30)
    | st.text(st.characters() | surrogates, max_size=10)
    | st.sampled_from(
        ["081234567890", "628999123", "demo", "image", "https://e.com/a.jpg", "2030-01-01T00:00:00+07:00", "²", "٣"]
    )
)
numbers = (
    st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 1, -1, 0.5, 99999, 10**30])
)
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4)
)


def shaped(fields: list[str], min_size: int = 0, max_size: int = 8) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the route's own field names (so validation runs deep), holding any JSON value."""
    return st.dictionaries(st.sampled_from(fields), json_values, min_size=min_size, max_size=max_size)


def encode(value: Any) -> bytes:
    """JSON text, with NaN/Infinity tokens and lone surrogates escaped as ``\\udXXX``."""
    return json.dumps(value, allow_nan=True).encode()


# Valid bodies with a field or two changed to anything: so that validation passes often enough
# for the rules behind it (instances, scheduling, recipients, MIME types) to meet odd values too.
TEXT = {"instance_key": "demo", "to": "081234567890", "text": "Halo"}
MEDIA = {"instance_key": "demo", "to": "081234567890", "type": "image", "url": "https://e.com/a.jpg", "caption": "c"}
BULK = {"instance_key": "demo", "type": "text", "text": "Promo", "recipients": ["081234567890", "628999000111"]}
VALID_SENDS = [
    ("/api/v1/messages", TEXT),
    ("/api/v1/messages", {**MEDIA, "type": None}),
    ("/api/v1/messages/text", {**TEXT, "scheduled_at": "2099-01-01T09:00:00+07:00"}),
    ("/api/v1/messages/media", MEDIA),
    ("/api/v1/messages/bulk", BULK),
    ("/api/v1/messages/bulk", {**BULK, **MEDIA, "type": "document", "to": None}),
]
VALID_CONTROL = [
    ("/_emulator/seed", {"time_scale": 0.5, "users": [{"id": 1, "plan": "basic"}]}),
    ("/_emulator/seed", {"api_keys": [{"key": "wsl_other_0000000000"}], "instances": [{"key": "x", "user_id": 1}]}),
    ("/_emulator/faults", {"route": "GET /nothing/*", "status": 503, "count": 2}),
    ("/_emulator/faults", {"route": "GET /nothing/*", "garbage": True, "body": "html"}),
    ("/_emulator/webhooks", {"url": "http://127.0.0.1:9/hook", "secret": "whsec"}),
    ("/_emulator/inbound", {"from": "081234567890", "body": "Halo", "lid": True}),
]


def mutated(
    valid: list[tuple[str, dict[str, Any]]], fields: dict[str, list[str]] | list[str]
) -> st.SearchStrategy[tuple[str, bytes]]:
    """``(route, body)``: a valid body of the route with up to two of its fields set to any JSON value."""

    def change(pair: tuple[str, dict[str, Any]]) -> st.SearchStrategy[tuple[str, bytes]]:
        names = fields[pair[0]] if isinstance(fields, dict) else fields
        return shaped(names, 0, 2).map(lambda changed: (pair[0], encode({**pair[1], **changed})))

    return st.sampled_from(valid).flatmap(change)


bodies = (
    (shaped(API_FIELDS) | json_values).map(encode)
    | st.binary(max_size=64)
    | st.integers(min_value=1, max_value=200_000).map(lambda n: b"[" * n)
    | st.integers(min_value=1, max_value=3_000).map(lambda n: b'{"a":[' * n + b"1" + b"]}" * n)
)
control_bodies = (shaped(CONTROL_FIELDS) | json_values).map(encode) | st.binary(max_size=32)


@pytest.fixture(scope="module")
def client() -> Iterator[InProcessClient]:
    with InProcessClient(create_app(seed={"plan_limits": {"pro": 10**9}})) as in_process:
        yield in_process


def assert_envelope(response: Any) -> None:
    """Never a 500; an error is ``{"ok": false, "error", "message"}``, a success ``{"ok": true, "data"}``."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    body = response.json()
    assert isinstance(body, dict), body
    if response.status_code >= 400:
        assert body["ok"] is False, body
        assert isinstance(body["error"], str) and body["error"], body
        assert isinstance(body["message"], str) and body["message"], body
        if body["error"] == "validation_failed":
            errors = body["errors"]
            assert errors and all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in errors.values())
    else:
        assert body["ok"] is True and "data" in body, body


@SETTINGS
@given(route=st.sampled_from(SEND_ROUTES), body=bodies)
def test_api_bodies_never_500(client: InProcessClient, route: str, body: bytes) -> None:
    assert_envelope(client.post(route, content=body, headers={"Content-Type": "application/json"}))


@SETTINGS
@given(request=mutated(VALID_SENDS, API_FIELDS))
def test_nearly_valid_sends_never_500(client: InProcessClient, request: tuple[str, bytes]) -> None:
    route, body = request
    assert_envelope(client.post(route, content=body, headers={"Content-Type": "application/json"}))


@SETTINGS
@given(
    route=st.sampled_from(["/api/v1/messages/", "/api/v1/broadcasts/", "/api/v1/instances/", "/storage/uploads/x/"]),
    raw_id=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
    | st.integers().map(str)
    | st.sampled_from(["²", "٣", "１", "9" * 5000, "0x10", "1e3"]),
    query=st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=3),
)
def test_path_ids_and_query_strings_never_500(
    client: InProcessClient, route: str, raw_id: str, query: list[tuple[str, str]]
) -> None:
    qs = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    response = client.get(f"{route}{quote(raw_id, safe='')}" + (f"?{qs}" if qs else ""))
    if route.startswith("/storage") and response.status_code == 200:
        return
    assert_envelope(response)


@SETTINGS
@given(
    request=st.tuples(st.sampled_from(CONTROL_ROUTES), control_bodies) | mutated(VALID_CONTROL, CONTROL_FIELDS_BY_ROUTE)
)
def test_control_bodies_never_500_and_leave_a_working_emulator(
    client: InProcessClient, request: tuple[str, bytes]
) -> None:
    route, body = request
    try:
        response = client.post(route, content=body, headers={"Content-Type": "application/json"})
        assert_envelope(response)
        # Whatever was accepted, the emulator still answers (faults aside: they are cleared first).
        client.delete("/_emulator/faults")
        for path in ("/api/v1/me", "/api/v1/instances", "/api/v1/broadcasts", "/_emulator/seed", "/_emulator/ledger"):
            assert_envelope(client.get(path))
        sent = client.post("/api/v1/messages/text", json={"instance_key": "demo", "to": "081234567890", "text": "x"})
        assert_envelope(sent)
        if sent.status_code == 202:
            assert_envelope(client.get(f"/api/v1/messages/{sent.json()['data']['id']}"))
        assert_envelope(client.get("/_emulator/webhook-deliveries"))
    finally:
        client.post("/_emulator/reset")


@SETTINGS
@given(
    request=st.tuples(st.sampled_from(CONTROL_ROUTES), control_bodies) | mutated(VALID_CONTROL, CONTROL_FIELDS_BY_ROUTE)
)
def test_refused_control_input_changes_nothing(client: InProcessClient, request: tuple[str, bytes]) -> None:
    route, body = request
    try:
        before = [client.get(f"/_emulator/{p}").json() for p in ("seed", "faults", "webhooks", "ledger")]
        response = client.post(route, content=body, headers={"Content-Type": "application/json"})
        assert_envelope(response)
        if response.status_code >= 400:
            after = [client.get(f"/_emulator/{p}").json() for p in ("seed", "faults", "webhooks", "ledger")]
            assert after == before
    finally:
        client.post("/_emulator/reset")
