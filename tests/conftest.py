"""Test-wide set-up: a private AIRFLOW_HOME (set before Airflow is imported) and a real-DAG runner.

The emulator fixtures (``waslah_emulator``, ``waslah_emulator_server``) come from the
provider's own pytest plugin, the same one users get.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="waslah-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
os.environ.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "http://127.0.0.1:8080/execution/")
(_HOME / "dags").mkdir(parents=True, exist_ok=True)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The session's AIRFLOW_HOME (a temp dir; its ``dags`` folder is the DAG bundle)."""
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated SQLite metadata DB for the session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return airflow_home


from tests.airflow_support import dag_runner  # noqa: E402,F401  (fixture re-exported for every test)


@pytest.fixture
def emulator(waslah_emulator_conn: Any, request: pytest.FixtureRequest) -> Any:
    """The emulator with a fresh API key as ``waslah_default`` (the plugin's ``waslah_emulator_conn``).

    A test module may set ``TIME_SCALE`` (real seconds per emulated second) to speed up message
    and broadcast life cycles.
    """
    time_scale = getattr(request.module, "TIME_SCALE", None)
    if time_scale is not None:
        waslah_emulator_conn.seed(time_scale=time_scale)
    return waslah_emulator_conn


@pytest.fixture(scope="session")
def redis_storage() -> Any:
    """A real ``redis-server`` for the session, with a password (a :class:`tests.redis_server.RedisServer`)."""
    from tests.redis_server import redis_server

    with redis_server() as server:
        yield server
