"""Async pollers for deferrable waits: a message reaching a status, broadcasts finishing.

Both triggers run in the triggerer's single event loop. They poll with
:class:`~airflow_provider_waslah.hooks.waslah.WaslahAsyncHook` (async connection lookup,
non-blocking I/O, the process-wide per-key rate limiter) and only read, so running one twice is
harmless. What a poll means, which errors are ridden out (network, timeouts, 429, 5xx) and which
end the wait (401, 403, 404, ...) is the provider's one polling policy
(:mod:`airflow_provider_waslah.polling`), the same the sensors and the operators' ``wait_for``
follow. Each trigger yields exactly one :class:`TriggerEvent` whose payload is
``{"status": "success" | "failed" | "error", "message": <text>, ...}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_waslah.client.validation import required_seconds
from airflow_provider_waslah.hooks.waslah import WaslahAsyncHook
from airflow_provider_waslah.polling import (
    DEFAULT_MESSAGE_TARGETS,
    BroadcastWait,
    MessageWait,
    Verdict,
    Wait,
    is_transient,
)
from airflow_provider_waslah.waiting import wait_async

__all__ = ["WaslahBroadcastTrigger", "WaslahMessageTrigger", "error_payload", "is_transient"]


def error_payload(error: Exception) -> dict[str, Any]:
    """The ``error`` event fields for ``error``: its text, class and, for API errors, Waslah's answer."""
    return Verdict("error", str(error) or type(error).__name__, {}, error).payload()


class _WaslahPollingTrigger(BaseTrigger):
    """Shared by both triggers: the hook's life cycle and the polling loop."""

    def __init__(self, waslah_conn_id: str, poll_interval: float) -> None:
        super().__init__()
        self.waslah_conn_id = waslah_conn_id
        self.poll_interval = required_seconds(poll_interval, "poll_interval")
        self._hook: WaslahAsyncHook | None = None

    def _get_hook(self) -> WaslahAsyncHook:
        if self._hook is None:
            self._hook = WaslahAsyncHook(waslah_conn_id=self.waslah_conn_id)
        return self._hook

    async def _close_hook(self) -> None:
        hook, self._hook = self._hook, None
        if hook is not None:
            await hook.aclose()

    @property
    def wait(self) -> Wait:
        """What this trigger waits for (a :class:`~airflow_provider_waslah.polling.Wait`)."""
        raise NotImplementedError

    def describe(self) -> str:
        """What is being waited for, for log lines (``Waslah message 12``)."""
        return self.wait.describe()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until done; yield one event (``success``, ``failed`` or ``error``)."""
        try:
            verdict = await wait_async(self.wait, self._get_hook(), self.log, self.poll_interval)
        finally:
            await self._close_hook()
        yield TriggerEvent(verdict.payload())

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
        self._wait = MessageWait(message_id, target_statuses)
        self.message_id = self._wait.message_id
        self.target_statuses = list(self._wait.target_statuses)

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

    @property
    def wait(self) -> MessageWait:
        """The message wait this trigger runs."""
        return self._wait


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
    (:func:`~airflow_provider_waslah.polling.broadcast_totals`).

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
        self._wait = BroadcastWait(broadcast_ids, max_failed_ratio)
        self.broadcast_ids = list(self._wait.broadcast_ids)
        self.max_failed_ratio = self._wait.max_failed_ratio

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

    @property
    def wait(self) -> BroadcastWait:
        """The broadcast wait this trigger runs (it remembers finished broadcasts between polls)."""
        return self._wait
