"""Three Celery workers, six mapped batch tasks, one API key: the budget shared through Redis, or not.

Each run sends ``TASKS`` x ``ROWS`` text messages with :class:`WaslahBatchSendOperator` mapped over
six row lists, so the three workers (two slots each) send at once on one key whose budget is
``BUDGET`` requests per ``WINDOW`` s. The same DAG runs twice, on two keys of the same plan:

(a) ``waslah_shared``: the connection's ``rate_limit_storage`` points at Redis, so all six
    processes draw from one budget: it must be used (>= 90% of what it allows over the run)
    and never exceeded (no 429);
(b) ``waslah_local``: no storage, each process paces itself alone, six times the budget between
    them: Waslah answers 429 and the tasks pause (and retry); nothing is lost or sent twice.

The budget share is what the emulator's request log shows: the messages accepted over what the
budget allows in the span from the run's first send to its last: ``BUDGET`` at once, then
``BUDGET`` per ``WINDOW`` (ideal fixed-window traffic, a full window's requests at the start of
each window, scores 100%). Both runs' figures are printed side by side and written to
``shared_budget.md`` in the test's temp dir.
"""

from __future__ import annotations

import string
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from airflow_provider_waslah.emulator import EmulatorHandle
from tests.cluster.deployment import BUDGET, WINDOW, Deployment

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

TASKS = 6  # 3 workers x 2 slots
ROWS = 200
MESSAGES = TASKS * ROWS
SEND_ROUTE = "/api/v1/messages*"

DAG_TEMPLATE = string.Template("""\
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_waslah.operators.waslah import WaslahBatchSendOperator

with DAG("$dag_id", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    WaslahBatchSendOperator.partial(
        task_id="send",
        waslah_conn_id="$conn_id",
        instance_key="demo",
        to="{{ row.phone }}",
        text="{{ row.text }}",
        row_key="id",
        progress_interval=5,
        retries=6,
        retry_delay=timedelta(seconds=2),
    ).expand(rows=$rows)
""")


@dataclass(frozen=True)
class Figures:
    """One run, as the emulator and the metadata DB saw it."""

    label: str
    requests: int
    accepted: int
    rejected_429: int
    wall_seconds: float
    span_seconds: float
    tries: int
    hosts: tuple[str, ...]

    @property
    def budget_share(self) -> float:
        """Messages accepted over what the budget allows from the first send to the last."""
        return self.accepted / (BUDGET * (1 + self.span_seconds / WINDOW))


def run_budget(cluster: Deployment, conn_id: str, prefix: str, label: str) -> tuple[Figures, dict[str, int]]:
    """Run the DAG on ``conn_id``; return its figures and how often each of its numbers is in the ledger."""
    dag_id = f"waslah_cluster_budget_{conn_id.removeprefix('waslah_')}"
    rows = [
        [
            {"id": f"{task}-{row}", "phone": number(prefix, task, row), "text": f"{dag_id} {task}-{row}"}
            for row in range(ROWS)
        ]
        for task in range(TASKS)
    ]
    cluster.write_dag(dag_id, DAG_TEMPLATE.substitute(dag_id=dag_id, conn_id=conn_id, rows=repr(rows)))
    key: EmulatorHandle = cluster.keys[conn_id]
    run = cluster.run(dag_id, timeout=400)
    instances = cluster.task_instances(dag_id, run.run_id, "send")
    assert run.state == "success", (run, instances)
    sends = cluster.emulator.api_requests("POST", SEND_ROUTE, key=key.api_key)
    statuses = Counter(entry["status"] for entry in sends)
    starts = [datetime.fromisoformat(entry["time"]).timestamp() for entry in sends]
    ledger = cluster.emulator.ledger()
    figures = Figures(
        label=label,
        requests=len(sends),
        accepted=sum(count for status, count in statuses.items() if 200 <= status < 300),
        rejected_429=statuses[429],
        wall_seconds=run.wall_seconds,
        span_seconds=max(starts) - min(starts),
        tries=sum(instance.try_number for instance in instances),
        hosts=tuple(sorted(cluster.hosts(dag_id, run.run_id, "send"))),
    )
    counts = {number: len(messages) for number, messages in ledger.items() if number.startswith(prefix)}
    return figures, counts


def number(prefix: str, task: int, row: int) -> str:
    return f"{prefix}{task}{row:05d}"


def expected_numbers(prefix: str) -> set[str]:
    return {number(prefix, task, row) for task in range(TASKS) for row in range(ROWS)}


def report(runs: list[Figures], path: Path) -> str:
    """The figures as a Markdown table (for the README), written to ``path``."""
    lines = [
        f"{MESSAGES:,} messages: {TASKS} mapped batch tasks x {ROWS} on 3 Celery workers x 2 slots, one key with a "
        f"budget of {BUDGET} requests per {WINDOW:g} s window; wall: the DAG run, sending: first to last send",
        "",
        "| limiter | requests | 429s | wall s | sending s | budget share | task tries |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for figures in runs:
        lines.append(
            f"| {figures.label} | {figures.requests:,} | {figures.rejected_429:,} | {figures.wall_seconds:.0f} | "
            f"{figures.span_seconds:.0f} | {figures.budget_share:.0%} | {figures.tries} |"
        )
    text = "\n".join(lines)
    path.write_text(text + "\n")
    return text


def test_three_workers_share_one_budget_through_redis(
    cluster: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared, shared_counts = run_budget(cluster, "waslah_shared", "628111", "shared (`rate_limit_storage`, Redis)")
    local, local_counts = run_budget(cluster, "waslah_local", "628112", "per process (no storage)")
    table = report([shared, local], tmp_path / "shared_budget.md")
    with capsys.disabled():
        print(f"\nshared budget on CeleryExecutor ({tmp_path / 'shared_budget.md'}):\n{table}")
        print(f"workers that ran the tasks: shared {shared.hosts}, per process {local.hosts}")

    # Both runs: every message exactly once, nothing lost, nothing doubled.
    assert shared_counts == dict.fromkeys(expected_numbers("628111"), 1)
    assert local_counts == dict.fromkeys(expected_numbers("628112"), 1)
    assert shared.accepted == local.accepted == MESSAGES
    # The tasks ran on all three workers.
    assert len(shared.hosts) == len(local.hosts) == 3, (shared.hosts, local.hosts)
    # (a) The shared budget: never exceeded, and used.
    assert shared.rejected_429 == 0
    assert shared.budget_share >= 0.90, shared
    # (b) Six processes on one key without shared storage: Waslah refused some (the reason for (a)).
    assert local.rejected_429 > 0, local
    # The storage URL's password and the API keys never reach a task log.
    logs = [path for path in (cluster.stack.home / "logs").rglob("*.log") if path.is_file()]
    assert logs
    for secret in (cluster.redis.password, cluster.keys["waslah_shared"].api_key):
        assert not [str(path) for path in logs if secret in path.read_text(errors="replace")], "a secret leaked"
