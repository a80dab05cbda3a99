"""Sensors that wait for a Waslah message to reach a status, or for broadcasts to finish.

Both run in ``poke`` or ``reschedule`` mode, or deferred (``deferrable=True``, default from
``[operators] default_deferrable``): a deferrable sensor pokes once in the worker and defers to
:class:`~airflow_provider_waslah.triggers.waslah.WaslahMessageTrigger` /
:class:`~airflow_provider_waslah.triggers.waslah.WaslahBroadcastTrigger` only if the wait is
not already over, so no worker slot is held while waiting. Every decision (done, keep waiting,
failed) comes from the provider's one polling policy (:mod:`airflow_provider_waslah.polling`),
in the worker and on the trigger's event alike: a transient error (network, timeout, 429, 5xx)
makes a poke report "not yet", so an outage is ridden out until the sensor's ``timeout``.

Failures:

- A message Waslah marked ``failed`` (or a broadcast that failed or passed
  ``max_failed_ratio``) fails the task with Waslah's reason and is not retried
  (:class:`~airflow.sdk.exceptions.AirflowFailException`): a retry would not change it.
- API errors (404 unknown id, 401/403 key problems, ...) fail the task with the API's message
  and the typed error class (e.g. :class:`~airflow_provider_waslah.client.errors.WaslahNotFoundError`);
  the task's ``retries`` apply.
- ``timeout`` and ``soft_fail`` behave as in Airflow's own sensors: with ``soft_fail`` a
  timeout (also a deferral timeout) or a failure skips the task instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, XComArg

from airflow_provider_waslah._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    conf,
)
from airflow_provider_waslah.client.errors import WaslahInvalidInputError
from airflow_provider_waslah.client.models import Broadcast
from airflow_provider_waslah.client.validation import check_id, shown
from airflow_provider_waslah.hooks.waslah import WaslahHook
from airflow_provider_waslah.polling import (
    DEFAULT_MESSAGE_TARGETS,
    BroadcastWait,
    MessageWait,
    Verdict,
    Wait,
    broadcast_totals,
    check_failed_ratio,
    check_target_statuses,
)
from airflow_provider_waslah.triggers.waslah import WaslahBroadcastTrigger, WaslahMessageTrigger
from airflow_provider_waslah.waiting import poll_once, raise_for_verdict, verdict_from_event

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Kept for code that caught it by name: a sensor's bad argument is a :class:`WaslahInvalidInputError`.
WaslahSensorInputError = WaslahInvalidInputError


def _is_template(value: Any) -> bool:
    """True for values only known at run time: a Jinja string, or an XComArg (``task.output[...]``)."""
    return isinstance(value, XComArg) or (isinstance(value, str) and ("{{" in value or "{%" in value))


def coerce_id(value: Any, field: str) -> int:
    """A Waslah id from an int or a rendered template string (``"42"``); clear error otherwise.

    :param value: the value to read.
    :param field: the argument's name, for the error message.
    """
    return check_id(value, field)


def coerce_ids(value: Any, field: str) -> list[int]:
    """One id or a list of ids (also a rendered ``"[1, 2]"`` or ``"1,2"``) as a non-empty list of ints.

    :param value: the value to read.
    :param field: the argument's name, for the error message.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text[:10_000])
            except (ValueError, RecursionError):
                rule = f"must be a Waslah id or a list of ids, got {shown(text)}"
                raise WaslahInvalidInputError(field, rule) from None
        elif "," in text:
            value = [part for part in text.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        if not value:
            raise WaslahInvalidInputError(field, "must not be an empty list")
        return [check_id(item, f"{field}[{index}]") for index, item in enumerate(value)]
    return [check_id(value, field)]


class _WaslahSensorBase(BaseSensorOperator):
    """Deferral and hook plumbing shared by both sensors."""

    def __init__(
        self,
        *,
        waslah_conn_id: str = WaslahHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.waslah_conn_id = waslah_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> WaslahHook:
        """The sync hook used by pokes in the worker."""
        return WaslahHook(waslah_conn_id=self.waslah_conn_id)

    _wait: Wait | None = None

    def _make_wait(self) -> Wait:
        """The wait for the rendered arguments (checks them: bad input raises before any request)."""
        raise NotImplementedError

    def _prepare(self) -> Wait:
        """Check the rendered arguments before the first poke; the wait is kept for later pokes."""
        if self._wait is None:
            self._wait = self._make_wait()
        return self._wait

    def _trigger(self) -> WaslahMessageTrigger | WaslahBroadcastTrigger:
        raise NotImplementedError

    def _xcom(self, verdict: Verdict) -> Any:
        """The sensor's XCom for a ``success`` verdict."""
        raise NotImplementedError

    def poke(self, context: Context) -> PokeReturnValue:
        """Poll once under the provider's polling policy: done, not yet (also after a transient error), or raise."""
        wait = self._prepare()
        verdict = poll_once(wait, self.hook, self.log)
        raise_for_verdict(verdict, wait)
        done = verdict.state == "success"
        return PokeReturnValue(done, self._xcom(verdict) if done else None)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: the XCom on success; otherwise fail as a poke would."""
        wait = self._prepare()
        verdict = verdict_from_event(event, wait)
        self.log.info("%s", verdict.text)
        raise_for_verdict(verdict, wait)
        if verdict.state != "success":
            raise AirflowException(f"Trigger ended before {wait.describe()} was done: {verdict.text}")
        return self._xcom(verdict)

    def _first_poke(self, context: Context) -> PokeReturnValue:
        # The same rules as BaseSensorOperator.execute applies to a failing poke in poke mode:
        # soft_fail skips on AirflowFailException, never_fail (3.1+) on any error.
        never_fail = getattr(self, "never_fail", False)
        try:
            result = self.poke(context)
        except AirflowSkipException:
            raise
        except AirflowFailException as error:
            if self.soft_fail or never_fail:
                raise AirflowSkipException(f"Skipping: {error}") from error
            raise
        except Exception as error:
            if never_fail:
                raise AirflowSkipException(f"Skipping due to never_fail: {error}") from error
            raise
        assert isinstance(result, PokeReturnValue)
        return result

    def execute(self, context: Context) -> Any:
        """Poke (``poke``/``reschedule``), or poke once and defer until done (``deferrable``)."""
        self._prepare()
        try:
            if not self.deferrable:
                return super().execute(context)
            result = self._first_poke(context)
            if result.is_done:
                return result.xcom_value
        finally:
            self.close_hook()
        self.defer(
            trigger=self._trigger(),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def close_hook(self) -> None:
        """Close the sync hook's HTTP client if one was built."""
        hook = self.__dict__.pop("hook", None)
        if hook is not None and "client" in hook.__dict__:  # never build a client just to close it
            hook.client.close()


class WaslahMessageSensor(_WaslahSensorBase):
    """Wait until a Waslah message reaches one of ``target_statuses``.

    Succeeds once the message is at a target status (a target of ``sent`` is also met by
    ``delivered`` and ``read``) and pushes the message (its JSON fields: ``id``, ``status``,
    ``phone_number``, ``sent_at``, ...) to XCom. A message Waslah marks ``failed`` fails the
    task with Waslah's ``error_message``, without retries. An unknown id fails with the API's
    404 message.

    .. code-block:: python

        WaslahMessageSensor(
            task_id="wait_delivered",
            message_id="{{ ti.xcom_pull('send')['message_id'] }}",
            target_statuses=["delivered", "read"],
            deferrable=True,
        )

    :param message_id: the Waslah message id (templated; a rendered string of digits is fine).
    :param target_statuses: statuses that end the wait (templated; default ``sent``,
        ``delivered``, ``read``).
    :param waslah_conn_id: the ``waslah`` connection to use.
    :param deferrable: wait in the triggerer instead of a worker slot (default from
        ``[operators] default_deferrable``). The sensor pokes once before deferring.
    :param poke_interval: seconds between polls, in every mode (default 5).
    """

    template_fields: Sequence[str] = ("message_id", "target_statuses")
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        message_id: int | str,
        target_statuses: Sequence[str] | str = DEFAULT_MESSAGE_TARGETS,
        waslah_conn_id: str = WaslahHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(waslah_conn_id=waslah_conn_id, deferrable=deferrable, poke_interval=poke_interval, **kwargs)
        if not _is_template(message_id):
            coerce_id(message_id, "message_id")
        if not _is_template(target_statuses):
            check_target_statuses(target_statuses)
        self.message_id = message_id
        self.target_statuses = target_statuses

    def _make_wait(self) -> MessageWait:
        return MessageWait(self.message_id, self.target_statuses)

    def _xcom(self, verdict: Verdict) -> dict[str, Any]:
        return dict(verdict.fields["data"])

    def _trigger(self) -> WaslahMessageTrigger:
        wait = self._prepare()
        assert isinstance(wait, MessageWait)
        return WaslahMessageTrigger(
            message_id=wait.message_id,
            target_statuses=list(wait.target_statuses),
            waslah_conn_id=self.waslah_conn_id,
            poll_interval=float(self.poke_interval),
        )


class WaslahBroadcastSensor(_WaslahSensorBase):
    """Wait until a Waslah broadcast (or several, watched as one) finishes.

    Succeeds on ``completed`` and pushes the final counters to XCom:
    ``{"broadcast_ids", "status", "total", "sent", "failed", "pending", "progress_percent"}``.
    Fails (without retries) when a broadcast ends ``failed`` or when the failed share passes
    ``max_failed_ratio``. Logs the progress at every poke, e.g. ``66% - sent 32/50, failed 1``.

    :param broadcast_id: the Waslah broadcast id, or a list of ids (a large send is split into
        broadcasts of at most 100 recipients). Templated; rendered strings such as ``"42"`` or
        ``"[42, 43]"`` are read as ids.
    :param max_failed_ratio: the largest share (0-1) of failed messages still counted a success;
        ``None`` (default) accepts any number of failed messages in a completed broadcast.
    :param waslah_conn_id: the ``waslah`` connection to use.
    :param deferrable: wait in the triggerer instead of a worker slot (default from
        ``[operators] default_deferrable``). The sensor pokes once before deferring.
    :param poke_interval: seconds between polls, in every mode (default 10).
    """

    template_fields: Sequence[str] = ("broadcast_id",)
    ui_color = "#25d366"

    def __init__(
        self,
        *,
        broadcast_id: int | str | Sequence[int],
        max_failed_ratio: float | None = None,
        waslah_conn_id: str = WaslahHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(waslah_conn_id=waslah_conn_id, deferrable=deferrable, poke_interval=poke_interval, **kwargs)
        if not _is_template(broadcast_id):
            coerce_ids(broadcast_id, "broadcast_id")
        self.broadcast_id = broadcast_id
        self.max_failed_ratio = check_failed_ratio(max_failed_ratio)

    def _make_wait(self) -> BroadcastWait:
        return BroadcastWait(coerce_ids(self.broadcast_id, "broadcast_id"), self.max_failed_ratio)

    def _xcom(self, verdict: Verdict) -> dict[str, Any]:
        wait = self._prepare()
        assert isinstance(wait, BroadcastWait)
        broadcasts = [Broadcast.model_validate(item) for item in verdict.fields["broadcasts"]]
        return {"broadcast_ids": list(wait.broadcast_ids), "status": "completed", **broadcast_totals(broadcasts)}

    def _trigger(self) -> WaslahBroadcastTrigger:
        wait = self._prepare()
        assert isinstance(wait, BroadcastWait)
        return WaslahBroadcastTrigger(
            broadcast_ids=list(wait.broadcast_ids),
            max_failed_ratio=self.max_failed_ratio,
            waslah_conn_id=self.waslah_conn_id,
            poll_interval=float(self.poke_interval),
        )
