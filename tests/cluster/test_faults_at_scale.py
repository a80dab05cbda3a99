"""1,000 sends on CeleryExecutor while 20% of the send requests go wrong: each message once, or flagged.

One DAG run sends, on three Celery workers at once: ``SINGLES`` mapped
:class:`WaslahSendTextOperator` tasks, ``BATCHES`` mapped :class:`WaslahBatchSendOperator` tasks
of ``BATCH_ROWS`` rows and ``BROADCASTS`` mapped :class:`WaslahBroadcastOperator` tasks of
``RECIPIENTS`` recipients. A batch try stops at its first unknown outcome and the next try
resumes from the checkpoint, so a batch takes about one try per 40 rows here: three batches
retry side by side on the workers, where one batch of 600 rows would retry ~15 times in a row.
The emulator injects the single-process soak's faults (``tests/waiting/test_fault_soak.py``) at
20% of ``POST /api/v1/messages*``: 502, 503, 429 with ``Retry-After``, an answer after the
client's read timeout, a dropped connection, a lost response and an unreadable 2xx.

What must hold, message by message:

- a single send is in the ledger exactly once with the id its task returned, or its task failed
  with the provider's "outcome unknown" error (``WaslahSendOutcomeUnknownError``, "may have
  queued"), and then it is in the ledger at most once;
- a batch row is in the ledger exactly once, or the batch's last try lists it as ``unknown``
  (an earlier try stopped on ``WaslahSendOutcomeUnknownError`` with it in flight; the checkpoint
  kept every later try from sending it again), and then it is in the ledger at most once;
- a broadcast recipient is in the ledger exactly once: a broadcast whose answer was lost is
  found by name on the retry and not sent again.
"""

from __future__ import annotations

import string
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.cluster.deployment import FAULTS_INSTANCE, Deployment, TaskInstance
from tests.waiting.test_fault_soak import FAULT_SHARE, FAULTS, ROUTE

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

CONN_ID = "waslah_faults"
DAG_ID = "waslah_cluster_faults"
SINGLES = 100
BATCHES = 3
BATCH_ROWS = 200
BROADCASTS = 3
RECIPIENTS = 100
MESSAGES = SINGLES + BATCHES * BATCH_ROWS + BROADCASTS * RECIPIENTS
UNKNOWN_TEXT = "may have queued"
TASKS = ("single", "batch", "broadcast")

DAG_TEMPLATE = string.Template("""\
from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_waslah.operators.waslah import (
    WaslahBatchSendOperator,
    WaslahBroadcastOperator,
    WaslahSendTextOperator,
)

with DAG("$dag_id", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
    common = dict(waslah_conn_id="$conn_id", instance_key="$instance", retry_delay=timedelta(0))
    # A definite failure (502 after every retry of the client) is retried; an unknown outcome is not.
    WaslahSendTextOperator.partial(task_id="single", retries=1, **common).expand_kwargs($singles)
    # Each try stops at its first unknown outcome; the next resumes from the checkpoint.
    WaslahBatchSendOperator.partial(
        task_id="batch",
        row_key="id",
        to="{{ row.phone }}",
        text="{{ row.text }}",
        progress_interval=5,
        retries=30,
        **common,
    ).expand(rows=$batches)
    WaslahBroadcastOperator.partial(
        task_id="broadcast", text="broadcast", delay_min_sec=0, delay_max_sec=0, retries=5, **common
    ).expand(recipients=$broadcasts)
""")


def single_number(index: int) -> str:
    return f"628131{index:05d}"


def batch_number(batch: int, index: int) -> str:
    return f"62813{2 + batch}{index:05d}"


def broadcast_number(broadcast: int, index: int) -> str:
    return f"62814{broadcast}{index:05d}"


def dag_source() -> str:
    """The DAG file, its inputs written out as literals."""
    singles = [{"to": single_number(i), "text": f"single {i}"} for i in range(SINGLES)]
    batches = [
        [{"id": f"row-{i}", "phone": batch_number(b, i), "text": f"batch {i}"} for i in range(BATCH_ROWS)]
        for b in range(BATCHES)
    ]
    broadcasts = [[broadcast_number(b, i) for i in range(RECIPIENTS)] for b in range(BROADCASTS)]
    return DAG_TEMPLATE.substitute(
        dag_id=DAG_ID,
        conn_id=CONN_ID,
        instance=FAULTS_INSTANCE,
        singles=repr(singles),
        batches=repr(batches),
        broadcasts=repr(broadcasts),
    )


def test_a_thousand_sends_under_faults_on_three_workers(
    cluster: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = cluster.keys[CONN_ID]
    cluster.write_dag(DAG_ID, dag_source())
    for fault in FAULTS:
        cluster.emulator.add_fault(route=ROUTE, rate=FAULT_SHARE / len(FAULTS), **fault)
    started = time.monotonic()
    try:
        run = cluster.run(DAG_ID, timeout=450)
    finally:
        cluster.emulator.clear_faults()
    elapsed = time.monotonic() - started

    ledger = {n: messages for n, messages in cluster.emulator.ledger().items() if n.startswith(("62813", "62814"))}
    sends = cluster.emulator.api_requests("POST", "/api/v1/messages*")
    sends = [entry for entry in sends if entry.get("api_key_prefix") in (key.api_key[:12], None)]
    fired = Counter(
        f"status {entry['status']}" if entry["fault"]["kind"] == "status" else entry["fault"]["kind"]
        for entry in sends
        if entry.get("fault")
    )

    # 0. Nothing twice, nothing that was not asked for.
    duplicates = {number: len(messages) for number, messages in ledger.items() if len(messages) > 1}
    assert duplicates == {}
    expected = {single_number(i) for i in range(SINGLES)}
    expected |= {batch_number(b, i) for b in range(BATCHES) for i in range(BATCH_ROWS)}
    expected |= {broadcast_number(b, i) for b in range(BROADCASTS) for i in range(RECIPIENTS)}
    assert set(ledger) <= expected

    # 1. Single sends: in the ledger with the task's message id, or failed as "outcome unknown".
    singles = cluster.task_instances(DAG_ID, run.run_id, "single")
    assert [ti.map_index for ti in singles] == list(range(SINGLES))
    unknown = []  # numbers whose outcome a task reported unknown
    for ti in singles:
        queued = ledger.get(single_number(ti.map_index), [])
        if ti.state == "success":
            xcom = cluster.stack.xcom(DAG_ID, run.run_id, "single", ti.map_index)
            assert [(m["message_id"], m["text"]) for m in queued] == [(xcom["message_id"], f"single {ti.map_index}")]
        else:
            assert ti.state == "failed", ti
            log = cluster.stack.task_log(DAG_ID, run.run_id, "single", ti.map_index)
            assert "WaslahSendOutcomeUnknownError" in log and UNKNOWN_TEXT in log, (ti, log[-3000:])
            unknown.append(single_number(ti.map_index))
    unknown_singles = len(unknown)

    # 2. Batches: every row in the ledger once, or listed by the last try as unknown (its checkpoint
    #    held it back: no try sent it again); the tries that met an unknown outcome failed with it.
    batches = cluster.task_instances(DAG_ID, run.run_id, "batch")
    assert [ti.state for ti in batches] == ["success"] * BATCHES, batches
    for ti in batches:
        result = cluster.stack.xcom(DAG_ID, run.run_id, "batch", ti.map_index)
        totals, problems = result["totals"], result["problems"]
        held = {problem["key"] for problem in problems if problem["status"] == "unknown"}
        assert not result["problems_truncated"] and len(held) == totals["unknown"], result
        assert totals["sent"] + totals["resumed"] + totals["unknown"] == BATCH_ROWS, totals
        for index in range(BATCH_ROWS):
            number = batch_number(ti.map_index, index)
            queued = [m["text"] for m in ledger.get(number, [])]
            if f"row-{index}" in held:
                assert len(queued) <= 1, (number, queued)
                unknown.append(number)
            else:
                assert queued == [f"batch {index}"], (number, queued)
        if held:
            log = cluster.stack.task_log(DAG_ID, run.run_id, "batch", ti.map_index)
            assert "WaslahSendOutcomeUnknownError" in log and UNKNOWN_TEXT in log

    # 3. Broadcasts: every recipient exactly once, whatever the retries did.
    broadcasts = cluster.task_instances(DAG_ID, run.run_id, "broadcast")
    assert [ti.state for ti in broadcasts] == ["success"] * BROADCASTS, broadcasts
    for b in range(BROADCASTS):
        assert all(len(ledger.get(broadcast_number(b, i), [])) == 1 for i in range(RECIPIENTS)), b

    # Every message is in the ledger, or reported unknown (and then maybe in the ledger too).
    unknown_queued = sum(1 for number in unknown if number in ledger)
    assert len(ledger) + len(unknown) - unknown_queued == MESSAGES

    hosts = set().union(*(cluster.hosts(DAG_ID, run.run_id, task) for task in TASKS))

    def tries(instances: list[TaskInstance]) -> int:
        return sum(ti.try_number for ti in instances)

    figures = (
        f"faults at scale on CeleryExecutor: {MESSAGES:,} messages ({SINGLES} mapped single sends, {BATCHES} mapped "
        f"batches of {BATCH_ROWS} rows, {BROADCASTS} mapped broadcasts of {RECIPIENTS}) on 3 Celery workers, "
        f"{FAULT_SHARE:.0%} of send requests faulted\n"
        f"  send requests {len(sends):,}; faults {sum(fired.values())}: {dict(sorted(fired.items()))}\n"
        f"  in the ledger {len(ledger):,}, duplicates 0; outcome unknown {len(unknown)} ({unknown_singles} single-send "
        f"tasks failed with it, {len(unknown) - unknown_singles} batch rows marked unknown), {unknown_queued} of "
        f"them queued\n"
        f"  task tries: single {tries(singles)}, batch {tries(batches)}, broadcast {tries(broadcasts)}; DAG run "
        f"{run.wall_seconds:.0f} s ({elapsed:.0f} s from trigger); hosts {sorted(hosts)}"
    )
    (tmp_path / "faults_at_scale.txt").write_text(figures + "\n")
    with capsys.disabled():
        print(f"\n{figures}")
    assert hosts == set(cluster.stack.worker_names())
    assert set(fired) >= {"status 502", "status 503", "status 429", "answer_late", "drop_connection", "lose_response"}
