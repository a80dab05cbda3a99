"""Request bodies: parsing JSON objects and collecting Laravel-style per-field errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from airflow_provider_waslah.client import validation as v
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.emulator.errors import field_sentence, validation_failed


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


def require_object(data: object, what: str) -> dict[str, Any]:
    """``data`` if it is a JSON object, else a 422 ``The {what} must be a JSON object.``."""
    if not isinstance(data, dict):
        raise validation_failed({"body": [f"The {what} must be a JSON object."]})
    return data


class FieldErrors:
    """Collects per-field validation errors, Laravel-style, in the order the fields are checked."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field_name: str, rule: str) -> None:
        """Note that ``field_name`` breaks ``rule`` (a shared-validation rule, e.g. ``is required``)."""
        self.errors.setdefault(field_name, []).append(field_sentence(field_name, rule))

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)``, or ``None`` with its error noted if it raises invalid input."""
        try:
            return func(*args, **kwargs)
        except WaslahInvalidInputError as exc:
            self.add(exc.field, exc.rule)
            return None

    def require(self, body: dict[str, Any], name: str) -> bool:
        """Whether ``body[name]`` is present and not blank (noting ``is required`` if not)."""
        value = body.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            self.add(name, "is required")
            return False
        return True

    def required(self, body: dict[str, Any], name: str, check: Callable[..., Any], *args: Any) -> Any:
        """``check(body[name], *args)`` if the field is present, else ``None`` (noting what is wrong)."""
        if not self.require(body, name):
            return None
        return self.run(check, body[name], *args)

    def optional_string(self, body: dict[str, Any], name: str, limit: int = 255) -> str | None:
        """``body[name]`` if absent or a string of at most ``limit`` characters, else ``None`` (noted)."""
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

    def media_type(self, value: object, allowed: tuple[str, ...] = v.MEDIA_TYPES) -> None:
        """Check a ``type`` field: ``is required`` if ``None``, else one of ``allowed``."""
        if value is None:
            self.add("type", "is required")
        else:
            self.run(v.check_media_type, value, "type", allowed)

    def media_url(self, body: dict[str, Any], origin: str) -> str | None:
        """The checked ``url`` (or its alias ``media_url``) of a media send."""
        value = body.get("url") if body.get("url") is not None else body.get("media_url")
        if value is None:
            self.add("url", "is required")
            return None
        result: str | None = self.run(v.check_media_url, value, "url", origin)
        return result

    def media_extras(self, body: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
        """The checked ``caption``, ``filename`` and ``mimetype`` of a media send."""
        caption = self.run(v.check_text, body.get("caption"), "caption", v.MAX_CAPTION, False)
        filename = self.optional_string(body, "filename")
        mimetype = self.optional_string(body, "mimetype")
        return caption, filename, mimetype

    def raise_if_any(self) -> None:
        """Raise the 422 ``validation_failed`` if any error was noted."""
        if self.errors:
            raise validation_failed(self.errors)
