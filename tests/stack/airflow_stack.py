"""A real Airflow 3 deployment for tests: api-server, scheduler, dag-processor and triggerer processes.

LocalExecutor on SQLite in a fresh ``AIRFLOW_HOME``, on free ports, so it can run beside anything
else (another stack, the session's ``dag.test()`` home). Every process runs in its own process
group and is killed with it; their output goes to ``<home>/processes/<name>.log``, which
:meth:`AirflowStack.dump_logs` prints when a test fails.

Other executors and databases come through ``env`` (``AIRFLOW__CORE__EXECUTOR``,
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``) and a subclass that adds processes
(:meth:`AirflowStack.commands`), as ``tests/cluster/celery_stack.py`` does for CeleryExecutor.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_waslah.emulator import free_port, wait_until

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

T = TypeVar("T")
VENV_BIN = Path(sys.executable).parent
PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")


class AirflowStack:
    """Airflow's four long-running processes on a private home.

    :param home: an empty directory to become ``AIRFLOW_HOME`` (holds ``dags/``, the SQLite DB, logs).
    :param env: extra environment (connections as ``AIRFLOW_CONN_*``, config overrides).
    """

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.dags = home / "dags"
        self.db = home / "airflow.db"
        self.process_logs = home / "processes"
        self.api_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._engine: Engine | None = None
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and key != "AIRFLOW_HOME"
        }
        self.env = {
            **base,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "waslah-stack-test-secret-0123456789abcdef",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            **(env or {}),
        }

    # ------------------------------------------------------------------ life cycle
    def airflow(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one ``airflow`` CLI command in the stack's environment; raise with its output on failure."""
        result = subprocess.run(
            [str(VENV_BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def commands(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        """The long-running processes: name -> (``airflow`` arguments, environment on top of :attr:`env`)."""
        return {name: ([name], {}) for name in PROCESSES}

    def start(self) -> AirflowStack:
        """Migrate the DB, then start the processes and wait until the api-server answers."""
        self.dags.mkdir(parents=True, exist_ok=True)
        self.process_logs.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate", timeout=180)
        for name, (args, env) in self.commands().items():
            log = (self.process_logs / f"{name}.log").open("wb")
            self.processes[name] = subprocess.Popen(
                [str(VENV_BIN / "airflow"), *args],
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed with all its children
            )
        wait_until(self._api_up, 90, 0.5, "api-server health")
        return self

    def _api_up(self) -> bool:
        self.check_alive()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.api_port), timeout=1):
            return True
        return False

    def check_alive(self) -> None:
        """Raise if one of the processes has exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {process.returncode}")

    def stop(self) -> None:
        """Terminate every process group; kill what is left after a grace period."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> AirflowStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dump_logs(self, tail: int = 80, task_logs: int | None = None) -> None:
        """Print the last lines of every process log and task log (for a failing test's output).

        :param task_logs: only this many task logs, the last written.
        """
        tasks = [Path(p) for p in glob.glob(f"{self.home}/logs/**/*.log", recursive=True)]
        if task_logs is not None:
            tasks = sorted(tasks, key=lambda path: path.stat().st_mtime)[-task_logs:]
        paths = sorted(self.process_logs.glob("*.log")) + sorted(tasks)
        for path in paths:
            lines = path.read_text(errors="replace").splitlines()
            print(f"\n===== {path.relative_to(self.home)} (last {min(tail, len(lines))} of {len(lines)} lines) =====")
            print("\n".join(lines[-tail:]))

    # ------------------------------------------------------------------ DAGs and state
    @property
    def database_url(self) -> str:
        """The metadata DB's SQLAlchemy URL."""
        return self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]

    def _database(self) -> Engine | None:
        """A SQLAlchemy engine on the metadata DB (Airflow ships SQLAlchemy); ``None`` before SQLite's file exists."""
        if self._engine is None:
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            url = self.database_url
            if url.startswith("sqlite:"):
                if not self.db.exists():
                    return None
                # Read-only, patient with a busy writer, a connection per query.
                self._engine = create_engine(
                    f"sqlite:///file:{self.db}?mode=ro&uri=true", connect_args={"timeout": 10}, poolclass=NullPool
                )
            else:
                self._engine = create_engine(url, pool_size=2, max_overflow=2, pool_pre_ping=True)
        return self._engine

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the metadata DB; ``?`` placeholders; ``[]`` while the DB is locked or its tables are missing."""
        from sqlalchemy import exc, text

        engine = self._database()
        if engine is None:
            return []
        names = iter(range(len(params)))
        statement = text(re.sub(r"\?", lambda _: f":p{next(names)}", sql))
        try:
            with engine.connect() as connection:
                rows = connection.execute(statement, {f"p{i}": value for i, value in enumerate(params)})
                return [tuple(row) for row in rows]
        except (exc.OperationalError, exc.ProgrammingError):  # locked, or a table not created yet
            return []

    def wait_for_jobs(self, *job_types: str, timeout: float = 90) -> None:
        """Wait until each job type (``SchedulerJob``, ``TriggererJob``, ...) has a running, heartbeating job."""

        def running() -> bool:
            self.check_alive()
            rows = self.query("SELECT job_type FROM job WHERE state = 'running'")
            return set(job_types) <= {row[0] for row in rows}

        wait_until(running, timeout, 0.5, f"jobs {job_types} running")

    def wait_for_dags(self, *dag_ids: str, timeout: float = 90) -> None:
        """Wait until the dag-processor has serialised every DAG in ``dag_ids``."""

        def parsed() -> bool:
            self.check_alive()
            rows = self.query("SELECT dag_id FROM serialized_dag")
            return set(dag_ids) <= {row[0] for row in rows}

        wait_until(parsed, timeout, 0.5, f"DAGs {dag_ids} parsed")

    def trigger(self, *dag_ids: str) -> dict[str, str]:
        """Trigger one run of each DAG with ``airflow dags trigger`` (in parallel); return their run ids."""
        runs = {dag_id: f"stack__{dag_id}__{time.time_ns()}" for dag_id in dag_ids}
        commands = {
            dag_id: subprocess.Popen(
                [str(VENV_BIN / "airflow"), "dags", "trigger", dag_id, "--run-id", run_id],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for dag_id, run_id in runs.items()
        }
        for dag_id, command in commands.items():
            output, _ = command.communicate(timeout=120)
            if command.returncode != 0:
                raise RuntimeError(f"airflow dags trigger {dag_id} failed:\n{output.decode(errors='replace')}")
        return runs

    def task_state(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> tuple[str | None, int | None]:
        """The task instance's (state, try_number), ``(None, None)`` before it exists."""
        rows = self.query(
            "SELECT state, try_number FROM task_instance WHERE dag_id=? AND run_id=? AND task_id=? AND map_index=?",
            dag_id,
            run_id,
            task_id,
            map_index,
        )
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        """A task's ``return_value`` XCom (JSON in the metadata DB), or ``None``."""
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_id=? AND run_id=? AND task_id=? AND key='return_value' AND map_index=?",
            dag_id,
            run_id,
            task_id,
            map_index,
        )
        if not rows or rows[0][0] is None:
            return None
        value = rows[0][0]  # text on SQLite; PostgreSQL's JSONB arrives decoded
        if isinstance(value, (str, bytes)):
            value = json.loads(value)
        return json.loads(value) if isinstance(value, str) else value

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> str:
        """Every attempt's task log file (of one mapped instance when ``map_index`` is given), concatenated."""
        mapped = "" if map_index is None or map_index < 0 else f"/map_index={map_index}"
        pattern = f"{self.home}/logs/dag_id={dag_id}/run_id={run_id}/task_id={task_id}{mapped}/**/*.log"
        return "\n".join(Path(p).read_text(errors="replace") for p in sorted(glob.glob(pattern, recursive=True)))


@contextlib.contextmanager
def airflow_stack(home: Path, env: dict[str, str] | None = None) -> Iterator[AirflowStack]:
    """Start an :class:`AirflowStack`; stop it (killing every process group) on the way out."""
    with AirflowStack(home, env) as stack:
        yield stack
