"""Fixtures for the example DAGs: copy a file from ``dags_examples/`` into the test dags folder and run it.

``dag.test()`` runs only DAGs that live in the configured dags folder (the DAG bundle), so each
example is copied there as is, exactly the file a user would copy.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.airflow_support import DagResult, DagRunner

EXAMPLES = Path(__file__).resolve().parents[2] / "dags_examples"
EXAMPLE_IDS = (
    "waslah_daily_sales_report",
    "waslah_payment_reminders",
    "waslah_invoice_pdf",
    "waslah_failure_alert",
    "waslah_scheduled_message",
    "waslah_auto_reply",  # inbound: scheduled on a Waslah asset (run for real in tests/stack/)
    "waslah_keyword_router",
    "waslah_due_invoice_reminders",
    "waslah_payout_approval",  # human-in-the-loop: answered on WhatsApp (test_payout_approval.py, tests/stack/)
)


@pytest.fixture
def run_example(dag_runner: DagRunner) -> Callable[[str], DagResult]:
    """``run_example(dag_id)``: copy ``dags_examples/<dag_id>.py`` to the dags folder, ``dag.test()`` it."""

    def run(dag_id: str, **test_kwargs: Any) -> DagResult:
        target = dag_runner.dags_folder / f"{dag_id}.py"
        shutil.copyfile(EXAMPLES / f"{dag_id}.py", target)
        return dag_runner.run(dag_id, path=target, **test_kwargs)

    return run


def messages_to(ledger: dict[str, list[dict[str, Any]]], recipient: str) -> list[dict[str, Any]]:
    """The ledger entries of one recipient (empty when it got nothing)."""
    return ledger.get(recipient, [])
