"""The caller's account: ``GET /me`` and the instances (phones) it owns."""

from __future__ import annotations

from typing import Any

from airflow_provider_waslah.emulator.core import StateCore
from airflow_provider_waslah.emulator.entities import AuthContext, Instance, iso
from airflow_provider_waslah.emulator.errors import EmulatorAPIError


class Account(StateCore):
    """The read endpoints of the caller's account and the instance look-ups sends share."""

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

    def owned_instance(self, ctx: AuthContext, key: object) -> Instance:
        """The caller's instance ``key``; 404 ``instance_not_found`` if unknown or someone else's."""
        instance = self.instances.get(key) if isinstance(key, str) else None
        if instance is None or instance.user_id != ctx.user.id:
            raise EmulatorAPIError(
                404, "instance_not_found", f"Instance `{key}` tidak ditemukan atau bukan milik Anda."
            )
        return instance

    def get_instance(self, ctx: AuthContext, key: str) -> dict[str, Any]:
        """``GET /instances/{key}``."""
        with self.lock:
            return self.owned_instance(ctx, key).to_api(self.clock())

    def connected_instance(self, ctx: AuthContext, key: object) -> Instance:
        """The caller's instance ``key`` if it can send; 409 ``instance_not_connected`` if not."""
        instance = self.owned_instance(ctx, key)
        if instance.status != "connected":
            raise EmulatorAPIError(
                409,
                "instance_not_connected",
                f"Instance `{instance.key}` sedang `{instance.status}`. Hanya bisa kirim saat status `connected`.",
                instance_status=instance.status,
            )
        return instance
