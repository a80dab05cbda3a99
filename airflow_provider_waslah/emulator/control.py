"""The control API under ``/_emulator/`` (no auth): what tests use to set the scene and look behind it.

=========================  ==========================================================================
``POST reset``             back to the start seed; clears messages, broadcasts, uploads, webhooks,
                           faults, the request log and rate windows
``POST seed``              change the live seed (fields below); answers a summary
``GET seed``               the live seed (API keys by prefix); ``POST``-able back
``POST faults``            install a fault (fields below); ``GET`` lists them, ``DELETE`` removes all
``POST webhooks``          ``{"url", "secret", "user_id"?}``: where a user's events go; ``GET`` lists them
``POST inbound``           a customer writes in: ``{"instance_key"?, "from" | "remote_jid", "body"?,
                           "lid"?, "message_type"?}``; fires ``message.received``
``GET requests``           the request log (API requests only; ``fault``: the fault that hit each one)
``GET ledger``             every outbound message (``message_id``, text or file, status) per recipient:
                           exactly what was queued, whatever the client saw
``GET webhook-deliveries`` every webhook event with its attempts
=========================  ==========================================================================

Every body is checked before anything changes: bad input is a 422 ``validation_failed`` whose
``errors`` name each field (``time_scale``, ``users[0].plan``, ``lifecycle.sent``), and the state
is left as it was. Unknown fields are refused too (a typo is not silently ignored).

**Seed** (``POST seed``; every field optional):
``time_scale`` (real seconds per emulated second, > 0 and <= 1e6), ``rate_window_seconds``
(> 0), ``rate_limit_reset_header_always`` (bool), ``random_seed`` (int),
``webhook_max_attempts`` (1-100), ``webhook_timeout`` (> 0 s), ``webhook_backoff`` (>= 0 s),
``unreachable`` (``fnmatch`` patterns), ``plan_limits`` (``{plan: requests per window}``),
``plan_features`` (``{feature: [plans]}``), ``lifecycle`` (``{sent, delivered, read,
broadcast_start}``: emulated seconds >= 0), and ``users`` (``id``, ``name``, ``email``,
``plan``), ``api_keys`` (``key``, ``id``, ``user_id``, ``name``, ``scopes``, ``revoked``,
``expires_at``: ISO 8601 or Unix time) and ``instances`` (``key``, ``id``, ``user_id``, ``name``,
``status``, ``phone_number``) merged by ``id``/``key``. Numbers must be finite: ``NaN`` and
``Infinity`` are not JSON.

**Faults** (``POST faults``) hit requests whose ``"METHOD /path"`` matches ``route`` (``fnmatch``,
default ``*``); control calls are never hit. What a fault does (its ``kind``):

* ``status`` (default 500): the request is **not** processed; the answer is that status with the
  error envelope (``error``/``message`` override its words; a 429 also carries ``Retry-After:
  retry_after``, default 1, and ``X-RateLimit-Remaining: 0``). Valid statuses are 400-599: the
  envelope is an error body, 1xx/204/304 cannot carry one, and 2xx with a wrong body is
  ``garbage``. ``"status": null`` with nothing else is a fault that lets requests through (it
  still counts: two of them ahead of another fault let two requests pass first).
* ``drop_connection``: **not** processed; the connection closes without an answer.
* ``lose_response``: processed (a send is queued), then the connection closes without an answer.
* ``garbage``: processed, then answered with the status it earned (202 for a queued send) and
  a wrong body: ``body`` is ``html`` (a web page), ``truncated`` (half the JSON),
  ``wrong_shape`` (JSON of another shape), ``empty``, or ``random`` (default: one per hit).
* ``answer_late``: processed first, then the answer waits ``latency`` seconds (> 0): the effects
  happen even if the client gives up; a patient client gets the real answer, late.

``latency`` (seconds, 0-300) on any other kind waits *before* processing: a client that gives up
meanwhile leaves a send unprocessed (its body can no longer be read). ``status`` cannot be
combined with another kind, and a fault has at most one kind.

``rate`` (0 < rate <= 1, default 1): one random draw per request, and the faults matching it take
consecutive slices of ``[0, 1)`` as wide as their rates, in the order they were added, so rates
add up: seven faults at rate 0.2/7 on ``POST /api/v1/messages*`` hit 20% of sends, one kind
each. ``count`` (>= 1): the fault fires that many times, then goes; ``null`` (default) means no
limit. ``count: 0`` is refused: a fault that never fires is no fault (remove it instead).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from airflow_provider_waslah.client import validation as v
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.emulator.backend import WaslahBackend
from airflow_provider_waslah.emulator.defaults import ALL_SCOPES, DEFAULT_INSTANCE_KEY
from airflow_provider_waslah.emulator.errors import EmulatorAPIError, validation_failed
from airflow_provider_waslah.emulator.faults import GARBAGE_BODIES
from airflow_provider_waslah.emulator.parsing import FieldErrors, parse_json
from airflow_provider_waslah.emulator.records import FaultSpec, InboundRequest
from airflow_provider_waslah.emulator.responses import (
    delivery_json,
    fault_json,
    ledger_json,
    message_json,
    request_json,
    seed_json,
    summary_json,
    webhook_json,
)
from airflow_provider_waslah.emulator.settings import Lifecycle, SeedPatch
from airflow_provider_waslah.plans import PLAN_NAMES

CONTROL_PREFIX = "/_emulator"
#: Message types an inbound message can have.
INBOUND_TYPES = ("text", "image", "video", "audio", "document", "sticker")
_MAX_ID = 2**63 - 1
# Unix times an ISO 8601 date can show (years 1-9999), so every stored time can be answered.
_MIN_TIME, _MAX_TIME = -62135596800.0, 253402300799.0


class _Checks(FieldErrors):
    """Typed checks of control-API fields, each noting a Laravel-style error on failure."""

    def number(self, name: str, value: object, low: float, high: float, low_open: bool = False) -> float | None:
        """A finite number in ``[low, high]`` (``(low, high]`` if ``low_open``), booleans refused."""
        bound = f"greater than {low:g}" if low_open else f"at least {low:g}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(name, f"must be a number {bound} and at most {high:g}, got {_type(value)}")
            return None
        number = float(value)
        if not math.isfinite(number) or number < low or (low_open and number == low) or number > high:
            self.add(name, f"must be a number {bound} and at most {high:g}, got {value!r}")
            return None
        return number

    def integer(self, name: str, value: object, low: int, high: int) -> int | None:
        """A whole number in ``[low, high]`` (booleans and floats refused)."""
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.add(name, f"must be an integer from {low} to {high}, got {_shown(value)}")
            return None
        return value

    def boolean(self, name: str, value: object) -> bool | None:
        """``true`` or ``false``."""
        if not isinstance(value, bool):
            self.add(name, f"must be true or false, got {_shown(value)}")
            return None
        return value

    def string(self, name: str, value: object, limit: int = 255, blank: bool = False) -> str | None:
        """A string of at most ``limit`` characters (not blank unless ``blank``)."""
        if not isinstance(value, str) or len(value) > limit or (not blank and not value.strip()):
            self.add(name, f"must be a non-empty string of at most {limit} characters, got {_shown(value)}")
            return None
        return value

    def choice(self, name: str, value: object, allowed: tuple[str, ...]) -> str | None:
        """One of ``allowed``."""
        if value not in allowed:
            self.add(name, f"must be one of {', '.join(allowed)}, got {_shown(value)}")
            return None
        return str(value)

    def items(self, name: str, value: object, limit: int = 1000) -> list[Any]:
        """A JSON array of at most ``limit`` items (``[]`` noted as an error if it is not one)."""
        if not isinstance(value, list) or len(value) > limit:
            self.add(name, f"must be an array of at most {limit} items, got {_shown(value)}")
            return []
        return value

    def mapping(self, name: str, value: object) -> dict[str, Any]:
        """A JSON object (``{}`` noted as an error if it is not one)."""
        if not isinstance(value, dict):
            self.add(name, f"must be an object, got {_shown(value)}")
            return {}
        return value

    def known(self, name: str, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
        """Note every key of ``data`` not in ``allowed``."""
        for key in data:
            if key not in allowed:
                self.add(f"{name}{key}", f"is not a known field (known: {', '.join(allowed)})")


def _type(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _shown(value: object) -> str:
    text = repr(value) if isinstance(value, (str, int, float, bool)) else _type(value)
    return text if len(text) <= 40 else text[:39] + "…"


# ---------------------------------------------------------------- seed

_SETTING_NAMES = (
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
)
_USER_FIELDS = ("id", "name", "email", "plan")
_KEY_FIELDS = ("key", "id", "user_id", "name", "scopes", "revoked", "expires_at")
_INSTANCE_FIELDS = ("key", "id", "user_id", "name", "status", "phone_number")


def parse_seed_patch(data: object) -> SeedPatch:
    """A ``POST /_emulator/seed`` body (or a seed file) as a validated :class:`SeedPatch`, else a 422."""
    if not isinstance(data, dict):
        raise _body_must_be_object("seed")
    checks = _Checks()
    checks.known("", data, (*_SETTING_NAMES, "users", "api_keys", "instances"))
    settings: dict[str, Any] = {}
    for name, check in _SETTING_CHECKS.items():
        if name in data:
            value = check(checks, name, data[name])
            if value is not None:
                settings[name] = value
    users = tuple(
        _user(checks, f"users[{i}]", item) for i, item in enumerate(checks.items("users", data.get("users", [])))
    )
    keys = tuple(
        _api_key(checks, f"api_keys[{i}]", item)
        for i, item in enumerate(checks.items("api_keys", data.get("api_keys", [])))
    )
    instances = tuple(
        _instance(checks, f"instances[{i}]", item)
        for i, item in enumerate(checks.items("instances", data.get("instances", [])))
    )
    checks.raise_if_any()
    return SeedPatch(settings=settings, users=users, api_keys=keys, instances=instances)


def _patterns(checks: _Checks, name: str, value: object) -> tuple[str, ...] | None:
    items = checks.items(name, value, 100)
    patterns = [checks.string(f"{name}[{i}]", item, 100) for i, item in enumerate(items)]
    return tuple(p for p in patterns if p is not None) if isinstance(value, list) else None


def _plan(checks: _Checks, name: str, value: object) -> str | None:
    """A plan name, any case."""
    return checks.choice(name, value.lower() if isinstance(value, str) else value, PLAN_NAMES)


def _plan_limits(checks: _Checks, name: str, value: object) -> dict[str, int]:
    limits = {}
    for plan, limit in checks.mapping(name, value).items():
        if _plan(checks, f"{name}.{plan}", plan) is not None:
            number = checks.integer(f"{name}.{plan}", limit, 1, 10**9)
            if number is not None:
                limits[plan.lower()] = number
    return limits


def _plan_features(checks: _Checks, name: str, value: object) -> dict[str, tuple[str, ...]]:
    features = {}
    for feature, plans in checks.mapping(name, value).items():
        field_name = f"{name}.{feature}"
        if checks.string(field_name, feature, 100) is None:
            continue
        listed = [_plan(checks, field_name, plan) for plan in checks.items(field_name, plans, 10)]
        features[feature] = tuple(p for p in listed if p is not None)
    return features


def _lifecycle(checks: _Checks, name: str, value: object) -> dict[str, float]:
    offsets = {}
    data = checks.mapping(name, value)
    checks.known(f"{name}.", data, tuple(Lifecycle.__dataclass_fields__))
    for stage, seconds in data.items():
        if stage in Lifecycle.__dataclass_fields__:
            number = checks.number(f"{name}.{stage}", seconds, 0, 1e6)
            if number is not None:
                offsets[stage] = number
    return offsets


_SETTING_CHECKS: dict[str, Any] = {
    "time_scale": lambda c, n, x: c.number(n, x, 0, 1e6, low_open=True),
    "rate_window_seconds": lambda c, n, x: c.number(n, x, 0, 1e7, low_open=True),
    "rate_limit_reset_header_always": lambda c, n, x: c.boolean(n, x),
    "random_seed": lambda c, n, x: c.integer(n, x, -_MAX_ID, _MAX_ID),
    "webhook_max_attempts": lambda c, n, x: c.integer(n, x, 1, 100),
    "webhook_timeout": lambda c, n, x: c.number(n, x, 0, 3600, low_open=True),
    "webhook_backoff": lambda c, n, x: c.number(n, x, 0, 86400),
    "unreachable": _patterns,
    "plan_limits": _plan_limits,
    "plan_features": _plan_features,
    "lifecycle": _lifecycle,
}


def _record(checks: _Checks, name: str, item: object, allowed: tuple[str, ...], id_field: str) -> dict[str, Any]:
    """A list item: an object with ``id_field`` and only ``allowed`` fields."""
    data = checks.mapping(name, item)
    if not isinstance(item, dict):
        return {}
    checks.known(f"{name}.", data, allowed)
    if id_field not in data:
        checks.add(f"{name}.{id_field}", "is required")
    return data


def _user(checks: _Checks, name: str, item: object) -> dict[str, Any]:
    data = _record(checks, name, item, _USER_FIELDS, "id")
    user: dict[str, Any] = {}
    if "id" in data:
        user["id"] = checks.integer(f"{name}.id", data["id"], 1, _MAX_ID)
    for text_field in ("name", "email"):
        if text_field in data:
            user[text_field] = checks.string(f"{name}.{text_field}", data[text_field])
    if "plan" in data:
        user["plan"] = _plan(checks, f"{name}.plan", data["plan"])
    return user


def _api_key(checks: _Checks, name: str, item: object) -> dict[str, Any]:
    data = _record(checks, name, item, _KEY_FIELDS, "key")
    key: dict[str, Any] = {}
    if "key" in data:
        key["key"] = checks.string(f"{name}.key", data["key"])
    for int_field in ("id", "user_id"):
        if int_field in data:
            key[int_field] = checks.integer(f"{name}.{int_field}", data[int_field], 1, _MAX_ID)
    if "name" in data:
        key["name"] = checks.string(f"{name}.name", data["name"])
    if "scopes" in data:
        scopes = [
            checks.choice(f"{name}.scopes", s, ALL_SCOPES) for s in checks.items(f"{name}.scopes", data["scopes"], 10)
        ]
        key["scopes"] = tuple(s for s in scopes if s is not None)
    if "revoked" in data:
        key["revoked"] = checks.boolean(f"{name}.revoked", data["revoked"])
    if "expires_at" in data:
        key["expires_at"] = _expiry(checks, f"{name}.expires_at", data["expires_at"])
    return key


def _expiry(checks: _Checks, name: str, value: object) -> float | None:
    """``null``/``""`` (never), a Unix timestamp or an ISO 8601 time (UTC if it has no offset)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            value = moment.timestamp()
        except (ValueError, OverflowError):
            checks.add(name, f"must be an ISO 8601 time or a Unix timestamp, got {_shown(value)}")
            return None
    # In UTC, years 1-9999 only: GET /me shows the time in ISO 8601.
    return checks.number(name, value, _MIN_TIME, _MAX_TIME)


def _instance(checks: _Checks, name: str, item: object) -> dict[str, Any]:
    data = _record(checks, name, item, _INSTANCE_FIELDS, "key")
    instance: dict[str, Any] = {}
    if "key" in data:
        try:
            instance["key"] = v.check_instance_key(data["key"])
        except WaslahInvalidInputError as exc:
            checks.add(f"{name}.key", exc.rule)
    for int_field in ("id", "user_id"):
        if int_field in data:
            instance[int_field] = checks.integer(f"{name}.{int_field}", data[int_field], 1, _MAX_ID)
    for text_field in ("name", "status"):
        if text_field in data:
            instance[text_field] = checks.string(f"{name}.{text_field}", data[text_field], 100)
    if "phone_number" in data:
        phone = data["phone_number"]
        instance["phone_number"] = None if phone is None else checks.string(f"{name}.phone_number", phone, 40)
    return instance


def _body_must_be_object(what: str) -> EmulatorAPIError:
    return validation_failed({"body": [f"The {what} must be a JSON object."]})


# ---------------------------------------------------------------- faults

_FAULT_FIELDS = (
    "route",
    "status",
    "rate",
    "count",
    "latency",
    "answer_late",
    "drop_connection",
    "lose_response",
    "garbage",
    "body",
    "retry_after",
    "error",
    "message",
)
_KIND_FLAGS = ("drop_connection", "lose_response", "garbage", "answer_late")


def parse_fault(data: object) -> FaultSpec:
    """A ``POST /_emulator/faults`` body as a :class:`FaultSpec`, else a 422 naming each bad field."""
    if not isinstance(data, dict):
        raise _body_must_be_object("fault")
    checks = _Checks()
    checks.known("", data, _FAULT_FIELDS)
    flags = {name: bool(checks.boolean(name, data[name])) if name in data else False for name in _KIND_FLAGS}
    chosen = [name for name, on in flags.items() if on]
    if len(chosen) > 1:
        checks.add(chosen[0], f"cannot be combined with {', '.join(chosen[1:])}: a fault does one thing")
    status: int | None = None if chosen else 500
    if data.get("status") is not None:
        status = checks.integer("status", data["status"], 400, 599)
        if chosen:
            checks.add("status", f"cannot be combined with {chosen[0]}")
    elif "status" in data:
        status = None
    latency = checks.number("latency", data.get("latency", 0.0), 0, 300)
    if flags["answer_late"] and not latency:
        checks.add("latency", "must be greater than 0 with answer_late (how late the answer comes)")
    body = "random"
    if "body" in data:
        if flags["garbage"]:
            body = checks.choice("body", data["body"], ("random", *GARBAGE_BODIES)) or body
        else:
            checks.add("body", "only goes with garbage: true")
    retry_after = None
    if "retry_after" in data:
        if status == 429:
            retry_after = checks.integer("retry_after", data["retry_after"], 0, 86400)
        else:
            checks.add("retry_after", "only goes with status 429")
    elif status == 429:
        retry_after = 1
    count = data.get("count")
    if count is not None:
        count = checks.integer("count", count, 1, 10**9)
    texts = {}
    for name in ("error", "message"):
        if data.get(name) is not None:
            texts[name] = checks.string(name, data[name], 500)
            if status is None:
                checks.add(name, "only goes with a status")
    route = checks.string("route", data.get("route", "*"), 500)
    rate = checks.number("rate", data.get("rate", 1.0), 0, 1, low_open=True)
    checks.raise_if_any()
    assert route is not None and rate is not None and latency is not None
    return FaultSpec(
        route=route,
        status=status,
        rate=rate,
        count=count,
        latency=latency,
        body=body,
        retry_after=retry_after,
        error=texts.get("error"),
        message=texts.get("message"),
        **flags,
    )


# ---------------------------------------------------------------- webhooks and inbound messages


def parse_webhook(data: object) -> tuple[str, str, int | None]:
    """``(url, secret, user_id)`` of a ``POST /_emulator/webhooks`` body, else a 422."""
    if not isinstance(data, dict):
        raise _body_must_be_object("webhook")
    checks = _Checks()
    checks.known("", data, ("url", "secret", "user_id"))
    url = data.get("url")
    if not checks.present(data, "url"):
        url = None
    elif not _is_http_url(url):
        checks.add("url", f"must be an absolute http(s) URL of at most {v.MAX_URL} characters, got {_shown(url)}")
    secret = checks.string("secret", data["secret"], 500) if checks.present(data, "secret") else None
    user_id = None
    if data.get("user_id") is not None:
        user_id = checks.integer("user_id", data["user_id"], 1, _MAX_ID)
    checks.raise_if_any()
    assert isinstance(url, str) and secret is not None
    return url, secret, user_id


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str) or len(value) > v.MAX_URL:
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # an invalid IPv6 literal, or a port out of range
        return False


def parse_inbound(data: object) -> InboundRequest:
    """A ``POST /_emulator/inbound`` body as an :class:`InboundRequest`, else a 422."""
    if not isinstance(data, dict):
        raise _body_must_be_object("inbound message")
    checks = _Checks()
    checks.known("", data, ("instance_key", "from", "remote_jid", "body", "lid", "message_type"))
    instance_key = data.get("instance_key") or DEFAULT_INSTANCE_KEY
    if not isinstance(instance_key, str):
        checks.add("instance_key", f"must be a string, got {_type(instance_key)}")
    sender = remote_jid = None
    if data.get("from") is not None:
        sender = checks.check("from", v.normalize_recipient, data["from"], "from")
    if data.get("remote_jid") is not None:
        remote_jid = checks.check("remote_jid", v.normalize_recipient, data["remote_jid"], "remote_jid")
    elif data.get("from") is None:
        checks.add("from", "is required")
    body = checks.check("body", v.check_text, data.get("body", ""), "body", v.MAX_TEXT, False)
    lid = checks.boolean("lid", data.get("lid", False))
    message_type = checks.choice("message_type", data.get("message_type", "text"), INBOUND_TYPES)
    checks.raise_if_any()
    return InboundRequest(str(instance_key), sender, remote_jid, bool(lid), body, str(message_type))


# ---------------------------------------------------------------- routes


def add_control_routes(app: FastAPI, backend: WaslahBackend) -> None:
    """Serve the control API on ``app``."""

    def ok(data: Any, status: int = 200) -> JSONResponse:
        return JSONResponse({"ok": True, "data": data}, status_code=status)

    async def body_of(request: Request) -> object:
        return parse_json(await request.body(), non_finite=True)

    @app.post(f"{CONTROL_PREFIX}/reset")
    async def control_reset() -> Response:
        return ok(summary_json(backend.reset()))

    @app.post(f"{CONTROL_PREFIX}/seed")
    async def control_seed(request: Request) -> Response:
        return ok(summary_json(backend.apply_seed(parse_seed_patch(await body_of(request)))))

    @app.get(f"{CONTROL_PREFIX}/seed")
    async def control_get_seed() -> Response:
        return ok(seed_json(backend.current_seed()))

    @app.post(f"{CONTROL_PREFIX}/faults")
    async def control_add_fault(request: Request) -> Response:
        return ok(fault_json(backend.add_fault(parse_fault(await body_of(request)))), 201)

    @app.get(f"{CONTROL_PREFIX}/faults")
    async def control_list_faults() -> Response:
        return ok([fault_json(f) for f in backend.list_faults()])

    @app.delete(f"{CONTROL_PREFIX}/faults")
    async def control_clear_faults() -> Response:
        backend.clear_faults()
        return ok([])

    @app.post(f"{CONTROL_PREFIX}/webhooks")
    async def control_add_webhook(request: Request) -> Response:
        url, secret, user_id = parse_webhook(await body_of(request))
        return ok(webhook_json(backend.register_webhook(url, secret, user_id)), 201)

    @app.get(f"{CONTROL_PREFIX}/webhooks")
    async def control_list_webhooks() -> Response:
        return ok([webhook_json(e) for e in backend.webhook_endpoints()])

    @app.post(f"{CONTROL_PREFIX}/inbound")
    async def control_inbound(request: Request) -> Response:
        message = backend.receive_inbound(parse_inbound(await body_of(request)))
        return ok(message_json(message, backend.clock()), 201)

    @app.get(f"{CONTROL_PREFIX}/requests")
    async def control_requests() -> Response:
        return ok([request_json(r) for r in backend.logged_requests()])

    @app.get(f"{CONTROL_PREFIX}/ledger")
    async def control_ledger() -> Response:
        return ok(ledger_json(backend.outbound_messages(), backend.clock()))

    @app.get(f"{CONTROL_PREFIX}/webhook-deliveries")
    async def control_deliveries() -> Response:
        return ok([delivery_json(d) for d in backend.deliveries()])
