"""The deployment both cluster scenarios run on: the emulator, PostgreSQL, Redis and a :class:`CeleryStack`.

The emulator runs in its own process (as Waslah would, sharing no interpreter with the test),
50x faster than real time for message life cycles, with a short rate-limit window. It holds
three API keys, each behind an Airflow connection the workers read from their environment:

- ``waslah_shared`` and ``waslah_local``: keys of a Pro user whose budget is :data:`BUDGET`
  requests per :data:`WINDOW` s. ``waslah_shared`` has ``rate_limit_storage`` (Redis database
  :data:`BUDGET_REDIS_DB`), ``waslah_local`` has not: the per-process limiters.
- ``waslah_faults``: a key of an Enterprise user with a budget the fault scenario never reaches,
  and a read timeout of 1 s (the late answers come after 1.5 s).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_waslah.emulator import EmulatorHandle, wait_until
from airflow_provider_waslah.emulator.process import emulator_process
from tests.cluster.celery_stack import CeleryStack
from tests.cluster.services import PostgresServer
from tests.redis_server import RedisServer, redis_server

#: The emulator's rate-limit window, in seconds. The shared budget's moving window is Waslah's
#: plus a safety margin (0.2 s here), rounded up to whole seconds (``client.shared_budget.window_for``):
#: 4.8 s makes it 5 s, spending 96% of the budget, as Waslah's 60 s window does (62 s, 97%). A 5 s
#: window would make it 6 s and spend 83%: an artefact of the short window, not what users get.
WINDOW = 4.8
#: Requests per window for the budget keys (the Pro plan's limit in this emulator).
BUDGET = 150
#: Real seconds per emulated second for message life cycles (the rate window is in real seconds).
TIME_SCALE = 0.02
#: The Redis databases of the Celery broker and of the shared budget.
BROKER_REDIS_DB, BUDGET_REDIS_DB = 0, 1
#: The instance of the fault scenario's user.
FAULTS_INSTANCE = "faults"
FINAL_RUN_STATES = ("success", "failed")


@dataclass(frozen=True)
class TaskInstance:
    """One row of ``task_instance``."""

    map_index: int
    state: str | None
    try_number: int
    hostname: str | None


@dataclass(frozen=True)
class DagRun:
    """A finished DAG run: its id, final state and wall time (from the metadata DB)."""

    run_id: str
    state: str
    wall_seconds: float


@dataclass
class Deployment:
    """What the scenarios use: the stack, the emulator's control API and one handle per connection."""

    stack: CeleryStack
    emulator: EmulatorHandle
    redis: RedisServer
    keys: dict[str, EmulatorHandle]

    def write_dag(self, dag_id: str, source: str) -> None:
        """Put a DAG file in the stack's DAG folder and wait until the dag-processor has serialised it."""
        (self.stack.dags / f"{dag_id}.py").write_text(source)
        self.stack.wait_for_dags(dag_id, timeout=120)

    def run(self, dag_id: str, timeout: float = 300) -> DagRun:
        """Trigger one run of ``dag_id`` and wait until it is ``success`` or ``failed``."""
        run_id = self.stack.trigger(dag_id)[dag_id]

        def final() -> tuple[Any, ...]:
            self.stack.check_alive()
            rows = self.stack.query(
                "SELECT state, start_date, end_date FROM dag_run WHERE dag_id=? AND run_id=?", dag_id, run_id
            )
            return rows[0] if rows and rows[0][0] in FINAL_RUN_STATES and rows[0][2] is not None else ()

        state, started, ended = wait_until(final, timeout, 1.0, f"run of {dag_id} finished")
        return DagRun(run_id, state, (ended - started).total_seconds())

    def task_instances(self, dag_id: str, run_id: str, task_id: str) -> list[TaskInstance]:
        """The task's instances in the run, by map index."""
        rows = self.stack.query(
            "SELECT map_index, state, try_number, hostname FROM task_instance "
            "WHERE dag_id=? AND run_id=? AND task_id=? ORDER BY map_index",
            dag_id,
            run_id,
            task_id,
        )
        return [TaskInstance(*row) for row in rows]

    def hosts(self, dag_id: str, run_id: str, task_id: str) -> set[str]:
        """The hosts (Celery workers) that ran any try of the task in the run."""
        rows = self.stack.query(
            "SELECT hostname FROM task_instance WHERE dag_id=? AND run_id=? AND task_id=? "
            "UNION SELECT hostname FROM task_instance_history WHERE dag_id=? AND run_id=? AND task_id=?",
            *(dag_id, run_id, task_id) * 2,
        )
        return {row[0] for row in rows if row[0]}

    def dump_logs(self) -> None:
        """Print the processes' logs and the latest task logs (for a failing test)."""
        self.stack.dump_logs(tail=60, task_logs=30)


def redis_url(server: RedisServer, db: int) -> str:
    """The server's URL (with its password) for database ``db``."""
    return f"{server.url.rsplit('/', 1)[0]}/{db}"


def _fault_user_key(emulator: EmulatorHandle) -> EmulatorHandle:
    """An Enterprise user with its own instance and key: a budget the fault scenario never reaches."""
    key = f"wsl_{uuid.uuid4().hex}"
    emulator.seed(
        users=[{"id": 2, "name": "Faults", "email": "faults@example.com", "plan": "enterprise"}],
        instances=[{"key": FAULTS_INSTANCE, "id": 2, "user_id": 2, "name": "Faults"}],
        api_keys=[{"id": 2002, "key": key, "user_id": 2}],
    )
    return EmulatorHandle(emulator.origin, api_key=key, instance_key=FAULTS_INSTANCE)


@contextlib.contextmanager
def deployment(home: Path) -> Iterator[Deployment]:
    """Start the emulator, PostgreSQL, Redis and the CeleryExecutor stack; stop everything on the way out."""
    started = time.monotonic()
    with (
        emulator_process("--time-scale", str(TIME_SCALE), "--rate-window", str(WINDOW)) as emulator,
        PostgresServer() as postgres,
        redis_server() as redis,
    ):
        emulator.seed(plan_limits={"pro": BUDGET, "enterprise": 10**6})
        budget = {"rate_limit_per_minute": BUDGET, "rate_limit_window_seconds": WINDOW}
        keys = {"waslah_shared": emulator.new_key(), "waslah_local": emulator.new_key()}
        keys["waslah_faults"] = _fault_user_key(emulator)
        connections = {
            "waslah_shared": keys["waslah_shared"].airflow_connection(
                **budget, rate_limit_storage=redis_url(redis, BUDGET_REDIS_DB)
            ),
            "waslah_local": keys["waslah_local"].airflow_connection(**budget),
            "waslah_faults": keys["waslah_faults"].airflow_connection(timeout=1, plan="enterprise"),
        }
        env = {f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in connections.items()}
        home.mkdir(parents=True, exist_ok=True)
        stack = CeleryStack(home, postgres, redis_url(redis, BROKER_REDIS_DB), env)
        result = Deployment(stack, emulator, redis, keys)
        try:
            with stack:
                stack.wait_for_workers()
                stack.wait_for_jobs("SchedulerJob", "TriggererJob", "DagProcessorJob")
                print(f"\ncluster: emulator, PostgreSQL, Redis, Airflow and 3 Celery workers up in "
                      f"{time.monotonic() - started:.0f} s")  # fmt: skip
                yield result
        except BaseException:
            result.dump_logs()
            raise
