"""One try of a batch, Airflow-free: resume from the checkpoint, send what is left, count and list.

:class:`BatchRun` takes the checked rows (:class:`~.prepare.Preparation`) and the checkpoint.
Each row is then one of:

- ``resumed``: an earlier try's checkpoint says Waslah accepted it: not sent again;
- ``unknown`` (from an earlier try): its answer was lost, or the try that sent it died before
  Waslah answered: listed, not sent, unless ``resend_unknown`` names it (or is ``True``);
- to send: never accepted (new, refused earlier, or never reached).

:meth:`BatchRun.send` hands the rows to send to a :class:`~.sender.BatchSender` and returns a
:class:`BatchResult` with the totals (``rows = sent + resumed + failed + skipped + unknown``
once every row had its turn) and the rows worth a look (failed, unknown, skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_waslah.batch.checkpoint import ACCEPTED, RESERVED, UNKNOWN, Checkpoint, Resume
from airflow_provider_waslah.batch.prepare import Preparation, PreparedRow
from airflow_provider_waslah.batch.sender import BatchSender, Outcome, SendReport
from airflow_provider_waslah.recipients import mask_number

#: Rows listed in the result (and its XCom) at most; all are counted, and all are in the checkpoint.
MAX_LISTED = 100


@dataclass
class BatchResult:
    """What one try did, JSON-safe through :meth:`to_xcom`."""

    totals: dict[str, int]
    problems: list[dict[str, Any]]
    problems_total: int
    checkpoint: str
    parts: int
    stopped_by: BaseException | None = None
    message_ids: list[int] = field(default_factory=list)

    @property
    def unknown_rows(self) -> list[dict[str, Any]]:
        """The listed rows whose outcome is unknown."""
        return [problem for problem in self.problems if problem["status"] == UNKNOWN]

    def to_xcom(self) -> dict[str, Any]:
        """``{"totals", "results", "problems", "problems_truncated"}``."""
        return {
            "totals": dict(self.totals),
            "results": {"checkpoint": self.checkpoint, "parts": self.parts},
            "problems": list(self.problems),
            "problems_truncated": self.problems_total > len(self.problems),
        }


def _problem(row: int, key: str, to: str | None, status: str, error: str | None) -> dict[str, Any]:
    return {"row": row, "key": key, "to": mask_number(to) if to else None, "status": status, "error": error}


class BatchRun:
    """Decides, row by row, what this try sends; then sends it.

    :param preparation: the checked rows (spooled) and the invalid ones (already reported).
    :param checkpoint: the checkpoint of this task instance; loaded here.
    :param resend_unknown: ``True`` to send rows whose outcome is unknown, or the keys of those to send.
    :param collect_ids: keep every accepted message id (earlier tries' too), for a wait on the batch.
    """

    def __init__(
        self,
        preparation: Preparation,
        checkpoint: Checkpoint,
        *,
        resend_unknown: bool | Collection[str] = False,
        collect_ids: bool = False,
    ) -> None:
        self.preparation = preparation
        self.checkpoint = checkpoint
        self.resume: Resume = checkpoint.load()
        self.resend_unknown = resend_unknown
        self.collect_ids = collect_ids
        self.resumed = 0
        self.held: list[dict[str, Any]] = []
        self.held_count = 0
        self.resumed_ids: list[int] = []
        self.to_send = 0
        self._count()

    def _forced(self, key: str) -> bool:
        if isinstance(self.resend_unknown, bool):
            return self.resend_unknown
        return key in self.resend_unknown

    def _decide(self, row: PreparedRow) -> str:
        state = self.resume.state(row.key)
        if state is None or state.status not in (ACCEPTED, UNKNOWN, RESERVED):
            return "send"
        if state.status == ACCEPTED:
            return "resumed"
        return "send" if self._forced(row.key) else "held"

    def _count(self) -> None:
        for row in self.preparation.spool:
            decision = self._decide(row)
            if decision == "send":
                self.to_send += 1
            elif decision == "resumed":
                self.resumed += 1
                state = self.resume.rows[row.key]
                if self.collect_ids and state.message_id is not None:
                    self.resumed_ids.append(int(state.message_id))
            else:
                self.held_count += 1
                if len(self.held) < MAX_LISTED:
                    detail = self.resume.rows[row.key].detail
                    self.held.append(_problem(row.number, row.key, row.to, UNKNOWN, f"earlier try: {detail}"))

    def rows_to_send(self) -> Iterator[PreparedRow]:
        """The rows this try sends, in input order."""
        return (row for row in self.preparation.spool if self._decide(row) == "send")

    def send(self, make_sender: Callable[[int], BatchSender]) -> BatchResult:
        """Send the rows left with the sender ``make_sender(rows to send)`` builds; return the result."""
        report = make_sender(self.to_send).run(self.rows_to_send()) if self.to_send else SendReport()
        return self.result(report)

    def result(self, report: SendReport) -> BatchResult:
        """Totals and listed rows for ``report`` (what the sender did)."""
        invalid = self.preparation.invalid_count
        totals = {
            "rows": self.preparation.rows,
            "sent": report.sent,
            "failed": report.failed,
            "skipped": invalid,
            "unknown": report.unknown + self.held_count,
            "resumed": self.resumed,
        }
        problems = [_problem(*self._outcome_fields(outcome)) for outcome in report.problems]
        problems += self.held
        problems += [
            _problem(row.number, row.key or "", None, "skipped", row.reason) for row in self.preparation.invalid
        ]
        problems_total = report.failed + report.unknown + self.held_count + invalid
        problems.sort(key=lambda item: item["row"])
        return BatchResult(
            totals=totals,
            problems=problems[:MAX_LISTED],
            problems_total=problems_total,
            checkpoint=self.checkpoint.location,
            parts=self.checkpoint.parts,
            stopped_by=report.stopped_by,
            message_ids=self.resumed_ids + report.message_ids,
        )

    @staticmethod
    def _outcome_fields(outcome: Outcome) -> tuple[int, str, str, str, str]:
        row = outcome.row
        return row.number, row.key, row.to, outcome.status, f"{type(outcome.error).__name__}: {outcome.error}"
