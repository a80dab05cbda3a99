"""Proven for real: deferrable sensors waiting in Airflow's own triggerer process.

Airflow's api-server, scheduler, dag-processor and triggerer run as processes (LocalExecutor,
SQLite); the emulator runs as an HTTP server in the test process, slowed down so that delivery
takes about 17 s and the deferral is observable in the metadata DB. Three runs go at
once:

- a message that gets delivered: the task is seen ``deferred``, then ``success``;
- a message to an unreachable number: deferred, then the task fails with Waslah's reason in its
  log, not retried;
- a message still unread when the deferral times out: ``soft_fail`` makes the task ``skipped``.
"""

from __future__ import annotations

import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from airflow_provider_waslah.emulator import UNREACHABLE_NUMBER, EmulatorHandle, EmulatorServer, wait_until
from tests.stack.airflow_stack import AirflowStack

pytestmark = [pytest.mark.stack, pytest.mark.timeout(300)]

TIME_SCALE = 5.0  # real seconds per emulated second
# Emulated seconds after sending: with TIME_SCALE, sent (or failed) 15 s, delivered 17.5 s, read
# 30 s after sending, so every sensor's first poke finds its message pending and defers.
LIFECYCLE = {"sent": 3.0, "delivered": 3.5, "read": 6.0}
FINAL = {"success", "failed", "skipped", "upstream_failed", "removed"}

DAG_TEMPLATE = """\
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_waslah.hooks.waslah import WaslahHook
from airflow_provider_waslah.sensors.waslah import WaslahMessageSensor

with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):

    @task
    def send():
        hook = WaslahHook()
        # A careless print of the secrets: the worker's log masking must hide them.
        conn = hook.get_connection("waslah_default")
        print("careless:", conn.password, conn.extra_dejson["webhook_secret"], hook.client)
        receipt = hook.send_text(instance_key="demo", to="{to}", text="Pesanan Anda dikirim")
        return {{"message_id": receipt.id, "status": receipt.status}}

    send() >> WaslahMessageSensor(
        task_id="wait",
        message_id="{{{{ ti.xcom_pull('send')['message_id'] }}}}",
        deferrable=True,
        poke_interval=2,
        retries=1,
        retry_delay=timedelta(seconds=1),
        {extra}
    )
"""
WEBHOOK_SECRET = "whsec_stack_test_0123456789"
DAGS = {  # dag_id: (recipient, extra sensor arguments)
    "waslah_stack_delivered": ("081234567890", 'target_statuses=["delivered"],'),
    "waslah_stack_failed": (UNREACHABLE_NUMBER, ""),
    "waslah_stack_timeout": ("081234567891", 'target_statuses=["read"], timeout=8, soft_fail=True,'),
}


def test_deferred_sensors_in_a_real_triggerer(tmp_path: Path) -> None:
    started = time.monotonic()
    with EmulatorServer(time_scale=TIME_SCALE, seed={"lifecycle": LIFECYCLE}) as server:
        emulator = server.handle()
        connection = emulator.airflow_connection(webhook_secret=WEBHOOK_SECRET)
        home = tmp_path / "airflow"
        (home / "dags").mkdir(parents=True)
        for dag_id, (to, extra) in DAGS.items():
            source = DAG_TEMPLATE.format(dag_id=dag_id, to=to, extra=extra)
            (home / "dags" / f"{dag_id}.py").write_text(textwrap.dedent(source))
        stack = AirflowStack(home, {"AIRFLOW_CONN_WASLAH_DEFAULT": connection})
        try:
            with stack:
                stack.wait_for_dags(*DAGS)
                stack.wait_for_jobs("SchedulerJob", "TriggererJob")
                booted = time.monotonic() - started
                run_and_check(stack, emulator, booted)
        except BaseException:
            stack.dump_logs()
            raise


def run_and_check(stack: AirflowStack, emulator: EmulatorHandle, booted: float) -> None:
    runs = stack.trigger(*DAGS)
    seen: dict[str, list[str]] = {dag_id: [] for dag_id in DAGS}

    def all_final() -> bool:
        stack.check_alive()
        for dag_id, run_id in runs.items():
            state, _ = stack.task_state(dag_id, run_id, "wait")
            if state and (not seen[dag_id] or seen[dag_id][-1] != state):
                seen[dag_id].append(state)
        return all(states and states[-1] in FINAL for states in seen.values())

    wait_until(all_final, 180, 0.25, f"task instances final (seen so far: {seen})")
    print(f"\nstack up and DAGs parsed in {booted:.0f} s; task states seen: {seen}")

    delivered, failed, timed_out = (seen[dag_id] for dag_id in DAGS)
    # 1. Deferred in the triggerer, then success once the emulator delivered.
    ids = {dag_id: stack.xcom(dag_id, run_id, "send")["message_id"] for dag_id, run_id in runs.items()}
    assert "deferred" in delivered and delivered[-1] == "success", delivered
    log = stack.task_log("waslah_stack_delivered", runs["waslah_stack_delivered"], "wait")
    assert "Pausing task as DEFERRED" in log
    assert "; waiting for delivered" in log  # the trigger's own polls, logged into the task's trigger log
    assert f"Waslah message {ids['waslah_stack_delivered']} is delivered" in log
    assert stack.xcom("waslah_stack_delivered", runs["waslah_stack_delivered"], "wait")["status"] == "delivered"

    # 2. Deferred, then failed with the provider's message, and not retried although retries=1.
    assert "deferred" in failed, failed
    state, try_number = stack.task_state("waslah_stack_failed", runs["waslah_stack_failed"], "wait")
    assert (state, try_number) == ("failed", 1), failed
    log = stack.task_log("waslah_stack_failed", runs["waslah_stack_failed"], "wait")
    reason = f"Nomor {UNREACHABLE_NUMBER} tidak terdaftar di WhatsApp"
    assert f"Waslah message {ids['waslah_stack_failed']} to {UNREACHABLE_NUMBER} failed: {reason}" in log
    assert "WaslahMessageFailedError" in log and "Pausing task as DEFERRED" in log

    # 3. The deferral timed out; soft_fail turned it into a skip.
    assert "deferred" in timed_out and timed_out[-1] == "skipped", timed_out

    # The triggerer writes its part of the log as the trigger ends, which can be after the skip.
    def timeout_logged() -> str:
        text = stack.task_log("waslah_stack_timeout", runs["waslah_stack_timeout"], "wait")
        return text if "Trigger cancelled due to timeout" in text else ""

    log = wait_until(timeout_logged, 30, 0.5, "the trigger's timeout in the task log")
    assert "; waiting for read" in log

    statuses = Counter(entry["status"] for entry in emulator.api_requests())
    assert statuses[429] == 0, statuses

    # 4. Real worker and triggerer logs: the careless print shows "***", never the secrets.
    logs = [path for path in (stack.home / "logs").rglob("*") if path.is_file()]
    texts = {path: path.read_text(errors="replace") for path in logs}
    assert any("careless: ***" in text for text in texts.values()), "the send task's log was not found"
    for secret in (emulator.api_key, WEBHOOK_SECRET):
        leaked = [str(path) for path, text in texts.items() if secret in text]
        assert not leaked, f"a secret appears in {leaked}"
