"""``WaslahBroadcastOperator``: one message to any number of recipients, resumable across retries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_waslah._compat import AirflowException, AirflowFailException
from airflow_provider_waslah.broadcast_plan import (
    BroadcastContent,
    PlannedChunk,
    TaskIdentity,
    plan_broadcast,
    reconcile,
)
from airflow_provider_waslah.client import validation as rules
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.models import Broadcast
from airflow_provider_waslah.operators._base import _WaslahSendOperator
from airflow_provider_waslah.polling import BROADCAST_WAIT_TARGETS, BroadcastWait, broadcast_totals, check_failed_ratio
from airflow_provider_waslah.recipients import resolve_recipients

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

#: What ``on_input_change`` accepts.
ON_INPUT_CHANGE: tuple[str, ...] = ("fail", "send")


def _optional_int(value: object, field: str) -> int | None:
    """Delays rendered from templates arrive as strings unless the DAG renders native objects."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise WaslahInvalidInputError(field, f"must be a whole number of seconds, got {rules.shown(value)}")


class WaslahBroadcastOperator(_WaslahSendOperator):
    """Send one message to any number of recipients as Waslah broadcasts of at most 100 each.

    Before the first request, every recipient is normalised and checked (invalid ones are named
    in the error, or skipped and reported with ``skip_invalid_recipients=True``), duplicates are
    dropped, the list is split into chunks of 100 and every chunk's request is validated. Chunks
    are then sent one after the other with ``POST /messages/bulk``.

    **Resuming without re-sending.** Each chunk's name carries a hash of the task instance (DAG,
    task, run, map index) and a running hash of everything the chunks up to it send (instance,
    content, recipients), e.g. ``Promo · sales.notify af:3f2a9c1b7d4e-0a1b2c3d4e 3/10``
    (:mod:`airflow_provider_waslah.broadcast_plan`). Before sending, the operator lists
    ``GET /broadcasts`` and skips every chunk found there by name: an earlier try created it with
    exactly these recipients and this content. A found chunk ``k`` also proves chunks
    ``1..k-1`` went out, even when they are no longer in the list.

    If an earlier try of the same task instance created chunks for *other* recipients or another
    text (the input changed between tries), the try does not pass as resumed: by default it fails
    without sending anything and names those broadcasts (``on_input_change="fail"``); with
    ``on_input_change="send"`` it sends every chunk of the new input that was not found, so
    people in both lists may get the message twice (with the new text), and what the earlier
    try sent stays as sent. Limits of the scheme:

    - ``GET /broadcasts`` returns only the user's last 50 broadcasts. If more than 50 other
      broadcasts were created on the account between the failed try and the retry, the earlier
      chunks are not found (and a changed input is not noticed): they are sent again.
    - A send whose answer was lost (a read timeout, a dropped connection, a 500) may still have
      created its broadcast; the retry finds it by name and does not send it again. If Waslah
      really did not create it, the retry sends it.
    - Two runs of the same task instance at the same time (for example a manual run next to a
      scheduled one) cannot see each other's in-flight chunks and would both send.

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
    :param on_input_change: what a retry does when an earlier try sent other recipients or
        another text: ``"fail"`` (default: send nothing, say which broadcasts differ) or
        ``"send"`` (send the new input in full, except chunks found unchanged).
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
        on_input_change: str = "fail",
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
        if on_input_change not in ON_INPUT_CHANGE:
            raise WaslahInvalidInputError(
                "on_input_change", f"must be one of {', '.join(ON_INPUT_CHANGE)}, got {rules.shown(on_input_change)}"
            )
        self.on_input_change = on_input_change

    def _resolve(self) -> tuple[list[str], list[str]]:
        valid, invalid = resolve_recipients(self.recipients, "recipients", self.recipient_key)
        if invalid and not self.skip_invalid_recipients:
            rule = rules.invalid_recipients_rule(invalid, "fix them or set skip_invalid_recipients=True")
            raise WaslahInvalidInputError("recipients", rule)
        if not valid:
            raise WaslahInvalidInputError("recipients", "must contain at least one valid recipient")
        if invalid:
            self.log.warning("Skipping %s", rules.invalid_recipients_rule(invalid))
        return valid, invalid

    def _plan(self, context: Context, valid: list[str]) -> tuple[TaskIdentity, list[PlannedChunk]]:
        ti = context["ti"]
        task = TaskIdentity(
            dag_id=ti.dag_id,
            task_id=ti.task_id,
            run_id=context["run_id"],
            map_index=ti.map_index if ti.map_index is not None else -1,
        )
        content = BroadcastContent(
            type=self.type,
            text=self.text,
            url=self.url,
            caption=self.caption,
            filename=self.filename,
            mimetype=self.mimetype,
            delay_min_sec=_optional_int(self.delay_min_sec, "delay_min_sec"),
            delay_max_sec=_optional_int(self.delay_max_sec, "delay_max_sec"),
        )
        plan = plan_broadcast(
            task=task,
            instance_key=self.instance_key,
            recipients=valid,
            content=content,
            prefix=self.name,
            chunk_size=self.chunk_size,
        )
        return task, plan

    def _send(self, context: Context) -> dict[str, Any]:
        valid, invalid = self._resolve()
        task, plan = self._plan(context, valid)
        if self.url:
            rules.check_media_url(self.url, "url", trusted_origin=self.hook.client.base_url)
        count = len(plan)
        resume = reconcile(plan, self.hook.list_broadcasts(), task)
        if resume.changed:
            if self.on_input_change == "fail":
                raise AirflowFailException(resume.changed_input_text())
            self.log.warning(
                "An earlier try sent other recipients or another text (broadcasts %s); on_input_change='send': "
                "sending the new input in full, except chunks found unchanged",
                [broadcast.id for broadcast in resume.changed],
            )
        self.log.info(
            "Broadcast to %d recipient(s) in %d chunk(s)%s",
            len(valid),
            count,
            f"; resuming after chunk {resume.through} from an earlier try" if resume.through else "",
        )
        entries: list[dict[str, Any]] = []
        broadcasts: list[Broadcast] = []
        for chunk in plan:
            where = f"chunk {chunk.number}/{count}"
            if chunk.number in resume.found:
                broadcast = resume.found[chunk.number]
                self.log.info("%s: found broadcast %s from an earlier try, not sending again", where, broadcast.id)
                entries.append(self._entry(chunk.number, chunk.name, broadcast, resumed=True))
                broadcasts.append(broadcast)
                continue
            if resume.already_sent(chunk.number):
                self.log.info(
                    "%s: not in the last 50 broadcasts, but chunk %d is, so an earlier try created it; "
                    "not sending again",
                    where,
                    resume.through,
                )
                entries.append(
                    {
                        "chunk": chunk.number,
                        "broadcast_id": None,
                        "name": chunk.name,
                        "status": None,
                        "total": len(chunk.recipients),
                        "check_status_url": None,
                        "resumed": True,
                    }
                )
                continue
            try:
                broadcast = self.hook.call(chunk.call)
            except AirflowException as error:
                sent = sum(1 for entry in entries if not entry["resumed"])
                raise AirflowException(
                    f"{where} failed: {error}. {chunk.number - 1} earlier chunk(s) are queued "
                    f"({sent} sent by this try); a retry of this task finds them by name and sends only the rest."
                ) from error
            self.log.info("%s: created broadcast %s (%d recipients)", where, broadcast.id, len(chunk.recipients))
            entries.append(self._entry(chunk.number, chunk.name, broadcast, resumed=False))
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

    def _wait(self, result: dict[str, Any]) -> BroadcastWait:
        return BroadcastWait(self._ids(result), self.max_failed_ratio)

    def _with_broadcasts(self, result: dict[str, Any], broadcasts: Sequence[Broadcast]) -> dict[str, Any]:
        by_id = {broadcast.id: broadcast for broadcast in broadcasts}
        for entry in result["broadcasts"]:
            broadcast = by_id.get(entry["broadcast_id"])
            if broadcast is not None:
                entry.update(status=broadcast.status, total=broadcast.total)
        recipients = result["totals"].get("recipients", 0)
        result["totals"] = self._totals(broadcasts, result["broadcasts"], recipients)
        return result

    def _trigger(self, result: dict[str, Any]) -> BaseTrigger:
        from airflow_provider_waslah.triggers.waslah import WaslahBroadcastTrigger

        return WaslahBroadcastTrigger(
            broadcast_ids=self._ids(result),
            max_failed_ratio=self.max_failed_ratio,
            waslah_conn_id=self.waslah_conn_id,
            poll_interval=self.poll_interval,
        )

    def _apply(self, result: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        dumps = fields.get("broadcasts")
        if isinstance(dumps, list):
            return self._with_broadcasts(result, [Broadcast.model_validate(item) for item in dumps])
        return result
