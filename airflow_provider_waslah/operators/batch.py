"""``WaslahBatchSendOperator``: one personalised message per row, for any number of rows, in one task."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_waslah._compat import AirflowException
from airflow_provider_waslah.batch.checkpoint import Checkpoint, CheckpointStore
from airflow_provider_waslah.batch.prepare import Preparation, PreparedRow, RowPreparer, prepare_all
from airflow_provider_waslah.batch.progress import Progress
from airflow_provider_waslah.batch.rows import DEFAULT_FETCH_SIZE, iter_sql_rows, iter_value_rows
from airflow_provider_waslah.batch.run import BatchResult, BatchRun
from airflow_provider_waslah.batch.sender import BatchSender
from airflow_provider_waslah.batch.wait import BatchWait, reads_per_poll
from airflow_provider_waslah.checkpoints import checkpoint_store, keeps_itself
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.models import MessageReceipt
from airflow_provider_waslah.operators._base import _WaslahSendOperator
from airflow_provider_waslah.polling import MESSAGE_WAIT_TARGETS, check_failed_ratio

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

    from airflow_provider_waslah.client.ratelimit import Limiter

#: The checkpoint's namespace in the task state store (and its Variables' prefix).
CHECKPOINT_NAMESPACE = "waslah_batch"
#: Seconds of the key's budget a checkpoint block covers: a crash leaves at most about this much unknown.
BLOCK_SECONDS = 5.0


class _Constant:
    """A non-string field value standing in for a template."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def render(self, *args: Any, **kwargs: Any) -> Any:
        return self.value


def auto_concurrency(limiter: Limiter) -> int:
    """Requests in flight needed to spend the key's budget at up to 1 s a request: 4 to 64."""
    return max(4, min(64, math.ceil(limiter.limit / limiter.window_seconds)))


class WaslahBatchSendOperator(_WaslahSendOperator):
    """Send one personalised WhatsApp message per row, for thousands of rows, from one task.

    Rows come from ``rows`` (a list of dicts or an upstream XCom) or from a SQL query through any
    Airflow SQL connection (``sql`` + ``sql_conn_id``, read ``fetch_size`` rows at a time). Each
    message field is a Jinja template rendered per row with the row as ``row`` and the task
    context (``ds``, ``params``, ...), e.g. ``to="{{ row.phone }}"``,
    ``text="Halo {{ row.name }}, tagihan {{ row.invoice }} ..."``. A row with a ``url`` is a media
    message (``type`` inferred from the URL when not given; ``text`` is its caption unless
    ``caption`` is given).

    **Checked first.** Every row is rendered and checked (number or JID, text and caption
    lengths, media type, URL rules) before the first send. Bad rows are reported by row number
    and reason: the task fails without sending anything, or with ``skip_invalid_rows=True`` they
    are skipped and listed. A second row with the same key is a bad row (a duplicate).

    **At the key's budget.** Messages go out with up to ``concurrency`` requests in flight, each
    taking its slot from the connection's shared rate limiter: the key's whole budget is used,
    and never exceeded, even when each request takes 300 ms. Progress is logged every
    ``progress_interval`` seconds: ``1,250 / 5,000 sent, 3 failed, 41/s, ETA 1 min 32 s``.

    **Resumable.** Which rows Waslah accepted (row key, message id) is checkpointed as the batch
    goes, in a store every try of the task instance can read on any worker (Airflow 3.3's task
    state store, else Airflow Variables, or ``checkpoint_path`` on object storage; see
    :mod:`airflow_provider_waslah.checkpoints`). A retry sends only rows never accepted. Rows are
    identified by ``row_key`` (a column) or, without one, by a hash of the message as sent
    (recipient and content). Rows are reserved in the checkpoint before they are sent, so a row
    whose answer was lost, or whose try died before Waslah answered, is *unknown*: it is listed
    and not sent again; ``resend_unknown=True`` (or a list of row keys) sends it anyway.

    What stops the batch early (the task fails, and a retry resumes): a lost answer, or an error
    no other row would escape (401/403, a disconnected instance, Waslah down, the network). A
    refusal of one row (400/422) marks that row failed; the task fails at the end when more than
    ``max_failed_ratio`` of the rows failed, and a retry sends only those again.

    Returns (XCom) ``{"totals": {"rows", "sent", "failed", "skipped", "unknown", "resumed"},
    "results": {"checkpoint": <where the per-row results are>, "parts"}, "problems": [{"row",
    "key", "to", "status", "error"}, ...] (at most 100), "problems_truncated"}``; with
    ``wait_for``, ``"wait"`` holds the final counts.

    :param instance_key: the connected Waslah instance to send from (templated).
    :param to: the recipient template, e.g. ``"{{ row.phone }}"`` (rendered per row).
    :param text: the message template (rendered per row); the caption of media rows.
    :param type: ``image``, ``document``, ``video`` or ``audio`` for media rows (rendered per row).
    :param url: a public media URL (rendered per row); empty means a text message.
    :param caption: text under the media (rendered per row).
    :param filename: the file name shown for documents (rendered per row).
    :param rows: a list of dicts, an upstream XCom, or such a list rendered as a string (templated).
    :param sql: a query whose rows are sent, instead of ``rows`` (templated).
    :param sql_conn_id: the Airflow SQL connection to run ``sql`` on (any ``common.sql`` hook).
    :param parameters: query parameters, in the driver's style (templated).
    :param row_key: the column that identifies a row across tries (e.g. an invoice id); without
        it, a hash of the message as sent.
    :param skip_invalid_rows: send the valid rows and list the invalid ones, instead of failing.
    :param concurrency: requests in flight at most (default: enough to spend the key's budget
        at 1 s a request, 4 to 64).
    :param checkpoint_path: an ``ObjectStoragePath`` URI (``s3://bucket/prefix``) for the
        checkpoint instead of Airflow's metadata database (templated).
    :param resend_unknown: send rows whose outcome is unknown: ``True`` for all, or their row keys (templated).
    :param max_failed_ratio: the largest share of rows that may fail (refused, or ``failed`` while
        waiting) with the task still succeeding; default 0.
    :param progress_interval: seconds between progress lines (default 30).
    :param fetch_size: rows read from the database per round trip.
    :param wait_for: ``None`` (return once Waslah accepted every row), ``"sent"``,
        ``"delivered"`` or ``"read"``: one wait for the whole batch, in the worker or deferred.
    :param deferrable: wait in the triggerer instead of the worker.
    :param poll_interval: seconds between status checks while waiting (default 10).
    :param wait_timeout: the longest wait (default one hour).
    :param waslah_conn_id: the ``waslah`` connection (default ``waslah_default``).
    """

    template_fields: Sequence[str] = (
        "instance_key",
        "rows",
        "sql",
        "parameters",
        "checkpoint_path",
        "resend_unknown",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql"}
    wait_targets = MESSAGE_WAIT_TARGETS
    default_poll_interval = 10.0
    retry_resends = False  # the checkpoint finds what an earlier try sent

    def __init__(
        self,
        *,
        to: str,
        text: str | None = None,
        type: str | None = None,
        url: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        rows: Any = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Any = None,
        row_key: str | None = None,
        skip_invalid_rows: bool = False,
        concurrency: int | None = None,
        checkpoint_path: str | None = None,
        resend_unknown: bool | Collection[str] | str = False,
        max_failed_ratio: float | None = 0.0,
        progress_interval: float = 30.0,
        fetch_size: int = DEFAULT_FETCH_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (rows is None) == (sql is None):
            raise WaslahInvalidInputError("rows", "give exactly one of rows= or sql=")
        if sql is not None and not sql_conn_id:
            raise WaslahInvalidInputError("sql_conn_id", "is required with sql= (an Airflow SQL connection)")
        if concurrency is not None and not 1 <= concurrency <= 256:
            raise WaslahInvalidInputError("concurrency", f"must be between 1 and 256, got {concurrency!r}")
        self.message_templates = {
            "to": to,
            "text": text,
            "type": type,
            "url": url,
            "caption": caption,
            "filename": filename,
        }
        self.rows = rows
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.row_key = row_key
        self.skip_invalid_rows = skip_invalid_rows
        self.concurrency = concurrency
        self.checkpoint_path = checkpoint_path
        self.resend_unknown = resend_unknown
        self.max_failed_ratio = check_failed_ratio(max_failed_ratio)
        self.progress_interval = progress_interval
        self.fetch_size = fetch_size
        self._message_ids: list[int] = []

    # --- input -----------------------------------------------------------------------------------

    def _source(self) -> Iterable[object]:
        if self.sql is None:
            return iter_value_rows(self.rows)
        from airflow.providers.common.sql.hooks.sql import DbApiHook
        from airflow.sdk import BaseHook

        hook = BaseHook.get_hook(str(self.sql_conn_id))
        if not isinstance(hook, DbApiHook):
            raise WaslahInvalidInputError(
                "sql_conn_id", f"{self.sql_conn_id!r} has a {type(hook).__name__}, not a common.sql (DbApiHook) hook"
            )
        self.log.info("Reading rows from %s (%s rows per fetch)", self.sql_conn_id, self.fetch_size)
        return iter_sql_rows(hook, str(self.sql), self.parameters, self.fetch_size)

    def _preparer(self, context: Context) -> RowPreparer:
        env = self.get_template_env()
        templates = {
            name: env.from_string(value) if isinstance(value, str) else None if value is None else _Constant(value)
            for name, value in self.message_templates.items()
        }
        return RowPreparer(
            templates,
            context,
            instance_key=self.instance_key,
            row_key=self.row_key,
            trusted_origin=self.hook.client.base_url,
        )

    def _prepare(self, context: Context) -> Preparation:
        preparation = prepare_all(self._source(), self._preparer(context))
        valid = preparation.spool.count
        self.log.info(
            "Checked %s row(s): %s valid, %s invalid", f"{preparation.rows:,}", f"{valid:,}",
            f"{preparation.invalid_count:,}",
        )  # fmt: skip
        if preparation.invalid_count and not self.skip_invalid_rows:
            preparation.spool.close()
            raise WaslahInvalidInputError(
                "rows",
                f"{preparation.invalid_count:,} invalid row(s); nothing was sent. Fix them or set "
                f"skip_invalid_rows=True:\n{preparation.invalid_text()}",
            )
        if preparation.invalid_count:
            self.log.warning("Skipping %s invalid row(s):\n%s", preparation.invalid_count, preparation.invalid_text())
        return preparation

    def _resend_unknown(self) -> bool | Collection[str]:
        value = self.resend_unknown
        if isinstance(value, str):  # rendered from a template: "True", "False", or "INV-1, INV-2"
            text = value.strip()
            if text.lower() in ("true", "false", ""):
                return text.lower() == "true"
            return {part.strip() for part in text.strip("[]").replace("'", "").split(",") if part.strip()}
        return value if isinstance(value, bool) else {str(key) for key in value}

    # --- sending ---------------------------------------------------------------------------------

    def _sender(self, checkpoint: Checkpoint, to_send: int) -> BatchSender:
        client = self.hook.client  # built here, in the main thread, before the worker threads use it
        limiter = client.limiter
        concurrency = self.concurrency or auto_concurrency(limiter)
        block = max(concurrency, math.ceil(limiter.limit / limiter.window_seconds * BLOCK_SECONDS))
        self.log.info(
            "Sending %s message(s) with up to %d in flight (budget %d per %g s)",
            f"{to_send:,}", concurrency, limiter.limit, limiter.window_seconds,
        )  # fmt: skip

        def send(row: PreparedRow) -> MessageReceipt:
            return client.call(row.call())

        return BatchSender(
            send,
            checkpoint,
            Progress(to_send, self.progress_interval),
            self.log.info,
            concurrency=concurrency,
            block_size=block,
            headroom=limiter.headroom,
            collect_ids=self.wait_for is not None,
        )

    def _send(self, context: Context) -> dict[str, Any]:
        preparation = self._prepare(context)
        with preparation.spool:
            checkpoint = Checkpoint(self._store(context))
            run = BatchRun(
                preparation,
                checkpoint,
                resend_unknown=self._resend_unknown(),
                collect_ids=self.wait_for is not None,
            )
            if run.resume.parts:
                self.log.info(
                    "Resuming from the checkpoint (%s, %d part(s)): %s row(s) accepted by an earlier try are not "
                    "sent again; %s row(s) have an unknown outcome",
                    checkpoint.location, run.resume.parts, f"{run.resumed:,}", f"{run.held_count:,}",
                )  # fmt: skip
            result = run.send(lambda to_send: self._sender(checkpoint, to_send))
        self._message_ids = result.message_ids
        self._log_result(result)
        if result.stopped_by is not None:
            raise AirflowException(self._stopped_text(result)) from result.stopped_by
        self._check_failed(result.totals["failed"], result.totals["rows"] - result.totals["skipped"], "refused")
        return result.to_xcom()

    def _log_result(self, result: BatchResult) -> None:
        totals = result.totals
        self.log.info(
            "Batch: %s row(s): %s sent, %s resumed, %s failed, %s skipped, %s unknown. Per-row results: %s",
            *(f"{totals[name]:,}" for name in ("rows", "sent", "resumed", "failed", "skipped", "unknown")),
            result.checkpoint,
        )
        for problem in result.problems:
            if problem["status"] == "failed":
                self.log.warning("Row %s (%s) failed: %s", f"{problem['row']:,}", problem["key"], problem["error"])
        if totals["unknown"]:
            self.log.warning("%s", unknown_text(result))

    def _stopped_text(self, result: BatchResult) -> str:
        totals = result.totals
        text = (
            f"The batch stopped: {type(result.stopped_by).__name__}: {str(result.stopped_by).rstrip('.')}. "
            f"{totals['sent']:,} row(s) were accepted by this try and {totals['resumed']:,} by earlier ones; all are "
            f"in the checkpoint ({result.checkpoint}), so a retry of this task sends only the rest."
        )
        if totals["unknown"]:
            text += " " + unknown_text(result)
        return text

    def _check_failed(self, failed: int, total: int, how: str) -> None:
        if not failed or total <= 0:
            return
        ratio = failed / total
        if self.max_failed_ratio is not None and ratio > self.max_failed_ratio:
            raise AirflowException(
                f"{failed:,} of {total:,} row(s) {how} ({ratio:.1%}), more than max_failed_ratio="
                f"{self.max_failed_ratio:g}; a retry of this task sends only rows Waslah never accepted"
            )

    def _store(self, context: Context) -> CheckpointStore:
        return checkpoint_store(context, CHECKPOINT_NAMESPACE, self.checkpoint_path)

    def _forget(self, context: Context) -> None:
        """After a success: delete the checkpoint where nothing else would (Variables); other stores keep it."""
        store = self._store(context)
        if not keeps_itself(store):
            checkpoint = Checkpoint(store)
            checkpoint.load()
            checkpoint.delete()

    def execute(self, context: Context) -> dict[str, Any]:
        result = super().execute(context)
        self._forget(context)
        return result

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the batch's deferred wait; the final counts are in the XCom's ``wait``."""
        result = super().execute_complete(context, event)
        self._forget(context)
        return result

    # --- waiting ---------------------------------------------------------------------------------

    def _reads_per_poll(self) -> int:
        limiter = self.hook.client.limiter
        return reads_per_poll(limiter.limit, limiter.window_seconds, self.poll_interval)

    def _wait(self, result: dict[str, Any]) -> BatchWait:
        return BatchWait(
            self._message_ids,
            [str(self.wait_for)],
            max_failed_ratio=self.max_failed_ratio,
            reads_per_poll=self._reads_per_poll() if self._message_ids else 1,
        )

    def _trigger(self, result: dict[str, Any]) -> BaseTrigger:
        from airflow_provider_waslah.triggers.batch import WaslahBatchTrigger

        return WaslahBatchTrigger(
            message_ids=self._message_ids,
            target_statuses=[str(self.wait_for)],
            max_failed_ratio=self.max_failed_ratio,
            reads_per_poll=self._reads_per_poll(),
            waslah_conn_id=self.waslah_conn_id,
            poll_interval=self.poll_interval,
        )

    def _apply(self, result: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        if isinstance(fields.get("totals"), dict):
            result["wait"] = fields["totals"]
        return result


def unknown_text(result: BatchResult) -> str:
    """What to say about rows whose outcome is unknown: which, how to check, how to force."""
    rows = result.unknown_rows
    shown = "; ".join(
        f"row {item['row']:,} ({item['key']}) to {item['to'] or '?'}: {item['error']}" for item in rows[:10]
    )
    count = result.totals["unknown"]
    more = f" and {count - len(rows[:10]):,} more (all listed in the XCom's problems, up to 100)" if count > 10 else ""
    return (
        f"{count:,} row(s) have an unknown outcome and were NOT sent again: Waslah may have queued them (a lost "
        f"answer, or a try that stopped before Waslah answered): {shown}{more}. Check them in Waslah's dashboard "
        "(the instance's message history) or with the recipients. To send them anyway, set resend_unknown=True "
        "(or a list of their row keys) and clear this task: rows Waslah accepted are still not sent again."
    )
