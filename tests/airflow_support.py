"""Run real DAG files with ``dag.test()`` against the emulator, and read back what they did."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow import __version__ as _AIRFLOW_VERSION
from packaging.version import Version

#: Airflow 3.2+ (3.1: no declarative connection form, ~3 s per task instance in dag.test(),
#: no ``exception`` in the failure callback's context).
AIRFLOW_3_2_PLUS = Version(Version(_AIRFLOW_VERSION).base_version) >= Version("3.2.0")
#: Airflow 3.3+: the task state store, where the single-message operators checkpoint their send.
AIRFLOW_3_3_PLUS = Version(Version(_AIRFLOW_VERSION).base_version) >= Version("3.3.0")


def load_dag(path: Path, dag_id: str) -> Any:
    """Parse ``path`` with a DagBag (as the dag processor does) and return ``dag_id``; fail on import errors."""
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.2+
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(str(path))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag is not None, f"{dag_id} not found in {path}"
    return dag


def xcoms(dag_id: str, run_id: str) -> dict[tuple[str, int], Any]:
    """Every ``return_value`` XCom of a run, keyed by (task_id, map_index)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run_id, key="return_value").all()
        return {(row.task_id, row.map_index): XComModel.deserialize_value(row) for row in rows}


@dataclass
class DagResult:
    """What a ``dag.test()`` run left behind."""

    dag_run: Any

    @property
    def state(self) -> str:
        return str(self.dag_run.state)

    def task_states(self) -> dict[str, list[str]]:
        states: dict[str, list[str]] = {}
        for ti in self.dag_run.get_task_instances():
            states.setdefault(ti.task_id, []).append(str(ti.state))
        return states

    def xcom(self, task_id: str, map_index: int = -1) -> Any:
        return xcoms(self.dag_run.dag_id, self.dag_run.run_id).get((task_id, map_index))

    def xcom_all(self) -> dict[tuple[str, int], Any]:
        return xcoms(self.dag_run.dag_id, self.dag_run.run_id)


class DagRunner:
    """Writes DAG source into the dags folder (the DAG bundle) and runs it with ``dag.test()``."""

    def __init__(self, dags_folder: Path, connection: str) -> None:
        self.dags_folder = dags_folder
        self.connection = connection

    def write(self, dag_id: str, source: str) -> Path:
        path = self.dags_folder / f"{dag_id}.py"
        path.write_text(textwrap.dedent(source))
        return path

    def run(self, dag_id: str, source: str | None = None, path: Path | None = None, **test_kwargs: Any) -> DagResult:
        """Run a DAG (from ``source`` written to the dags folder, or an existing file) to its end."""
        if source is not None:
            path = self.write(dag_id, source)
        assert path is not None
        # A test's own waslah_default (the `emulator` fixture: a fresh key) wins over the runner's.
        os.environ.setdefault("AIRFLOW_CONN_WASLAH_DEFAULT", self.connection)
        dag = load_dag(path, dag_id)
        return DagResult(dag.test(**test_kwargs))


@pytest.fixture
def dag_runner(airflow_db: Path, waslah_emulator: Any) -> Iterator[DagRunner]:
    """Runs DAG files with real Airflow against a freshly reset emulator (``waslah_default`` points at it)."""
    connection = waslah_emulator.airflow_connection()
    json.loads(connection)  # fail early if the plugin gave something else
    previous = os.environ.get("AIRFLOW_CONN_WASLAH_DEFAULT")
    yield DagRunner(airflow_db / "dags", connection)
    if previous is None:
        os.environ.pop("AIRFLOW_CONN_WASLAH_DEFAULT", None)
    else:
        os.environ["AIRFLOW_CONN_WASLAH_DEFAULT"] = previous
