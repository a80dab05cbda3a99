"""Waslah's input rules, in one place: used for pre-flight checks by the client and by the emulator.

Each check raises :class:`~airflow_provider_waslah.client.errors.WaslahInvalidInputError`
naming the field and the rule, so bad input fails before any request is sent.
"""

from __future__ import annotations

import decimal
import ipaddress
import numbers
import re
import socket
import unicodedata
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

#: What a phone number may be written with besides ASCII digits (removed before counting digits).
_PHONE_PUNCTUATION = re.compile(r"[ \-().]")
_ASCII_DIGITS = re.compile(r"[0-9]+")
#: The most digits a ``@lid`` id or each part of a group id may have (seen in practice: 13-15 and 18).
MAX_JID_ID_DIGITS = 20
#: The part before the ``@`` of each JID kind, ASCII digits only (``re``'s ``[0-9]``, not ``\d``).
_JID_LOCAL_PARTS: dict[str, tuple[re.Pattern[str], str]] = {
    "@s.whatsapp.net": (
        re.compile(rf"[1-9][0-9]{{{MIN_DIGITS - 1},{MAX_DIGITS - 1}}}"),
        f"a phone number in international form ({MIN_DIGITS}-{MAX_DIGITS} ASCII digits, not starting with 0)",
    ),
    "@lid": (
        re.compile(rf"[1-9][0-9]{{0,{MAX_JID_ID_DIGITS - 1}}}"),
        f"a WhatsApp LID (1-{MAX_JID_ID_DIGITS} ASCII digits, not starting with 0)",
    ),
    "@g.us": (
        re.compile(rf"[1-9][0-9]{{0,{MAX_JID_ID_DIGITS - 1}}}(-[1-9][0-9]{{0,{MAX_JID_ID_DIGITS - 1}}})?"),
        f"a group id (up to {MAX_JID_ID_DIGITS} ASCII digits, optionally a dash and up to {MAX_JID_ID_DIGITS} more, "
        "neither part starting with 0)",
    ),
}
#: How many characters of a bad value an error message shows.
SHOWN_CHARS = 40


def _fail(field: str, rule: str) -> WaslahInvalidInputError:
    return WaslahInvalidInputError(field, rule)


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A bad value as error messages quote it: ``repr`` of at most ``limit`` characters; never raises.

    Integers too long to print (Python refuses more than 4300 digits) are described by their size.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, str):
        return repr(value[:limit]) + ("…" if len(value) > limit else "")
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__, or a container of integers too long to print
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "…"


def _as_text(value: object) -> str:
    """``str(value)`` for reports of invalid values, without failing on huge integers or odd objects."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1000:
        return shown(value)
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _check_jid(text: str, field: str) -> str:
    local, _, domain = text.partition("@")
    suffix = "@" + domain
    if suffix not in _JID_LOCAL_PARTS:
        raise _fail(field, f"JID {shown(text)} must end with one of {', '.join(JID_SUFFIXES)}")
    pattern, what = _JID_LOCAL_PARTS[suffix]
    if not pattern.fullmatch(local):
        raise _fail(field, f"JID {shown(text)}: the part before '@' must be {what}")
    return text


def normalize_recipient(value: object, field: str = "to") -> str:
    """Normalise a phone number to Waslah's ``62…`` form, or return a full JID unchanged.

    Phone numbers: only ASCII digits count (Arabic-Indic, fullwidth, superscript and other Unicode
    digits are refused, not converted). ASCII spaces, dashes, dots and brackets are removed, then
    one leading ``+``; ``08…`` becomes ``628…``; the result must have 8-15 digits. A negative
    integer or a number written with a leading ``-`` is refused.

    JIDs (replies to privacy-mode customers need the ``@lid`` JID) are kept as they are, after
    stripping surrounding whitespace; the part before the ``@`` must be ASCII digits:

    - ``…@s.whatsapp.net``: a phone number in international form, 8-15 digits, not starting with 0;
    - ``…@lid``: 1-20 digits, not starting with 0 (LIDs seen in practice have 13-15; the reference's
      example has 5), so ``0@lid`` and ``@lid`` are refused;
    - ``…@g.us``: a group id of at most 20 digits (``120363…``, 18 today), optionally followed by a
      dash and at most 20 more digits (the older ``<creator phone>-<timestamp>`` form).

    Error messages quote at most :data:`SHOWN_CHARS` characters of the value.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _fail(field, f"must be a phone number or a WhatsApp JID, got {type(value).__name__}")
    if isinstance(value, int):
        if value < 0:
            raise _fail(field, "must be a phone number, got a negative integer")
        if value >= 10**MAX_DIGITS:
            raise _fail(field, f"must have {MIN_DIGITS}-{MAX_DIGITS} digits, got an integer of more than {MAX_DIGITS}")
        text = str(value)
    else:
        text = value.strip()
    if not text:
        raise _fail(field, "must not be empty")
    if "@" in text:
        return _check_jid(text, field)
    if text.startswith("-"):
        raise _fail(field, f"{shown(text)} is not a phone number (it starts with '-')")
    digits = _PHONE_PUNCTUATION.sub("", text)
    if digits.startswith("+"):
        digits = digits[1:]
    if not _ASCII_DIGITS.fullmatch(digits):
        raise _fail(field, f"{shown(text)} is not a phone number (ASCII digits 0-9, optionally +62 or 08 prefixed)")
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise _fail(field, f"{shown(text)} must have {MIN_DIGITS}-{MAX_DIGITS} digits, has {len(digits)}")
    return digits


def normalize_recipients(values: Iterable[object], field: str = "recipients") -> tuple[list[str], list[str]]:
    """Normalise many recipients: ``(valid, invalid)``, valid deduplicated in first-seen order.

    ``invalid`` holds the original values (as strings) that failed, so callers can report them;
    an integer too long to print is described by its size instead.
    """
    valid: list[str] = []
    seen: set[str] = set()
    invalid: list[str] = []
    for index, value in enumerate(values):
        try:
            number = normalize_recipient(value, f"{field}[{index}]")
        except WaslahInvalidInputError:
            invalid.append(_as_text(value))
            continue
        if number not in seen:
            seen.add(number)
            valid.append(number)
    return valid, invalid


#: How many invalid values an error message shows before "and N more".
SHOWN_INVALID = 10


def invalid_recipients_rule(invalid: list[str], hint: str = "") -> str:
    """The one wording of "these recipients are invalid", naming at most :data:`SHOWN_INVALID` values.

    Each value is quoted with at most :data:`SHOWN_CHARS` characters.
    """
    quoted = ", ".join(shown(_as_text(value)) for value in invalid[:SHOWN_INVALID])
    more = f" and {len(invalid) - SHOWN_INVALID} more" if len(invalid) > SHOWN_INVALID else ""
    rule = f"{len(invalid)} invalid number(s): {quoted}{more} ({MIN_DIGITS}-{MAX_DIGITS} digits, or a full JID)"
    return f"{rule}; {hint}" if hint else rule


#: Ids are 64-bit on Waslah's side: anything at or above this is not an id.
MAX_ID = 2**63


def check_id(value: object, field: str) -> int:
    """A Waslah id (message, broadcast): a positive whole number, or a string of ASCII digits.

    Floats with a fraction, booleans, NaN/infinity, ``Decimal('1.9')``, ``Decimal('Infinity')``,
    non-ASCII digits (``'²'``, ``'٣'``, ``'１２'``), signs and anything not below 2**63 are
    refused rather than rounded or truncated to another message's id.
    """
    rule = "must be a positive integer id"
    if isinstance(value, bool):
        raise _fail(field, f"{rule}, got {value!r}")
    number: object = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 19:
            number = int(text)
    elif isinstance(value, decimal.Decimal):
        # Checked before int(): Decimal('1e999999999') would be a billion-digit integer.
        if value.is_finite() and value.adjusted() < 19 and value == value.to_integral_value():
            number = int(value)
    elif isinstance(value, (float, numbers.Rational)):
        try:  # whole and finite: 7.0, Fraction(8, 1)
            whole = int(value)  # type: ignore[arg-type]
            number = whole if value == whole else None
        except (ArithmeticError, ValueError, TypeError):  # NaN, infinity
            number = None
    if not isinstance(number, int) or not 1 <= number < MAX_ID:
        raise _fail(field, f"{rule}, got {shown(value)}")
    return number


def check_positive_seconds(value: object, field: str) -> float | None:
    """A duration: ``None``, a positive finite number of seconds or a ``timedelta``."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond float range
            seconds = float("inf")
    else:
        raise _fail(field, f"must be a positive number of seconds or a timedelta, got {shown(value)}")
    if not 0 < seconds < float("inf"):
        raise _fail(field, f"must be a positive number of seconds, got {shown(value)}")
    return seconds


def required_seconds(value: object, field: str) -> float:
    """Like :func:`check_positive_seconds`, but ``None`` is refused too."""
    seconds = check_positive_seconds(value, field)
    if seconds is None:
        raise _fail(field, "is required (a positive number of seconds)")
    return seconds


def normalize_mime(value: str) -> str:
    """A MIME type without parameters, lower-cased: ``'Image/PNG; q=1'`` -> ``'image/png'``.

    Anything that is not a string gives ``''`` (no MIME type).
    """
    if not isinstance(value, str):
        return ""
    return value.split(";")[0].strip().lower()


def media_type_of_mime(value: str | None) -> str | None:
    """The media ``type`` for a MIME type on Waslah's whitelist, else ``None``."""
    return ALLOWED_MIME_TYPES.get(normalize_mime(value)) if isinstance(value, str) and value else None


#: Longest ``filename`` / ``mimetype`` accepted (file systems and MIME registries stop at 255).
MAX_SHORT_STRING = 255
#: Characters that may be stripped from the ends of a pasted API key besides whitespace.
_INVISIBLE_EDGES = "\u200b\u200c\u200d\u2060\ufeff"


def _encodable(value: str, field: str) -> str:
    """``value`` if it can be encoded as UTF-8 (no lone surrogates), else our error naming the spot."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _fail(
            field,
            f"contains a lone surrogate (U+{ord(value[error.start]):04X}) at position {error.start}, "
            "which cannot be encoded as UTF-8",
        ) from None
    return value


def _first_odd_character(value: str) -> int | None:
    """Index of the first whitespace, control or invisible formatting character, else ``None``."""
    for index, char in enumerate(value):
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp", "Zs"):
            return index
    return None


def check_short_string(value: object, field: str, limit: int = MAX_SHORT_STRING) -> str | None:
    """Optional one-line fields (``filename``, ``mimetype``): ``None`` or a string of at most ``limit``
    characters, encodable as UTF-8, without control characters or line breaks."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(field, f"must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise _fail(field, f"must be at most {limit} characters, got {len(value)}")
    _encodable(value, field)
    for index, char in enumerate(value):
        if unicodedata.category(char) == "Cc" or char in "\u2028\u2029":
            raise _fail(field, f"must not contain control characters or line breaks (U+{ord(char):04X} at {index})")
    return value


def check_api_key(value: object, field: str = "api_key") -> str:
    """The API key with surrounding whitespace removed; refuses keys that cannot be a header value.

    People paste keys with a trailing newline, ``\\r\\n``, tabs, spaces or a byte-order mark:
    those are stripped. Whitespace inside the key, control characters and anything outside
    printable ASCII are refused. The message names the field and the rule, and at most the key's
    length and the position of the offending character: never the key.
    """
    if not isinstance(value, str):
        raise _fail(field, f"must be the Waslah API key as a string (wsl_…), got {type(value).__name__}")
    key = value
    while True:  # whitespace and invisible marks, in any order, at either end
        stripped = key.strip().strip(_INVISIBLE_EDGES)
        if stripped == key:
            break
        key = stripped
    if not key:
        raise _fail(field, "is blank: it holds only whitespace; paste the Waslah API key (wsl_…)")
    for index, char in enumerate(key):
        if not "!" <= char <= "~":
            kind = (
                "whitespace"
                if char.isspace()
                else "a control character"
                if unicodedata.category(char) == "Cc" or char == "\x7f"
                else "a non-ASCII character"
            )
            raise _fail(
                field,
                f"contains {kind} (character {index + 1} of {len(key)}); a Waslah API key is printable ASCII "
                "without spaces: paste it again",
            )
    return key


def check_instance_key(value: object) -> str:
    """An instance key: letters, digits, dash and underscore only."""
    if not isinstance(value, str) or not INSTANCE_KEY_PATTERN.fullmatch(value):
        raise _fail("instance_key", "must be a non-empty string of letters, digits, '-' or '_'")
    return value


def check_text(value: object, field: str = "text", limit: int = MAX_TEXT, required: bool = True) -> str | None:
    """Text fields: a string of at most ``limit`` characters (required unless ``required`` is False).

    The text must be encodable as UTF-8: a lone surrogate (``"\ud800"``, e.g. from a badly decoded
    file) is refused here, naming the field, instead of failing inside the HTTP library.
    """
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
    return _encodable(value, field)


#: Names that always mean this machine or a private network, whatever DNS says.
_LOCAL_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback", "localhost.localdomain"})
#: Special-use suffixes that never name a public host: RFC 6761 (.localhost), RFC 6762 (.local,
#: mDNS), RFC 8375 (.home.arpa), ICANN's private-use .internal (cloud metadata lives there), and
#: the conventional .localdomain.
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")
#: Public wildcard domains whose every name resolves to 127.0.0.1.
_LOOPBACK_DOMAINS = ("localtest.me", "lvh.me", "vcap.me", "localhost.direct")
#: Public wildcard-DNS services that resolve a name to the IP address written in it
#: (``10.0.0.1.nip.io``, ``app-10-0-0-1.nip.io``, ``0a000001.nip.io``, ``--1.sslip.io`` for ``::1``).
WILDCARD_DNS_DOMAINS = ("nip.io", "sslip.io", "xip.io", "traefik.me")
#: Dots IDNA treats as label separators (ideographic, fullwidth, halfwidth ideographic).
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_NAT64_PREFIXES = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_SHORTHAND = re.compile(r"[0-9a-fx.]+")
_HEX_IPV4 = re.compile(r"[0-9a-f]{8}")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _is_public(address: IPAddress) -> bool:
    """True for a globally reachable unicast address, including any IPv4 address it embeds."""
    if address.is_multicast or not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded: list[ipaddress.IPv4Address | None] = [address.ipv4_mapped, address.sixtofour]
        if address.teredo:
            embedded.append(address.teredo[1])
        if any(address in prefix for prefix in _NAT64_PREFIXES):
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(inner is None or _is_public(inner) for inner in embedded)
    return True


def _ip_literal(name: str) -> IPAddress | None:
    """The address a host name spells as an IP literal (including IPv4 shorthands), else ``None``."""
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    if _IPV4_SHORTHAND.fullmatch(name):  # what resolvers accept: 127.1, 2130706433, 0x7f000001, 0177.0.0.1
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except (OSError, ValueError):
            return None
    return None


def _embedded_addresses(name: str) -> list[IPAddress]:
    """The addresses a wildcard-DNS name (``*.nip.io`` and friends) would resolve to, as far as written."""
    for domain in WILDCARD_DNS_DOMAINS:
        if name == domain or name.endswith("." + domain):
            prefix = name[: -len(domain)].rstrip(".")
            break
    else:
        return []
    found: list[IPAddress] = []
    tokens = re.split(r"[.-]", prefix)
    for index in range(len(tokens) - 3):  # dotted or dashed IPv4: any four decimal labels in a row
        window = tokens[index : index + 4]
        if all(token.isascii() and token.isdigit() and len(token) <= 3 and int(token) <= 255 for token in window):
            found.append(ipaddress.IPv4Address(".".join(str(int(token)) for token in window)))
    found += [ipaddress.IPv4Address(int(token, 16)) for token in tokens if _HEX_IPV4.fullmatch(token)]
    for label in prefix.split("."):  # sslip.io's IPv6 form: dashes for colons, after an optional "name-"
        parts = label.split("-")
        for start in range(len(parts)):
            try:
                found.append(ipaddress.IPv6Address(":".join(parts[start:])))
            except ValueError:
                continue
    return found


def is_private_host(host: str) -> bool:
    """True when a URL's host is not a public internet host: anything Waslah's engine should not fetch.

    That is: localhost names and special-use suffixes (``.localhost``, ``.local``, ``.internal``,
    ``.home.arpa``, ``.localdomain``); any IP literal (also IPv4 shorthands such as ``127.1`` or
    ``0x7f000001``) that is not globally reachable unicast, which covers private, loopback,
    link-local, shared (``100.64.0.0/10``), benchmarking, documentation, reserved and multicast
    ranges, IPv6 unique-local, and IPv6 forms embedding such an IPv4 address (IPv4-mapped
    ``::ffff:127.0.0.1``, 6to4, Teredo, NAT64); public names that always resolve to loopback
    (``localtest.me``, ``lvh.me``, ...); and wildcard-DNS names that spell a non-public address
    (``127.0.0.1.nip.io``, ``app-10-0-0-1.sslip.io``). The host is NFKC-normalised first, so
    fullwidth look-alikes (``ｌｏｃａｌｈｏｓｔ``) count as what resolvers make of them. No DNS lookup
    is made. Never raises: a value that is not a string counts as private.
    """
    if not isinstance(host, str):
        return True
    name = unicodedata.normalize("NFKC", host).translate(_DOTS).strip("[]").lower().rstrip(".")
    if not name or "\x00" in name:
        return True
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        return True
    if any(name == domain or name.endswith("." + domain) for domain in _LOOPBACK_DOMAINS):
        return True
    address = _ip_literal(name)
    if address is not None:
        return not _is_public(address)
    return not all(_is_public(embedded) for embedded in _embedded_addresses(name))


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_media_url(
    value: object, field: str = "url", trusted_origin: str | None = None, *, check_host: bool = True
) -> str:
    """A public ``http(s)`` URL of at most 2048 characters that the engine can fetch.

    The URL must be a string encodable as UTF-8, without whitespace or control characters (percent-
    encode them), with a host and a valid port, and without a backslash before the path (URL parsers
    disagree on where such a host ends). URLs on ``trusted_origin`` (the gateway's own storage, where
    ``POST /uploads`` puts files) are always accepted. ``check_host=False`` checks only the shape
    (builders use it: the client checks the host when it sends).

    The host must not be private (see :func:`is_private_host`). **No DNS lookup is made**, on
    purpose: it would cost a lookup per send, its answer can change between this check and the
    moment Waslah fetches the URL (DNS rebinding), and Waslah's engine fetches from its own network,
    so its own SSRF defence is what protects it. What the client does refuse is every host that is
    private on its face: IP literals that are not global, local names, and wildcard-DNS names that
    spell a private address (``127.0.0.1.nip.io``, ``10-0-0-1.sslip.io``, ``localtest.me``). The limit:
    a hostname under the caller's control that resolves to a private address is not detected here.
    """
    if not isinstance(value, str) or not value.strip():
        raise _fail(field, "is required and must be a URL string")
    if len(value) > MAX_URL:
        raise _fail(field, f"must be at most {MAX_URL} characters, got {len(value)}")
    _encodable(value, field)
    odd = _first_odd_character(value)
    if odd is not None:
        raise _fail(
            field,
            f"must not contain spaces or control characters (U+{ord(value[odd]):04X} at position {odd}); "
            "percent-encode them (a space is %20)",
        )
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a port out of range or not a number)
    except ValueError:
        raise _fail(field, f"is not a valid URL: {shown(value, 80)}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _fail(field, f"must be an absolute http(s) URL, got {shown(value, 80)}")
    if "\\" in parts.netloc:
        raise _fail(field, "must not contain a backslash before the path (parsers disagree on where the host ends)")
    if not (parts.netloc.rpartition("@")[2].startswith("[") or all(c.isalnum() or c in "-._~%" for c in host)):
        raise _fail(field, f"has a host that is not a host name or an IP address: {shown(host)}")
    if not check_host or (trusted_origin and _origin(value) == _origin(trusted_origin)):
        return value
    if is_private_host(host):
        raise _fail(
            field,
            f"host {shown(host)} is localhost or a private address (or a name that always points at one), "
            "which Waslah's engine refuses; upload the file with POST /uploads (file_path=...) instead",
        )
    return value


def check_media_type(value: object, field: str = "type", allowed: tuple[str, ...] = MEDIA_TYPES) -> str:
    """``type`` must be one of the documented enum values."""
    if not isinstance(value, str) or value not in allowed:
        raise _fail(field, f"must be one of {', '.join(allowed)}, got {shown(value)}")
    return value


def parse_scheduled_at(value: object, now: datetime | None = None, field: str = "scheduled_at") -> datetime | None:
    """A timezone-aware datetime (or ISO 8601 string) at least 30 s in the future, or ``None``."""
    if value is None or (isinstance(value, str) and not value):
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _fail(field, f"must be an ISO 8601 datetime, got {shown(value)}") from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise _fail(field, f"must be a datetime or ISO 8601 string, got {type(value).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _fail(field, "must be timezone-aware (e.g. 2026-05-21T09:00:00+07:00); a naive time is ambiguous")
    current = now or datetime.now(timezone.utc)
    try:
        too_soon = moment < current + MIN_SCHEDULE_AHEAD
    except OverflowError:  # a moment near year 1 or 9999 whose UTC conversion leaves datetime's range
        raise _fail(field, "is out of range") from None
    if too_soon:
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
            raise _fail(field, f"must be an integer number of seconds, got {shown(value)}")
        if not 0 <= value <= MAX_DELAY_SECONDS:
            raise _fail(field, f"must be between 0 and {MAX_DELAY_SECONDS} seconds, got {shown(value)}")
        checked.append(value)
    low, high = checked
    if low is not None and high is not None and low > high:
        raise _fail("delay_min_sec", f"must not exceed delay_max_sec ({low} > {high})")
    return low, high


def media_type_for_mime(mime_type: str, field: str = "file") -> str:
    """The media ``type`` Waslah sends a MIME type as; refuses types off the whitelist."""
    if not isinstance(mime_type, str):
        raise _fail(field, f"MIME type must be a string, got {type(mime_type).__name__}")
    base = normalize_mime(mime_type)
    if base not in ALLOWED_MIME_TYPES:
        raise _fail(field, f"MIME type {shown(base)} is not accepted by Waslah uploads")
    return ALLOWED_MIME_TYPES[base]


def check_upload_size(size: int, field: str = "file") -> int:
    """Uploads are at most 16 MB."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise _fail(field, f"size must be a whole number of bytes, got {type(size).__name__}")
    if size > MAX_UPLOAD_BYTES:
        raise _fail(field, f"is {shown(size)} bytes; Waslah uploads are at most {MAX_UPLOAD_BYTES} bytes (16 MB)")
    if size <= 0:
        raise _fail(field, "is empty")
    return size
