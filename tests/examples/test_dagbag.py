"""Every example parses cleanly, as the dag processor would see it, and follows the house rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.examples.conftest import EXAMPLE_IDS, EXAMPLES


@pytest.fixture(scope="module")
def dagbag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.2+
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(str(EXAMPLES))  # AIRFLOW__CORE__LOAD_EXAMPLES=False (tests/conftest.py)


def test_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}


def test_every_example_is_there(dagbag: Any) -> None:
    # One DAG per file, named as its file, so `airflow dags test <file name>` works.
    assert sorted(dagbag.dag_ids) == sorted(EXAMPLE_IDS)
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(EXAMPLE_IDS)


@pytest.mark.parametrize("dag_id", EXAMPLE_IDS)
def test_house_rules(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]  # not get_dag(): that also reads the metadata DB
    assert {"waslah", "example"} <= set(dag.tags)
    assert dag.catchup is False
    assert dag.timetable.can_be_scheduled, "examples run on a realistic schedule"
    assert dag.doc_md and len(dag.doc_md.strip()) > 100, "the module docstring explains the example"
    for task in dag.tasks:
        assert task.owner not in ("", "airflow"), f"{task.task_id} has no owner"


def test_no_warnings(dagbag: Any) -> None:
    """Parsing warns about nothing, e.g. no deprecated import (Airflow 3 paths: ``airflow.sdk``)."""
    assert dagbag.captured_warnings == {}
