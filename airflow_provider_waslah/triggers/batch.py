"""``WaslahBatchTrigger``: one deferred wait for every message of a batch (not one trigger per row)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_waslah.batch.wait import BatchWait, decode_ids, encode_ids
from airflow_provider_waslah.triggers.waslah import _WaslahPollingTrigger


class WaslahBatchTrigger(_WaslahPollingTrigger):
    """Wait, asynchronously, until a batch's messages reach ``target_statuses`` (or too many failed).

    Events as for the other Waslah triggers (``success``, ``failed``, ``error``); ``success`` and
    ``failed`` carry ``totals`` (``total``, ``reached``, ``failed``, ``pending``, ``failures``).
    The ids travel as ``[[first, count], ...]`` runs, so 100,000 mostly consecutive ids stay small.

    :param message_ids: the accepted messages' ids, or their runs (``[[first, count], ...]``).
    :param target_statuses: e.g. ``["delivered"]``.
    :param max_failed_ratio: see :class:`~airflow_provider_waslah.batch.wait.BatchWait`.
    :param reads_per_poll: messages read per poll, at most.
    :param waslah_conn_id: the ``waslah`` connection to use.
    :param poll_interval: seconds between polls.
    """

    def __init__(
        self,
        message_ids: Sequence[Any],
        target_statuses: Sequence[str],
        max_failed_ratio: float | None = None,
        reads_per_poll: int = 100,
        waslah_conn_id: str = "waslah_default",
        poll_interval: float = 10.0,
    ) -> None:
        super().__init__(waslah_conn_id=waslah_conn_id, poll_interval=poll_interval)
        runs = bool(message_ids) and isinstance(message_ids[0], (list, tuple))
        self.message_ids: list[int] = decode_ids(message_ids) if runs else [int(value) for value in message_ids]
        self._wait = BatchWait(self.message_ids, target_statuses, max_failed_ratio, reads_per_poll)
        self.target_statuses = list(self._wait.target_statuses)
        self.max_failed_ratio = self._wait.max_failed_ratio
        self.reads_per_poll = self._wait.reads_per_poll

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and JSON-safe kwargs; ``WaslahBatchTrigger(**kwargs)`` rebuilds this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "message_ids": encode_ids(self.message_ids),
                "target_statuses": self.target_statuses,
                "max_failed_ratio": self.max_failed_ratio,
                "reads_per_poll": self.reads_per_poll,
                "waslah_conn_id": self.waslah_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    @property
    def wait(self) -> BatchWait:
        """The batch wait this trigger runs."""
        return self._wait
