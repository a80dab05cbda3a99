"""WaslahHook and WaslahAsyncHook: connection parsing, test_connection, and every endpoint over real HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_provider_waslah.client import errors as e
from airflow_provider_waslah.client import models as m
from airflow_provider_waslah.client.client import DEFAULT_BASE_URL, AsyncWaslahClient, WaslahClient
from airflow_provider_waslah.emulator.process import free_port
from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook, WaslahHook, client_options

KEY = "wsl_live_abcdef0123456789"


def conn(**fields: Any) -> Connection:
    fields.setdefault("password", KEY)
    extra = fields.pop("extra", None)
    return Connection(conn_id="waslah_test", conn_type="waslah", extra=json.dumps(extra) if extra else None, **fields)


# ---------------------------------------------------------------- connection -> client options


@pytest.mark.parametrize(
    ("fields", "base_url"),
    [
        ({}, None),
        ({"host": "https://waslah.id/api/v1"}, "https://waslah.id/api/v1"),
        ({"host": "http://127.0.0.1:8787/api/v1/"}, "http://127.0.0.1:8787/api/v1"),
        ({"host": "gateway.example.com"}, "https://gateway.example.com/api/v1"),
        ({"host": "gateway.example.com", "schema": "http", "port": 8080}, "http://gateway.example.com:8080/api/v1"),
        ({"host": "gateway.example.com", "schema": "api/v2"}, "https://gateway.example.com/api/v2"),
    ],
)
def test_base_url_from_the_host_field(fields: dict[str, Any], base_url: str | None) -> None:
    assert client_options(conn(**fields)).get("base_url") == base_url


@pytest.mark.parametrize(
    ("uri", "base_url"),
    [
        (f"waslah://:{KEY}@waslah.id:443/api%2Fv1", "https://waslah.id:443/api/v1"),
        (f"waslah://:{KEY}@waslah.id", "https://waslah.id/api/v1"),
        (f"waslah://:{KEY}@127.0.0.1:8787/http", "http://127.0.0.1:8787/api/v1"),
        (
            f"waslah://http://:{KEY}@127.0.0.1%3A8787%2Fapi%2Fv1/",
            "http://127.0.0.1:8787/api/v1",
        ),  # Connection.get_uri()
        (f"waslah://:{KEY}@?plan=free", None),
    ],
)
def test_base_url_from_uri_connections(uri: str, base_url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_URI", uri)
    options = client_options(WaslahHook.get_connection("waslah_uri"))
    assert options.get("base_url") == base_url
    assert options["api_key"] == KEY


def test_extras_become_client_options() -> None:
    options = client_options(
        conn(
            host="https://waslah.id/api/v1",
            extra={
                "timeout": "12.5",
                "max_retries": 5,
                "plan": "basic",
                "rate_limit_per_minute": "250",
                "rate_limit_window_seconds": 30,
                "webhook_secret": "whsec_1234567890",
            },
        )
    )
    assert options == {
        "api_key": KEY,
        "base_url": "https://waslah.id/api/v1",
        "plan": "basic",
        "timeout": 12.5,
        "max_retries": 5,
        "rate_limit_per_minute": 250,
        "rate_limit_window_seconds": 30.0,
    }
    client = WaslahClient(**options)
    assert (client.timeout, client.settings.max_retries, client.limiter.limit) == (12.5, 5, 250)
    assert client.limiter.window_seconds == 30.0


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"password": None}, "connection 'waslah_test' password", "must hold the Waslah API key"),
        (
            {"extra": {"plan": "gold"}},
            "connection 'waslah_test' extra.plan",
            "must be one of free, basic, pro, enterprise (got a str of 4 characters)",
        ),
        ({"extra": {"timeout": "soon"}}, "connection 'waslah_test' extra.timeout", "must be a number (got a str of 4"),
        ({"extra": {"max_retries": -1}}, "connection 'waslah_test' extra.max_retries", "must be at least 0"),
        ({"extra": {"timeout": 0}}, "connection 'waslah_test' extra.timeout", "must be at least 0.1"),
        (
            {"extra": {"rate_limit_per_minute": "many"}},
            "connection 'waslah_test' extra.rate_limit_per_minute",
            "must be a whole number (got a str of 4 characters)",
        ),
        (
            {"extra": {"rate_limit_per_minute": 0}},
            "connection 'waslah_test' extra.rate_limit_per_minute",
            "must be at least 1",
        ),
        ({"extra": {"max_retries": 2.5}}, "connection 'waslah_test' extra.max_retries", "must be a whole number"),
        ({"extra": {"max_retries": True}}, "connection 'waslah_test' extra.max_retries", "must be a whole number"),
        ({"extra": {"timeout": "nan"}}, "connection 'waslah_test' extra.timeout", "must be a finite number"),
        ({"extra": {"timeout": float("inf")}}, "connection 'waslah_test' extra.timeout", "must be a finite number"),
        ({"extra": {"timeout": 10**400}}, "connection 'waslah_test' extra.timeout", "must be a finite number"),
        ({"extra": {"timeout": [1]}}, "connection 'waslah_test' extra.timeout", "must be a number (got a list"),
        ({"extra": {"plan": ["pro"]}}, "connection 'waslah_test' extra.plan", "must be one of free"),
        ({"extra": {"timeout": "١٢"}}, "connection 'waslah_test' extra.timeout", "must be a number (got a str of 2"),
    ],
)
def test_bad_connections_fail_naming_the_field(fields: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(e.WaslahInvalidInputError) as caught:
        client_options(conn(**fields))
    assert caught.value.field == field
    assert rule in caught.value.rule


SECRET_PASTE = "whsec_TOPSECRET_0a1b2c3d4e5f"


@pytest.mark.parametrize(
    "extra", ["plan", "timeout", "max_retries", "rate_limit_per_minute", "rate_limit_window_seconds"]
)
@pytest.mark.parametrize("pasted", [SECRET_PASTE, KEY, "-" + SECRET_PASTE, SECRET_PASTE + "\n"])
def test_a_secret_pasted_into_the_wrong_extra_is_never_echoed(extra: str, pasted: str) -> None:
    with pytest.raises(e.WaslahInvalidInputError) as caught:
        client_options(conn(extra={extra: pasted}))
    assert caught.value.field == f"connection 'waslah_test' extra.{extra}"
    assert f"a str of {len(pasted)} characters" in caught.value.rule
    texts = [str(caught.value), repr(caught.value), repr(caught.value.args), repr(vars(caught.value))]
    assert not [text for text in texts if pasted.strip() in text or pasted.strip()[6:] in text]


@pytest.mark.parametrize("pasted", [KEY + "\n", KEY + "\r\n", "\t" + KEY + "  ", " " + KEY, KEY + "\u00a0"])
def test_a_key_pasted_with_surrounding_whitespace_is_stripped(pasted: str) -> None:
    assert client_options(conn(password=pasted))["api_key"] == KEY


@pytest.mark.parametrize(
    "pasted",
    [
        "wsl_live abcdef0123456789",
        "wsl_live\tabcdef0123456789",
        "wsl_live\nabcdef0123456789",
        "wsl_live_abcdéf0123456789",
        "wsl_live_abc\x00def0123456789",
        "wsl_live_abc\x7fdef0123456789",
        "wsl_live_abc\u200bdef0123456789",
        "wsl_live_abc\ud800def0123456789",
        "   ",
    ],
    ids=["space", "tab", "newline", "non-ascii", "nul", "del", "zero-width", "surrogate", "blank"],
)
def test_a_key_with_inner_whitespace_or_odd_characters_is_refused_without_echo(pasted: str) -> None:
    with pytest.raises(e.WaslahInvalidInputError) as caught:
        client_options(conn(password=pasted))
    assert caught.value.field == "connection 'waslah_test' password"
    texts = [str(caught.value), repr(caught.value), repr(vars(caught.value))]
    assert not [text for text in texts if "abcdef0123456789" in text or "def0123456789" in text]
    with pytest.raises(e.WaslahInvalidInputError) as direct:
        WaslahClient(api_key=pasted)
    assert direct.value.field == "api_key"
    assert "def0123456789" not in str(direct.value)


def test_empty_host_means_waslah_id() -> None:
    assert WaslahClient(**client_options(conn())).base_url == DEFAULT_BASE_URL == "https://waslah.id/api/v1"


def test_json_connection_from_the_environment(waslah_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_DEFAULT",
        json.dumps(
            {
                "conn_type": "waslah",
                "host": waslah_emulator.base_url,
                "password": waslah_emulator.api_key,
                "extra": {"timeout": 7, "max_retries": 1, "plan": "free", "webhook_secret": "whsec_json_123456"},
            }
        ),
    )
    hook = WaslahHook()
    assert (hook.client.base_url, hook.client.timeout, hook.client.settings.max_retries) == (
        waslah_emulator.base_url,
        7.0,
        1,
    )
    assert hook.client.limiter.limit == 60
    assert hook.client._api_key.get_secret_value() == waslah_emulator.api_key
    assert hook.webhook_secret == "whsec_json_123456"
    assert hook.get_me().user.email == "demo@waslah.local"
    assert hook.get_conn() is hook.client


def test_uri_connection_from_the_environment(waslah_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = Connection(
        conn_id="waslah_default",
        conn_type="waslah",
        host=waslah_emulator.base_url,
        password=waslah_emulator.api_key,
        extra=json.dumps({"rate_limit_per_minute": 42, "max_retries": 2, "webhook_secret": "whsec_uri_1234567"}),
    ).get_uri()
    assert uri.startswith("waslah://")
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", uri)
    hook = WaslahHook()
    assert hook.client.base_url == waslah_emulator.base_url
    assert (hook.client.limiter.limit, hook.client.settings.max_retries) == (42, 2)
    assert hook.webhook_secret == "whsec_uri_1234567"
    assert [i.key for i in hook.list_instances()] == ["demo", "offline"]


async def test_async_hook_reads_the_same_connection(waslah_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", waslah_emulator.airflow_connection(timeout=9, plan="basic"))
    hook = WaslahAsyncHook()
    client = await hook.get_async_conn()
    assert isinstance(client, AsyncWaslahClient)
    assert (client.base_url, client.timeout, client.limiter.limit) == (waslah_emulator.base_url, 9.0, 300)
    assert await hook.get_async_conn() is client
    assert client.limiter is WaslahHook().client.limiter  # one budget per key in the process
    await hook.aclose()


def test_hook_identity() -> None:
    assert (WaslahHook.conn_type, WaslahHook.default_conn_name, WaslahHook.hook_name) == (
        "waslah",
        "waslah_default",
        "Waslah",
    )
    assert WaslahHook.conn_name_attr == "waslah_conn_id"
    assert WaslahHook(waslah_conn_id="other").waslah_conn_id == "other"
    assert repr(WaslahAsyncHook()) == "WaslahAsyncHook(waslah_conn_id='waslah_default')"


# ---------------------------------------------------------------- test_connection


@pytest.fixture
def use(waslah_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point waslah_default at the emulator with a given key and extras."""

    def point(key: str | None = None, base_url: str | None = None, **extra: Any) -> WaslahHook:
        monkeypatch.setenv(
            "AIRFLOW_CONN_WASLAH_DEFAULT",
            json.dumps(
                {
                    "conn_type": "waslah",
                    "host": base_url or waslah_emulator.base_url,
                    "password": key or waslah_emulator.api_key,
                    "extra": extra,
                }
            ),
        )
        return WaslahHook()

    return point


def test_test_connection_reports_owner_and_scopes(use: Any, waslah_emulator: Any) -> None:
    assert use().test_connection() == (
        True,
        f"Connected to {waslah_emulator.base_url} as Demo User <demo@waslah.local>; key Demo key has scopes: "
        "instances:read, instances:write, messages:read, messages:send.",
    )


def test_test_connection_reports_missing_scopes(use: Any, waslah_emulator: Any) -> None:
    waslah_emulator.seed(
        api_keys=[{"key": "wsl_sendonly_000000", "user_id": 1, "name": "Sender", "scopes": ["messages:send"]}]
    )
    ok, message = use("wsl_sendonly_000000").test_connection()
    assert ok is True
    assert message == (
        f"Connected to {waslah_emulator.base_url} as Demo User <demo@waslah.local>; "
        "key Sender has scopes: messages:send. "
        "Missing: messages:read (cannot read message and broadcast status (sensors, wait_for, broadcast resume)); "
        "instances:read (cannot list instances and check their status)."
    )
    assert [r["path"] for r in waslah_emulator.requests()] == ["/api/v1/me"]


def test_test_connection_wrong_key(use: Any) -> None:
    assert use("wsl_wrong_00000000000").test_connection() == (
        False,
        "WaslahUnauthorizedError: GET /me failed with HTTP 401 unauthorized: "
        "Unauthenticated. API key tidak valid atau sudah dicabut. Waslah refused the API key of connection "
        "'waslah_default': put a valid, unrevoked, unexpired wsl_… key from Waslah's dashboard (API Keys) in its "
        '"API key" field (the connection\'s password).',
    )


def test_test_connection_free_plan(use: Any, waslah_emulator: Any) -> None:
    waslah_emulator.seed(
        users=[{"id": 3, "name": "Free", "email": "free@example.com", "plan": "free"}],
        api_keys=[{"key": "wsl_free_000000000000", "user_id": 3}],
    )
    assert use("wsl_free_000000000000").test_connection() == (
        False,
        "WaslahPlanFeatureRequiredError: GET /me failed with HTTP 403 plan_feature_required: "
        "REST API access butuh plan Pro atau lebih tinggi. The Waslah account of connection 'waslah_default' "
        "needs a higher plan for this (Waslah's dashboard, Billing).",
    )


def test_test_connection_refused(use: Any) -> None:
    port = free_port()
    ok, message = use(base_url=f"http://127.0.0.1:{port}/api/v1", max_retries=0).test_connection()
    assert ok is False
    assert message.startswith(f"WaslahConnectionError: GET /me: could not connect to http://127.0.0.1:{port}/api/v1 (")
    assert "Check the \"Base URL\" field (host) of connection 'waslah_default'" in message
    assert "refused" in message.lower()


def test_test_connection_with_a_pasted_newline_works(use: Any, waslah_emulator: Any) -> None:
    ok, message = use(waslah_emulator.api_key + "\r\n").test_connection()
    assert (ok, message.startswith("Connected to")) == (True, True)
    assert [r["status"] for r in waslah_emulator.requests()] == [200]


@pytest.mark.parametrize(
    "key", ["wsl_SECRET KEY_0a1b2c3d4e", "wsl_SECRETKEY_0a1b2c3d4e\u00e9", "wsl_SECRET\x00KEY_0a1b2c3d"]
)
def test_test_connection_never_shows_the_key_or_webhook_secret(use: Any, waslah_emulator: Any, key: str) -> None:
    ok, message = use(key, webhook_secret=SECRET_PASTE).test_connection()
    assert ok is False
    assert "password" in message
    assert "SECRET" not in message and "0a1b2c3d" not in message
    for extra in ("plan", "timeout", "max_retries", "rate_limit_per_minute", "rate_limit_window_seconds"):
        ok, message = use(None, webhook_secret=SECRET_PASTE, **{extra: SECRET_PASTE}).test_connection()
        assert ok is False and extra in message
        assert "TOPSECRET" not in message and "0a1b2c3d4e5f" not in message
    assert waslah_emulator.requests() == []


def test_test_connection_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASLAH_DEFAULT", json.dumps({"conn_type": "waslah", "host": "https://waslah.id/api/v1"})
    )
    assert WaslahHook().test_connection() == (
        False,
        "WaslahInvalidInputError: Invalid `connection 'waslah_default' password`: "
        "must hold the Waslah API key (wsl_…). Nothing was sent.",
    )


# ---------------------------------------------------------------- every endpoint, sync and async

TO = "081234567890"


def check_results(results: dict[str, Any], emulator: Any) -> None:
    me = results["get_me"]
    assert isinstance(me, m.Me) and me.user.id == 1 and "messages:send" in me.api_key.scopes
    assert me.api_key.prefix and emulator.api_key.startswith(me.api_key.prefix)
    instances = results["list_instances"]
    assert [(i.key, i.status) for i in instances] == [("demo", "connected"), ("offline", "disconnected")]
    assert all(isinstance(i, m.Instance) for i in instances)
    assert results["get_instance"].phone_number == "6281100000001"
    text, media_via_unified = results["send_message_text"], results["send_message_media"]
    assert isinstance(text, m.MessageReceipt) and (text.status, text.to, text.preview) == (
        "pending",
        "6281234567890",
        "Halo",
    )
    assert text.check_status_url == f"{emulator.base_url}/messages/{text.id}"
    assert (media_via_unified.type, media_via_unified.media_url, media_via_unified.caption) == (
        "image",
        "https://cdn.example.com/promo.jpg",
        "Promo",
    )
    assert results["send_text"].status == "pending"
    media = results["send_media"]
    assert (media.type, media.media_url) == ("document", results["upload_bytes"].url)
    broadcast = results["send_bulk"]
    assert isinstance(broadcast, m.Broadcast)
    assert (broadcast.total, broadcast.message_type, broadcast.name, broadcast.delay_label) == (
        2,
        "text",
        "Promo",
        "0 detik (fixed)",
    )
    up_bytes, up_path = results["upload_bytes"], results["upload_path"]
    assert isinstance(up_bytes, m.Upload)
    assert (up_bytes.filename, up_bytes.mime_type, up_bytes.type, up_bytes.size) == (
        "invoice.pdf",
        "application/pdf",
        "document",
        9,
    )
    assert (up_path.filename, up_path.mime_type, up_path.type) == ("kucing.png", "image/png", "image")
    assert up_bytes.url.startswith(f"{emulator.origin}/storage/uploads/")
    message = results["get_message"]
    assert isinstance(message, m.Message)
    assert (message.id, message.direction, message.message_type, message.body, message.remote_jid) == (
        text.id,
        "outbound",
        "text",
        "Halo",
        "6281234567890@s.whatsapp.net",
    )
    assert message.status in ("pending", "sent", "delivered", "read")
    assert [b.id for b in results["list_broadcasts"]] == [broadcast.id]
    assert results["get_broadcast"].id == broadcast.id
    assert results["get_broadcast"].status in ("queued", "processing", "completed")
    ledger = emulator.ledger()
    kinds = sorted(entry["type"] for entry in ledger["6281234567890"])
    assert kinds == ["document", "image", "text", "text", "text"]  # unified text, unified image, text, media, bulk
    assert len(ledger["6281234567891"]) == 1


def png(tmp_path: Path) -> Path:
    path = tmp_path / "kucing.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    return path


def test_every_sync_hook_method(emulator: Any, tmp_path: Path) -> None:
    hook = WaslahHook()
    r: dict[str, Any] = {}
    r["get_me"] = hook.get_me()
    r["list_instances"] = hook.list_instances()
    r["get_instance"] = hook.get_instance("demo")
    r["send_message_text"] = hook.send_message(instance_key="demo", to=TO, text="Halo")
    r["send_message_media"] = hook.send_message(
        instance_key="demo", to=TO, url="https://cdn.example.com/promo.jpg", caption="Promo"
    )
    r["send_text"] = hook.send_text(instance_key="demo", to="+62 812 3456 7890", text="Kedua")
    r["upload_bytes"] = hook.upload(file=b"%PDF-1.4\n", filename="invoice.pdf")
    r["upload_path"] = hook.upload(file=png(tmp_path))
    r["send_media"] = hook.send_media(
        instance_key="demo", to=TO, type="document", url=r["upload_bytes"].url, filename="Invoice.pdf"
    )
    r["send_bulk"] = hook.send_bulk(
        instance_key="demo",
        recipients=[TO, "081234567891", TO],
        text="Bulk",
        name="Promo",
        delay_min_sec=0,
        delay_max_sec=0,
    )
    r["get_message"] = hook.get_message(r["send_message_text"].id)
    r["list_broadcasts"] = hook.list_broadcasts()
    r["get_broadcast"] = hook.get_broadcast(r["send_bulk"].id)
    check_results(r, emulator)
    routes = [(x["method"], x["path"]) for x in emulator.requests()]
    assert routes.count(("POST", "/api/v1/messages")) == 2
    assert ("POST", "/api/v1/messages/media") in routes and ("POST", "/api/v1/messages/text") in routes


async def test_every_async_hook_method(emulator: Any, tmp_path: Path) -> None:
    hook = WaslahAsyncHook()
    r: dict[str, Any] = {}
    try:
        r["get_me"] = await hook.get_me()
        r["list_instances"] = await hook.list_instances()
        r["get_instance"] = await hook.get_instance("demo")
        r["send_message_text"] = await hook.send_message(instance_key="demo", to=TO, text="Halo")
        r["send_message_media"] = await hook.send_message(
            instance_key="demo", to=TO, url="https://cdn.example.com/promo.jpg", caption="Promo"
        )
        r["send_text"] = await hook.send_text(instance_key="demo", to="+62 812 3456 7890", text="Kedua")
        r["upload_bytes"] = await hook.upload(file=b"%PDF-1.4\n", filename="invoice.pdf")
        r["upload_path"] = await hook.upload(file=png(tmp_path))
        r["send_media"] = await hook.send_media(
            instance_key="demo", to=TO, type="document", url=r["upload_bytes"].url, filename="Invoice.pdf"
        )
        r["send_bulk"] = await hook.send_bulk(
            instance_key="demo",
            recipients=[TO, "081234567891", TO],
            text="Bulk",
            name="Promo",
            delay_min_sec=0,
            delay_max_sec=0,
        )
        r["get_message"] = await hook.get_message(r["send_message_text"].id)
        r["list_broadcasts"] = await hook.list_broadcasts()
        r["get_broadcast"] = await hook.get_broadcast(r["send_bulk"].id)
    finally:
        await hook.aclose()
    check_results(r, emulator)


def test_results_dump_to_json_safe_dicts(emulator: Any) -> None:
    receipt = WaslahHook().send_text(instance_key="demo", to=TO, text="Halo")
    dumped = receipt.model_dump(mode="json")
    assert json.loads(json.dumps(dumped))["id"] == receipt.id
    with pytest.raises(Exception, match="frozen"):
        receipt.status = "sent"  # type: ignore[misc]


def test_async_hook_works_from_one_event_loop_after_another(emulator: Any) -> None:
    """Two ``asyncio.run`` calls with one hook (a PythonOperator, a notifier): each loop gets its own client."""
    hook = WaslahAsyncHook()
    first = asyncio.run(hook.send_text(instance_key="demo", to=TO, text="Satu"))
    second = asyncio.run(hook.send_text(instance_key="demo", to=TO, text="Dua"))
    assert second.id == first.id + 1
    assert [m["text"] for m in emulator.ledger()["6281234567890"]] == ["Satu", "Dua"]

    async def twice_in_one_loop() -> bool:
        return await hook.get_async_conn() is await hook.get_async_conn()

    assert asyncio.run(twice_in_one_loop())
