"""Plans, scopes and the plan-gated features of the Waslah API (names only, no rules)."""

from __future__ import annotations

PLANS: tuple[str, ...] = ("free", "basic", "pro", "enterprise")
ALL_SCOPES: tuple[str, ...] = ("messages:send", "messages:read", "instances:read", "instances:write")
REST_FEATURE = "REST API access"
SCHEDULE_FEATURE = "Schedule message"
WEBHOOK_FEATURE = "Webhooks"


def plan_label(plan: str) -> str:
    """``free`` -> ``Free``."""
    return plan.capitalize()
