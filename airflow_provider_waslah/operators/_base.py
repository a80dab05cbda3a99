"""What every Waslah send operator shares: the connection, the instance, ``wait_for`` and deferral."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_waslah._compat import (
    AirflowException,
    AirflowFailException,
    TaskDeferralTimeout,
    conf,
)
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.validation import check_positive_seconds, shown
from airflow_provider_waslah.hooks.waslah import WaslahHook
from airflow_provider_waslah.polling import Verdict, Wait
from airflow_provider_waslah.waiting import raise_for_verdict, verdict_from_event, wait_in_worker

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import BaseTrigger

#: XCom key holding what was sent while the task waits deferred.
SENT_XCOM_KEY = "waslah_sent"


class _WaslahSendOperator(BaseOperator):
    """Send, then optionally wait for an outcome (``wait_for``) in the worker or deferred.

    Subclasses implement :meth:`_send` (validate everything, then send, returning the XCom
    dict), :meth:`_wait` (what to wait for, as a :class:`~airflow_provider_waslah.polling.Wait`),
    :meth:`_trigger` (the same wait for the triggerer) and :meth:`_apply` (fold a poll's
    details into the XCom dict). Waiting follows the provider's one polling policy: transient
    errors (a 503 outage, timeouts) are ridden out until ``wait_timeout`` in both modes.
    """

    template_fields: Sequence[str] = ("instance_key",)
    ui_color = "#25D366"
    #: The values ``wait_for`` accepts.
    wait_targets: ClassVar[tuple[str, ...]] = ()
    default_poll_interval: ClassVar[float] = 5.0
    #: True when a retry of the task would send again (no way to find the earlier send); an
    #: operator that checkpointed its send sets it to False on the instance.
    retry_resends: bool = True

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
                "wait_for", f"must be None or one of {', '.join(self.wait_targets)}, got {shown(wait_for)}"
            )
        self.instance_key = instance_key
        self.waslah_conn_id = waslah_conn_id
        self.wait_for = wait_for
        self.deferrable = deferrable
        self.poll_interval = check_positive_seconds(poll_interval, "poll_interval") or self.default_poll_interval
        self.wait_timeout = check_positive_seconds(wait_timeout, "wait_timeout")

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
        wait = self._wait(result)
        verdict = wait_in_worker(wait, self.hook, self.log, self.poll_interval, self.wait_timeout)
        if verdict is None:
            raise self._after_send_error(self._timeout_text(result))
        return self._finish(result, verdict, wait)  # the wait logged how it ended

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger: fail on a ``failed``/``error`` event, else return the updated XCom."""
        result = self._sent_result(context)
        wait = self._wait(result)
        verdict = verdict_from_event(event, wait)
        self.log.info("%s (waited for %r in the triggerer)", verdict.text, self.wait_for)
        return self._finish(result, verdict, wait)

    def _finish(self, result: dict[str, Any], verdict: Verdict, wait: Wait) -> dict[str, Any]:
        """The XCom for a final verdict, or the error it stands for (the same in both modes)."""
        result = self._apply(result, verdict.fields)
        if verdict.state == "error":
            raise self._after_send_error(f"Waiting for {self.wait_for!r} stopped: {verdict.text}") from verdict.error
        raise_for_verdict(verdict, wait)
        return result

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

    def _after_send_error(self, text: str) -> AirflowException:
        """The error for a failure after Waslah accepted the send: never retried when a retry would resend."""
        if self.retry_resends:
            return AirflowFailException(
                f"{text}. The message was already queued, so the task is not retried (a retry would send it "
                "again); wait for it with WaslahMessageSensor instead."
            )
        return AirflowException(text)

    def _timeout_text(self, result: dict[str, Any]) -> str:
        return f"{self._wait(result).describe()} did not reach {self.wait_for!r} within {self.wait_timeout:g} s"

    def _send(self, context: Context) -> dict[str, Any]:
        raise NotImplementedError

    def _wait(self, result: dict[str, Any]) -> Wait:
        raise NotImplementedError

    def _trigger(self, result: dict[str, Any]) -> BaseTrigger:
        raise NotImplementedError

    def _apply(self, result: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError
