"""Turn what a DAG author passes as recipients into a flat list, and mask numbers for logs.

Recipients reach operators and the notifier in many shapes: a list of numbers, a list of rows
(dicts) from an upstream task, a comma-separated string, or the *string form* of a list when an
XCom is rendered through Jinja without ``render_template_as_native_obj``. Normalising the
numbers themselves is the client's job (``validation.normalize_recipients``); this module only
unwraps the shapes.

A string in list form is parsed only when it is at most :data:`MAX_RECIPIENTS_TEXT` characters
long and nested at most :data:`MAX_NESTING` brackets deep; anything larger fails with
:class:`~airflow_provider_waslah.client.errors.WaslahInvalidInputError` before any parser sees it
(a string of 100,000 ``[`` would otherwise exhaust Python's recursion limit).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.validation import normalize_recipients, shown

#: Keys tried, in order, to find the number in a dict row when no ``recipient_key`` is given.
DEFAULT_RECIPIENT_KEYS: tuple[str, ...] = ("phone", "to")

_SEPARATORS = re.compile(r"[,;\n]")
#: The longest recipients string parsed as a list: 1,000,000 characters (tens of thousands of
#: numbers; a broadcast takes 100 per request, so this is far beyond any real list).
MAX_RECIPIENTS_TEXT = 1_000_000
#: The deepest bracket nesting parsed: a list of dict rows is 2 deep; 10 leaves ample room.
MAX_NESTING = 10


def _nesting(text: str) -> int:
    """The deepest bracket nesting in ``text`` (brackets inside quotes count too: a bound, not a parse)."""
    depth = deepest = 0
    for char in text:
        if char in "[({":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "])}":
            depth = max(0, depth - 1)
    return deepest


def _parse_literal(text: str, field: str) -> Any:
    """A list or dict written as JSON or as a Python literal (how Jinja renders an XCom list).

    Returns ``None`` when ``text`` is neither; refuses text over the size and nesting bounds.
    """
    if len(text) > MAX_RECIPIENTS_TEXT:
        raise WaslahInvalidInputError(
            field, f"is a string of {len(text)} characters; at most {MAX_RECIPIENTS_TEXT} are parsed as a list"
        )
    if _nesting(text) > MAX_NESTING:
        raise WaslahInvalidInputError(field, f"is nested more than {MAX_NESTING} brackets deep; pass a flat list")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        # not a literal; an unhashable dict key ("{[1]: 2}"); a NUL; an integer too long
        return None


def _from_row(row: Mapping[str, Any], field: str, recipient_key: str | None) -> Any:
    keys = (recipient_key,) if recipient_key else DEFAULT_RECIPIENT_KEYS
    for key in keys:
        if key in row:
            return row[key]
    wanted = " or ".join(shown(key) for key in keys)
    names = [shown(key, 20) for key in list(row)[:10]]
    more = f" and {len(row) - 10} more" if len(row) > 10 else ""
    raise WaslahInvalidInputError(
        field, f"row has no {wanted} key (keys: {', '.join(names)}{more}); set recipient_key to the right one"
    )


def flatten_recipients(value: object, field: str = "recipients", recipient_key: str | None = None) -> list[object]:
    """The recipients in ``value`` as a flat list of raw numbers/JIDs (not yet normalised).

    Accepts a number, a string (one number, ``"a, b; c"`` or a rendered ``"['a', 'b']"``), a
    dict row, or any iterable of numbers and dict rows (including Airflow's lazy XCom sequences).
    Values it cannot use are passed on for ``normalize_recipients`` to report; only rows without
    the recipient key and list strings over the size or nesting bounds raise here.

    :raises WaslahInvalidInputError: naming ``field``.
    """
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "(", "{"):
            parsed = _parse_literal(text, field)
            if isinstance(parsed, (list, tuple, dict)):
                return flatten_recipients(parsed, field, recipient_key)
        return [part.strip() for part in _SEPARATORS.split(text) if part.strip()]
    if isinstance(value, Mapping):
        return [_from_row(value, field, recipient_key)]
    if isinstance(value, (int, bytes, bytearray)) or not isinstance(value, Iterable):
        return [value]
    flat: list[object] = []
    for index, item in enumerate(value):
        if isinstance(item, Mapping):
            flat.append(_from_row(item, f"{field}[{index}]", recipient_key))
        else:
            flat.append(item.strip() if isinstance(item, str) else item)
    return flat


def resolve_recipients(
    value: object, field: str = "recipients", recipient_key: str | None = None
) -> tuple[list[str], list[str]]:
    """``(valid, invalid)``: valid numbers normalised and deduplicated, invalid ones as given."""
    return normalize_recipients(flatten_recipients(value, field, recipient_key), field)


def resolve_single_recipient(value: object, field: str = "to", recipient_key: str | None = None) -> object:
    """The one recipient of a message operator (a value, a one-item list or a dict row)."""
    flat = flatten_recipients(value, field, recipient_key)
    if not flat:
        raise WaslahInvalidInputError(field, "is required (a phone number or a WhatsApp JID)")
    if len(flat) > 1:
        raise WaslahInvalidInputError(
            field,
            f"takes one recipient, got {len(flat)}; use WaslahBroadcastOperator for one text to many, "
            "or .expand(to=[...]) for one task per recipient",
        )
    return flat[0]


def mask_number(value: str) -> str:
    """A number or JID shortened for INFO logs: ``6281234567890`` -> ``62812****7890``."""
    if not isinstance(value, str):
        value = str(value) if isinstance(value, int) and abs(value) < 10**40 else "?"
    local, at, domain = value.partition("@")
    if len(local) >= 10:
        masked = f"{local[:5]}****{local[-4:]}"
    elif len(local) >= 6:
        masked = f"{local[:3]}****{local[-2:]}"
    else:
        masked = "****"
    return f"{masked}{at}{domain}"
