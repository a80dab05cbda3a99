"""Waslah's plans in one table: each plan's per-minute request budget and the features it unlocks.

The client sizes its rate limiter from it, the emulator enforces it, the connection form lists it.
Standard library only: the provider metadata and the emulator import it without Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

#: The plan-gated features, named as Waslah's ``plan_feature_required`` errors name them.
REST_FEATURE = "REST API access"
SCHEDULE_FEATURE = "Schedule message"
WEBHOOK_FEATURE = "Webhooks"
FEATURES: tuple[str, ...] = (REST_FEATURE, SCHEDULE_FEATURE, WEBHOOK_FEATURE)


@dataclass(frozen=True)
class Plan:
    """One Waslah plan.

    :param name: the plan's key (``"pro"``), as connections and seeds spell it.
    :param requests_per_minute: the per-key rate limit.
    :param features: the gated features it includes.
    """

    name: str
    requests_per_minute: int
    features: frozenset[str]

    @property
    def label(self) -> str:
        """The name as Waslah's messages show it (``Pro``)."""
        return self.name.capitalize()


#: Every plan, cheapest first.
PLANS: Mapping[str, Plan] = MappingProxyType(
    {
        "free": Plan("free", 60, frozenset()),
        "basic": Plan("basic", 300, frozenset({SCHEDULE_FEATURE, WEBHOOK_FEATURE})),
        "pro": Plan("pro", 1000, frozenset(FEATURES)),
        "enterprise": Plan("enterprise", 5000, frozenset(FEATURES)),
    }
)
#: The plan assumed when none is given.
DEFAULT_PLAN = "pro"
#: Plan names, cheapest first.
PLAN_NAMES: tuple[str, ...] = tuple(PLANS)
#: Requests per minute by plan name.
PLAN_LIMITS: Mapping[str, int] = MappingProxyType({name: plan.requests_per_minute for name, plan in PLANS.items()})


def plans_with(feature: str) -> tuple[str, ...]:
    """The names of the plans that include ``feature``, cheapest first."""
    return tuple(name for name, plan in PLANS.items() if feature in plan.features)


def plan_label(name: str) -> str:
    """``free`` -> ``Free``."""
    return name.capitalize()
