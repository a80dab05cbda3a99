"""The receiver route, ``POST /waslah/webhook/<conn_id>``, through HTTP (TestClient) with an in-memory store.

Every rejection has its status and reason and stores nothing; a verified delivery is stored once;
hostile headers and bodies (Hypothesis) never yield a 5xx, and nothing unsigned is ever accepted.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_waslah.receiver.verify import MAX_BODY_BYTES, STATUS_BY_REASON
from airflow_provider_waslah.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADERS,
    TIMESTAMP_HEADER,
    compute_signature,
)
from tests.receiver.support import (
    CONN_ID,
    NO_SECRET_CONN_ID,
    SECRET,
    FakeStore,
    client,
    delivery,
    received_data,
    url,
)


def test_a_verified_delivery_is_stored_once_and_answered_201() -> None:
    store = FakeStore()
    body, headers = delivery(received_data("123456789012345@lid", "Halo, info produk"), event_id="ev-1")
    response = client(store).post(url(), content=body, headers=headers)

    assert response.status_code == 201, response.text
    assert response.json() == {
        "ok": True,
        "event_id": "ev-1",
        "asset": "waslah://waslah_default/demo/message.received",
        "stored": True,
        "asset_event_id": 1,
    }
    (stored,) = store.stored
    assert (stored.event, stored.event_id, stored.instance_key) == ("message.received", "ev-1", "demo")
    assert stored.extra()["data"]["remote_jid"] == "123456789012345@lid"
    assert stored.extra()["sent_at"] == int(headers[TIMESTAMP_HEADER])


@pytest.mark.parametrize("alias", SIGNATURE_HEADERS)
def test_any_one_of_the_five_signature_headers_is_enough(alias: str) -> None:
    body, headers = delivery()
    signature = headers[SIGNATURE_HEADERS[0]]
    for name in SIGNATURE_HEADERS:
        del headers[name]
    headers[alias.lower()] = signature
    assert client().post(url(), content=body, headers=headers).status_code == 201


def _drop(*names: str) -> Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]:
    def mutate(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        return body, {k: v for k, v in headers.items() if k not in names}

    return mutate


def _set(**values: str) -> Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]:
    def mutate(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        changed = dict(headers)
        for key, value in values.items():
            name = key.replace("_", "-")
            for alias in SIGNATURE_HEADERS if name == "signature" else (name,):
                changed[alias] = value
        return body, changed

    return mutate


def _tamper(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"Halo", b"HALO"), headers


Mutation = Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]


def _resign(offset: int | None = None, **kwargs: Any) -> Mutation:
    def mutate(body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        if offset is not None:  # relative to when the test runs, not to when the module was imported
            kwargs["timestamp"] = int(time.time()) + offset
        return delivery(**kwargs)

    return mutate


REJECTIONS: dict[str, tuple[Callable[..., tuple[bytes, dict[str, str]]], int, str]] = {
    "no signature header": (_drop(*SIGNATURE_HEADERS), 401, "missing_signature"),
    "malformed signature": (_set(signature="sha1=abcdef"), 401, "bad_signature_format"),
    "wrong secret": (_resign(secret="whsec_someone_else"), 401, "signature_mismatch"),
    "tampered body": (_tamper, 401, "signature_mismatch"),
    "stale (301 s old)": (_resign(offset=-301), 401, "timestamp_out_of_tolerance"),
    "from the future (301 s ahead)": (_resign(offset=301), 401, "timestamp_out_of_tolerance"),
    "no timestamp": (_drop(TIMESTAMP_HEADER), 400, "missing_timestamp"),
    "timestamp not a number": (_set(X_Waslah_Timestamp="yesterday"), 400, "bad_timestamp"),
    "no event id": (_drop(EVENT_ID_HEADER), 400, "missing_event_id"),
    "event id with markup": (_set(X_Waslah_Event_Id="<script>"), 400, "bad_event_id"),
    "signed, not JSON": (_resign(body=b"not json"), 400, "bad_payload"),
    "signed, data not an object": (_resign(body=b'{"event":"message.received","data":[1]}'), 400, "bad_payload"),
    "signed, NaN in data": (
        _resign(body=b'{"event":"message.received","data":{"instance_key":"demo","n":NaN}}'),
        400,
        "bad_payload",
    ),
    "signed, no event name": (_resign(body=b'{"data":{"instance_key":"demo"}}'), 422, "missing_event"),
    "signed, no instance key": (_resign(body=b'{"event":"message.received","data":{}}'), 422, "missing_instance_key"),
}


@pytest.mark.parametrize("case", REJECTIONS, ids=list(REJECTIONS))
def test_each_rejection_has_its_status_and_reason_and_stores_nothing(case: str) -> None:
    mutate, status, reason = REJECTIONS[case]
    store = FakeStore()
    body, headers = mutate(*delivery())
    response = client(store).post(url(), content=body, headers=headers)

    assert (response.status_code, response.json()["error"]) == (status, reason), response.text
    assert response.json()["ok"] is False and response.json()["message"]
    assert STATUS_BY_REASON[reason] == status
    assert store.calls == 0


@pytest.mark.parametrize(
    ("conn_id", "status", "reason"),
    [
        ("no_such_connection", 404, "unknown_connection"),
        ("bad%20id", 404, "unknown_connection"),
        (NO_SECRET_CONN_ID, 403, "webhook_secret_not_set"),
    ],
)
def test_unknown_connection_and_connection_without_secret(conn_id: str, status: int, reason: str) -> None:
    store = FakeStore()
    response = client(store).post(url(conn_id), content=delivery()[0], headers=delivery()[1])
    assert (response.status_code, response.json()["error"]) == (status, reason)
    assert store.calls == 0


def test_bodies_over_the_limit_are_refused_413_declared_or_streamed() -> None:
    store = FakeStore()
    big = b'{"event":"message.received","data":{"instance_key":"demo","body":"' + b"x" * MAX_BODY_BYTES + b'"}}'
    body, headers = delivery(body=big)
    test_client = client(store)
    response = test_client.post(url(), content=body, headers=headers)
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")

    def chunks() -> Any:  # no Content-Length: counted while read
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    response = test_client.post(url(), content=chunks(), headers=streamed)
    assert (response.status_code, response.json()["error"]) == (413, "body_too_large")
    response = test_client.post(url(), content=b"{}", headers={**headers, "Content-Length": "12abc"})
    assert response.status_code == 400
    assert store.calls == 0


def test_a_small_limit_is_honoured() -> None:
    body, headers = delivery()
    response = client(max_body_bytes=len(body) - 1).post(url(), content=body, headers=headers)
    assert response.status_code == 413
    assert client(max_body_bytes=len(body)).post(url(), content=body, headers=headers).status_code == 201


def test_a_replayed_event_id_is_answered_208_and_not_stored_again() -> None:
    store = FakeStore()
    test_client = client(store)
    body, headers = delivery(event_id="ev-7")
    assert test_client.post(url(), content=body, headers=headers).status_code == 201

    # Waslah's own retry (its 2xx answer was lost): a fresh timestamp and signature, the same event id.
    retry_body, retry_headers = delivery(event_id="ev-7", timestamp=int(time.time()) + 1)
    retried = test_client.post(url(), content=retry_body, headers=retry_headers)
    # A captured delivery sent again under a new (unsigned) event id: the signed content gives it away.
    replayed = test_client.post(url(), content=body, headers={**headers, EVENT_ID_HEADER: "ev-8"})

    for response in (retried, replayed):
        assert response.status_code == 208, response.text
        assert response.json()["reason"] == "duplicate_event" and response.json()["stored"] is False
    assert [d.event_id for d in store.stored] == ["ev-7"]


def test_events_no_dag_schedules_on_are_acknowledged_not_stored() -> None:
    store = FakeStore()
    data = {"message_id": 9, "instance_key": "demo", "status": "delivered"}
    body, headers = delivery(data, event="message.status")
    response = client(store).post(url(), content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["stored"] is False
    assert response.json()["reason"] == "no_dag_schedules_on_asset"
    assert response.json()["asset"] == "waslah://waslah_default/demo/message.status"
    assert store.stored == []


def test_the_app_serves_nothing_but_the_route() -> None:
    test_client = client()
    assert test_client.get(url()).status_code == 405
    for path in ("/waslah/docs", "/waslah/redoc", "/waslah/openapi.json", "/waslah/", "/waslah/webhook"):
        assert test_client.get(path).status_code == 404, path
    assert test_client.post("/waslah/webhook/a/b", content=b"{}").status_code == 404


def test_a_rejection_is_logged_with_its_reason_never_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    body, headers = delivery(secret="whsec_attacker_guess")
    with caplog.at_level(logging.INFO, logger="airflow_provider_waslah.receiver"):
        client().post(url(), content=body, headers=headers)
        client().post(url(), content=delivery()[0], headers=delivery()[1])
    text = caplog.text
    assert "rejected: 401 signature_mismatch" in text
    assert f"connection '{CONN_ID}'" in text
    assert SECRET not in text and "whsec_attacker_guess" not in text
    assert "stored as asset event 1 on waslah://waslah_default/demo/message.received" in text


# ---------------------------------------------------------------------------------------- Hypothesis
_HEADER_NAMES = st.sampled_from(
    [*SIGNATURE_HEADERS, TIMESTAMP_HEADER, EVENT_ID_HEADER, "X-Waslah-Event", "Content-Type", "X-Other"]
)
_PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)
_LATIN1 = st.binary(max_size=80).map(lambda raw: bytes(b for b in raw if b >= 0x20 and b not in (0x7F,)))
_HOSTILE_VALUE = st.one_of(
    _PRINTABLE,
    _LATIN1,
    st.integers(-(10**30), 10**30).map(str),
    st.just("sha256=" + "0" * 64),
    st.text(st.sampled_from("0123456789abcdef"), min_size=60, max_size=70).map(lambda h: "sha256=" + h),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(headers=st.dictionaries(_HEADER_NAMES, _HOSTILE_VALUE, max_size=8), body=st.binary(max_size=600))
def test_hostile_unsigned_requests_never_5xx_never_accepted(headers: dict[str, Any], body: bytes) -> None:
    store = FakeStore()
    response = client(store).post(url(), content=body, headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.json()["ok"] is False
    assert store.calls == 0


@_SETTINGS
@given(
    payload=st.one_of(
        _JSON,
        st.fixed_dictionaries(
            {"event": _JSON | st.text(max_size=40), "timestamp": _JSON, "data": _JSON},
            optional={"extra": _JSON},
        ),
        st.fixed_dictionaries(
            {
                "event": st.sampled_from(["message.received", "message.status", "x/y?z#", ""]),
                "data": st.fixed_dictionaries({"instance_key": _JSON | st.text(max_size=300)}, optional={"x": _JSON}),
            }
        ),
    ),
    raw=st.none() | st.binary(max_size=200),
    offset=st.integers(-400, 400),
    event_id=st.one_of(st.just(None), _PRINTABLE),
)
def test_signed_hostile_payloads_never_5xx(payload: Any, raw: bytes | None, offset: int, event_id: str | None) -> None:
    """With the right secret, any body and timestamp: 4xx, or 2xx for a well-formed event only."""
    body = raw if raw is not None else json.dumps(payload).encode()
    ts = int(time.time()) + offset
    headers = {
        SIGNATURE_HEADERS[0]: compute_signature(SECRET, ts, body),
        TIMESTAMP_HEADER: str(ts),
        EVENT_ID_HEADER: event_id if event_id is not None else str(uuid.uuid4()),
    }
    store = FakeStore(consumed=("waslah://waslah_default/demo/message.received",))
    response = client(store).post(url(), content=body, headers=headers)
    assert response.status_code < 500, response.text
    if 200 <= response.status_code < 300:
        parsed = json.loads(body)
        assert isinstance(parsed["event"], str) and parsed["event"]
        assert isinstance(parsed["data"]["instance_key"], str) and parsed["data"]["instance_key"]
        assert abs(offset) <= 300
        assert response.json()["asset"].startswith("waslah://waslah_default/")
    else:
        assert store.stored == []


@_SETTINGS
@given(
    where=st.sampled_from(["body", "signature", "timestamp", "secret"]),
    position=st.integers(0, 10_000),
    byte=st.integers(0, 255),
)
def test_any_change_to_a_signed_delivery_is_refused(where: str, position: int, byte: int) -> None:
    body, headers = delivery(event_id="ev-mutated")
    if where == "body":
        index = position % len(body)
        if body[index] == byte:
            return
        body = body[:index] + bytes([byte]) + body[index + 1 :]
    elif where == "signature":
        signature = headers[SIGNATURE_HEADERS[0]]
        index = len("sha256=") + position % 64
        replacement = "0123456789abcdef"[byte % 16]
        if signature[index] == replacement:
            return
        for alias in SIGNATURE_HEADERS:
            headers[alias] = signature[:index] + replacement + signature[index + 1 :]
    elif where == "timestamp":
        headers[TIMESTAMP_HEADER] = str(int(headers[TIMESTAMP_HEADER]) + 1 + position % 200)
    else:
        _, headers = delivery(event_id="ev-mutated", secret=SECRET + chr(0x21 + byte % 90))
    store = FakeStore()
    response = client(store).post(url(), content=body, headers=headers)
    assert 400 <= response.status_code < 500
    assert store.stored == []
