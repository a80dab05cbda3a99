"""Request parsing: JSON bodies, path ids and the REST API's send bodies, into the backend's arguments.

Everything a client sends is checked here and refused with the documented 422
``validation_failed`` (Laravel-style per-field ``errors``), never a 500: bodies nested too
deeply, ``NaN``/``Infinity`` literals and lone UTF-16 surrogates (``"\\ud800"``, which PHP's
``json_decode`` refuses) are invalid JSON. The field rules come from the client's shared
validation (``client/validation.py``), so the client and the emulator agree on them.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_waslah.client import validation as v
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.emulator.errors import EmulatorAPIError, field_sentence, validation_failed
from airflow_provider_waslah.emulator.records import BulkRequest, Content, SendRequest, Upload

#: JSON bodies nested deeper than this are refused (the API's own bodies are 3 levels deep).
MAX_JSON_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes, non_finite: bool = False) -> object:
    """The request body as JSON (empty means ``{}``), or a 422 ``validation_failed`` on ``body``.

    :param non_finite: read ``NaN``/``Infinity`` as numbers (for bodies whose every number is
        range-checked by field, so the error can name the field), instead of refusing them.
    """
    if not raw.strip():
        return {}
    problem: str | None
    try:
        data = json.loads(raw, parse_constant=float if non_finite else _refuse_constant)
    except RecursionError:
        data, problem = None, f"is nested more than {MAX_JSON_DEPTH} levels deep"
    except (ValueError, UnicodeDecodeError) as exc:
        data, problem = None, f"is not valid JSON: {str(exc)[:120]}"
    else:
        problem = _tree_problem(data)
    if problem:
        raise validation_failed({"body": [f"The request body {problem}."]})
    return data


def _tree_problem(data: object) -> str | None:
    """Why a parsed JSON value is refused (too deep, lone surrogates), walked without recursion."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return "is not valid JSON: a string holds a lone UTF-16 surrogate"
        elif isinstance(value, (list, dict)):
            if depth > MAX_JSON_DEPTH:
                return f"is nested more than {MAX_JSON_DEPTH} levels deep"
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)
    return None


def parse_object(raw: bytes, what: str = "request body") -> dict[str, Any]:
    """The request body as a JSON object (empty means ``{}``), else a 422 ``validation_failed``."""
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise validation_failed({"body": [f"The {what} must be a JSON object."]})
    return data


def parse_id(raw: str) -> int | None:
    """A path id: ASCII digits naming a positive 64-bit integer, else ``None`` (the routes answer 404)."""
    # Bounded first: int() refuses strings of more than 4300 digits with a ValueError.
    if len(raw) > 20:
        return None
    try:
        return v.check_id(raw, "id")
    except (WaslahInvalidInputError, ValueError):
        return None


class FieldErrors:
    """Collects per-field validation errors, Laravel-style, in the order the fields are checked."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field_name: str, rule: str) -> None:
        """Note that ``field_name`` breaks ``rule`` (a shared-validation rule, e.g. ``is required``)."""
        self.errors.setdefault(field_name, []).append(field_sentence(field_name, rule))

    def check(self, field_name: str, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)``, or ``None`` with its error noted if it refuses the input.

        ``ValueError``/``TypeError`` count as a refusal of ``field_name`` too: a shared rule that
        trips over odd input (``http://[``) must still give the client a 422, not a 500.
        """
        try:
            return func(*args)
        except WaslahInvalidInputError as exc:
            self.add(exc.field, exc.rule)
        except (ValueError, TypeError, OverflowError):
            self.add(field_name, "is invalid")
        return None

    def present(self, body: dict[str, Any], name: str) -> bool:
        """Whether ``body[name]`` is present and not blank (noting ``is required`` if not)."""
        value = body.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            self.add(name, "is required")
            return False
        return True

    def required(self, body: dict[str, Any], name: str, check: Callable[..., Any], *args: Any) -> Any:
        """``check(body[name], *args)`` if the field is present, else ``None`` (noting what is wrong)."""
        if not self.present(body, name):
            return None
        return self.check(name, check, body[name], *args)

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

    def raise_if_any(self) -> None:
        """Raise the 422 ``validation_failed`` if any error was noted."""
        if self.errors:
            raise validation_failed(self.errors)


class SendParser:
    """Parses the send bodies of the REST API for an emulator at ``origin``.

    :param origin: the emulator's own origin: media URLs there (its uploads) are accepted.
    :param now: the current time (``scheduled_at`` must be at least 30 s ahead of it).
    :param upload_at: the stored upload at a ``uploads/...`` path, to take a media URL's MIME type from.
    """

    def __init__(self, origin: str, now: float, upload_at: Callable[[str], Upload | None]) -> None:
        self.origin = origin
        self.now = datetime.fromtimestamp(now, timezone.utc)
        self.upload_at = upload_at

    def unified(self, body: dict[str, Any]) -> SendRequest:
        """``POST /messages``: only text -> text; ``url``, ``media_url`` or ``type`` -> media (default image)."""
        if any(body.get(k) is not None for k in ("url", "media_url", "type")):
            return self.media(body, default_type="image")
        if body.get("text") is not None:
            return self.text(body)
        raise validation_failed(
            {
                "text": ["The text field is required when none of url / media_url / type is present."],
                "url": ["The url field is required when text is not present."],
            }
        )

    def text(self, body: dict[str, Any]) -> SendRequest:
        """``POST /messages/text``."""
        errors = FieldErrors()
        instance_key, to, scheduled = self._common(errors, body)
        text = errors.check("text", v.check_text, body.get("text"), "text")
        errors.raise_if_any()
        return SendRequest(instance_key, to, Content("text", text=text), scheduled)

    def media(self, body: dict[str, Any], default_type: str | None = None) -> SendRequest:
        """``POST /messages/media`` (``default_type`` is the unified endpoint's)."""
        errors = FieldErrors()
        instance_key, to, scheduled = self._common(errors, body)
        media_type = body.get("type") if body.get("type") is not None else default_type
        self._media_type(errors, media_type)
        url = self._media_url(errors, body)
        content = self._media_content(errors, body, str(media_type), url)
        errors.raise_if_any()
        return SendRequest(instance_key, to, content, scheduled)

    def bulk(self, body: dict[str, Any]) -> BulkRequest:
        """``POST /messages/bulk``: ``recipients`` normalised and deduplicated, invalid ones dropped."""
        errors = FieldErrors()
        instance_key = errors.required(body, "instance_key", v.check_instance_key)
        recipients = self._recipients(errors, body.get("recipients"))
        name = errors.check("name", v.check_text, body.get("name"), "name", v.MAX_BROADCAST_NAME, False)
        message_type = body.get("type")
        self._media_type(errors, message_type, v.BROADCAST_TYPES)
        text = url = None
        if message_type == "text":
            text = errors.check("text", v.check_text, body.get("text"), "text")
        elif message_type in v.MEDIA_TYPES:
            url = self._media_url(errors, body)
        content = self._media_content(errors, body, str(message_type), url, text)
        delays = self._delays(errors, body.get("delay_min_sec"), body.get("delay_max_sec"))
        errors.raise_if_any()
        assert recipients is not None and delays is not None
        valid, _invalid = v.normalize_recipients(recipients)
        return BulkRequest(instance_key, tuple(valid), content, name, delays[0], delays[1])

    def _common(self, errors: FieldErrors, body: dict[str, Any]) -> tuple[Any, Any, datetime | None]:
        instance_key = errors.required(body, "instance_key", v.check_instance_key)
        to = errors.required(body, "to", v.normalize_recipient, "to")
        scheduled = errors.check("scheduled_at", v.parse_scheduled_at, body.get("scheduled_at"), self.now)
        return instance_key, to, scheduled

    @staticmethod
    def _media_type(errors: FieldErrors, value: object, allowed: tuple[str, ...] = v.MEDIA_TYPES) -> None:
        if value is None:
            errors.add("type", "is required")
        else:
            errors.check("type", v.check_media_type, value, "type", allowed)

    def _media_url(self, errors: FieldErrors, body: dict[str, Any]) -> str | None:
        value = body.get("url") if body.get("url") is not None else body.get("media_url")
        if value is None:
            errors.add("url", "is required")
            return None
        url: str | None = errors.check("url", v.check_media_url, value, "url", self.origin)
        return url

    def _media_content(
        self, errors: FieldErrors, body: dict[str, Any], message_type: str, url: str | None, text: str | None = None
    ) -> Content:
        caption = errors.check("caption", v.check_text, body.get("caption"), "caption", v.MAX_CAPTION, False)
        filename = errors.optional_string(body, "filename")
        mimetype = errors.optional_string(body, "mimetype")
        mime = self._mime_of(url, mimetype) if url else None
        return Content(message_type, text=text, media_url=url, caption=caption, filename=filename, mime_type=mime)

    def _mime_of(self, url: str, override: str | None) -> str | None:
        """The MIME type of media at ``url``: ``override``, else the upload's, else guessed from the path."""
        if override:
            return override
        path = urlsplit(url).path
        if url.lower().startswith(self.origin.lower()) and path.startswith("/storage/"):
            upload = self.upload_at(path[len("/storage/") :])
            if upload is not None:
                return upload.mime_type
        return mimetypes.guess_type(path)[0]

    @staticmethod
    def _recipients(errors: FieldErrors, recipients: object) -> list[Any] | None:
        """The ``recipients`` array: present, a list, 1 to ``MAX_BROADCAST_RECIPIENTS`` items (numbers unchecked)."""
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
        else:
            return recipients
        return None

    @staticmethod
    def _delays(errors: FieldErrors, low_raw: object, high_raw: object) -> tuple[int, int] | None:
        """``(delay_min_sec, delay_max_sec)`` between messages; defaults 3 and ``max(8, min)``."""
        delays = errors.check("delay_min_sec", v.check_delays, low_raw, None)
        if delays is None:
            return None
        low = delays[0] if delays[0] is not None else 3
        default_high = max(8, low)
        delays = errors.check("delay_max_sec", v.check_delays, low, high_raw if high_raw is not None else default_high)
        if delays is None:
            return None
        return int(delays[0] or 0), int(delays[1] or 0)


def parse_upload(filename: str | None, content_type: str | None, data: bytes | None) -> tuple[str, str, str, bytes]:
    """``(filename, mime_type, media_type, data)`` of an upload, or its documented 422."""
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
        shown_mime = _SURROGATE.sub("\ufffd", mime[:100])
        raise EmulatorAPIError(
            422,
            "unsupported_media_type",
            f"MIME type `{shown_mime}` tidak didukung. Cek dokumentasi untuk format yang diterima.",
            mime_type=shown_mime,
        )
    return _SURROGATE.sub("\ufffd", filename or "file"), mime, media_type, data
