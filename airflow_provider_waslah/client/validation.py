"""Waslah's input rules, in one place: used for pre-flight checks by the client and by the emulator.

Each check raises :class:`~airflow_provider_waslah.client.errors.WaslahInvalidInputError`
naming the field and the rule, so bad input fails before any request is sent.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from airflow_provider_waslah.client.errors import WaslahInvalidInputError

MAX_TEXT = 4000
MAX_CAPTION = 1024
MAX_URL = 2048
MAX_BROADCAST_NAME = 200
MAX_BROADCAST_RECIPIENTS = 100
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
MIN_SCHEDULE_AHEAD = timedelta(seconds=30)
MAX_DELAY_SECONDS = 300
MIN_DIGITS, MAX_DIGITS = 8, 15

MEDIA_TYPES = ("image", "document", "video", "audio")
BROADCAST_TYPES = ("text", *MEDIA_TYPES)
MESSAGE_STATUSES = ("pending", "sent", "delivered", "read", "failed")
#: Message statuses in the order a successful message reaches them.
STATUS_ORDER = {"pending": 0, "sent": 1, "delivered": 2, "read": 3}
JID_SUFFIXES = ("@s.whatsapp.net", "@lid", "@g.us")
INSTANCE_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")

#: Waslah's upload whitelist: MIME type -> the media ``type`` it is sent as.
ALLOWED_MIME_TYPES: dict[str, str] = {
    "image/jpeg": "image",
    "image/png": "image",
    "image/webp": "image",
    "image/gif": "image",
    "video/mp4": "video",
    "video/quicktime": "video",
    "audio/mpeg": "audio",
    "audio/mp4": "audio",
    "audio/ogg": "audio",
    "audio/wav": "audio",
    "audio/x-wav": "audio",
    "audio/aac": "audio",
    "application/pdf": "document",
    "application/msword": "document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "document",
    "application/vnd.ms-excel": "document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "document",
    "application/vnd.ms-powerpoint": "document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "document",
    "text/plain": "document",
    "text/csv": "document",
    "application/zip": "document",
    "application/x-zip-compressed": "document",
}

_PHONE_PUNCTUATION = re.compile(r"[\s\-().]")


def _fail(field: str, rule: str) -> WaslahInvalidInputError:
    return WaslahInvalidInputError(field, rule)


def normalize_recipient(value: object, field: str = "to") -> str:
    """Normalise a phone number to Waslah's ``62…`` form, or return a full JID unchanged.

    ``08…`` becomes ``628…``, a leading ``+`` is dropped, spaces, dashes, dots and brackets are
    removed; the result must have 8-15 digits. JIDs ending in ``@s.whatsapp.net``, ``@lid`` or
    ``@g.us`` are kept as they are (replies to privacy-mode customers need the ``@lid`` JID).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _fail(field, f"must be a phone number or a WhatsApp JID, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise _fail(field, "must not be empty")
    if "@" in text:
        local, _, domain = text.partition("@")
        if "@" + domain not in JID_SUFFIXES:
            raise _fail(field, f"JID {text!r} must end with one of {', '.join(JID_SUFFIXES)}")
        if not re.fullmatch(r"[0-9][0-9:\-]*", local):
            raise _fail(field, f"JID {text!r} must start with digits before the '@'")
        return text
    digits = _PHONE_PUNCTUATION.sub("", text)
    if digits.startswith("+"):
        digits = digits[1:]
    if not digits.isdigit():
        raise _fail(field, f"{text!r} is not a phone number (digits, optionally +62 or 08 prefixed)")
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise _fail(field, f"{text!r} must have {MIN_DIGITS}-{MAX_DIGITS} digits, has {len(digits)}")
    return digits


def normalize_recipients(values: Iterable[object], field: str = "recipients") -> tuple[list[str], list[str]]:
    """Normalise many recipients: ``(valid, invalid)``, valid deduplicated in first-seen order.

    ``invalid`` holds the original values (as strings) that failed, so callers can report them.
    """
    valid: list[str] = []
    seen: set[str] = set()
    invalid: list[str] = []
    for index, value in enumerate(values):
        try:
            number = normalize_recipient(value, f"{field}[{index}]")
        except WaslahInvalidInputError:
            invalid.append(str(value))
            continue
        if number not in seen:
            seen.add(number)
            valid.append(number)
    return valid, invalid


#: How many invalid values an error message shows before "and N more".
SHOWN_INVALID = 10


def invalid_recipients_rule(invalid: list[str], hint: str = "") -> str:
    """The one wording of "these recipients are invalid", naming at most :data:`SHOWN_INVALID` values."""
    shown = ", ".join(repr(value[:40]) for value in invalid[:SHOWN_INVALID])
    more = f" and {len(invalid) - SHOWN_INVALID} more" if len(invalid) > SHOWN_INVALID else ""
    rule = f"{len(invalid)} invalid number(s): {shown}{more} ({MIN_DIGITS}-{MAX_DIGITS} digits, or a full JID)"
    return f"{rule}; {hint}" if hint else rule


def check_id(value: object, field: str) -> int:
    """A Waslah id (message, broadcast): a positive whole number, or a string of ASCII digits.

    Floats with a fraction, booleans, NaN/infinity, ``Decimal('1.9')`` and non-ASCII digits
    (``'²'``, ``'٣'``) are refused rather than rounded or truncated to another message's id.
    """
    if isinstance(value, bool):
        raise _fail(field, f"must be a positive integer id, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        try:
            is_whole = value == int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError, OverflowError, ArithmeticError):
            is_whole = False
        if not is_whole:
            raise _fail(field, f"must be a positive integer id, got {str(value)[:40]!r}")
        number = int(value)  # type: ignore[call-overload]
    if not 1 <= number < 2**63:
        raise _fail(field, f"must be a positive integer id, got {str(value)[:40]!r}")
    return number


def check_positive_seconds(value: object, field: str) -> float | None:
    """A duration: ``None``, a positive finite number of seconds or a ``timedelta``."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise _fail(field, f"must be a positive number of seconds or a timedelta, got {str(value)[:40]!r}")
    if not 0 < seconds < float("inf"):
        raise _fail(field, f"must be a positive number of seconds, got {value!r}")
    return seconds


def required_seconds(value: object, field: str) -> float:
    """Like :func:`check_positive_seconds`, but ``None`` is refused too."""
    seconds = check_positive_seconds(value, field)
    if seconds is None:
        raise _fail(field, "is required (a positive number of seconds)")
    return seconds


def normalize_mime(value: str) -> str:
    """A MIME type without parameters, lower-cased: ``'Image/PNG; q=1'`` -> ``'image/png'``."""
    return value.split(";")[0].strip().lower()


def media_type_of_mime(value: str | None) -> str | None:
    """The media ``type`` for a MIME type on Waslah's whitelist, else ``None``."""
    return ALLOWED_MIME_TYPES.get(normalize_mime(value)) if value else None


def check_instance_key(value: object) -> str:
    """An instance key: letters, digits, dash and underscore only."""
    if not isinstance(value, str) or not INSTANCE_KEY_PATTERN.fullmatch(value):
        raise _fail("instance_key", "must be a non-empty string of letters, digits, '-' or '_'")
    return value


def check_text(value: object, field: str = "text", limit: int = MAX_TEXT, required: bool = True) -> str | None:
    """Text fields: a string of at most ``limit`` characters (required unless ``required`` is False)."""
    if value is None:
        if required:
            raise _fail(field, "is required")
        return None
    if not isinstance(value, str):
        raise _fail(field, f"must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise _fail(field, "must not be empty")
    if len(value) > limit:
        raise _fail(field, f"must be at most {limit} characters, got {len(value)}")
    return value


def is_private_host(host: str) -> bool:
    """True for localhost names and loopback, private, link-local or reserved IP literals."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost") or not name:
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        try:  # IPv4 shorthands resolvers accept: 127.1, 2130706433, 0x7f000001, 0177.0.0.1
            address = ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return False
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or address.is_multicast
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_media_url(value: object, field: str = "url", trusted_origin: str | None = None) -> str:
    """A public ``http(s)`` URL of at most 2048 characters that the engine can fetch.

    URLs on ``trusted_origin`` (the gateway's own storage, where ``POST /uploads`` puts files)
    are always accepted.
    """
    if not isinstance(value, str) or not value.strip():
        raise _fail(field, "is required and must be a URL string")
    if len(value) > MAX_URL:
        raise _fail(field, f"must be at most {MAX_URL} characters, got {len(value)}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(field, f"must be an absolute http(s) URL, got {value[:80]!r}")
    if trusted_origin and _origin(value) == _origin(trusted_origin):
        return value
    if is_private_host(parts.hostname):
        raise _fail(
            field,
            f"host {parts.hostname!r} is localhost or a private address, which Waslah's engine refuses; "
            "upload the file with POST /uploads (file_path=...) instead",
        )
    return value


def check_media_type(value: object, field: str = "type", allowed: tuple[str, ...] = MEDIA_TYPES) -> str:
    """``type`` must be one of the documented enum values."""
    if value not in allowed:
        raise _fail(field, f"must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def parse_scheduled_at(value: object, now: datetime | None = None, field: str = "scheduled_at") -> datetime | None:
    """A timezone-aware datetime (or ISO 8601 string) at least 30 s in the future, or ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _fail(field, f"must be an ISO 8601 datetime, got {value!r}") from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise _fail(field, f"must be a datetime or ISO 8601 string, got {type(value).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _fail(field, "must be timezone-aware (e.g. 2026-05-21T09:00:00+07:00); a naive time is ambiguous")
    current = now or datetime.now(timezone.utc)
    if moment < current + MIN_SCHEDULE_AHEAD:
        raise _fail(field, f"must be at least {int(MIN_SCHEDULE_AHEAD.total_seconds())} seconds in the future")
    return moment


def check_delays(delay_min_sec: object, delay_max_sec: object) -> tuple[int | None, int | None]:
    """Broadcast delays: integers 0-300 with ``delay_min_sec <= delay_max_sec``."""
    checked: list[int | None] = []
    for field, value in (("delay_min_sec", delay_min_sec), ("delay_max_sec", delay_max_sec)):
        if value is None:
            checked.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(field, f"must be an integer number of seconds, got {value!r}")
        if not 0 <= value <= MAX_DELAY_SECONDS:
            raise _fail(field, f"must be between 0 and {MAX_DELAY_SECONDS} seconds, got {value}")
        checked.append(value)
    low, high = checked
    if low is not None and high is not None and low > high:
        raise _fail("delay_min_sec", f"must not exceed delay_max_sec ({low} > {high})")
    return low, high


def media_type_for_mime(mime_type: str, field: str = "file") -> str:
    """The media ``type`` Waslah sends a MIME type as; refuses types off the whitelist."""
    base = normalize_mime(mime_type)
    if base not in ALLOWED_MIME_TYPES:
        raise _fail(field, f"MIME type {base!r} is not accepted by Waslah uploads")
    return ALLOWED_MIME_TYPES[base]


def check_upload_size(size: int, field: str = "file") -> int:
    """Uploads are at most 16 MB."""
    if size > MAX_UPLOAD_BYTES:
        raise _fail(field, f"is {size} bytes; Waslah uploads are at most {MAX_UPLOAD_BYTES} bytes (16 MB)")
    if size == 0:
        raise _fail(field, "is empty")
    return size
