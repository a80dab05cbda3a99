"""Async pollers for deferrable waits: a message reaching a status, broadcasts finishing.

Both triggers run in the triggerer's single event loop, so they:

- fetch the connection and talk to Waslah only through :class:`WaslahAsyncHook` (async
  connection lookup, non-blocking I/O, the process-wide per-key rate limiter shared with every
  other trigger using the same API key);
- only read (``GET /messages/{id}``, ``GET /broadcasts/{id}``): a trigger may run twice;
- sleep ``poll_interval`` between polls, also after an error. Transient errors (network,
  timeouts, 429 and 5xx left over after the client's own retries) are logged and retried on the
  next poll; permanent ones (401, 403, 404, a bad connection, ...) end the wait;
- decide with :mod:`airflow_provider_waslah.waiting`, the rules the sensors and the operators'
  ``wait_for`` use;
- yield exactly one :class:`TriggerEvent` whose payload is
  ``{"status": "success" | "failed" | "error", "message": <text>, ...}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_waslah.client.errors import (
    WaslahAPIError,
    WaslahEngineUnavailableError,
    WaslahRateLimitError,
    WaslahServerError,
    WaslahTransportError,
)
from airflow_provider_waslah.client.models import Broadcast
from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook
from airflow_provider_waslah.waiting import (
    DEFAULT_MESSAGE_TARGETS,
    WaslahBroadcastFailedError,
    WaslahMessageFailedError,
    broadcast_totals,
    broadcasts_finished,
    check_failed_ratio,
    check_target_statuses,
    message_reached,
    progress_line,
)

#: Errors worth another poll: the request may succeed later (network, 429, 5xx).
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    WaslahTransportError,
    WaslahRateLimitError,
    WaslahServerError,
    WaslahEngineUnavailableError,
)


def is_transient(error: BaseException) -> bool:
    """True when a failed poll is worth repeating (network trouble, 429, 5xx); False for 4xx and the rest."""
    return isinstance(error, TRANSIENT_ERRORS)


def error_payload(error: BaseException) -> dict[str, Any]:
    """The ``error`` event fields for ``error``: its text, class and, for API errors, Waslah's answer.

    :param error: the exception that ended the wait.
    """
    payload: dict[str, Any] = {
        "status": "error",
        "message": str(error) or type(error).__name__,
        "error_type": type(error).__name__,
    }
    if isinstance(error, WaslahAPIError):
        payload.update(
            http_status=error.http_status,
            error_code=error.error,
            api_message=error.message,
            method=error.method,
            path=error.path,
        )
    return payload


def _positive_number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{field} must be a positive number of seconds, got {value!r}")
    return float(value)


def _positive_id(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field} must be a positive integer, got {value!r}")
    return value


class _WaslahPollingTrigger(BaseTrigger):
    """Shared by both triggers: the hook's life cycle and the poll-sleep-repeat loop."""

    def __init__(self, waslah_conn_id: str, poll_interval: float) -> None:
        super().__init__()
        self.waslah_conn_id = waslah_conn_id
        self.poll_interval = _positive_number(poll_interval, "poll_interval")
        self._hook: WaslahAsyncHook | None = None

    def _get_hook(self) -> WaslahAsyncHook:
        if self._hook is None:
            self._hook = WaslahAsyncHook(waslah_conn_id=self.waslah_conn_id)
        return self._hook

    async def _close_hook(self) -> None:
        hook, self._hook = self._hook, None
        if hook is not None:
            await hook.aclose()

    async def poll(self, hook: WaslahAsyncHook) -> dict[str, Any] | None:
        """One poll: the final event's payload, or ``None`` to poll again after ``poll_interval``.

        Raises the API's error when the poll itself failed.
        """
        raise NotImplementedError

    def describe(self) -> str:
        """What is being waited for, for log lines (``Waslah message 12``)."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until done; yield one event (``success``, ``failed`` or ``error``)."""
        failures = 0
        try:
            while True:
                try:
                    payload = await self.poll(self._get_hook())
                except Exception as error:
                    if not is_transient(error):
                        self.log.error("Stopped waiting for %s: %s", self.describe(), error)
                        yield TriggerEvent(error_payload(error))
                        return
                    failures += 1
                    self.log.warning(
                        "Polling %s failed (%s: %s; %d in a row); trying again in %.1f s",
                        self.describe(),
                        type(error).__name__,
                        error,
                        failures,
                        self.poll_interval,
                    )
                else:
                    failures = 0
                    if payload is not None:
                        yield TriggerEvent(payload)
                        return
                await asyncio.sleep(self.poll_interval)
        finally:
            await self._close_hook()

    async def cleanup(self) -> None:
        """Close the hook's HTTP client if ``run`` did not get to (e.g. cancelled mid-request)."""
        await self._close_hook()


class WaslahMessageTrigger(_WaslahPollingTrigger):
    """Wait, asynchronously, until a Waslah message reaches one of ``target_statuses``.

    Events (payload ``status``):

    - ``success``: the message reached a target status (``sent`` is also met by ``delivered``
      and ``read``); ``data`` holds the message as JSON.
    - ``failed``: Waslah marked the message ``failed``; ``message`` carries Waslah's
      ``error_message``, ``data`` the message.
    - ``error``: polling cannot succeed (404 unknown id, 401/403 key problems, a broken
      connection); ``message`` is the API's text, plus ``error_type``, and for API errors
      ``http_status``, ``error_code``, ``api_message``.

    :param message_id: the Waslah message id (from a send's receipt).
    :param target_statuses: statuses that end the wait (default ``sent``, ``delivered``, ``read``).
    :param waslah_conn_id: the ``waslah`` connection to use.
    :param poll_interval: seconds between polls (also after a transient error).
    """

    def __init__(
        self,
        message_id: int,
        target_statuses: Sequence[str] | str = DEFAULT_MESSAGE_TARGETS,
        waslah_conn_id: str = "waslah_default",
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__(waslah_conn_id=waslah_conn_id, poll_interval=poll_interval)
        self.message_id = _positive_id(message_id, "message_id")
        self.target_statuses = list(check_target_statuses(target_statuses))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe kwargs; ``WaslahMessageTrigger(**kwargs)`` rebuilds this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "message_id": self.message_id,
                "target_statuses": list(self.target_statuses),
                "waslah_conn_id": self.waslah_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    def describe(self) -> str:
        """``Waslah message <id>``."""
        return f"Waslah message {self.message_id}"

    async def poll(self, hook: WaslahAsyncHook) -> dict[str, Any] | None:
        """Read the message once and apply :func:`~airflow_provider_waslah.waiting.message_reached`."""
        message = await hook.get_message(self.message_id)
        data = message.model_dump(mode="json")
        try:
            done = message_reached(message, self.target_statuses)
        except WaslahMessageFailedError as failure:
            return {"status": "failed", "message": str(failure), "data": data}
        if not done:
            self.log.info(
                "%s is %s; waiting for %s", self.describe(), message.status, " or ".join(self.target_statuses)
            )
            return None
        return {
            "status": "success",
            "message": f"{self.describe()} is {message.status}",
            "data": data,
        }


class WaslahBroadcastTrigger(_WaslahPollingTrigger):
    """Wait, asynchronously, until Waslah broadcasts finish; logs a progress line at every poll.

    Several ids are watched as one (a large send is split into broadcasts of at most 100
    recipients); counters are summed. Finished broadcasts are not read again.

    Events (payload ``status``):

    - ``success``: every broadcast is ``completed`` (within ``max_failed_ratio``).
    - ``failed``: a broadcast ended ``failed``, or the failed share passed ``max_failed_ratio``.
    - ``error``: polling cannot succeed (404, 401/403, a broken connection); as for
      :class:`WaslahMessageTrigger`.

    ``success`` and ``failed`` carry ``broadcasts`` (each broadcast as JSON) and ``totals``
    (:func:`~airflow_provider_waslah.waiting.broadcast_totals`).

    :param broadcast_ids: the Waslah broadcast ids.
    :param max_failed_ratio: the largest share of failed messages (0-1) still counted a success;
        ``None`` means any number of failed messages is fine while the broadcast completes.
    :param waslah_conn_id: the ``waslah`` connection to use.
    :param poll_interval: seconds between polls (also after a transient error).
    """

    def __init__(
        self,
        broadcast_ids: Sequence[int],
        max_failed_ratio: float | None = None,
        waslah_conn_id: str = "waslah_default",
        poll_interval: float = 10.0,
    ) -> None:
        super().__init__(waslah_conn_id=waslah_conn_id, poll_interval=poll_interval)
        if isinstance(broadcast_ids, (str, bytes)) or not isinstance(broadcast_ids, Sequence) or not broadcast_ids:
            raise ValueError(f"broadcast_ids must be a non-empty list of integers, got {broadcast_ids!r}")
        self.broadcast_ids = [_positive_id(value, "broadcast_ids") for value in broadcast_ids]
        self.max_failed_ratio = check_failed_ratio(max_failed_ratio)
        self._finished: dict[int, Broadcast] = {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe kwargs; ``WaslahBroadcastTrigger(**kwargs)`` rebuilds this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "broadcast_ids": list(self.broadcast_ids),
                "max_failed_ratio": self.max_failed_ratio,
                "waslah_conn_id": self.waslah_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    def describe(self) -> str:
        """``Waslah broadcast 3`` or ``Waslah broadcasts 3, 4``."""
        ids = ", ".join(str(value) for value in self.broadcast_ids)
        return f"Waslah broadcast{'s' if len(self.broadcast_ids) > 1 else ''} {ids}"

    async def poll(self, hook: WaslahAsyncHook) -> dict[str, Any] | None:
        """Read the unfinished broadcasts and apply :func:`~airflow_provider_waslah.waiting.broadcasts_finished`."""
        broadcasts: list[Broadcast] = []
        for broadcast_id in self.broadcast_ids:
            broadcast = self._finished.get(broadcast_id)
            if broadcast is None:
                broadcast = await hook.get_broadcast(broadcast_id)
                if broadcast.is_final:
                    self._finished[broadcast_id] = broadcast
            broadcasts.append(broadcast)
        totals = broadcast_totals(broadcasts)
        line = progress_line(totals)
        self.log.info("%s: %s", self.describe(), line)
        fields = {"broadcasts": [b.model_dump(mode="json") for b in broadcasts], "totals": totals}
        try:
            done = broadcasts_finished(broadcasts, self.max_failed_ratio)
        except WaslahBroadcastFailedError as failure:
            return {"status": "failed", "message": str(failure), **fields}
        if not done:
            return None
        return {"status": "success", "message": f"{self.describe()} completed: {line}", **fields}
