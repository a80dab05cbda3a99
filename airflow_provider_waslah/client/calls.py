"""One builder per Waslah endpoint: validates the arguments and describes the request.

Builders do no I/O. Each returns a :class:`Call` that says which method and path to use, the
body, whether the request is a send (not idempotent: see the retry rules in ``_engine.py``) and
how to read the answer. The sync and async clients (and the hooks) expose these same builders
as methods, so each endpoint's signature, checks and docstring exist exactly once.
"""

from __future__ import annotations

import functools
import mimetypes
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter

from airflow_provider_waslah.client import validation as rules
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.models import (
    Broadcast,
    Instance,
    Me,
    Message,
    MessageReceipt,
    Upload,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """A validated request and the model its answer becomes."""

    method: str
    path: str
    parse: Callable[[Any], T]
    json: dict[str, Any] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    #: ``True`` for requests that create something (a message, a broadcast, an upload):
    #: they are never retried where the server may already have acted on them.
    is_send: bool = False
    #: ``(field, url)`` pairs checked against the client's base URL (public or the gateway's own).
    media_urls: tuple[tuple[str, str], ...] = field(default=())


@functools.cache
def _model(model: type[T]) -> Callable[[Any], T]:
    """The validator of ``model``, built once per model (building one costs more than a request's parsing)."""
    return TypeAdapter(model).validate_python


def _body(**fields: Any) -> dict[str, Any]:
    """The JSON body: ``None`` fields dropped, datetimes as ISO 8601."""
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in fields.items()
        if value is not None
    }


def _schedule(scheduled_at: datetime | str | None) -> datetime | None:
    return rules.parse_scheduled_at(scheduled_at)


def get_me() -> Call[Me]:
    """``GET /me``: the key's owner, scopes, request count and last use. Needs no scope."""
    return Call("GET", "/me", _model(Me))


def list_instances() -> Call[list[Instance]]:
    """``GET /instances``: every WhatsApp instance of the user. Scope ``instances:read``."""
    return Call("GET", "/instances", _model(list[Instance]))


def get_instance(instance_key: str) -> Call[Instance]:
    """``GET /instances/{key}``: one instance and its status. Scope ``instances:read``."""
    return Call("GET", f"/instances/{rules.check_instance_key(instance_key)}", _model(Instance))


def send_text(
    *, instance_key: str, to: str, text: str, scheduled_at: datetime | str | None = None
) -> Call[MessageReceipt]:
    """``POST /messages/text``: queue a text message (202, ``pending``).

    :param instance_key: the connected instance to send from.
    :param to: a phone number (``08…``, ``+62…``, ``62…``; normalised) or a full JID
        (``…@s.whatsapp.net``, ``…@lid``, ``…@g.us``), kept as is.
    :param text: at most 4000 characters.
    :param scheduled_at: timezone-aware time at least 30 s ahead (plan Basic or higher).
    """
    body = _body(
        instance_key=rules.check_instance_key(instance_key),
        to=rules.normalize_recipient(to),
        text=rules.check_text(text),
        scheduled_at=_schedule(scheduled_at),
    )
    return Call("POST", "/messages/text", _model(MessageReceipt), json=body, is_send=True)


def send_media(
    *,
    instance_key: str,
    to: str,
    type: str,
    url: str,
    caption: str | None = None,
    filename: str | None = None,
    mimetype: str | None = None,
    scheduled_at: datetime | str | None = None,
) -> Call[MessageReceipt]:
    """``POST /messages/media``: queue an image, document, video or audio from a public URL.

    :param type: ``image``, ``document``, ``video`` or ``audio``.
    :param url: public http(s) URL (at most 2048 characters; not localhost or a private address),
        or a URL returned by :meth:`upload`. Its shape is checked here, its host when sent.
    :param caption: at most 1024 characters.
    :param filename: the file name shown for documents (one line, at most 255 characters).
    :param mimetype: overrides the MIME type Waslah detects (one line, at most 255 characters).
    """
    body = _body(
        instance_key=rules.check_instance_key(instance_key),
        to=rules.normalize_recipient(to),
        type=rules.check_media_type(type),
        url=rules.check_media_url(url, check_host=False),
        caption=rules.check_text(caption, "caption", rules.MAX_CAPTION, required=False),
        filename=rules.check_short_string(filename, "filename"),
        mimetype=rules.check_short_string(mimetype, "mimetype"),
        scheduled_at=_schedule(scheduled_at),
    )
    return Call("POST", "/messages/media", _model(MessageReceipt), json=body, is_send=True, media_urls=(("url", url),))


def send_message(
    *,
    instance_key: str,
    to: str,
    text: str | None = None,
    type: str | None = None,
    url: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
    mimetype: str | None = None,
    scheduled_at: datetime | str | None = None,
) -> Call[MessageReceipt]:
    """``POST /messages``: the unified endpoint; Waslah routes by the body.

    A ``url`` or ``type`` makes it a media message (``type`` defaults to ``image``); ``text``
    alone makes it a text message; neither is an error. Rules are those of :func:`send_text`
    and :func:`send_media`.
    """
    if url is not None or type is not None:
        if url is None:
            raise WaslahInvalidInputError("url", "is required when `type` is given (media messages need a URL)")
        media = send_media(
            instance_key=instance_key,
            to=to,
            type=type or "image",
            url=url,
            caption=caption if caption is not None else text,
            filename=filename,
            mimetype=mimetype,
            scheduled_at=scheduled_at,
        )
        return Call("POST", "/messages", media.parse, json=media.json, is_send=True, media_urls=media.media_urls)
    if text is None:
        raise WaslahInvalidInputError("text", "is required: give `text`, or a `url` for a media message")
    plain = send_text(instance_key=instance_key, to=to, text=text, scheduled_at=scheduled_at)
    return Call("POST", "/messages", plain.parse, json=plain.json, is_send=True)


def send_bulk(
    *,
    instance_key: str,
    recipients: Sequence[str],
    type: str = "text",
    text: str | None = None,
    url: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
    mimetype: str | None = None,
    name: str | None = None,
    delay_min_sec: int | None = None,
    delay_max_sec: int | None = None,
) -> Call[Broadcast]:
    """``POST /messages/bulk``: one broadcast to at most 100 recipients.

    Every recipient is checked first: any invalid number fails the call, naming the values
    (Waslah itself would drop them silently). Duplicates are removed after normalising.

    :param type: ``text``, ``image``, ``document``, ``video`` or ``audio``.
    :param text: required for ``type="text"``.
    :param url: required for media types.
    :param name: at most 200 characters; shown in Waslah's dashboard.
    :param delay_min_sec: minimum pause between messages, 0-300 s (Waslah's default 3).
    :param delay_max_sec: maximum pause, 0-300 s, at least ``delay_min_sec`` (default 8).
    """
    if isinstance(recipients, (str, bytes, bytearray, Mapping)) or not isinstance(recipients, Iterable):
        raise WaslahInvalidInputError("recipients", "must be a list of phone numbers or JIDs")
    valid, invalid = rules.normalize_recipients(recipients)
    if invalid:
        raise WaslahInvalidInputError("recipients", rules.invalid_recipients_rule(invalid))
    if not valid:
        raise WaslahInvalidInputError("recipients", "must contain at least one recipient")
    if len(valid) > rules.MAX_BROADCAST_RECIPIENTS:
        raise WaslahInvalidInputError(
            "recipients",
            f"a broadcast takes at most {rules.MAX_BROADCAST_RECIPIENTS} recipients, got {len(valid)} "
            "(WaslahBroadcastOperator splits larger lists)",
        )
    kind = rules.check_media_type(type, allowed=rules.BROADCAST_TYPES)
    low, high = rules.check_delays(delay_min_sec, delay_max_sec)
    media_urls: tuple[tuple[str, str], ...] = ()
    if kind == "text":
        rules.check_text(text)
    elif url is None:
        raise WaslahInvalidInputError("url", f"is required for a {kind} broadcast")
    else:
        media_urls = (("url", rules.check_media_url(url, check_host=False)),)
        rules.check_text(text, "text", required=False)
    body = _body(
        instance_key=rules.check_instance_key(instance_key),
        recipients=valid,
        type=kind,
        text=text,
        url=url,
        caption=rules.check_text(caption, "caption", rules.MAX_CAPTION, required=False),
        filename=rules.check_short_string(filename, "filename"),
        mimetype=rules.check_short_string(mimetype, "mimetype"),
        name=rules.check_text(name, "name", rules.MAX_BROADCAST_NAME, required=False),
        delay_min_sec=low,
        delay_max_sec=high,
    )
    return Call("POST", "/messages/bulk", _model(Broadcast), json=body, is_send=True, media_urls=media_urls)


def upload(
    *,
    file: bytes | bytearray | memoryview | str | os.PathLike[str],
    filename: str | None = None,
    mime_type: str | None = None,
) -> Call[Upload]:
    """``POST /uploads``: store a file (at most 16 MB, whitelisted MIME types) and get a URL for media sends.

    :param file: a local path, or the file's bytes (``bytes``, ``bytearray`` or ``memoryview``; then
        ``filename`` is required).
    :param filename: the name Waslah keeps; defaults to the path's name.
    :param mime_type: defaults to a guess from the file name.
    """
    if isinstance(file, (bytes, bytearray, memoryview)):
        if not filename:
            raise WaslahInvalidInputError("filename", "is required when uploading bytes")
        content = bytes(file)
    elif isinstance(file, (str, os.PathLike)):
        try:
            path = Path(file)
            is_file = path.is_file()
        except (TypeError, ValueError, OSError):  # an embedded NUL, a path too long for the OS
            is_file = False
        if not is_file:
            raise WaslahInvalidInputError("file_path", f"{rules.shown(str(file), 80)} does not exist or is not a file")
        try:
            rules.check_upload_size(path.stat().st_size, "file_path")
            content = path.read_bytes()
        except OSError as error:  # not readable (permissions), or gone since is_file()
            raise WaslahInvalidInputError("file_path", f"cannot be read ({type(error).__name__})") from None
        filename = filename or path.name
    else:
        raise WaslahInvalidInputError("file", f"must be a file path or bytes, got {type(file).__name__}")
    filename = rules.check_short_string(filename, "filename")
    if not filename:
        raise WaslahInvalidInputError("filename", "must not be empty")
    rules.check_upload_size(len(content))
    mime_type = rules.check_short_string(mime_type, "mime_type")
    guessed = mime_type or mimetypes.guess_type(filename)[0]
    if not guessed:
        raise WaslahInvalidInputError("mime_type", f"cannot be guessed from {rules.shown(filename)}; pass mime_type")
    rules.media_type_for_mime(guessed)
    return Call("POST", "/uploads", _model(Upload), files={"file": (filename, content, guessed)}, is_send=True)


def get_message(message_id: int) -> Call[Message]:
    """``GET /messages/{id}``: a message's status and details. Scope ``messages:read``."""
    return Call("GET", f"/messages/{rules.check_id(message_id, 'message_id')}", _model(Message))


def list_broadcasts() -> Call[list[Broadcast]]:
    """``GET /broadcasts``: the user's last 50 broadcasts with live progress."""
    return Call("GET", "/broadcasts", _model(list[Broadcast]))


def get_broadcast(broadcast_id: int) -> Call[Broadcast]:
    """``GET /broadcasts/{id}``: a broadcast's progress; poll until ``completed`` or ``failed``."""
    return Call("GET", f"/broadcasts/{rules.check_id(broadcast_id, 'broadcast_id')}", _model(Broadcast))
