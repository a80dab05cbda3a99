"""The ``waslah_airflow`` pytest plugin (``airflow_provider_waslah.testing``), used from this suite.

This suite's ``conftest.py`` sets its own ``AIRFLOW_HOME`` before importing Airflow, so these tests
also show that a home chosen by a conftest is respected. The README's snippet in a project of its
own (the plugin's private home) runs in ``tests/test_readme.py``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_waslah.testing import WaslahAirflow, _Setup, home_problem, load_dag_file

pytestmark = pytest.mark.airflow

TWO_DAGS = """
from datetime import datetime

from airflow.sdk import DAG
from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator

for name, number in (("plugin_first", "6281234560011"), ("plugin_second", "6281234560012")):
    with DAG(name, schedule=None, start_date=datetime(2026, 1, 1)):
        WaslahSendTextOperator(task_id="send", instance_key="demo", to=number, text=f"Halo dari {name}")
"""


def test_the_home_a_conftest_chose_is_used(waslah_airflow: WaslahAirflow, airflow_home: Path) -> None:
    assert waslah_airflow.home == airflow_home
    assert waslah_airflow.dags_folder == airflow_home / "dags"
    assert (airflow_home / "airflow.db").exists()


def test_a_dag_built_inside_the_test_runs(waslah_airflow: WaslahAirflow) -> None:
    from airflow.sdk import DAG, task

    from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator

    with DAG("plugin_inline", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

        @task
        def text() -> str:
            return "Halo dari dalam tes"

        WaslahSendTextOperator(
            task_id="send", instance_key="demo", to="081234560010", text=text(), wait_for="sent", poll_interval=0.5
        )

    run = waslah_airflow.run(dag)
    assert run.state == "success"
    assert run.task_states == {"text": ["success"], "send": ["success"]}
    (message,) = run.sent_to("6281234560010")
    assert message["text"] == "Halo dari dalam tes"
    assert run.xcom("send")["message_id"] == message["message_id"]
    assert run.xcom("text") == "Halo dari dalam tes"


def test_a_failed_run_reports_failed(waslah_airflow: WaslahAirflow) -> None:
    from airflow.sdk import DAG

    from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator

    with DAG("plugin_failing", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        # 628999* numbers are not on WhatsApp in the emulator: the message ends `failed`.
        WaslahSendTextOperator(
            task_id="send", instance_key="demo", to="6289990000001", text="x", wait_for="sent", poll_interval=0.5
        )

    run = waslah_airflow.run(dag)
    assert run.state == "failed"
    assert run.task_states == {"send": ["failed"]}
    assert [m["status"] for m in run.sent_to("6289990000001")] == ["failed"]


def test_a_file_with_several_dags_needs_a_dag_id(waslah_airflow: WaslahAirflow) -> None:
    path = waslah_airflow.write_dag("plugin_two.py", TWO_DAGS)
    with pytest.raises(LookupError, match=r"has 2 DAGs \(plugin_first, plugin_second\); pass dag_id="):
        waslah_airflow.run(path)
    run = waslah_airflow.run(path, dag_id="plugin_second")
    assert run.state == "success"
    assert list(run.ledger) == ["6281234560012"]


def test_a_file_that_does_not_import_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken_dag.py"
    broken.write_text("import not_a_module_anywhere\n")
    with pytest.raises(RuntimeError, match=r"does not import:[\s\S]*not_a_module_anywhere"):
        load_dag_file(broken)


# ---------------------------------------------------------------- when the fixtures may use a home


def setup(mode: str = "private", private: Path | None = Path("/tmp/private")) -> _Setup:
    return _Setup(mode=mode, private_home=private)


@pytest.mark.parametrize(
    ("configured", "environ_home", "state", "allowed"),
    [
        (Path("/tmp/private"), "/tmp/private", setup(), True),  # the plugin's own home
        (Path("/tmp/mine"), "/tmp/mine", setup(), True),  # a conftest.py chose its home after the plugin
        (Path("/root/airflow"), None, setup(private=None), False),  # Airflow imported before the plugin
        (Path("/srv/airflow"), "/srv/airflow", setup(private=None), False),  # ... with a home from the shell
        (Path("/tmp/other"), "/tmp/private", setup(), False),  # configured elsewhere than the environment says
        (Path("/srv/airflow"), "/srv/airflow", setup("keep", None), True),  # the user said keep
    ],
)
def test_home_problem(configured: Path, environ_home: str | None, state: _Setup, allowed: bool) -> None:
    problem: Any = home_problem(configured, environ_home, state)
    assert (problem is None) is allowed
    if problem:
        assert f"AIRFLOW_HOME={configured}" in problem and "waslah_airflow_home = keep" in problem
