"""The emulator's typed API error: the backend and the request parsers raise it, the routes render it."""

from __future__ import annotations

from typing import Any

#: Laravel's generic message for a 422 ``validation_failed``.
VALIDATION_MESSAGE = "The given data was invalid."


class EmulatorAPIError(Exception):
    """An API error answered as ``{"ok": false, "error", "message", **extra}`` with ``status``.

    :param status: HTTP status code.
    :param error: Waslah's error code (``unauthorized``, ``validation_failed``, ...).
    :param message: the human-readable message.
    :param headers: extra response headers (``Retry-After`` on a 429, ...).
    :param extra: additional body fields (``instance_status``, ``errors``, ...).
    """

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON error envelope."""
        return {"ok": False, "error": self.error, "message": self.message, **self.extra}


def validation_failed(errors: dict[str, list[str]], message: str = VALIDATION_MESSAGE) -> EmulatorAPIError:
    """A 422 ``validation_failed`` error with Laravel's per-field ``errors``."""
    return EmulatorAPIError(422, "validation_failed", message, errors=errors)


def field_sentence(field: str, rule: str) -> str:
    """Turn a shared-validation rule into a Laravel-like sentence about ``field``."""
    if rule in ("is required", "required"):
        return f"The {field} field is required."
    return f"The {field} {rule.rstrip('.')}."


def shown(value: object, limit: int = 40) -> str:
    """``value`` as an error message quotes it: at most ``limit`` characters."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message_not_found(raw_id: object) -> EmulatorAPIError:
    """404 ``not_found`` for ``GET /messages/{id}``, in Waslah's words."""
    return EmulatorAPIError(
        404, "not_found", f"Message dengan ID `{shown(raw_id)}` tidak ditemukan atau bukan milik Anda."
    )


def broadcast_not_found(raw_id: object) -> EmulatorAPIError:
    """404 ``not_found`` for ``GET /broadcasts/{id}``."""
    return EmulatorAPIError(
        404, "not_found", f"Broadcast dengan ID `{shown(raw_id)}` tidak ditemukan atau bukan milik Anda."
    )
