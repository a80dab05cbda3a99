"""The CeleryExecutor deployment, started once for every cluster test; its logs printed when a test fails."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.deployment import Deployment, deployment

_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """PostgreSQL, Redis, the emulator and Airflow on CeleryExecutor with 3 workers (see ``deployment.py``)."""
    with deployment(tmp_path_factory.mktemp("cluster") / "airflow") as started:
        yield started


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest, cluster: Deployment) -> Iterator[None]:
    yield
    if request.node.stash.get(_FAILED, False):
        cluster.dump_logs()
