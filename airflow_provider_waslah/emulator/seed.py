"""The emulator's seed: the default one, merging seeds, and parsing one into live records.

A seed is plain JSON-able data (users, API keys, instances, scalar settings, plan tables and
``lifecycle`` offsets); :func:`parse_seed` turns it into the records the state serves and
:func:`seed_form` turns live records back into a seed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_waslah.client import validation as v
from airflow_provider_waslah.emulator.defaults import DEFAULT_API_KEY, DEFAULT_INSTANCE_KEY
from airflow_provider_waslah.emulator.entities import ApiKey, Instance, User
from airflow_provider_waslah.emulator.plans import ALL_SCOPES, PLANS, REST_FEATURE, SCHEDULE_FEATURE, WEBHOOK_FEATURE

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

#: Seed settings that are single values (copied into the live configuration).
SCALAR_KEYS = (
    "time_scale",
    "rate_window_seconds",
    "rate_limit_reset_header_always",
    "random_seed",
    "webhook_max_attempts",
    "webhook_timeout",
    "webhook_backoff",
)


def merge_seed(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base`` (in place, returned): list items by id/key, tables by key."""
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
    for key in SCALAR_KEYS:
        if key in extra:
            base[key] = extra[key]
    return base


def parse_expiry(value: object) -> float | None:
    """An ``expires_at`` seed value (ISO 8601, Unix timestamp or empty) as a Unix timestamp."""
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
class SeedWorld:
    """A seed parsed into the live configuration and records."""

    config: dict[str, Any]
    users: dict[int, User]
    api_keys: dict[str, ApiKey]
    instances: dict[str, Instance]


def parse_seed(
    seed: dict[str, Any],
    now: float,
    keys_before: dict[str, ApiKey] | None = None,
    instances_before: dict[str, Instance] | None = None,
) -> SeedWorld:
    """Parse a full seed; raises ``KeyError``/``TypeError``/``ValueError`` on bad data.

    :param now: the creation time of new instances.
    :param keys_before: live keys whose usage counters carry over (same key).
    :param instances_before: live instances whose creation time carries over (same key).
    """
    keys_before = keys_before or {}
    instances_before = instances_before or {}
    config = {key: seed[key] for key in SCALAR_KEYS}
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
        old = keys_before.get(item["key"])
        keys[item["key"]] = ApiKey(
            id=int(item.get("id", index)),
            key=str(item["key"]),
            user_id=int(item.get("user_id", 1)),
            name=str(item.get("name", f"Key {index}")),
            scopes=[str(s) for s in item.get("scopes", ALL_SCOPES)],
            revoked=bool(item.get("revoked", False)),
            expires_at=parse_expiry(item.get("expires_at")),
            request_count=old.request_count if old else 0,
            last_used_at=old.last_used_at if old else None,
        )
    instances: dict[str, Instance] = {}
    for index, item in enumerate(seed["instances"], start=1):
        v.check_instance_key(item["key"])
        old_instance = instances_before.get(item["key"])
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
    return SeedWorld(config=config, users=users, api_keys=keys, instances=instances)


def seed_form(
    config: dict[str, Any], users: dict[int, User], api_keys: dict[str, ApiKey], instances: dict[str, Instance]
) -> dict[str, Any]:
    """Live configuration and records back in seed form (full API keys included)."""
    seed = copy.deepcopy(config)
    seed["users"] = [{"id": u.id, "name": u.name, "email": u.email, "plan": u.plan} for u in users.values()]
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
        for k in api_keys.values()
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
        for i in instances.values()
    ]
    return seed
