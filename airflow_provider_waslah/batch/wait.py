"""One wait for a whole batch: every accepted message reaching ``sent``/``delivered``/``read``.

Built on the provider's one polling policy (:class:`~airflow_provider_waslah.polling.Wait`): a
poll reads up to ``reads_per_poll`` unfinished messages (``GET /messages/{id}``, run
concurrently by the driver), oldest first, and never reads a finished one again. So a wait on
5,000 messages spends a bounded share of the key's budget per poll (:func:`reads_per_poll`:
half of it by default), instead of one trigger per row each polling on its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Sequence
from typing import Any

from airflow_provider_waslah.client import calls
from airflow_provider_waslah.client.models import Message
from airflow_provider_waslah.client.validation import check_id
from airflow_provider_waslah.polling import (
    Failed,
    Fetch,
    FetchMany,
    Reply,
    Verdict,
    Wait,
    check_failed_ratio,
    check_target_statuses,
    failed_message_text,
    message_state,
)

#: Share of the key's budget a batch wait spends on reads.
BUDGET_SHARE = 0.5
#: Failed messages named in the verdict, at most.
SHOWN_FAILURES = 20


def reads_per_poll(limit: int, window_seconds: float, poll_interval: float, share: float = BUDGET_SHARE) -> int:
    """Reads per poll that keep the wait within ``share`` of the key's budget."""
    return max(1, int(limit / window_seconds * poll_interval * share))


def encode_ids(ids: Iterable[int]) -> list[list[int]]:
    """Message ids as ``[[first, count], ...]`` runs: a batch's ids are mostly consecutive, so this is small."""
    runs: list[list[int]] = []
    for value in sorted(set(ids)):
        if runs and runs[-1][0] + runs[-1][1] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    return runs


def decode_ids(runs: Iterable[Sequence[int]]) -> list[int]:
    """The ids of :func:`encode_ids`' runs."""
    return [first + offset for first, count in runs for offset in range(count)]


class BatchWait(Wait):
    """Wait until every message of a batch reaches a target status, or too many failed.

    :param message_ids: the accepted messages.
    :param target_statuses: e.g. ``["delivered"]`` (also met by statuses further along).
    :param max_failed_ratio: the share of failed messages (0-1) that still counts as success;
        checked as failures come in, so a wait over budget fails early. ``None``: any share.
    :param reads_per_poll: messages read per poll, at most.
    """

    def __init__(
        self,
        message_ids: Iterable[int],
        target_statuses: Iterable[str] | str,
        max_failed_ratio: float | None = None,
        reads_per_poll: int = 100,
    ) -> None:
        ids = sorted({check_id(value, "message_ids") for value in message_ids})
        self.target_statuses = check_target_statuses(target_statuses)
        self.max_failed_ratio = check_failed_ratio(max_failed_ratio)
        self.reads_per_poll = max(1, int(reads_per_poll))
        self._pending = deque(ids)
        self.total = len(ids)
        self.reached = 0
        self.failed = 0
        self.failures: list[str] = []

    def describe(self, total: int | None = None) -> str:
        """``the batch's 5,000 Waslah messages``."""
        return f"the batch's {self.total if total is None else total:,} Waslah messages"

    def totals(self) -> dict[str, Any]:
        """``{"total", "reached", "failed", "pending", "target", "failures"}`` (JSON-safe)."""
        return {
            "total": self.total,
            "reached": self.reached,
            "failed": self.failed,
            "pending": len(self._pending),
            "target": " or ".join(self.target_statuses),
            "failures": list(self.failures),
        }

    def _take(self, message_id: int, message: Message) -> None:
        state = message_state(message, self.target_statuses)
        if state == "success":
            self.reached += 1
        elif state == "failed":
            self.failed += 1
            if len(self.failures) < SHOWN_FAILURES:
                self.failures.append(failed_message_text(message))
        else:
            self._pending.append(message_id)

    def _poll(self) -> Generator[Fetch | FetchMany, Reply, Verdict]:
        ids = [self._pending.popleft() for _ in range(min(self.reads_per_poll, len(self._pending)))]
        replies = yield from self._fetch_many([calls.get_message(message_id) for message_id in ids])
        error: Exception | None = None
        for message_id, reply in zip(ids, replies, strict=True):
            if isinstance(reply, Failed):
                error = error or reply.error
                self._pending.append(message_id)
            else:
                self._take(message_id, reply)
        verdict = self.decide(self.totals())
        if error is not None and not verdict.is_final:
            self._raise(error)
        return verdict

    def decide_fields(self, fields: dict[str, Any]) -> Verdict:
        """The verdict for a poll's ``totals`` (e.g. carried by a trigger event)."""
        return self.decide(fields["totals"])

    def decide(self, totals: dict[str, Any]) -> Verdict:
        """``failed`` once the failed share passes ``max_failed_ratio``; ``success`` when none is pending."""
        total, failed, pending = int(totals["total"]), int(totals["failed"]), int(totals["pending"])
        fields = {"totals": dict(totals)}
        line = f"{int(totals['reached']):,} / {total:,} {totals['target']}, {failed:,} failed, {pending:,} pending"
        if total and self.max_failed_ratio is not None and failed / total > self.max_failed_ratio:
            named = "; ".join(totals.get("failures") or [])
            return Verdict(
                "failed",
                f"{failed:,} of {total:,} batch messages failed ({failed / total:.1%}), more than "
                f"max_failed_ratio={self.max_failed_ratio:g}: {named}",
                fields,
            )
        # From the totals, not this object: after a deferral the operator decides without the ids.
        what = self.describe(total)
        if pending == 0:
            return Verdict("success", f"{what}: {line}", fields)
        return Verdict("waiting", f"{what}: {line}", fields)
