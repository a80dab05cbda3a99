"""Who may call what: API-key authentication, the per-key rate limit, plan features and scopes."""

from __future__ import annotations

import math

from airflow_provider_waslah.emulator.core import StateCore
from airflow_provider_waslah.emulator.entities import AuthContext, RateWindow, User
from airflow_provider_waslah.emulator.errors import EmulatorAPIError
from airflow_provider_waslah.emulator.plans import PLANS, plan_label


class AccessControl(StateCore):
    """Authentication, rate limiting and plan/scope gating of API requests."""

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
