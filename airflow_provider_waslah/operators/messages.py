"""One message to one recipient: the shared single-message base and ``WaslahSendTextOperator``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_waslah._compat import AirflowException, AirflowFailException
from airflow_provider_waslah.checkpoints import MessageCheckpoint
from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client import validation as rules
from airflow_provider_waslah.client.errors import WaslahSendOutcomeUnknownError
from airflow_provider_waslah.client.models import Message, MessageReceipt
from airflow_provider_waslah.operators._base import _WaslahSendOperator
from airflow_provider_waslah.polling import MESSAGE_WAIT_TARGETS, MessageWait
from airflow_provider_waslah.recipients import mask_number, resolve_single_recipient
from airflow_provider_waslah.waiting import WaslahMessageFailedError

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

    from airflow_provider_waslah.client.calls import Call
    from airflow_provider_waslah.client.models import Upload


def _iso(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


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

    def _open_checkpoint(self, context: Context) -> MessageCheckpoint | None:
        """The checkpoint, if one can be written; with it, a failure after the send is retried (a retry waits)."""
        checkpoint = MessageCheckpoint.open(context)
        if checkpoint is None:
            self.log.debug("No task state store (Airflow < 3.3): a retry could send again, so none is made")
        return checkpoint

    def _resume(self, checkpoint: MessageCheckpoint | None, to: str) -> dict[str, Any] | None:
        """The XCom of the message an earlier try sent, if it did; fails if that try's outcome is unknown."""
        earlier = checkpoint.earlier() if checkpoint is not None else None
        if checkpoint is None or earlier is None:
            return None
        if earlier.get("state") == "accepted" and isinstance(earlier.get("result"), dict):
            result: dict[str, Any] = earlier["result"]
            self.retry_resends = False
            self.log.info(
                "An earlier try of this task queued message %s to %s (%s); not sending again",
                result.get("message_id"), mask_number(to), checkpoint.location,
            )  # fmt: skip
            return result
        raise AirflowFailException(
            f"An earlier try of this task sent a message to {mask_number(to)} and stopped before Waslah answered, "
            "so it may have been queued; not sending again. Check the instance's message history in Waslah's "
            f"dashboard. To send it anyway, delete the task state store key {checkpoint.location!r} of this task "
            "instance (Airflow's REST API: DELETE .../taskInstances/{task_id}/state-store/waslah_message/sent) "
            "and clear the task."
        )

    def _send(self, context: Context) -> dict[str, Any]:
        to = self._recipient()
        checkpoint = self._open_checkpoint(context)
        if (earlier := self._resume(checkpoint, to)) is not None:
            return earlier
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
        if checkpoint is not None:
            checkpoint.begin(mask_number(to))
        try:
            receipt = self.hook.call(call)
        except WaslahSendOutcomeUnknownError as error:
            raise AirflowFailException(
                f"{error}. Waslah may have queued the message to {mask_number(to)}; not retrying, since a retry "
                "could send it twice. Check Waslah's message history before sending again."
            ) from error
        except Exception:
            if checkpoint is not None:
                checkpoint.forget()  # refused: nothing was sent, a retry may send
            raise
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
        if checkpoint is not None:
            checkpoint.accepted(result)
            self.retry_resends = False
        when = f", scheduled for {result['scheduled_at']}" if result["scheduled_at"] else ""
        self.log.info(
            "Queued %s message %s to %s (%s%s)", result["type"], receipt.id, mask_number(to), receipt.status, when
        )
        return result

    def execute(self, context: Context) -> dict[str, Any]:
        with self._forgetting(context):
            return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger (see the base class); the checkpoint is deleted once done."""
        with self._forgetting(context):
            return super().execute_complete(context, event)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        checkpoint = self._open_checkpoint(context)
        earlier = checkpoint.earlier() if checkpoint is not None else None
        if earlier is not None and earlier.get("state") == "accepted":
            self.retry_resends = False  # a deferred wait that times out is retried: the retry waits again
        return super().resume_execution(next_method, next_kwargs, context)

    @contextmanager
    def _forgetting(self, context: Context) -> Iterator[None]:
        """Delete the checkpoint when the task is done: succeeded, or the message failed for good.

        Kept on any other failure, so the retry finds the message. A later clear sends again.
        """
        try:
            yield
        except WaslahMessageFailedError:
            self._forget(context)
            raise
        self._forget(context)

    def _forget(self, context: Context) -> None:
        checkpoint = MessageCheckpoint.open(context)
        if checkpoint is not None:
            checkpoint.forget()

    def _after_send_error(self, text: str) -> AirflowException:
        if self.retry_resends:
            return super()._after_send_error(text)
        return AirflowException(f"{text}. The message is in this task's checkpoint: a retry waits for it again")

    def _wait(self, result: dict[str, Any]) -> MessageWait:
        return MessageWait(result["message_id"], [str(self.wait_for)])

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

    def _apply(self, result: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        data = fields.get("data")
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
