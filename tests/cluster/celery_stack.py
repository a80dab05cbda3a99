"""A CeleryExecutor deployment for tests: Airflow's four services and Celery workers on PostgreSQL and Redis.

:class:`CeleryStack` is :class:`~tests.stack.airflow_stack.AirflowStack` (api-server, scheduler,
dag-processor, triggerer) with PostgreSQL as the metadata DB, Redis as the Celery broker and
``workers`` ``airflow celery worker`` processes of ``concurrency`` slots each. Each worker has its
own Celery node name and Airflow hostname (``worker1`` ...), so ``task_instance.hostname`` says
which worker ran a task. Every process runs in its own process group and is killed at the end.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_provider_waslah.emulator import wait_until
from tests.cluster.services import PostgresServer
from tests.stack.airflow_stack import AirflowStack

REPO = Path(__file__).resolve().parents[2]


class CeleryStack(AirflowStack):
    """Airflow on CeleryExecutor, on an already running PostgreSQL and Redis.

    :param home: an empty directory to become ``AIRFLOW_HOME``.
    :param postgres: the metadata DB's server.
    :param broker_url: the Celery broker (``redis://...``).
    :param env: extra environment (connections as ``AIRFLOW_CONN_*``, config overrides).
    :param workers: ``airflow celery worker`` processes.
    :param concurrency: task slots per worker.
    """

    def __init__(
        self,
        home: Path,
        postgres: PostgresServer,
        broker_url: str,
        env: dict[str, str] | None = None,
        *,
        workers: int = 3,
        concurrency: int = 2,
    ) -> None:
        self.workers = workers
        self.concurrency = concurrency
        # More task instances queued than slots: a worker takes the next one from the broker as soon
        # as a slot frees, instead of waiting for the scheduler to see the slot free.
        queued = 3 * workers * concurrency
        super().__init__(
            home,
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url,
                # A dozen processes share the server: keep each one's pool small.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW": "5",
                "AIRFLOW__CELERY__BROKER_URL": broker_url,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
                # One task at a time per free slot: queued tasks spread over the workers.
                "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
                "AIRFLOW__CORE__PARALLELISM": str(queued),
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(queued),
                # The task supervisor notices that its task process exited when it next wakes up, at
                # most this many seconds later (default 5): with the default, a 0.3 s task holds its
                # Celery slot for about 5 s.
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.cluster.hostname.hostname",
                # The workers import tests.cluster.hostname (above).
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                **(env or {}),
            },
        )

    def worker_names(self) -> list[str]:
        """``worker1`` ... ``worker<workers>``."""
        return [f"worker{number}" for number in range(1, self.workers + 1)]

    def commands(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        """Airflow's four services, then the Celery workers (no log server: the tests read the log files)."""
        commands = super().commands()
        for name in self.worker_names():
            args = ["celery", "worker", "--celery-hostname", f"{name}@waslah-test", "--concurrency"]
            args += [str(self.concurrency), "--skip-serve-logs", "--without-mingle", "--without-gossip"]
            commands[name] = (args, {"WASLAH_TEST_HOSTNAME": name})
        return commands

    def wait_for_workers(self, timeout: float = 120) -> None:
        """Wait until every worker has logged that it is ready for tasks."""

        def ready() -> bool:
            self.check_alive()
            logs = [(self.process_logs / f"{name}.log") for name in self.worker_names()]
            return all(path.exists() and " ready." in path.read_text(errors="replace") for path in logs)

        wait_until(ready, timeout, 0.5, "Celery workers ready")
