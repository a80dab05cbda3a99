"""Each row rendered into one message, checked, and given a key; all before the first send.

:class:`RowPreparer` renders the message fields of one row (compiled Jinja templates, each
rendered with the task context plus ``row``), applies Waslah's input rules through the same
builder the client uses (``calls.send_message``) and returns a :class:`PreparedRow` or an
:class:`InvalidRow` with the row number and reason. :func:`prepare_all` does that for every row,
drops duplicate keys, and spools the prepared rows to a local temporary file (:class:`RowSpool`),
so 100,000 rows are read once and never held in memory together.

Row keys (what the checkpoint remembers a row by):

- with ``row_key="invoice_id"``: that column's value, as a string;
- without: ``h:`` and 20 hex digits of the SHA-256 of the message as sent (instance, normalised
  recipient, type, text, URL, caption, file name). The same message to the same person is the
  same row, whatever else the row holds, so volatile columns (a query timestamp) do not make a
  retry send again; two identical rows are one message.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client import validation as rules
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.models import MessageReceipt

#: Row keys longer than this are refused (they are stored once per row in the checkpoint).
MAX_KEY_LENGTH = 200
#: The message fields a row renders, in the order they are checked.
FIELDS: tuple[str, ...] = ("to", "text", "type", "url", "caption", "filename")


class Template(Protocol):
    """A compiled template: Jinja's ``Template`` (or anything with the same ``render``)."""

    def render(self, *args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class PreparedRow:
    """A row ready to send: its 1-based number in the input, key, recipient and checked fields."""

    number: int
    key: str
    to: str
    fields: dict[str, Any]

    def call(self) -> Call[MessageReceipt]:
        """The ``POST /messages`` request (validated again: cheap, and the spool is not trusted blindly)."""
        return calls.send_message(**self.fields)


@dataclass(frozen=True)
class InvalidRow:
    """A row that cannot be sent, and why (``reason`` names the field and the rule)."""

    number: int
    key: str | None
    reason: str

    def describe(self) -> str:
        """``row 12 (INV-0912): `to`: '0812' must have 8-15 digits, has 5``."""
        key = f" ({self.key})" if self.key and not self.key.startswith("h:") else ""
        return f"row {self.number:,}{key}: {self.reason}"


def _reason(error: Exception) -> str:
    if isinstance(error, WaslahInvalidInputError):
        return f"`{error.field}`: {error.rule}"
    return f"{type(error).__name__}: {error}"


def _text(value: Any) -> str | None:
    """A rendered value as text; empty means "not given"."""
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def message_key(fields: Mapping[str, Any]) -> str:
    """``h:`` + 20 hex digits of the SHA-256 of the message as sent (its canonical JSON)."""
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return "h:" + hashlib.sha256(canonical.encode()).hexdigest()[:20]


class RowPreparer:
    """Renders and checks one row at a time.

    :param templates: the compiled template of each message field (``to`` required; ``text``,
        ``type``, ``url``, ``caption``, ``filename`` optional).
    :param context: what every template sees besides ``row`` (the task context).
    :param instance_key: the instance every message is sent from.
    :param row_key: the column whose value identifies a row; ``None`` for the message hash.
    :param trusted_origin: the gateway's own origin, where uploaded media lives (always allowed).
    """

    def __init__(
        self,
        templates: Mapping[str, Template | None],
        context: Mapping[str, Any],
        *,
        instance_key: str,
        row_key: str | None = None,
        trusted_origin: str | None = None,
    ) -> None:
        if templates.get("to") is None:
            raise WaslahInvalidInputError("to", "is required (e.g. '{{ row.phone }}')")
        if templates.get("text") is None and templates.get("url") is None:
            raise WaslahInvalidInputError("text", "is required: give text= (or url= for media)")
        self.templates = {name: templates.get(name) for name in FIELDS}
        self.context = dict(context)
        self.instance_key = rules.check_instance_key(instance_key)
        self.row_key = row_key
        self.trusted_origin = trusted_origin

    def _render(self, row: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        scope = {**self.context, "row": row}
        for name, template in self.templates.items():
            if template is None:
                values[name] = None
                continue
            try:
                values[name] = template.render(scope)
            except Exception as error:  # a missing column, a filter that raised: this row's fault
                raise WaslahInvalidInputError(name, f"template failed: {type(error).__name__}: {error}") from None
        return values

    def _key(self, row: Mapping[str, Any], fields: Mapping[str, Any]) -> str:
        if self.row_key is None:
            return message_key(fields)
        if self.row_key not in row:
            raise WaslahInvalidInputError("row_key", f"the row has no column {self.row_key!r}")
        value = _text(row[self.row_key])
        if value is None:
            raise WaslahInvalidInputError("row_key", f"column {self.row_key!r} is empty")
        if len(value) > MAX_KEY_LENGTH:
            raise WaslahInvalidInputError("row_key", f"is longer than {MAX_KEY_LENGTH} characters")
        return value

    def _fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        raw_to = values["to"]
        if raw_to is None or (isinstance(raw_to, str) and not raw_to.strip()):
            raise WaslahInvalidInputError("to", "rendered empty")
        to = rules.normalize_recipient(raw_to if isinstance(raw_to, int) else str(raw_to).strip(), "to")
        url = _text(values["url"])
        media_type = _text(values["type"])
        if url is not None:
            rules.check_media_url(url.strip(), "url", trusted_origin=self.trusted_origin)
            url = url.strip()
            if media_type is None:
                media_type = rules.media_type_of_mime(mimetypes.guess_type(urlsplit(url).path)[0])
                if media_type is None:
                    raise WaslahInvalidInputError(
                        "type", f"cannot be inferred from the URL; pass type= ({', '.join(rules.MEDIA_TYPES)})"
                    )
        elif media_type is not None:
            raise WaslahInvalidInputError("url", f"is required for a {media_type} message (rendered empty)")
        fields: dict[str, Any] = {
            "instance_key": self.instance_key,
            "to": to,
            "text": _text(values["text"]),
            "type": media_type,
            "url": url,
            "caption": _text(values["caption"]),
            "filename": _text(values["filename"]),
        }
        fields = {name: value for name, value in fields.items() if value is not None}
        calls.send_message(**fields)  # Waslah's rules: text and caption lengths, type, required fields
        return fields

    def prepare(self, number: int, row: object) -> PreparedRow | InvalidRow:
        """Render and check row ``number`` (1-based)."""
        if not isinstance(row, Mapping):
            return InvalidRow(number, None, f"is a {type(row).__name__}, not a dict of columns")
        try:
            fields = self._fields(self._render(row))
        except WaslahInvalidInputError as error:
            key = None
            if self.row_key is not None:
                key = _text(row.get(self.row_key))
            return InvalidRow(number, key, _reason(error))
        try:
            key = self._key(row, fields)
        except WaslahInvalidInputError as error:
            return InvalidRow(number, None, _reason(error))
        return PreparedRow(number, key, fields["to"], fields)


class RowSpool:
    """Prepared rows written to a local temporary file, one JSON line each, and read back in order.

    Local disk is fine here: the spool only lives for one try (the checkpoint is what crosses tries).
    """

    def __init__(self) -> None:
        self._file: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self.count = 0

    def add(self, row: PreparedRow) -> None:
        """Append one row."""
        self._file.write(json.dumps([row.number, row.key, row.to, row.fields], ensure_ascii=False) + "\n")
        self.count += 1

    def __iter__(self) -> Iterator[PreparedRow]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            number, key, to, fields = json.loads(line)
            yield PreparedRow(number, key, to, fields)

    def close(self) -> None:
        """Delete the file."""
        self._file.close()

    def __enter__(self) -> RowSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Preparation:
    """What the checking pass found: the spooled rows, the invalid ones and how many rows were read."""

    spool: RowSpool
    rows: int
    invalid: list[InvalidRow]
    invalid_count: int

    def invalid_text(self, shown: int = 20) -> str:
        """The invalid rows, one per line, at most ``shown`` of them."""
        lines = [f"  {row.describe()}" for row in self.invalid[:shown]]
        if self.invalid_count > shown:
            lines.append(f"  ... and {self.invalid_count - shown:,} more")
        return "\n".join(lines)


def prepare_all(rows: Iterable[object], preparer: RowPreparer, keep_invalid: int = 1000) -> Preparation:
    """Check every row and spool the valid ones; a second row with a key already seen is invalid.

    :param keep_invalid: how many invalid rows to keep with their reasons (all are counted).
    """
    spool = RowSpool()
    invalid: list[InvalidRow] = []
    invalid_count = 0
    seen: dict[str, int] = {}
    count = 0
    try:
        for count, row in enumerate(rows, start=1):
            prepared = preparer.prepare(count, row)
            if isinstance(prepared, PreparedRow) and prepared.key in seen:
                what = "row key" if preparer.row_key else "message (same recipient and content)"
                prepared = InvalidRow(count, prepared.key, f"duplicate {what} of row {seen[prepared.key]:,}")
            if isinstance(prepared, InvalidRow):
                invalid_count += 1
                if len(invalid) < keep_invalid:
                    invalid.append(prepared)
                continue
            seen[prepared.key] = count
            spool.add(prepared)
    except BaseException:
        spool.close()
        raise
    return Preparation(spool, count, invalid, invalid_count)
