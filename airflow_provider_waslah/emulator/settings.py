"""The emulator's seed, typed: live settings plus the users, API keys and instances it starts with.

A :class:`Seed` is what the backend starts from and what ``POST /_emulator/reset`` returns to;
a :class:`SeedPatch` (built from JSON by ``control.py``, values already validated) changes part
of it: settings by name, list items by id or key (fields not given keep their value).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_waslah.emulator.defaults import (
    ALL_SCOPES,
    DEFAULT_API_KEY,
    DEFAULT_INSTANCE_KEY,
    UNREACHABLE_PATTERN,
)
from airflow_provider_waslah.plans import DEFAULT_PLAN, FEATURES, PLAN_LIMITS, plans_with


@dataclass(frozen=True)
class Lifecycle:
    """When an outbound message moves on, in emulated seconds after it is dispatched.

    ``broadcast_start`` is the queue pick-up delay of a broadcast's first message.
    """

    sent: float = 1.0
    delivered: float = 3.0
    read: float = 6.0
    broadcast_start: float = 1.0


@dataclass(frozen=True)
class Settings:
    """The live settings.

    :param time_scale: real seconds per emulated second (``0.02`` runs 50x faster).
    :param rate_window_seconds: the length of a key's fixed rate-limit window.
    :param rate_limit_reset_header_always: send ``X-RateLimit-Reset`` on every answer, not only on 429s.
    :param random_seed: seed of the emulator's random choices.
    :param webhook_max_attempts: delivery attempts per webhook event.
    :param webhook_timeout: seconds a webhook receiver has to answer.
    :param webhook_backoff: retry ``n`` waits ``webhook_backoff * 2**(n-1)`` emulated seconds.
    :param unreachable: ``fnmatch`` patterns of numbers not on WhatsApp.
    :param plan_limits: requests per rate-limit window by plan.
    :param plan_features: the plans that include each gated feature (features not listed are open).
    """

    time_scale: float = 1.0
    rate_window_seconds: float = 60.0
    rate_limit_reset_header_always: bool = False
    random_seed: int = 0
    webhook_max_attempts: int = 5
    webhook_timeout: float = 5.0
    webhook_backoff: float = 1.0
    unreachable: tuple[str, ...] = (UNREACHABLE_PATTERN,)
    plan_limits: Mapping[str, int] = field(default_factory=lambda: dict(PLAN_LIMITS))
    plan_features: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {feature: plans_with(feature) for feature in FEATURES}
    )
    lifecycle: Lifecycle = Lifecycle()


@dataclass(frozen=True)
class UserSeed:
    """A user of the seed."""

    id: int
    name: str
    email: str
    plan: str = DEFAULT_PLAN


@dataclass(frozen=True)
class ApiKeySeed:
    """An API key of the seed (``expires_at`` a Unix timestamp)."""

    key: str
    id: int
    user_id: int = 1
    name: str = ""
    scopes: tuple[str, ...] = ALL_SCOPES
    revoked: bool = False
    expires_at: float | None = None


@dataclass(frozen=True)
class InstanceSeed:
    """An instance of the seed."""

    key: str
    id: int
    user_id: int = 1
    name: str = ""
    status: str = "connected"
    phone_number: str | None = None


@dataclass(frozen=True)
class Seed:
    """Settings and the users, keys and instances they apply to."""

    settings: Settings = Settings()
    users: tuple[UserSeed, ...] = ()
    api_keys: tuple[ApiKeySeed, ...] = ()
    instances: tuple[InstanceSeed, ...] = ()


@dataclass(frozen=True)
class SeedPatch:
    """A validated change to a seed.

    :param settings: :class:`Settings` field -> new value; ``plan_limits``, ``plan_features`` and
        ``lifecycle`` hold only the entries to change.
    :param users: partial users, each with its ``id``.
    :param api_keys: partial keys, each with its ``key``.
    :param instances: partial instances, each with its ``key``.
    """

    settings: Mapping[str, Any] = field(default_factory=dict)
    users: tuple[Mapping[str, Any], ...] = ()
    api_keys: tuple[Mapping[str, Any], ...] = ()
    instances: tuple[Mapping[str, Any], ...] = ()


#: The seed the emulator starts from unless told otherwise.
DEFAULT_SEED = Seed(
    users=(UserSeed(id=1, name="Demo User", email="demo@waslah.local", plan="pro"),),
    api_keys=(ApiKeySeed(key=DEFAULT_API_KEY, id=1, user_id=1, name="Demo key"),),
    instances=(
        InstanceSeed(key=DEFAULT_INSTANCE_KEY, id=1, name="Demo instance", phone_number="6281100000001"),
        InstanceSeed(key="offline", id=2, name="Offline instance", status="disconnected", phone_number="6281100000002"),
    ),
)


def apply_patch(seed: Seed, patch: SeedPatch) -> Seed:
    """``seed`` changed by ``patch``: settings replaced, tables and list items merged."""
    changes = dict(patch.settings)
    current = seed.settings
    if "plan_limits" in changes:
        changes["plan_limits"] = {**current.plan_limits, **changes["plan_limits"]}
    if "plan_features" in changes:
        changes["plan_features"] = {**current.plan_features, **changes["plan_features"]}
    if "lifecycle" in changes:
        changes["lifecycle"] = dataclasses.replace(current.lifecycle, **changes["lifecycle"])
    return Seed(
        settings=dataclasses.replace(current, **changes),
        users=_merge(seed.users, patch.users, "id", _new_user),
        api_keys=_merge(seed.api_keys, patch.api_keys, "key", _new_key),
        instances=_merge(seed.instances, patch.instances, "key", _new_instance),
    )


def _merge(items: tuple[Any, ...], changes: tuple[Mapping[str, Any], ...], id_field: str, new: Any) -> tuple[Any, ...]:
    """Items by ``id_field``: a change to a known item replaces the fields it gives, others are appended."""
    merged = {getattr(item, id_field): item for item in items}
    for change in changes:
        ident = change[id_field]
        if ident in merged:
            merged[ident] = dataclasses.replace(merged[ident], **change)
        else:
            merged[ident] = new(change, len(merged) + 1)
    return tuple(merged.values())


def _new_user(change: Mapping[str, Any], position: int) -> UserSeed:
    ident = change["id"]
    return UserSeed(**{"name": f"User {ident}", "email": f"user{ident}@waslah.local", **change})


def _new_key(change: Mapping[str, Any], position: int) -> ApiKeySeed:
    return ApiKeySeed(**{"id": position, "name": f"Key {position}", **change})


def _new_instance(change: Mapping[str, Any], position: int) -> InstanceSeed:
    return InstanceSeed(**{"id": position, "name": change["key"], **change})
