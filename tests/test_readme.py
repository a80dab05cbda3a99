"""The README's first-hour steps, run as written (issue 12): they cannot drift from what works.

- ``sales-report-dag`` (the first screen's DAG) and ``sales-report-test`` (the DAG test under
  "Testing your own DAGs") are copied into a new project folder and run with pytest there, in a
  subprocess with none of this suite's Airflow settings: the ``waslah_airflow`` plugin has to
  do everything itself.
- ``dags-test`` (the shell steps under "``airflow dags test`` with the emulator") runs with bash in
  a new folder holding ``dags/sales_report.py``; the emulator it starts is stopped whatever happens.

The blocks are found by their ``<!-- readme-block: NAME -->`` markers (``scripts/readme_block.py``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

import airflow_provider_waslah
from airflow_provider_waslah.emulator.process import free_port

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.airflow


def _readme_block_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_block", REPO / "scripts" / "readme_block.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


readme_block = _readme_block_module()


def user_env(**extra: str) -> dict[str, str]:
    """A shell like a new user's: this venv's ``bin`` first on PATH, none of this suite's Airflow settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "_AIRFLOW"))}
    env.pop("PYTEST_ADDOPTS", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def project(tmp_path: Path) -> Path:
    """A new project folder with the README's DAG as ``dags/sales_report.py``."""
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "sales_report.py").write_text(readme_block.block("sales-report-dag"))
    return tmp_path


def test_the_readme_names_the_wheel_of_this_version() -> None:
    readme = (REPO / "README.md").read_text()
    wheels = set(re.findall(r"airflow_provider_waslah-([0-9][^-\s]*)-py3-none-any\.whl", readme))
    assert wheels == {airflow_provider_waslah.__version__}


def test_the_readme_blocks_are_found() -> None:
    names = set(readme_block.blocks())
    assert {"sales-report-dag", "sales-report-test", "dags-test"} <= names
    assert " as dag:" in readme_block.block("sales-report-dag")


def test_the_readme_dag_test_runs_as_written(tmp_path: Path) -> None:
    """The README's pytest snippet, in a new project with no conftest.py: the plugin alone makes it work."""
    root = project(tmp_path)
    (root / "tests").mkdir()
    (root / "tests" / "test_sales_report.py").write_text(readme_block.block("sales-report-test"))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/"],
        cwd=root,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
    assert time.monotonic() - started < 240


def test_the_fixture_refuses_an_airflow_imported_before_the_plugin(tmp_path: Path) -> None:
    """Airflow configured before the plugin could set a private home: the fixture explains, touches nothing."""
    root = project(tmp_path)
    (root / "test_early.py").write_text("def test_early(waslah_airflow):\n    pass\n")
    script = "import sys, airflow, pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'test_early.py']))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=user_env(AIRFLOW_HOME=str(root / "real-home")),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode != 0
    assert "AIRFLOW_HOME must be set before Airflow is first imported" in done.stdout
    assert "waslah_airflow_home = keep" in done.stdout
    assert not (root / "real-home" / "airflow.db").exists()  # never migrated


def test_the_readme_airflow_dags_test_steps_run_as_written(tmp_path: Path) -> None:
    """The README's shell steps: migrate, emulator, connection, ``airflow dags test``, emulator stopped."""
    root = project(tmp_path)
    script = root / "steps.sh"
    script.write_text(readme_block.block("dags-test"))
    process = subprocess.Popen(
        ["bash", "-e", str(script)],
        cwd=root,
        env=user_env(WASLAH_PORT=str(free_port())),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # one process group: the emulator is stopped below whatever happens
    )
    stopped_by_readme = False
    try:
        output, _ = process.communicate(timeout=300)
        # The README's own `kill %1` stops the emulator: its process group empties by itself.
        stopped_by_readme = _group_ends(process.pid, timeout=15)
    finally:
        if not _group_ends(process.pid, timeout=0):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == 0, output[-5000:]
    assert "Successfully added `conn_id`=waslah_default" in output, output[-3000:]
    emulator_log = (root / "emulator.log").read_text()
    assert "API key: wsl_demo_0123456789abcdef" in emulator_log
    assert stopped_by_readme and "Waslah emulator stopped." in emulator_log, emulator_log
    assert (root / ".airflow" / "airflow.db").exists()


def _group_ends(pgid: int, timeout: float) -> bool:
    """True once no process of group ``pgid`` is left (polled for up to ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
