"""Parsing a DAG that uses the provider opens no socket and looks up no connection (not timed).

The DAG processor parses every file again and again; a network call or a connection lookup at
parse time would slow every parse and fail when Waslah or the secrets backend is unreachable.
"""

from __future__ import annotations

import runpy
import socket
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import BaseHook

from benchmarks.bench_parse import WASLAH_DAG

EXAMPLES = sorted(Path(__file__).parent.parent.joinpath("dags_examples").glob("*.py"))


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record (and refuse) every socket connect and connection lookup."""
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(what)
            raise AssertionError(f"{what} at parse time")

        return refused

    monkeypatch.setattr(socket.socket, "connect", refuse("socket connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket connect"))
    monkeypatch.setattr(socket, "create_connection", refuse("socket connect"))
    monkeypatch.setattr(BaseHook, "get_connection", classmethod(refuse("connection lookup")))
    return attempts


def test_operator_dag_parses_offline(offline: list[str], tmp_path: Path) -> None:
    dag_file = tmp_path / "dag_waslah.py"
    dag_file.write_text(WASLAH_DAG)
    namespace = runpy.run_path(str(dag_file))
    assert offline == []
    assert len(namespace["dag"].tasks) == 10


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_dags_parse_offline(offline: list[str], path: Path) -> None:
    runpy.run_path(str(path))
    assert offline == []
