"""Operators that send WhatsApp messages through Waslah, and optionally wait for the outcome.

* :class:`WaslahSendTextOperator` - ``POST /messages/text``.
* :class:`WaslahSendMediaOperator` - ``POST /messages/media`` from a public ``url`` or a local
  ``file_path`` (uploaded first with ``POST /uploads``).
* :class:`WaslahSendMessageOperator` - ``POST /messages``, the unified endpoint.
* :class:`WaslahBroadcastOperator` - any number of recipients, split into broadcasts of at most
  100 (``POST /messages/bulk``), resumed without re-sending when the task is retried.

All of them validate their whole input before the first request, return a JSON-safe dict as
XCom and can wait for a final status (``wait_for``) in the worker or deferred to the triggerer.
"""

from __future__ import annotations

import hashlib
import mimetypes
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from airflow.sdk import BaseOperator

from airflow_provider_waslah._compat import (
    AirflowException,
    AirflowFailException,
    TaskDeferralTimeout,
    conf,
)
from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client import validation as rules
from airflow_provider_waslah.client.errors import WaslahInvalidInputError, WaslahSendOutcomeUnknownError
from airflow_provider_waslah.client.models import Broadcast, Message, MessageReceipt
from airflow_provider_waslah.hooks.waslah import WaslahHook
from airflow_provider_waslah.recipients import mask_number, resolve_recipients, resolve_single_recipient
from airflow_provider_waslah.waiting import (
    WaslahBroadcastFailedError,
    WaslahMessageFailedError,
    broadcast_totals,
    broadcasts_finished,
    check_failed_ratio,
    message_reached,
    progress_line,
)

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

    from airflow_provider_waslah.client.calls import Call
    from airflow_provider_waslah.client.models import Upload

MESSAGE_WAIT_TARGETS: tuple[str, ...] = ("sent", "delivered", "read")
BROADCAST_WAIT_TARGETS: tuple[str, ...] = ("completed",)
#: XCom key holding what was sent while the task waits deferred.
SENT_XCOM_KEY = "waslah_sent"
#: Shown in broadcast names; the hash of the task instance's identity follows it.
_NAME_MARK = "af"


def _seconds(value: timedelta | float | None, field: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds <= 0:
        raise WaslahInvalidInputError(field, f"must be positive, got {value!r}")
    return seconds


def _optional_int(value: object, field: str) -> int | None:
    """Delays rendered from templates arrive as strings unless the DAG renders native objects."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise WaslahInvalidInputError(field, f"must be a whole number of seconds, got {value!r}")


def _iso(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


class _WaslahSendOperator(BaseOperator):
    """What every Waslah send operator shares: the connection, the instance, waiting and deferral.

    Subclasses implement :meth:`_send` (validate everything, then send, returning the XCom dict),
    :meth:`_poll` (one status check in the worker), :meth:`_trigger` (the same check in the
    triggerer) and :meth:`_apply_event` (fold a trigger event into the XCom dict).
    """

    template_fields: Sequence[str] = ("instance_key",)
    ui_color = "#25D366"
    #: The values ``wait_for`` accepts.
    wait_targets: ClassVar[tuple[str, ...]] = ()
    default_poll_interval: ClassVar[float] = 5.0
    #: True when a retry of the task would send again (no way to find the earlier send).
    retry_resends: ClassVar[bool] = True

    def __init__(
        self,
        *,
        instance_key: str,
        waslah_conn_id: str = WaslahHook.default_conn_name,
        wait_for: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | None = None,
        wait_timeout: timedelta | float | None = timedelta(hours=1),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if wait_for is not None and wait_for not in self.wait_targets:
            raise WaslahInvalidInputError(
                "wait_for", f"must be None or one of {', '.join(self.wait_targets)}, got {wait_for!r}"
            )
        self.instance_key = instance_key
        self.waslah_conn_id = waslah_conn_id
        self.wait_for = wait_for
        self.deferrable = deferrable
        self.poll_interval = _seconds(poll_interval, "poll_interval") or self.default_poll_interval
        self.wait_timeout = _seconds(wait_timeout, "wait_timeout")

    @cached_property
    def hook(self) -> WaslahHook:
        """The hook for ``waslah_conn_id``."""
        return WaslahHook(waslah_conn_id=self.waslah_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        result = self._send(context)
        if self.wait_for is None:
            return result
        if self.deferrable:
            # Kept as an XCom rather than in defer(kwargs=...): XComs survive the deferral, and
            # dag.test() replaces the kwargs with the event when it runs the trigger in-process.
            context["ti"].xcom_push(key=SENT_XCOM_KEY, value=result)
            self.defer(
                trigger=self._trigger(result),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.wait_timeout) if self.wait_timeout else None,
            )
        return self._wait_in_worker(result)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: fail on a ``failed``/``error`` event, else return the updated XCom."""
        status = event.get("status")
        text = str(event.get("message") or f"the trigger ended with status {status!r}")
        if status == "failed":
            raise self._failed_error(text)
        if status != "success":
            raise self._after_send_error(f"Waiting for {self.wait_for!r} stopped: {text}")
        self.log.info("%s", text)
        return self._apply_event(self._sent_result(context), event)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout:
            raise self._after_send_error(self._timeout_text(self._sent_result(context))) from None

    @staticmethod
    def _sent_result(context: Context) -> dict[str, Any]:
        """The XCom dict :meth:`execute` saved before deferring."""
        ti = context["ti"]
        saved = ti.xcom_pull(task_ids=ti.task_id, key=SENT_XCOM_KEY, map_indexes=ti.map_index)
        if not isinstance(saved, dict):
            raise AirflowException(f"The send's result (XCom {SENT_XCOM_KEY!r}) is missing; cannot resume the wait")
        return dict(saved)

    def _wait_in_worker(self, result: dict[str, Any]) -> dict[str, Any]:
        deadline = None if self.wait_timeout is None else time.monotonic() + self.wait_timeout
        while True:
            try:
                result, done = self._poll(result)
            except (WaslahMessageFailedError, WaslahBroadcastFailedError):
                raise
            except AirflowException as error:
                raise self._after_send_error(f"Could not check the status: {error}") from error
            if done:
                return result
            if deadline is not None and time.monotonic() >= deadline:
                raise self._after_send_error(self._timeout_text(result))
            time.sleep(self.poll_interval)

    def _after_send_error(self, text: str) -> AirflowException:
        """The error for a failure after Waslah accepted the send: never retried when a retry would resend."""
        if self.retry_resends:
            return AirflowFailException(
                f"{text}. The message was already queued, so the task is not retried (a retry would send it "
                "again); wait for it with WaslahMessageSensor instead."
            )
        return AirflowException(text)

    def _timeout_text(self, result: dict[str, Any]) -> str:
        return f"{self._describe(result)} did not reach {self.wait_for!r} within {self.wait_timeout:g} s"

    def _failed_error(self, text: str) -> AirflowException:
        raise NotImplementedError

    def _describe(self, result: dict[str, Any]) -> str:
        raise NotImplementedError

    def _send(self, context: Context) -> dict[str, Any]:
        raise NotImplementedError

    def _poll(self, result: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        raise NotImplementedError

    def _trigger(self, result: dict[str, Any]) -> BaseTrigger:
        raise NotImplementedError

    def _apply_event(self, result: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class _WaslahMessageOperator(_WaslahSendOperator):
    """One message to one recipient; subclasses build the :class:`Call` for their endpoint."""

    template_fields: Sequence[str] = ("instance_key", "to", "scheduled_at")
    wait_targets = MESSAGE_WAIT_TARGETS
    #: A local file to upload before sending (media operators only).
    file_path: str | None = None
    mimetype: str | None = None

    def __init__(
        self,
        *,
        to: str | int | dict[str, Any] | list[Any],
        scheduled_at: datetime | str | None = None,
        recipient_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.to = to
        self.scheduled_at = scheduled_at
        self.recipient_key = recipient_key

    def _recipient(self) -> str:
        raw = resolve_single_recipient(self.to, "to", self.recipient_key)
        return rules.normalize_recipient(raw, "to")

    def _build_call(self, to: str, uploaded_url: str | None) -> Call[MessageReceipt]:
        """The send request, validated; ``uploaded_url`` is the URL of the uploaded ``file_path``."""
        raise NotImplementedError

    def _upload_call(self) -> Call[Upload] | None:
        if not self.file_path:
            return None
        return calls.upload(file=str(self.file_path), filename=self._upload_filename(), mime_type=self.mimetype)

    def _upload_filename(self) -> str | None:
        return None

    def _send(self, context: Context) -> dict[str, Any]:
        to = self._recipient()
        upload = self._upload_call()
        # Built now so every field is checked before the upload; the URL is not known yet and the
        # builders only record it (the client checks URLs at send time).
        call = self._build_call(to, "https://uploads.invalid/pending" if upload else None)
        if upload is not None:
            uploaded = self.hook.call(upload)
            self.log.info(
                "Uploaded %s (%s bytes, %s) to %s", self.file_path, uploaded.size, uploaded.mime_type, uploaded.url
            )
            call = self._build_call(to, uploaded.url)
        try:
            receipt = self.hook.call(call)
        except WaslahSendOutcomeUnknownError as error:
            raise AirflowFailException(
                f"{error}. Waslah may have queued the message to {mask_number(to)}; not retrying, since a retry "
                "could send it twice. Check Waslah's message history before sending again."
            ) from error
        result = {
            "message_id": receipt.id,
            "status": receipt.status,
            "instance_key": receipt.instance_key or self.instance_key,
            "to": receipt.to or to,
            "type": receipt.type or "text",
            "media_url": receipt.media_url,
            "scheduled_at": _iso(receipt.scheduled_at),
            "check_status_url": receipt.check_status_url,
            "created_at": receipt.created_at,
        }
        when = f", scheduled for {result['scheduled_at']}" if result["scheduled_at"] else ""
        self.log.info(
            "Queued %s message %s to %s (%s%s)", result["type"], receipt.id, mask_number(to), receipt.status, when
        )
        return result

    def _describe(self, result: dict[str, Any]) -> str:
        return f"Waslah message {result.get('message_id')}"

    def _failed_error(self, text: str) -> AirflowException:
        return WaslahMessageFailedError(text)

    def _poll(self, result: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        message = self.hook.get_message(result["message_id"])
        done = message_reached(message, [str(self.wait_for)])
        if not done:
            self.log.info("Message %s is %s; waiting for %s", message.id, message.status, self.wait_for)
        return self._with_message(result, message), done

    def _with_message(self, result: dict[str, Any], message: Message) -> dict[str, Any]:
        result.update(status=message.status, sent_at=message.sent_at, error_message=message.error_message)
        return result

    def _trigger(self, result: dict[str, Any]) -> BaseTrigger:
        from airflow_provider_waslah.triggers.waslah import WaslahMessageTrigger

        return WaslahMessageTrigger(
            message_id=result["message_id"],
            target_statuses=[str(self.wait_for)],
            waslah_conn_id=self.waslah_conn_id,
            poll_interval=self.poll_interval,
        )

    def _apply_event(self, result: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        data = event.get("data")
        if isinstance(data, dict):
            return self._with_message(result, Message.model_validate(data))
        return result


class WaslahSendTextOperator(_WaslahMessageOperator):
    """Send a WhatsApp text message through Waslah (``POST /messages/text``).

    Returns (XCom) ``{"message_id", "status", "instance_key", "to", "type", "media_url",
    "scheduled_at", "check_status_url", "created_at"}``; after a wait, ``status`` is the final one
    and ``sent_at`` / ``error_message`` are added.

    A retry of this task would send the message again (Waslah has no idempotency key), so
    failures after Waslah accepted the message (a failed wait, a lost answer) fail the task
    without retrying.

    :param instance_key: the connected Waslah instance to send from (templated).
    :param to: the recipient: a phone number (``08…``, ``+62…``, ``62…``), a full JID
        (``…@s.whatsapp.net``, ``…@lid``, ``…@g.us``), a one-item list or a dict row (templated).
    :param text: the message, at most 4000 characters (templated).
    :param scheduled_at: send later: a timezone-aware datetime or ISO 8601 string at least 30 s
        ahead; needs plan Basic or higher (templated).
    :param recipient_key: the key holding the number when ``to`` is a dict (default ``phone``,
        then ``to``).
    :param waslah_conn_id: the ``waslah`` connection (default ``waslah_default``).
    :param wait_for: ``None`` (return once Waslah queued the message), ``"sent"``,
        ``"delivered"`` or ``"read"``. A message that ends ``failed`` fails the task with
        Waslah's ``error_message``.
    :param deferrable: wait in the triggerer instead of the worker (default
        ``[operators] default_deferrable``).
    :param poll_interval: seconds between status checks while waiting (default 5).
    :param wait_timeout: the longest wait, in seconds or a ``timedelta`` (default one hour;
        ``None`` waits forever).
    """

    template_fields: Sequence[str] = ("instance_key", "to", "text", "scheduled_at")

    def __init__(self, *, text: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text

    def _build_call(self, to: str, uploaded_url: str | None) -> Call[MessageReceipt]:
        return calls.send_text(instance_key=self.instance_key, to=to, text=self.text, scheduled_at=self.scheduled_at)


class _MediaMessageOperator(_WaslahMessageOperator):
    """The media fields shared by the media and unified operators, and how ``type`` is inferred."""

    def __init__(
        self,
        *,
        url: str | None = None,
        file_path: str | None = None,
        type: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        mimetype: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.file_path = file_path
        self.type = type
        self.caption = caption
        self.filename = filename
        self.mimetype = mimetype

    def _media_type(self) -> str | None:
        """``type`` as given, else from the file's (or the URL's) MIME type."""
        if self.type:
            return self.type
        if self.file_path:
            guessed = self.mimetype or mimetypes.guess_type(str(self.file_path))[0]
            if not guessed:
                raise WaslahInvalidInputError(
                    "file_path", f"cannot tell the MIME type of {str(self.file_path)!r}; pass type= or mimetype="
                )
            return rules.media_type_for_mime(guessed, "file_path")
        if self.url:
            guessed = self.mimetype or mimetypes.guess_type(urlsplit(str(self.url)).path)[0]
            if guessed and guessed.split(";")[0].strip().lower() in rules.ALLOWED_MIME_TYPES:
                return rules.ALLOWED_MIME_TYPES[guessed.split(";")[0].strip().lower()]
        return None

    def _check_source(self) -> None:
        if self.url and self.file_path:
            raise WaslahInvalidInputError("url", "give either url or file_path, not both")

    def _upload_filename(self) -> str | None:
        return self.filename or (PurePosixPath(str(self.file_path)).name if self.file_path else None)

    def _document_filename(self, media_type: str) -> str | None:
        if self.filename or media_type != "document":
            return self.filename
        if self.file_path:
            return PurePosixPath(str(self.file_path)).name
        return None


class WaslahSendMediaOperator(_MediaMessageOperator):
    """Send an image, document, video or audio through Waslah (``POST /messages/media``).

    The media comes from a public ``url``, or from a local ``file_path`` that the operator first
    uploads with ``POST /uploads`` (at most 16 MB, a MIME type on Waslah's whitelist; checked
    before any request). ``type`` is inferred from the file's MIME type (or the URL's extension)
    when not given; documents sent from a file keep the file's name.

    Returns the same XCom as :class:`WaslahSendTextOperator` (``media_url`` is set).

    :param instance_key: the connected Waslah instance to send from (templated).
    :param to: the recipient (see :class:`WaslahSendTextOperator`) (templated).
    :param url: a public http(s) URL of the file (templated).
    :param file_path: a local file to upload and send instead of ``url`` (templated).
    :param type: ``image``, ``document``, ``video`` or ``audio``; inferred when omitted (templated).
    :param caption: text under the media, at most 1024 characters (templated).
    :param filename: the file name shown for documents (templated).
    :param mimetype: overrides the MIME type (templated).
    :param scheduled_at: send later (see :class:`WaslahSendTextOperator`) (templated).
    :param recipient_key: the key holding the number when ``to`` is a dict.
    :param waslah_conn_id: the ``waslah`` connection (default ``waslah_default``).
    :param wait_for: ``None``, ``"sent"``, ``"delivered"`` or ``"read"`` (see
        :class:`WaslahSendTextOperator`).
    :param deferrable: wait in the triggerer instead of the worker.
    :param poll_interval: seconds between status checks while waiting (default 5).
    :param wait_timeout: the longest wait (default one hour).
    """

    template_fields: Sequence[str] = (
        "instance_key",
        "to",
        "url",
        "file_path",
        "type",
        "caption",
        "filename",
        "mimetype",
        "scheduled_at",
    )

    def _build_call(self, to: str, uploaded_url: str | None) -> Call[MessageReceipt]:
        self._check_source()
        url = uploaded_url or self.url
        if not url:
            raise WaslahInvalidInputError("url", "is required: give a public url or a local file_path")
        media_type = self._media_type()
        if media_type is None:
            raise WaslahInvalidInputError(
                "type", f"cannot be inferred from {url[:80]!r}; pass one of {', '.join(rules.MEDIA_TYPES)}"
            )
        return calls.send_media(
            instance_key=self.instance_key,
            to=to,
            type=media_type,
            url=url,
            caption=self.caption,
            filename=self._document_filename(media_type),
            mimetype=self.mimetype,
            scheduled_at=self.scheduled_at,
        )


class WaslahSendMessageOperator(_MediaMessageOperator):
    """Send a text or media message through Waslah's unified endpoint (``POST /messages``).

    Waslah routes by the body: ``text`` alone is a text message; a ``url`` (or a ``file_path``,
    uploaded first) makes it a media message, with ``text`` as its caption when ``caption`` is
    not given. ``type`` is inferred as in :class:`WaslahSendMediaOperator`, else Waslah's default
    ``image`` applies.

    Returns the same XCom as :class:`WaslahSendTextOperator`.

    :param instance_key: the connected Waslah instance to send from (templated).
    :param to: the recipient (see :class:`WaslahSendTextOperator`) (templated).
    :param text: the text, or the caption of a media message (templated).
    :param url: a public http(s) URL of a media file (templated).
    :param file_path: a local file to upload and send (templated).
    :param type: ``image``, ``document``, ``video`` or ``audio`` (templated).
    :param caption: text under the media, at most 1024 characters (templated).
    :param filename: the file name shown for documents (templated).
    :param mimetype: overrides the MIME type (templated).
    :param scheduled_at: send later (see :class:`WaslahSendTextOperator`) (templated).
    :param recipient_key: the key holding the number when ``to`` is a dict.
    :param waslah_conn_id: the ``waslah`` connection (default ``waslah_default``).
    :param wait_for: ``None``, ``"sent"``, ``"delivered"`` or ``"read"``.
    :param deferrable: wait in the triggerer instead of the worker.
    :param poll_interval: seconds between status checks while waiting (default 5).
    :param wait_timeout: the longest wait (default one hour).
    """

    template_fields: Sequence[str] = (
        "instance_key",
        "to",
        "text",
        "url",
        "file_path",
        "type",
        "caption",
        "filename",
        "mimetype",
        "scheduled_at",
    )

    def __init__(self, *, text: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text

    def _build_call(self, to: str, uploaded_url: str | None) -> Call[MessageReceipt]:
        self._check_source()
        url = uploaded_url or self.url
        media_type = self._media_type() if url else self.type
        return calls.send_message(
            instance_key=self.instance_key,
            to=to,
            text=self.text,
            type=media_type,
            url=url,
            caption=self.caption,
            filename=self._document_filename(media_type) if media_type else self.filename,
            mimetype=self.mimetype,
            scheduled_at=self.scheduled_at,
        )


def broadcast_chunk_name(
    *, prefix: str | None, dag_id: str, task_id: str, run_id: str, map_index: int, chunk: int, chunks: int
) -> str:
    """The deterministic name of one chunk of a task instance's broadcast (at most 200 characters).

    ``<prefix> · <dag_id>.<task_id>[<map_index>] af:<hash> <chunk>/<chunks>``: the hash covers the
    DAG, task, run and map index, so the readable part may be shortened without losing identity.
    """
    identity = "\x1f".join((dag_id, task_id, run_id, str(map_index)))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    suffix = f" {_NAME_MARK}:{digest} {chunk}/{chunks}"
    where = f"{dag_id}.{task_id}" + (f"[{map_index}]" if map_index >= 0 else "")
    readable = f"{prefix} · {where}" if prefix else where
    room = rules.MAX_BROADCAST_NAME - len(suffix)
    if len(readable) > room:
        readable = readable[: room - 1] + "…"
    return readable + suffix


class WaslahBroadcastOperator(_WaslahSendOperator):
    """Send one message to any number of recipients as Waslah broadcasts of at most 100 each.

    Before the first request, every recipient is normalised and checked (invalid ones are named
    in the error, or skipped and reported with ``skip_invalid_recipients=True``), duplicates are
    dropped, the list is split into chunks of 100 and every chunk's request is validated. Chunks
    are then sent one after the other with ``POST /messages/bulk``.

    **Resuming without re-sending.** Each chunk gets a deterministic name built from the DAG id,
    task id, run id and map index (hashed) and the chunk number, after the optional ``name``
    prefix, e.g. ``Promo · sales.notify af:3f2a9c1b7d4e 3/10``. Before sending, the operator
    lists ``GET /broadcasts`` and skips every chunk whose name is already there: an earlier try
    of the same task instance created it. Because chunks go out in order and each is sent only
    after the previous one was accepted, a found chunk ``k`` also proves chunks ``1..k-1`` exist,
    even when they are no longer in the list. Limits of the scheme:

    - ``GET /broadcasts`` returns only the user's last 50 broadcasts. If more than 50 other
      broadcasts were created on the account between the failed try and the retry, the earlier
      chunks are not found and are sent again.
    - A send whose answer was lost (a read timeout, a dropped connection, a 500) may still have
      created its broadcast; the retry finds it by name and does not send it again. If Waslah
      really did not create it, the retry sends it.
    - Two runs of the same task instance at the same time (for example a manual run next to a
      scheduled one) cannot see each other's in-flight chunks and would both send.
    - The name depends on the chunking: if the recipient list changes between tries, the chunks
      are new and are all sent.

    Returns (XCom) ``{"broadcasts": [{"chunk", "broadcast_id", "name", "status", "total",
    "check_status_url", "resumed"}, ...], "totals": {"total", "sent", "failed", "pending",
    "progress_percent", "recipients", "chunks", "chunks_sent", "chunks_resumed"},
    "invalid_recipients": [...]}``. A chunk resumed only by inference (not in the list) has
    ``broadcast_id`` ``None``.

    :param instance_key: the connected Waslah instance to send from (templated).
    :param recipients: the numbers or JIDs: a list, a list of dict rows (see ``recipient_key``),
        a comma-separated string, or an XCom rendered as a list or as the string of a list
        (templated).
    :param text: the message for ``type="text"``, at most 4000 characters (templated).
    :param type: ``text`` (default), ``image``, ``document``, ``video`` or ``audio`` (templated).
    :param url: the public URL of the media for media types (templated).
    :param caption: text under the media (templated).
    :param filename: the file name shown for documents (templated).
    :param mimetype: overrides the MIME type (templated).
    :param name: a prefix for the chunks' names in Waslah's dashboard (templated).
    :param delay_min_sec: minimum pause between messages, 0-300 s (Waslah's default 3) (templated).
    :param delay_max_sec: maximum pause, 0-300 s (Waslah's default 8) (templated).
    :param recipient_key: the key holding the number in dict rows (default ``phone``, then ``to``).
    :param skip_invalid_recipients: send to the valid recipients and report the invalid ones in
        the XCom, instead of failing.
    :param max_failed_ratio: with ``wait_for="completed"``, fail once more than this share of
        messages failed (``None``: only a ``failed`` broadcast fails the task).
    :param chunk_size: recipients per broadcast, 1-100 (default 100).
    :param waslah_conn_id: the ``waslah`` connection (default ``waslah_default``).
    :param wait_for: ``None`` (return once every chunk is queued) or ``"completed"``.
    :param deferrable: wait in the triggerer instead of the worker.
    :param poll_interval: seconds between progress checks while waiting (default 10).
    :param wait_timeout: the longest wait (default one hour). A retry after a timeout finds every
        chunk by name and only waits again.
    """

    template_fields: Sequence[str] = (
        "instance_key",
        "recipients",
        "text",
        "type",
        "url",
        "caption",
        "filename",
        "mimetype",
        "name",
        "delay_min_sec",
        "delay_max_sec",
    )
    wait_targets = BROADCAST_WAIT_TARGETS
    default_poll_interval = 10.0
    retry_resends = False

    def __init__(
        self,
        *,
        recipients: Any,
        text: str | None = None,
        type: str = "text",
        url: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        mimetype: str | None = None,
        name: str | None = None,
        delay_min_sec: int | str | None = None,
        delay_max_sec: int | str | None = None,
        recipient_key: str | None = None,
        skip_invalid_recipients: bool = False,
        max_failed_ratio: float | None = None,
        chunk_size: int = rules.MAX_BROADCAST_RECIPIENTS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 1 <= chunk_size <= rules.MAX_BROADCAST_RECIPIENTS:
            raise WaslahInvalidInputError(
                "chunk_size", f"must be between 1 and {rules.MAX_BROADCAST_RECIPIENTS}, got {chunk_size}"
            )
        self.recipients = recipients
        self.text = text
        self.type = type
        self.url = url
        self.caption = caption
        self.filename = filename
        self.mimetype = mimetype
        self.name = name
        self.delay_min_sec = delay_min_sec
        self.delay_max_sec = delay_max_sec
        self.recipient_key = recipient_key
        self.skip_invalid_recipients = skip_invalid_recipients
        self.max_failed_ratio = check_failed_ratio(max_failed_ratio)
        self.chunk_size = chunk_size

    def _resolve(self) -> tuple[list[str], list[str]]:
        valid, invalid = resolve_recipients(self.recipients, "recipients", self.recipient_key)
        if invalid and not self.skip_invalid_recipients:
            shown = ", ".join(repr(value) for value in invalid[:20])
            more = f" and {len(invalid) - 20} more" if len(invalid) > 20 else ""
            raise WaslahInvalidInputError(
                "recipients",
                f"{len(invalid)} invalid number(s): {shown}{more} (8-15 digits, or a full JID); "
                "fix them or set skip_invalid_recipients=True",
            )
        if not valid:
            raise WaslahInvalidInputError("recipients", "must contain at least one valid recipient")
        if invalid:
            self.log.warning("Skipping %d invalid recipient(s): %s", len(invalid), ", ".join(invalid[:20]))
        return valid, invalid

    def _chunk_calls(self, context: Context, valid: list[str]) -> list[tuple[str, list[str], Call[Broadcast]]]:
        ti = context["ti"]
        map_index = ti.map_index if ti.map_index is not None else -1
        chunks = [valid[i : i + self.chunk_size] for i in range(0, len(valid), self.chunk_size)]
        low = _optional_int(self.delay_min_sec, "delay_min_sec")
        high = _optional_int(self.delay_max_sec, "delay_max_sec")
        planned = []
        for number, chunk in enumerate(chunks, start=1):
            name = broadcast_chunk_name(
                prefix=self.name,
                dag_id=ti.dag_id,
                task_id=ti.task_id,
                run_id=context["run_id"],
                map_index=map_index,
                chunk=number,
                chunks=len(chunks),
            )
            call = calls.send_bulk(
                instance_key=self.instance_key,
                recipients=chunk,
                type=self.type,
                text=self.text,
                url=self.url,
                caption=self.caption,
                filename=self.filename,
                mimetype=self.mimetype,
                name=name,
                delay_min_sec=low,
                delay_max_sec=high,
            )
            planned.append((name, chunk, call))
        return planned

    def _send(self, context: Context) -> dict[str, Any]:
        valid, invalid = self._resolve()
        planned = self._chunk_calls(context, valid)
        if self.url:
            rules.check_media_url(self.url, "url", trusted_origin=self.hook.client.base_url)
        count = len(planned)
        existing: dict[str, Broadcast] = {}
        for broadcast in self.hook.list_broadcasts():
            if broadcast.name:
                existing.setdefault(broadcast.name, broadcast)
        found = [number for number, (name, _, _) in enumerate(planned, start=1) if name in existing]
        # Chunks go out in order, each only after the previous one was accepted: a found chunk
        # proves every earlier one exists, even if it fell out of GET /broadcasts' 50-item window.
        resume_through = max(found, default=0)
        self.log.info(
            "Broadcast to %d recipient(s) in %d chunk(s)%s",
            len(valid),
            count,
            f"; resuming after chunk {resume_through} from an earlier try" if resume_through else "",
        )
        entries: list[dict[str, Any]] = []
        broadcasts: list[Broadcast] = []
        for number, (name, chunk, call) in enumerate(planned, start=1):
            if name in existing:
                broadcast = existing[name]
                self.log.info(
                    "chunk %d/%d: found broadcast %s from an earlier try, not sending again",
                    number,
                    count,
                    broadcast.id,
                )
                entries.append(self._entry(number, name, broadcast, resumed=True))
                broadcasts.append(broadcast)
                continue
            if number < resume_through:
                self.log.info(
                    "chunk %d/%d: not in the last 50 broadcasts, but chunk %d is, so an earlier try created it; "
                    "not sending again",
                    number,
                    count,
                    resume_through,
                )
                entries.append(
                    {
                        "chunk": number,
                        "broadcast_id": None,
                        "name": name,
                        "status": None,
                        "total": len(chunk),
                        "check_status_url": None,
                        "resumed": True,
                    }
                )
                continue
            try:
                broadcast = self.hook.call(call)
            except AirflowException as error:
                sent = sum(1 for entry in entries if not entry["resumed"])
                raise AirflowException(
                    f"chunk {number}/{count} failed: {error}. {number - 1} earlier chunk(s) are queued "
                    f"({sent} sent by this try); a retry of this task finds them by name and sends only the rest."
                ) from error
            self.log.info("chunk %d/%d: created broadcast %s (%d recipients)", number, count, broadcast.id, len(chunk))
            entries.append(self._entry(number, name, broadcast, resumed=False))
            broadcasts.append(broadcast)
        totals = self._totals(broadcasts, entries, len(valid))
        return {"broadcasts": entries, "totals": totals, "invalid_recipients": invalid}

    @staticmethod
    def _entry(number: int, name: str, broadcast: Broadcast, *, resumed: bool) -> dict[str, Any]:
        return {
            "chunk": number,
            "broadcast_id": broadcast.id,
            "name": name,
            "status": broadcast.status,
            "total": broadcast.total,
            "check_status_url": broadcast.check_status_url,
            "resumed": resumed,
        }

    @staticmethod
    def _totals(broadcasts: Sequence[Broadcast], entries: list[dict[str, Any]], recipients: int) -> dict[str, Any]:
        totals: dict[str, Any] = dict(broadcast_totals(broadcasts))
        totals.update(
            recipients=recipients,
            chunks=len(entries),
            chunks_sent=sum(1 for entry in entries if not entry["resumed"]),
            chunks_resumed=sum(1 for entry in entries if entry["resumed"]),
        )
        return totals

    def _ids(self, result: dict[str, Any]) -> list[int]:
        return [entry["broadcast_id"] for entry in result["broadcasts"] if entry["broadcast_id"] is not None]

    def _describe(self, result: dict[str, Any]) -> str:
        return f"Waslah broadcasts {self._ids(result)}"

    def _failed_error(self, text: str) -> AirflowException:
        return WaslahBroadcastFailedError(text)

    def _fetch(self, ids: list[int]) -> list[Broadcast]:
        """The broadcasts with ``ids``: one ``GET /broadcasts`` for those still listed, one GET per other."""
        listed = {broadcast.id: broadcast for broadcast in self.hook.list_broadcasts()}
        return [listed[i] if i in listed else self.hook.get_broadcast(i) for i in ids]

    def _with_broadcasts(self, result: dict[str, Any], broadcasts: Sequence[Broadcast]) -> dict[str, Any]:
        by_id = {broadcast.id: broadcast for broadcast in broadcasts}
        for entry in result["broadcasts"]:
            broadcast = by_id.get(entry["broadcast_id"])
            if broadcast is not None:
                entry.update(status=broadcast.status, total=broadcast.total)
        recipients = result["totals"].get("recipients", 0)
        result["totals"] = self._totals(broadcasts, result["broadcasts"], recipients)
        return result

    def _poll(self, result: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        broadcasts = self._fetch(self._ids(result))
        done = broadcasts_finished(broadcasts, self.max_failed_ratio)
        self.log.info("Broadcast progress: %s", progress_line(broadcast_totals(broadcasts)))
        return self._with_broadcasts(result, broadcasts), done

    def _trigger(self, result: dict[str, Any]) -> BaseTrigger:
        from airflow_provider_waslah.triggers.waslah import WaslahBroadcastTrigger

        return WaslahBroadcastTrigger(
            broadcast_ids=self._ids(result),
            max_failed_ratio=self.max_failed_ratio,
            waslah_conn_id=self.waslah_conn_id,
            poll_interval=self.poll_interval,
        )

    def _apply_event(self, result: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        dumps = event.get("broadcasts")
        if isinstance(dumps, list):
            return self._with_broadcasts(result, [Broadcast.model_validate(item) for item in dumps])
        return result
