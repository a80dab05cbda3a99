"""Sensors that wait for a Waslah message to reach a status, or for broadcasts to finish.

Both run in ``poke`` or ``reschedule`` mode, or deferred (``deferrable=True``, default from
``[operators] default_deferrable``): a deferrable sensor pokes once in the worker and defers to
:class:`~airflow_provider_waslah.triggers.waslah.WaslahMessageTrigger` /
:class:`~airflow_provider_waslah.triggers.waslah.WaslahBroadcastTrigger` only if the wait is
not already over, so no worker slot is held while waiting. Every decision (done, keep waiting,
failed) comes from :mod:`airflow_provider_waslah.waiting`, in the worker and on the trigger's
event alike.

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
from airflow_provider_waslah.client.errors import error_class_for
from airflow_provider_waslah.client.models import Broadcast, Message
from airflow_provider_waslah.hooks.waslah import WaslahHook
from airflow_provider_waslah.triggers.waslah import WaslahBroadcastTrigger, WaslahMessageTrigger
from airflow_provider_waslah.waiting import (
    DEFAULT_MESSAGE_TARGETS,
    broadcast_totals,
    broadcasts_finished,
    check_failed_ratio,
    check_target_statuses,
    message_reached,
    progress_line,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class WaslahSensorInputError(AirflowFailException, ValueError):
    """A sensor argument (often rendered from a template) is not usable; retrying would not help."""


def _is_template(value: Any) -> bool:
    """True for values only known at run time: a Jinja string, or an XComArg (``task.output[...]``)."""
    return isinstance(value, XComArg) or (isinstance(value, str) and ("{{" in value or "{%" in value))


def coerce_id(value: Any, field: str) -> int:
    """A Waslah id from an int or a rendered template string (``"42"``); clear error otherwise.

    :param value: the value to read.
    :param field: the argument's name, for the error message.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            value = int(text)
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise WaslahSensorInputError(
            f"`{field}` must be a positive integer Waslah id (or a template rendering to one), got {value!r}"
        )
    return value


def coerce_ids(value: Any, field: str) -> list[int]:
    """One id or a list of ids (also a rendered ``"[1, 2]"`` or ``"1,2"``) as a non-empty list of ints.

    :param value: the value to read.
    :param field: the argument's name, for the error message.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise WaslahSensorInputError(f"`{field}` must be a Waslah id or a list of ids, got {value!r}") from None
        elif "," in text:
            value = [part for part in text.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        if not value:
            raise WaslahSensorInputError(f"`{field}` must not be an empty list")
        return [coerce_id(item, f"{field}[{index}]") for index, item in enumerate(value)]
    return [coerce_id(value, field)]


def raise_for_event(event: dict[str, Any] | None, what: str) -> None:
    """Raise what a trigger's ``error`` (or malformed) event stands for; return on other events.

    An API error comes back as its typed class (e.g. ``WaslahNotFoundError``), as in poke mode.

    :param event: the trigger event's payload.
    :param what: what was waited for, for the message of a malformed event.
    """
    if not isinstance(event, dict) or event.get("status") not in ("success", "failed", "error"):
        raise AirflowException(f"Unexpected trigger event while waiting for {what}: {event!r}")
    if event["status"] != "error":
        return
    if event.get("http_status") is not None:
        cls = error_class_for(int(event["http_status"]), event.get("error_code"))
        raise cls(
            status_code=int(event["http_status"]),
            error=event.get("error_code"),
            message=str(event.get("api_message") or event.get("message")),
            method=str(event.get("method") or ""),
            path=str(event.get("path") or ""),
        )
    raise AirflowException(f"{event.get('error_type', 'Error')} while waiting for {what}: {event.get('message')}")


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

    def _prepare(self) -> None:
        """Check the rendered arguments before the first poke."""

    def _trigger(self) -> WaslahMessageTrigger | WaslahBroadcastTrigger:
        raise NotImplementedError

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

    def _prepare(self) -> None:
        self._message_id = coerce_id(self.message_id, "message_id")
        self._targets = list(check_target_statuses(self.target_statuses))

    def poke(self, context: Context) -> PokeReturnValue:
        """Read the message once; done when it reached a target, raises when it failed."""
        if not hasattr(self, "_message_id"):
            self._prepare()
        message = self.hook.get_message(self._message_id)
        self.log.info("Waslah message %s is %s", message.id, message.status)
        done = message_reached(message, self._targets)
        return PokeReturnValue(done, message.model_dump(mode="json") if done else None)

    def _trigger(self) -> WaslahMessageTrigger:
        return WaslahMessageTrigger(
            message_id=self._message_id,
            target_statuses=self._targets,
            waslah_conn_id=self.waslah_conn_id,
            poll_interval=float(self.poke_interval),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: return the message on success, fail as a poke would otherwise."""
        if not hasattr(self, "_message_id"):
            self._prepare()
        raise_for_event(event, f"Waslah message {self._message_id}")
        assert event is not None
        message = Message.model_validate(event["data"])
        # The same rule as a poke: raises WaslahMessageFailedError for a failed message.
        if not message_reached(message, self._targets):
            raise AirflowException(f"Trigger ended while Waslah message {message.id} is still {message.status}")
        self.log.info("%s", event.get("message"))
        return message.model_dump(mode="json")


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

    def _prepare(self) -> None:
        self._broadcast_ids = coerce_ids(self.broadcast_id, "broadcast_id")

    def _describe(self) -> str:
        ids = ", ".join(str(value) for value in self._broadcast_ids)
        return f"Waslah broadcast{'s' if len(self._broadcast_ids) > 1 else ''} {ids}"

    def _result(self, broadcasts: Sequence[Broadcast]) -> dict[str, Any]:
        return {"broadcast_ids": list(self._broadcast_ids), "status": "completed", **broadcast_totals(broadcasts)}

    def poke(self, context: Context) -> PokeReturnValue:
        """Read the broadcasts once and log progress; done when all completed, raises when failed."""
        if not hasattr(self, "_broadcast_ids"):
            self._prepare()
        broadcasts = [self.hook.get_broadcast(broadcast_id) for broadcast_id in self._broadcast_ids]
        self.log.info("%s: %s", self._describe(), progress_line(broadcast_totals(broadcasts)))
        done = broadcasts_finished(broadcasts, self.max_failed_ratio)
        return PokeReturnValue(done, self._result(broadcasts) if done else None)

    def _trigger(self) -> WaslahBroadcastTrigger:
        return WaslahBroadcastTrigger(
            broadcast_ids=self._broadcast_ids,
            max_failed_ratio=self.max_failed_ratio,
            waslah_conn_id=self.waslah_conn_id,
            poll_interval=float(self.poke_interval),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: return the final counters on success, fail as a poke would otherwise."""
        if not hasattr(self, "_broadcast_ids"):
            self._prepare()
        raise_for_event(event, self._describe())
        assert event is not None
        broadcasts = [Broadcast.model_validate(item) for item in event["broadcasts"]]
        self.log.info("%s: %s", self._describe(), progress_line(broadcast_totals(broadcasts)))
        # The same rule as a poke: raises WaslahBroadcastFailedError when failed or over the ratio.
        if not broadcasts_finished(broadcasts, self.max_failed_ratio):
            raise AirflowException(f"Trigger ended before {self._describe()} finished: {event.get('message')}")
        return self._result(broadcasts)
