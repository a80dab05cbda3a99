"""The emulator's state model: users, API keys, instances, messages, broadcasts, uploads, webhooks.

Plain Python objects behind one :class:`threading.RLock`, with the API's rules as methods that
raise :class:`~airflow_provider_waslah.emulator.errors.EmulatorAPIError`. Nothing here knows
about HTTP; ``app.py`` is a thin layer of routes over :class:`EmulatorState`.

Time: every message stores the *real* (wall-clock) moments at which it reaches each status,
computed once at creation from the seed's ``lifecycle`` offsets (emulated seconds) times
``time_scale`` (real seconds per emulated second). Status is then a pure function of the clock
(moto-style, deterministic); a background ticker only fires webhooks for transitions.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import math
import mimetypes
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_waslah.client import validation as v
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.emulator.defaults import DEFAULT_API_KEY, DEFAULT_INSTANCE_KEY
from airflow_provider_waslah.emulator.errors import EmulatorAPIError, field_sentence, validation_failed

PLANS: tuple[str, ...] = ("free", "basic", "pro", "enterprise")
ALL_SCOPES: tuple[str, ...] = ("messages:send", "messages:read", "instances:read", "instances:write")
REST_FEATURE = "REST API access"
SCHEDULE_FEATURE = "Schedule message"
WEBHOOK_FEATURE = "Webhooks"
MAX_BROADCASTS_LISTED = 50

#: The seed the emulator starts from unless told otherwise.
DEFAULT_SEED: dict[str, Any] = {
    "users": [{"id": 1, "name": "Demo User", "email": "demo@waslah.local", "plan": "pro"}],
    "api_keys": [
        {
            "id": 1,
            "key": DEFAULT_API_KEY,
            "user_id": 1,
            "name": "Demo key",
            "scopes": list(ALL_SCOPES),
            "revoked": False,
            "expires_at": None,
        }
    ],
    "instances": [
        {
            "key": DEFAULT_INSTANCE_KEY,
            "user_id": 1,
            "name": "Demo instance",
            "status": "connected",
            "phone_number": "6281100000001",
        },
        {
            "key": "offline",
            "user_id": 1,
            "name": "Offline instance",
            "status": "disconnected",
            "phone_number": "6281100000002",
        },
    ],
    "unreachable": ["628999*"],
    "time_scale": 1.0,
    "rate_window_seconds": 60,
    "rate_limit_reset_header_always": False,
    "plan_features": {
        REST_FEATURE: ["pro", "enterprise"],
        SCHEDULE_FEATURE: ["basic", "pro", "enterprise"],
        WEBHOOK_FEATURE: ["basic", "pro", "enterprise"],
    },
    "plan_limits": {"free": 60, "basic": 300, "pro": 1000, "enterprise": 5000},
    # Emulated seconds after dispatch; broadcast_start: queue pick-up delay of a broadcast.
    "lifecycle": {"sent": 1.0, "delivered": 3.0, "read": 6.0, "broadcast_start": 1.0},
    "random_seed": 0,
    "webhook_max_attempts": 5,
    "webhook_timeout": 5.0,
    # Retry n waits webhook_backoff * 2**(n-1) emulated seconds.
    "webhook_backoff": 1.0,
}

_SCALAR_KEYS = (
    "time_scale",
    "rate_window_seconds",
    "rate_limit_reset_header_always",
    "random_seed",
    "webhook_max_attempts",
    "webhook_timeout",
    "webhook_backoff",
)
_REQUEST_LOG_MAX = 5000


def iso(ts: float | None) -> str | None:
    """A Unix timestamp as ISO 8601 with offset, e.g. ``2026-05-11T17:24:02+00:00``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def plan_label(plan: str) -> str:
    """``free`` -> ``Free``."""
    return plan.capitalize()


def _parse_expiry(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    raise ValueError(f"expires_at must be an ISO 8601 string or a Unix timestamp, got {value!r}")


@dataclass
class User:
    """A Waslah account."""

    id: int
    name: str
    email: str
    plan: str = "pro"


@dataclass
class ApiKey:
    """An API key with its scopes; the full key never leaves the state except as ``prefix``."""

    id: int
    key: str
    user_id: int
    name: str
    scopes: list[str]
    revoked: bool = False
    expires_at: float | None = None
    request_count: int = 0
    last_used_at: float | None = None

    @property
    def prefix(self) -> str:
        """The first 12 characters, what the dashboard shows."""
        return self.key[:12]


@dataclass
class Instance:
    """A WhatsApp instance (one phone) of a user."""

    id: int
    key: str
    user_id: int
    name: str
    status: str
    phone_number: str | None
    created_at: float
    connected_at: float | None = None
    disconnected_at: float | None = None

    def to_api(self, now: float) -> dict[str, Any]:
        """The instance as ``GET /instances`` shows it."""
        return {
            "id": self.id,
            "key": self.key,
            "name": self.name,
            "status": self.status,
            "phone_number": self.phone_number,
            "connected_at": iso(self.connected_at),
            "last_seen_at": iso(now if self.status == "connected" else self.disconnected_at),
            "created_at": iso(self.created_at),
            "disconnected_at": iso(self.disconnected_at),
        }


@dataclass
class Message:
    """One message, outbound (sent through the API) or inbound (``POST /_emulator/inbound``).

    ``transitions`` maps each status the message will reach to the real time it reaches it.
    """

    id: int
    user_id: int
    instance_key: str
    direction: str
    message_type: str
    to: str
    phone_number: str
    remote_jid: str
    body: str | None
    created_at: float
    transitions: list[tuple[str, float]]
    media_url: str | None = None
    media_filename: str | None = None
    media_mime_type: str | None = None
    caption: str | None = None
    provider_message_id: str | None = None
    error_message: str | None = None
    scheduled_at: str | None = None
    broadcast_id: int | None = None
    received_at: float | None = None
    notified: int = 0

    def reached(self, now: float) -> list[tuple[str, float]]:
        """The transitions reached at ``now``, in order."""
        return [(status, at) for status, at in self.transitions if at <= now]

    def status_at(self, now: float) -> str:
        """The status at ``now``."""
        if self.direction == "inbound":
            return "received"
        done = self.reached(now)
        return done[-1][0] if done else "pending"

    def time_of(self, status: str, now: float) -> float | None:
        """When the message reached ``status`` (``None`` if it has not yet)."""
        for name, at in self.reached(now):
            if name == status:
                return at
        return None

    def final_at(self) -> float:
        """When a broadcast counts this message as done: sent or failed."""
        return self.transitions[0][1]

    def to_api(self, now: float) -> dict[str, Any]:
        """The message as ``GET /messages/{id}`` shows it."""
        done = self.reached(now)
        status = self.status_at(now)
        return {
            "id": self.id,
            "instance_key": self.instance_key,
            "direction": self.direction,
            "status": status,
            "message_type": self.message_type,
            "phone_number": self.phone_number,
            "remote_jid": self.remote_jid,
            "body": self.body,
            "media_url": self.media_url,
            "media_filename": self.media_filename,
            "media_mime_type": self.media_mime_type,
            "provider_message_id": self.provider_message_id if status not in ("pending", "failed") else None,
            "error_message": self.error_message if status == "failed" else None,
            "sent_at": iso(self.time_of("sent", now)),
            "received_at": iso(self.received_at),
            "scheduled_at": self.scheduled_at,
            "created_at": iso(self.created_at),
            "updated_at": iso(done[-1][1] if done else self.created_at),
            "broadcast_id": self.broadcast_id,
        }


@dataclass
class Broadcast:
    """A bulk send: one record plus ``len(message_ids)`` real messages."""

    id: int
    user_id: int
    name: str | None
    message_type: str
    instance_key: str
    delay_min_sec: int
    delay_max_sec: int
    created_at: float
    start_at: float
    message_ids: list[int]

    @property
    def delay_label(self) -> str:
        """``3–8 detik`` or ``3 detik (fixed)``."""
        if self.delay_min_sec == self.delay_max_sec:
            return f"{self.delay_min_sec} detik (fixed)"
        return f"{self.delay_min_sec}–{self.delay_max_sec} detik"


@dataclass
class Upload:
    """A file stored by ``POST /uploads`` and served back at its URL."""

    path: str
    filename: str
    mime_type: str
    type: str
    data: bytes
    user_id: int


@dataclass
class Fault:
    """An injected failure for requests whose ``"METHOD /path"`` matches ``route`` (fnmatch)."""

    id: int
    route: str = "*"
    status: int | None = 500
    rate: float = 1.0
    count: int | None = None
    latency: float = 0.0
    drop_connection: bool = False
    lose_response: bool = False
    error: str | None = None
    message: str | None = None
    hits: int = 0

    def to_api(self) -> dict[str, Any]:
        """The fault as the control API lists it."""
        return {
            "id": self.id,
            "route": self.route,
            "status": self.status,
            "rate": self.rate,
            "count": self.count,
            "latency": self.latency,
            "drop_connection": self.drop_connection,
            "lose_response": self.lose_response,
            "error": self.error,
            "message": self.message,
            "hits": self.hits,
        }


@dataclass
class WebhookEndpoint:
    """Where a user's events go, as registered in the dashboard."""

    user_id: int
    url: str
    secret: str


@dataclass
class Delivery:
    """One webhook event on its way to a receiver; ``event_id`` stays the same across retries."""

    event_id: str
    event: str
    url: str
    secret: str
    user_id: int
    body: bytes
    created_at: float
    next_attempt_at: float
    status: str = "pending"
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered_at: float | None = None

    def to_api(self) -> dict[str, Any]:
        """The delivery as ``GET /_emulator/webhook-deliveries`` shows it."""
        return {
            "event_id": self.event_id,
            "event": self.event,
            "url": self.url,
            "user_id": self.user_id,
            "status": self.status,
            "attempt_count": len(self.attempts),
            "attempts": list(self.attempts),
            "payload": json.loads(self.body),
            "created_at": iso(self.created_at),
            "delivered_at": iso(self.delivered_at),
        }


@dataclass
class RateWindow:
    """Laravel's fixed throttle window: starts at the key's first request in it."""

    start: float
    hits: int = 0


@dataclass
class AuthContext:
    """The authenticated caller of one request."""

    key: ApiKey
    user: User


class _Errors:
    """Collects per-field validation errors, Laravel-style."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field_name: str, rule: str) -> None:
        self.errors.setdefault(field_name, []).append(field_sentence(field_name, rule))

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except WaslahInvalidInputError as exc:
            self.add(exc.field, exc.rule)
            return None

    def require(self, body: dict[str, Any], name: str) -> bool:
        value = body.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            self.add(name, "is required")
            return False
        return True

    def optional_string(self, body: dict[str, Any], name: str, limit: int = 255) -> str | None:
        value = body.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(name, f"must be a string, got {type(value).__name__}")
            return None
        if len(value) > limit:
            self.add(name, f"must be at most {limit} characters, got {len(value)}")
            return None
        return value

    def raise_if_any(self) -> None:
        if self.errors:
            raise validation_failed(self.errors)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 422 ``validation_failed``; empty means ``{}``."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation_failed({"body": [f"The request body is not valid JSON: {exc}."]}) from None
    if not isinstance(data, dict):
        raise validation_failed({"body": ["The request body must be a JSON object."]})
    return data


def _preview(text: str) -> str:
    """Laravel's ``Str::limit($text, 20)``."""
    return text if len(text) <= 20 else text[:20].rstrip() + "..."


class EmulatorState:
    """Everything the emulator knows, behind one lock; the API's rules are its methods.

    :param seed: seed data merged over :data:`DEFAULT_SEED` (the state :meth:`reset` returns to).
    :param clock: the wall clock (``time.time``), replaceable in tests.
    """

    def __init__(self, seed: dict[str, Any] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.changed = threading.Condition(self.lock)
        self._initial_seed = self._merge_seed(copy.deepcopy(DEFAULT_SEED), seed or {})
        self.reset()

    # ------------------------------------------------------------------ seed / reset
    @staticmethod
    def _merge_seed(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        for list_key, id_key in (("users", "id"), ("api_keys", "key"), ("instances", "key")):
            if list_key in extra:
                items = {item[id_key]: item for item in base.get(list_key, [])}
                for item in extra[list_key]:
                    items[item[id_key]] = {**items.get(item[id_key], {}), **item}
                base[list_key] = list(items.values())
        for dict_key in ("plan_features", "plan_limits", "lifecycle"):
            if dict_key in extra:
                base[dict_key] = {**base.get(dict_key, {}), **extra[dict_key]}
        if "unreachable" in extra:
            base["unreachable"] = list(extra["unreachable"])
        for key in _SCALAR_KEYS:
            if key in extra:
                base[key] = extra[key]
        return base

    @property
    def initial_seed(self) -> dict[str, Any]:
        """A copy of the seed :meth:`reset` returns to."""
        return copy.deepcopy(self._initial_seed)

    def reset(self) -> None:
        """Back to the seed the emulator started with; clears messages, faults, logs and windows."""
        with self.lock:
            self.users: dict[int, User] = {}
            self.api_keys: dict[str, ApiKey] = {}
            self.instances: dict[str, Instance] = {}
            self.messages: dict[int, Message] = {}
            self.broadcasts: dict[int, Broadcast] = {}
            self.uploads: dict[str, Upload] = {}
            self.webhooks: dict[int, WebhookEndpoint] = {}
            self.faults: list[Fault] = []
            self.deliveries: list[Delivery] = []
            self.request_log: deque[dict[str, Any]] = deque(maxlen=_REQUEST_LOG_MAX)
            self.windows: dict[str, RateWindow] = {}
            self.active_messages: set[int] = set()
            self._next_message_id = 1
            self._next_broadcast_id = 1
            self._next_fault_id = 1
            self.config: dict[str, Any] = {}
            self._apply(copy.deepcopy(self._initial_seed))
            self.rng = random.Random(self.config["random_seed"])
            self.changed.notify_all()

    def seed(self, data: object) -> dict[str, Any]:
        """Merge seed data into the live state (same id/key replaces); returns the summary."""
        if not isinstance(data, dict):
            raise validation_failed({"body": ["The seed must be a JSON object."]})
        with self.lock:
            current = self.current_seed()
            try:
                merged = self._merge_seed(current, data)
                self._apply(merged, keep_counters=True)
            except (KeyError, TypeError, ValueError) as exc:
                raise validation_failed({"seed": [f"Invalid seed: {exc!r}"]}) from None
            if "random_seed" in data:
                self.rng = random.Random(self.config["random_seed"])
            return self.summary()

    def current_seed(self) -> dict[str, Any]:
        """The live configuration in seed form."""
        with self.lock:
            seed = copy.deepcopy(self.config)
            seed["users"] = [
                {"id": u.id, "name": u.name, "email": u.email, "plan": u.plan} for u in self.users.values()
            ]
            seed["api_keys"] = [
                {
                    "id": k.id,
                    "key": k.key,
                    "user_id": k.user_id,
                    "name": k.name,
                    "scopes": list(k.scopes),
                    "revoked": k.revoked,
                    "expires_at": k.expires_at,
                }
                for k in self.api_keys.values()
            ]
            seed["instances"] = [
                {
                    "id": i.id,
                    "key": i.key,
                    "user_id": i.user_id,
                    "name": i.name,
                    "status": i.status,
                    "phone_number": i.phone_number,
                }
                for i in self.instances.values()
            ]
            return seed

    def _apply(self, seed: dict[str, Any], keep_counters: bool = False) -> None:
        now = self.clock()
        config = {key: seed[key] for key in _SCALAR_KEYS}
        config["time_scale"] = float(config["time_scale"])
        if config["time_scale"] <= 0:
            raise ValueError("time_scale must be > 0")
        config["rate_window_seconds"] = float(config["rate_window_seconds"])
        config["rate_limit_reset_header_always"] = bool(config["rate_limit_reset_header_always"])
        config["unreachable"] = [str(p) for p in seed["unreachable"]]
        config["plan_features"] = {str(k): [str(p).lower() for p in val] for k, val in seed["plan_features"].items()}
        config["plan_limits"] = {str(k).lower(): int(val) for k, val in seed["plan_limits"].items()}
        config["lifecycle"] = {str(k): float(val) for k, val in seed["lifecycle"].items()}
        users: dict[int, User] = {}
        for item in seed["users"]:
            plan = str(item.get("plan", "pro")).lower()
            if plan not in PLANS:
                raise ValueError(f"plan must be one of {PLANS}, got {plan!r}")
            users[int(item["id"])] = User(
                id=int(item["id"]),
                name=str(item.get("name", f"User {item['id']}")),
                email=str(item.get("email", f"user{item['id']}@waslah.local")),
                plan=plan,
            )
        keys: dict[str, ApiKey] = {}
        for index, item in enumerate(seed["api_keys"], start=1):
            old = self.api_keys.get(item["key"]) if keep_counters else None
            keys[item["key"]] = ApiKey(
                id=int(item.get("id", index)),
                key=str(item["key"]),
                user_id=int(item.get("user_id", 1)),
                name=str(item.get("name", f"Key {index}")),
                scopes=[str(s) for s in item.get("scopes", ALL_SCOPES)],
                revoked=bool(item.get("revoked", False)),
                expires_at=_parse_expiry(item.get("expires_at")),
                request_count=old.request_count if old else 0,
                last_used_at=old.last_used_at if old else None,
            )
        instances: dict[str, Instance] = {}
        for index, item in enumerate(seed["instances"], start=1):
            v.check_instance_key(item["key"])
            old_instance = self.instances.get(item["key"]) if keep_counters else None
            status = str(item.get("status", "connected"))
            created = old_instance.created_at if old_instance else now
            instances[item["key"]] = Instance(
                id=int(item.get("id", index)),
                key=str(item["key"]),
                user_id=int(item.get("user_id", 1)),
                name=str(item.get("name", item["key"])),
                status=status,
                phone_number=item.get("phone_number"),
                created_at=created,
                connected_at=created if status == "connected" else None,
                disconnected_at=None if status == "connected" else created,
            )
        self.config = config
        self.users, self.api_keys, self.instances = users, keys, instances

    def summary(self) -> dict[str, Any]:
        """A short description of the live state (no full API keys)."""
        with self.lock:
            return {
                "users": len(self.users),
                "api_keys": [k.prefix for k in self.api_keys.values()],
                "instances": {i.key: i.status for i in self.instances.values()},
                "time_scale": self.config["time_scale"],
                "rate_window_seconds": self.config["rate_window_seconds"],
                "messages": len(self.messages),
                "broadcasts": len(self.broadcasts),
            }

    # ------------------------------------------------------------------ auth, limits, gating
    def authenticate(self, authorization: str | None, x_api_key: str | None) -> AuthContext:
        """The key from ``Authorization: Bearer`` or ``X-API-Key``; 401 if missing, wrong, revoked, expired."""
        token = None
        if authorization and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        if not token and x_api_key:
            token = x_api_key.strip()
        with self.lock:
            key = self.api_keys.get(token) if token else None
            now = self.clock()
            if key is None or key.revoked or (key.expires_at is not None and key.expires_at <= now):
                raise EmulatorAPIError(401, "unauthorized", "Unauthenticated. API key tidak valid atau sudah dicabut.")
            user = self.users.get(key.user_id)
            if user is None:
                raise EmulatorAPIError(401, "unauthorized", "Unauthenticated. API key tidak valid atau sudah dicabut.")
            key.request_count += 1
            key.last_used_at = now
            return AuthContext(key=key, user=user)

    def hit_rate_limit(self, ctx: AuthContext) -> tuple[bool, dict[str, str]]:
        """Count one request against the key's window: ``(allowed, headers)``."""
        with self.lock:
            limit = int(self.config["plan_limits"].get(ctx.user.plan, 60))
            length = self.config["rate_window_seconds"]
            now = self.clock()
            window = self.windows.get(ctx.key.key)
            if window is None or now >= window.start + length:
                window = self.windows[ctx.key.key] = RateWindow(start=now)
            end = window.start + length
            if window.hits >= limit:
                retry = max(1, math.ceil(end - now))
                return False, {
                    "X-RateLimit-Limit": str(limit),
                    "X-RateLimit-Remaining": "0",
                    "Retry-After": str(retry),
                    "X-RateLimit-Reset": str(math.ceil(now + retry)),
                }
            window.hits += 1
            headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(limit - window.hits)}
            if self.config["rate_limit_reset_header_always"]:
                headers["X-RateLimit-Reset"] = str(math.ceil(end))
            return True, headers

    def has_feature(self, user: User, feature: str) -> bool:
        """Whether ``user``'s plan includes ``feature`` (features missing from the table are open)."""
        plans = self.config["plan_features"].get(feature)
        return plans is None or user.plan in plans

    def require_feature(self, user: User, feature: str) -> None:
        """403 ``plan_feature_required`` unless ``user``'s plan has ``feature``."""
        if self.has_feature(user, feature):
            return
        plans = self.config["plan_features"].get(feature) or []
        ranked = sorted((p for p in plans if p in PLANS), key=PLANS.index)
        lowest = plan_label(ranked[0]) if ranked else "Enterprise"
        raise EmulatorAPIError(
            403,
            "plan_feature_required",
            f"{feature} butuh plan {lowest} atau lebih tinggi.",
            required_feature=feature,
            active_plan=plan_label(user.plan),
        )

    @staticmethod
    def require_scope(ctx: AuthContext, scope: str | None) -> None:
        """403 ``forbidden_scope`` unless the key has ``scope``."""
        if scope and scope not in ctx.key.scopes:
            raise EmulatorAPIError(
                403,
                "forbidden_scope",
                f"API key tidak punya scope `{scope}` yang dibutuhkan endpoint ini.",
                required_scope=scope,
            )

    # ------------------------------------------------------------------ read endpoints
    def me(self, ctx: AuthContext) -> dict[str, Any]:
        """``GET /me``."""
        with self.lock:
            key = ctx.key
            return {
                "user": {"id": ctx.user.id, "name": ctx.user.name, "email": ctx.user.email},
                "api_key": {
                    "id": key.id,
                    "name": key.name,
                    "prefix": key.prefix,
                    "scopes": list(key.scopes),
                    "request_count": key.request_count,
                    "last_used_at": iso(key.last_used_at),
                    "expires_at": iso(key.expires_at),
                },
            }

    def list_instances(self, ctx: AuthContext) -> list[dict[str, Any]]:
        """``GET /instances``."""
        with self.lock:
            now = self.clock()
            return [i.to_api(now) for i in self.instances.values() if i.user_id == ctx.user.id]

    def _instance(self, ctx: AuthContext, key: object) -> Instance:
        instance = self.instances.get(key) if isinstance(key, str) else None
        if instance is None or instance.user_id != ctx.user.id:
            raise EmulatorAPIError(
                404, "instance_not_found", f"Instance `{key}` tidak ditemukan atau bukan milik Anda."
            )
        return instance

    def get_instance(self, ctx: AuthContext, key: str) -> dict[str, Any]:
        """``GET /instances/{key}``."""
        with self.lock:
            return self._instance(ctx, key).to_api(self.clock())

    def _connected_instance(self, ctx: AuthContext, key: object) -> Instance:
        instance = self._instance(ctx, key)
        if instance.status != "connected":
            raise EmulatorAPIError(
                409,
                "instance_not_connected",
                f"Instance `{instance.key}` sedang `{instance.status}`. Hanya bisa kirim saat status `connected`.",
                instance_status=instance.status,
            )
        return instance

    def get_message(self, ctx: AuthContext, raw_id: str) -> dict[str, Any]:
        """``GET /messages/{id}``."""
        with self.lock:
            message = self.messages.get(int(raw_id)) if raw_id.isdigit() else None
            if message is None or message.user_id != ctx.user.id:
                raise EmulatorAPIError(
                    404, "not_found", f"Message dengan ID `{raw_id}` tidak ditemukan atau bukan milik Anda."
                )
            return message.to_api(self.clock())

    def _broadcast_api(self, broadcast: Broadcast, origin: str, now: float) -> dict[str, Any]:
        messages = [self.messages[i] for i in broadcast.message_ids]
        statuses = [m.status_at(now) for m in messages]
        failed = statuses.count("failed")
        sent = sum(1 for s in statuses if s in ("sent", "delivered", "read"))
        total = len(messages)
        pending = total - sent - failed
        completed_at = None
        if pending == 0:
            status = "failed" if failed == total else "completed"
            completed_at = max(m.final_at() for m in messages)
        elif now < broadcast.start_at:
            status = "queued"
        else:
            status = "processing"
        return {
            "id": broadcast.id,
            "name": broadcast.name,
            "message_type": broadcast.message_type,
            "instance_key": broadcast.instance_key,
            "status": status,
            "total": total,
            "sent": sent,
            "failed": failed,
            "pending": pending,
            "progress_percent": (sent + failed) * 100 // total if total else 100,
            "delay_min_sec": broadcast.delay_min_sec,
            "delay_max_sec": broadcast.delay_max_sec,
            "delay_label": broadcast.delay_label,
            "created_at": iso(broadcast.created_at),
            "completed_at": iso(completed_at),
            "check_status_url": f"{origin}/api/v1/broadcasts/{broadcast.id}",
        }

    def list_broadcasts(self, ctx: AuthContext, origin: str) -> list[dict[str, Any]]:
        """``GET /broadcasts``: the user's last 50, newest first."""
        with self.lock:
            now = self.clock()
            mine = [b for b in self.broadcasts.values() if b.user_id == ctx.user.id]
            mine.sort(key=lambda b: b.id, reverse=True)
            return [self._broadcast_api(b, origin, now) for b in mine[:MAX_BROADCASTS_LISTED]]

    def get_broadcast(self, ctx: AuthContext, raw_id: str, origin: str) -> dict[str, Any]:
        """``GET /broadcasts/{id}``."""
        with self.lock:
            broadcast = self.broadcasts.get(int(raw_id)) if raw_id.isdigit() else None
            if broadcast is None or broadcast.user_id != ctx.user.id:
                raise EmulatorAPIError(
                    404, "not_found", f"Broadcast dengan ID `{raw_id}` tidak ditemukan atau bukan milik Anda."
                )
            return self._broadcast_api(broadcast, origin, self.clock())

    # ------------------------------------------------------------------ sends
    def _is_unreachable(self, recipient: str) -> bool:
        number = recipient.split("@", 1)[0]
        patterns = self.config["unreachable"]
        return any(fnmatch.fnmatchcase(number, p) or fnmatch.fnmatchcase(recipient, p) for p in patterns)

    def _new_message(
        self,
        ctx: AuthContext,
        instance: Instance,
        to: str,
        message_type: str,
        dispatch_at: float,
        *,
        body: str | None = None,
        media_url: str | None = None,
        filename: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
        scheduled_at: str | None = None,
        broadcast_id: int | None = None,
    ) -> Message:
        scale = self.config["time_scale"]
        life = self.config["lifecycle"]
        now = self.clock()
        if self._is_unreachable(to):
            transitions = [("failed", dispatch_at + life.get("sent", 1.0) * scale)]
            error_message = f"Nomor {to.split('@', 1)[0]} tidak terdaftar di WhatsApp"
        else:
            transitions = [
                (status, dispatch_at + life.get(status, default) * scale)
                for status, default in (("sent", 1.0), ("delivered", 3.0), ("read", 6.0))
            ]
            error_message = None
        if "@" in to:
            phone, remote_jid = to.split("@", 1)[0], to
        else:
            phone, remote_jid = to, f"{to}@s.whatsapp.net"
        message = Message(
            id=self._next_message_id,
            user_id=ctx.user.id,
            instance_key=instance.key,
            direction="outbound",
            message_type=message_type,
            to=to,
            phone_number=phone,
            remote_jid=remote_jid,
            body=body,
            created_at=now,
            transitions=transitions,
            media_url=media_url,
            media_filename=filename,
            media_mime_type=mime_type,
            caption=caption,
            provider_message_id="BAE5" + "".join(self.rng.choice("0123456789ABCDEF") for _ in range(12)),
            error_message=error_message,
            scheduled_at=scheduled_at,
            broadcast_id=broadcast_id,
        )
        self._next_message_id += 1
        self.messages[message.id] = message
        self.active_messages.add(message.id)
        self.changed.notify_all()
        return message

    def _dispatch_time(self, scheduled: datetime | None) -> float:
        now = self.clock()
        if scheduled is None:
            return now
        ahead = max(0.0, scheduled.timestamp() - now)
        return now + ahead * self.config["time_scale"]

    def _check_common(self, errors: _Errors, body: dict[str, Any]) -> tuple[str | None, str | None, datetime | None]:
        instance_key = None
        if errors.require(body, "instance_key"):
            instance_key = errors.run(v.check_instance_key, body["instance_key"])
        to = None
        if errors.require(body, "to"):
            to = errors.run(v.normalize_recipient, body["to"], "to")
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        scheduled = errors.run(v.parse_scheduled_at, body.get("scheduled_at"), now)
        return instance_key, to, scheduled

    def send_text(self, ctx: AuthContext, body: dict[str, Any], origin: str) -> dict[str, Any]:
        """``POST /messages/text``: validate, gate, queue; returns the 202 receipt."""
        errors = _Errors()
        with self.lock:
            instance_key, to, scheduled = self._check_common(errors, body)
            text = errors.run(v.check_text, body.get("text"), "text")
            errors.raise_if_any()
            assert to is not None and text is not None
            if scheduled is not None:
                self.require_feature(ctx.user, SCHEDULE_FEATURE)
            instance = self._connected_instance(ctx, instance_key)
            message = self._new_message(
                ctx,
                instance,
                to,
                "text",
                self._dispatch_time(scheduled),
                body=text,
                scheduled_at=scheduled.isoformat() if scheduled else None,
            )
            return {
                "id": message.id,
                "status": "pending",
                "instance_key": instance.key,
                "to": to,
                "preview": _preview(text),
                "scheduled_at": message.scheduled_at,
                "check_status_url": f"{origin}/api/v1/messages/{message.id}",
                "created_at": iso(message.created_at),
            }

    def _media_mime(self, url: str, override: str | None, origin: str) -> str | None:
        if override:
            return override
        parts = urlsplit(url)
        if url.lower().startswith(origin.lower()) and parts.path.startswith("/storage/"):
            upload = self.uploads.get(parts.path[len("/storage/") :])
            if upload is not None:
                return upload.mime_type
        return mimetypes.guess_type(parts.path)[0]

    def send_media(
        self, ctx: AuthContext, body: dict[str, Any], origin: str, default_type: str | None = None
    ) -> dict[str, Any]:
        """``POST /messages/media`` (``default_type`` set by the unified endpoint)."""
        errors = _Errors()
        with self.lock:
            instance_key, to, scheduled = self._check_common(errors, body)
            media_type = body.get("type") if body.get("type") is not None else default_type
            if media_type is None:
                errors.add("type", "is required")
            else:
                errors.run(v.check_media_type, media_type, "type")
            url_value = body.get("url") if body.get("url") is not None else body.get("media_url")
            url = None
            if url_value is None:
                errors.add("url", "is required")
            else:
                url = errors.run(v.check_media_url, url_value, "url", origin)
            caption = errors.run(v.check_text, body.get("caption"), "caption", v.MAX_CAPTION, False)
            filename = errors.optional_string(body, "filename")
            mimetype = errors.optional_string(body, "mimetype")
            errors.raise_if_any()
            assert to is not None and url is not None and isinstance(media_type, str)
            if scheduled is not None:
                self.require_feature(ctx.user, SCHEDULE_FEATURE)
            instance = self._connected_instance(ctx, instance_key)
            message = self._new_message(
                ctx,
                instance,
                to,
                media_type,
                self._dispatch_time(scheduled),
                body=caption,
                media_url=url,
                filename=filename,
                mime_type=self._media_mime(url, mimetype, origin),
                caption=caption,
                scheduled_at=scheduled.isoformat() if scheduled else None,
            )
            return {
                "id": message.id,
                "status": "pending",
                "instance_key": instance.key,
                "to": to,
                "type": media_type,
                "media_url": url,
                "caption": caption,
                "scheduled_at": message.scheduled_at,
                "check_status_url": f"{origin}/api/v1/messages/{message.id}",
                "created_at": iso(message.created_at),
            }

    def send_unified(self, ctx: AuthContext, body: dict[str, Any], origin: str) -> dict[str, Any]:
        """``POST /messages``: only text -> text; url, media_url or type -> media (default image)."""
        if any(body.get(k) is not None for k in ("url", "media_url", "type")):
            return self.send_media(ctx, body, origin, default_type="image")
        if body.get("text") is not None:
            return self.send_text(ctx, body, origin)
        raise validation_failed(
            {
                "text": ["The text field is required when none of url / media_url / type is present."],
                "url": ["The url field is required when text is not present."],
            }
        )

    def send_bulk(self, ctx: AuthContext, body: dict[str, Any], origin: str) -> dict[str, Any]:
        """``POST /messages/bulk``: one broadcast record plus one message per valid, unique recipient."""
        errors = _Errors()
        with self.lock:
            instance_key = None
            if errors.require(body, "instance_key"):
                instance_key = errors.run(v.check_instance_key, body["instance_key"])
            recipients = body.get("recipients")
            if recipients is None:
                errors.add("recipients", "is required")
            elif not isinstance(recipients, list):
                errors.add("recipients", f"must be an array, got {type(recipients).__name__}")
            elif not recipients:
                errors.add("recipients", "is required")
            elif len(recipients) > v.MAX_BROADCAST_RECIPIENTS:
                errors.add(
                    "recipients",
                    f"must not have more than {v.MAX_BROADCAST_RECIPIENTS} items, got {len(recipients)}",
                )
            name = errors.run(v.check_text, body.get("name"), "name", v.MAX_BROADCAST_NAME, False)
            message_type = body.get("type")
            if message_type is None:
                errors.add("type", "is required")
            else:
                errors.run(v.check_media_type, message_type, "type", v.BROADCAST_TYPES)
            text = url = None
            if message_type == "text":
                text = errors.run(v.check_text, body.get("text"), "text")
            elif message_type in v.MEDIA_TYPES:
                url_value = body.get("url") if body.get("url") is not None else body.get("media_url")
                if url_value is None:
                    errors.add("url", "is required")
                else:
                    url = errors.run(v.check_media_url, url_value, "url", origin)
            caption = errors.run(v.check_text, body.get("caption"), "caption", v.MAX_CAPTION, False)
            filename = errors.optional_string(body, "filename")
            mimetype = errors.optional_string(body, "mimetype")
            low_raw, high_raw = body.get("delay_min_sec"), body.get("delay_max_sec")
            delays = errors.run(v.check_delays, low_raw, None)
            if delays is not None:
                low = delays[0] if delays[0] is not None else 3
                default_high = max(8, low)
                delays = errors.run(v.check_delays, low, high_raw if high_raw is not None else default_high)
            errors.raise_if_any()
            assert delays is not None and isinstance(recipients, list) and isinstance(message_type, str)
            low_delay, high_delay = int(delays[0] or 0), int(delays[1] or 0)
            instance = self._connected_instance(ctx, instance_key)
            valid, _invalid = v.normalize_recipients(recipients)
            if not valid:
                raise EmulatorAPIError(
                    422, "no_valid_recipients", "Tidak ada nomor valid (minimal 8 digit, max 15 digit)."
                )
            now = self.clock()
            scale = self.config["time_scale"]
            start_at = now + self.config["lifecycle"].get("broadcast_start", 1.0) * scale
            broadcast = Broadcast(
                id=self._next_broadcast_id,
                user_id=ctx.user.id,
                name=name,
                message_type=message_type,
                instance_key=instance.key,
                delay_min_sec=low_delay,
                delay_max_sec=high_delay,
                created_at=now,
                start_at=start_at,
                message_ids=[],
            )
            self._next_broadcast_id += 1
            mime = self._media_mime(url, mimetype, origin) if url else None
            dispatch = start_at
            for index, recipient in enumerate(valid):
                if index:
                    dispatch += self.rng.uniform(low_delay, high_delay) * scale
                message = self._new_message(
                    ctx,
                    instance,
                    recipient,
                    message_type,
                    dispatch,
                    body=text if message_type == "text" else caption,
                    media_url=url,
                    filename=filename,
                    mime_type=mime,
                    caption=caption,
                    broadcast_id=broadcast.id,
                )
                broadcast.message_ids.append(message.id)
            self.broadcasts[broadcast.id] = broadcast
            return self._broadcast_api(broadcast, origin, now)

    # ------------------------------------------------------------------ uploads
    def upload(
        self, ctx: AuthContext, filename: str | None, content_type: str | None, data: bytes | None, origin: str
    ) -> dict[str, Any]:
        """``POST /uploads``: store the file and return where it is served."""
        if data is None:
            raise validation_failed(
                {"file": ["The file field is required."]}, "File tidak valid: The file field is required."
            )
        try:
            v.check_upload_size(len(data))
        except WaslahInvalidInputError as exc:
            sentence = field_sentence(exc.field, exc.rule)
            raise validation_failed({"file": [sentence]}, f"File tidak valid: {sentence}") from None
        mime = (content_type or "").split(";")[0].strip().lower()
        if not mime or mime == "application/octet-stream":
            mime = (mimetypes.guess_type(filename or "")[0] or "application/octet-stream").lower()
        media_type = v.ALLOWED_MIME_TYPES.get(mime)
        if media_type is None:
            raise EmulatorAPIError(
                422,
                "unsupported_media_type",
                f"MIME type `{mime}` tidak didukung. Cek dokumentasi untuk format yang diterima.",
                mime_type=mime,
            )
        name = filename or "file"
        suffix = name.rsplit(".", 1)[1].lower() if "." in name else ""
        if not suffix or not suffix.isalnum() or len(suffix) > 5:
            suffix = (mimetypes.guess_extension(mime) or ".bin").lstrip(".")
        with self.lock:
            month = datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y-%m")
            path = f"uploads/{month}/{uuid.uuid4()}.{suffix}"
            self.uploads[path] = Upload(
                path=path, filename=name, mime_type=mime, type=media_type, data=data, user_id=ctx.user.id
            )
        return {
            "url": f"{origin}/storage/{path}",
            "path": path,
            "filename": name,
            "size": len(data),
            "mime_type": mime,
            "type": media_type,
        }

    def get_upload(self, path: str) -> Upload | None:
        """The stored upload at ``uploads/...`` (``None`` if unknown)."""
        with self.lock:
            return self.uploads.get(path)

    # ------------------------------------------------------------------ control API
    def add_fault(self, data: object) -> dict[str, Any]:
        """Install a fault (``POST /_emulator/faults``)."""
        if not isinstance(data, dict):
            raise validation_failed({"body": ["The fault must be a JSON object."]})
        allowed = {"route", "status", "rate", "count", "latency", "drop_connection", "lose_response"}
        allowed |= {"error", "message"}
        unknown = set(data) - allowed
        if unknown:
            raise validation_failed({key: [f"Unknown fault field `{key}`."] for key in sorted(unknown)})
        try:
            status = data.get("status", 500)
            fault = Fault(
                id=0,
                route=str(data.get("route", "*")),
                status=None if status is None else int(status),
                rate=float(data.get("rate", 1.0)),
                count=None if data.get("count") is None else int(data["count"]),
                latency=float(data.get("latency", 0.0)),
                drop_connection=bool(data.get("drop_connection", False)),
                lose_response=bool(data.get("lose_response", False)),
                error=None if data.get("error") is None else str(data["error"]),
                message=None if data.get("message") is None else str(data["message"]),
            )
        except (TypeError, ValueError) as exc:
            raise validation_failed({"fault": [f"Invalid fault: {exc}"]}) from None
        with self.lock:
            fault.id = self._next_fault_id
            self._next_fault_id += 1
            self.faults.append(fault)
            return fault.to_api()

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self.lock:
            self.faults.clear()

    def pick_fault(self, method: str, path: str) -> Fault | None:
        """The first active fault matching ``"METHOD /path"`` that fires this time (uses up ``count``)."""
        target = f"{method.upper()} {path}"
        with self.lock:
            for fault in list(self.faults):
                if not fnmatch.fnmatchcase(target, fault.route):
                    continue
                if fault.rate < 1.0 and self.rng.random() >= fault.rate:
                    continue
                fault.hits += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def register_webhook(self, data: object) -> dict[str, Any]:
        """Register where a user's events go (``POST /_emulator/webhooks``)."""
        if not isinstance(data, dict):
            raise validation_failed({"body": ["The webhook must be a JSON object."]})
        errors = _Errors()
        errors.require(data, "url")
        errors.require(data, "secret")
        errors.raise_if_any()
        with self.lock:
            user_id = int(data.get("user_id") or next(iter(self.users), 1))
            if user_id not in self.users:
                raise validation_failed({"user_id": [f"Unknown user {user_id}."]})
            self.webhooks[user_id] = WebhookEndpoint(user_id=user_id, url=str(data["url"]), secret=str(data["secret"]))
            return {"user_id": user_id, "url": str(data["url"])}

    def inbound(self, data: object) -> dict[str, Any]:
        """A customer writes in (``POST /_emulator/inbound``): record it and fire ``message.received``."""
        if not isinstance(data, dict):
            raise validation_failed({"body": ["The inbound message must be a JSON object."]})
        errors = _Errors()
        with self.lock:
            instance = self.instances.get(data.get("instance_key") or DEFAULT_INSTANCE_KEY)
            if instance is None:
                raise EmulatorAPIError(
                    404, "instance_not_found", f"Instance `{data.get('instance_key')}` tidak ditemukan."
                )
            sender = None
            if data.get("from") is not None:
                sender = errors.run(v.normalize_recipient, data["from"], "from")
            remote_jid = data.get("remote_jid")
            if remote_jid is not None:
                remote_jid = errors.run(v.normalize_recipient, remote_jid, "remote_jid")
            elif sender is None:
                errors.add("from", "is required")
            body_text = errors.run(v.check_text, data.get("body", ""), "body", v.MAX_TEXT, False)
            errors.raise_if_any()
            if remote_jid is None:
                if data.get("lid"):
                    lid = str(self.rng.randint(10**14, 10**15 - 1))
                    remote_jid = f"{lid}@lid"
                else:
                    remote_jid = f"{sender}@s.whatsapp.net" if "@" not in str(sender) else str(sender)
            if sender is None:
                sender = str(remote_jid).split("@", 1)[0]
            now = self.clock()
            message = Message(
                id=self._next_message_id,
                user_id=instance.user_id,
                instance_key=instance.key,
                direction="inbound",
                message_type=str(data.get("message_type", "text")),
                to=instance.phone_number or instance.key,
                phone_number=str(sender).split("@", 1)[0],
                remote_jid=str(remote_jid),
                body=body_text,
                created_at=now,
                transitions=[],
                received_at=now,
                provider_message_id="3EB0" + "".join(self.rng.choice("0123456789ABCDEF") for _ in range(16)),
            )
            self._next_message_id += 1
            self.messages[message.id] = message
            self.enqueue_event(
                instance.user_id,
                "message.received",
                {
                    "message_id": message.id,
                    "instance_key": instance.key,
                    "from": message.phone_number,
                    "remote_jid": message.remote_jid,
                    "body": message.body,
                    "message_type": message.message_type,
                    "received_at": iso(now),
                },
            )
            return message.to_api(now)

    def log_request(self, entry: dict[str, Any]) -> None:
        """Append to the request log."""
        with self.lock:
            self.request_log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first."""
        with self.lock:
            return list(self.request_log)

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        """Every outbound message per recipient (as sent), with its current status."""
        with self.lock:
            now = self.clock()
            result: dict[str, list[dict[str, Any]]] = {}
            for message in self.messages.values():
                if message.direction != "outbound":
                    continue
                status = message.status_at(now)
                result.setdefault(message.to, []).append(
                    {
                        "message_id": message.id,
                        "type": message.message_type,
                        "text": message.body if message.message_type == "text" else None,
                        "media_url": message.media_url,
                        "filename": message.media_filename,
                        "caption": message.caption,
                        "status": status,
                        "error_message": message.error_message if status == "failed" else None,
                        "broadcast_id": message.broadcast_id,
                        "scheduled_at": message.scheduled_at,
                        "created_at": iso(message.created_at),
                    }
                )
            return result

    # ------------------------------------------------------------------ webhooks and ticking
    def enqueue_event(self, user_id: int, event: str, data: dict[str, Any]) -> Delivery | None:
        """Queue a webhook delivery of ``event`` for ``user_id`` (if registered and on the plan)."""
        with self.lock:
            endpoint = self.webhooks.get(user_id)
            user = self.users.get(user_id)
            if endpoint is None or user is None:
                return None
            now = self.clock()
            body = json.dumps(
                {"event": event, "timestamp": int(now), "data": data}, ensure_ascii=False, separators=(",", ":")
            ).encode()
            delivery = Delivery(
                event_id=str(uuid.uuid4()),
                event=event,
                url=endpoint.url,
                secret=endpoint.secret,
                user_id=user_id,
                body=body,
                created_at=now,
                next_attempt_at=now,
            )
            if not self.has_feature(user, WEBHOOK_FEATURE):
                delivery.status = "skipped"
                delivery.attempts.append({"attempt": 0, "error": f"plan {plan_label(user.plan)} has no webhooks"})
            self.deliveries.append(delivery)
            self.changed.notify_all()
            return delivery

    def tick(self) -> None:
        """Fire webhook events for every status transition reached since the last tick."""
        with self.lock:
            now = self.clock()
            for message_id in sorted(self.active_messages):
                message = self.messages.get(message_id)
                if message is None:
                    self.active_messages.discard(message_id)
                    continue
                reached = message.reached(now)
                for status, at in reached[message.notified :]:
                    event = "message.sent" if status == "sent" else "message.status"
                    self.enqueue_event(
                        message.user_id,
                        event,
                        {
                            "message_id": message.id,
                            "instance_key": message.instance_key,
                            "to": message.to,
                            "remote_jid": message.remote_jid,
                            "status": status,
                            "message_type": message.message_type,
                            "provider_message_id": message.provider_message_id if status != "failed" else None,
                            "error_message": message.error_message if status == "failed" else None,
                            "broadcast_id": message.broadcast_id,
                            "timestamp": iso(at),
                        },
                    )
                message.notified = len(reached)
                if message.notified >= len(message.transitions):
                    self.active_messages.discard(message_id)

    def next_tick_at(self) -> float | None:
        """The next real time at which some message changes status."""
        with self.lock:
            times = [
                message.transitions[message.notified][1]
                for mid in self.active_messages
                if (message := self.messages.get(mid)) is not None and message.notified < len(message.transitions)
            ]
            return min(times) if times else None

    def due_deliveries(self) -> list[Delivery]:
        """Deliveries whose next attempt is due now."""
        with self.lock:
            now = self.clock()
            return [d for d in self.deliveries if d.status == "pending" and d.next_attempt_at <= now]

    def next_delivery_at(self) -> float | None:
        """When the next pending delivery attempt is due."""
        with self.lock:
            times = [d.next_attempt_at for d in self.deliveries if d.status == "pending"]
            return min(times) if times else None

    def record_attempt(self, delivery: Delivery, status_code: int | None, error: str | None) -> None:
        """Note one delivery attempt and schedule a retry (scaled backoff) or settle it."""
        with self.lock:
            now = self.clock()
            delivery.attempts.append(
                {"attempt": len(delivery.attempts) + 1, "status_code": status_code, "error": error, "at": iso(now)}
            )
            if status_code is not None and 200 <= status_code < 300:
                delivery.status = "delivered"
                delivery.delivered_at = now
            elif len(delivery.attempts) >= int(self.config["webhook_max_attempts"]):
                delivery.status = "failed"
            else:
                backoff = float(self.config["webhook_backoff"]) * 2 ** (len(delivery.attempts) - 1)
                delivery.next_attempt_at = now + backoff * self.config["time_scale"]
            self.changed.notify_all()

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """The delivery log."""
        with self.lock:
            return [d.to_api() for d in self.deliveries]
