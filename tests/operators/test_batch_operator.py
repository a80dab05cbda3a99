"""``WaslahBatchSendOperator`` in real DAGs against the emulator: SQL in, retries resumed, bad rows refused."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.operators.support import AIRFLOW_3_3_PLUS, api_requests

MESSAGES_ROUTE = "POST /api/v1/messages"
#: A budget no test reaches: these tests are about what is sent, not about pacing.
FAST = 1_000_000

HEADER = """
from datetime import datetime, timedelta
from airflow.sdk import DAG
from airflow_provider_waslah.operators.batch import WaslahBatchSendOperator
"""


def fast_key(emulator: Any, dag_runner: Any) -> Any:
    """A key whose plan allows FAST requests a minute, used by the DAG runner's ``waslah_default``."""
    emulator.seed(plan_limits={"pro": FAST})
    dag_runner.connection = emulator.airflow_connection(rate_limit_per_minute=FAST)
    return emulator


def invoices_db(path: Path, count: int) -> Path:
    """A SQLite table of ``count`` due invoices: INV-00001 ... with distinct phones."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id TEXT PRIMARY KEY, customer TEXT, phone TEXT, amount INTEGER, due TEXT)")
        db.executemany(
            "INSERT INTO invoices VALUES (?, ?, ?, ?, ?)",
            [(f"INV-{i:05d}", f"Pelanggan {i}", f"0813{i:08d}", 1000 * i, "2026-11-30") for i in range(1, count + 1)],
        )
    return path


@pytest.fixture
def sqlite_conn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "invoices.db"
    monkeypatch.setenv("AIRFLOW_CONN_INVOICES_DB", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    return path


def test_5000_rows_from_sqlite_one_message_each(dag_runner: Any, emulator: Any, sqlite_conn: Path) -> None:
    fast_key(emulator, dag_runner)
    invoices_db(sqlite_conn, 5000)
    result = dag_runner.run(
        "batch_sql",
        HEADER
        + """
with DAG("batch_sql", schedule=None, start_date=datetime(2025, 1, 1)):
    WaslahBatchSendOperator(
        task_id="remind",
        instance_key="demo",
        sql="SELECT id, customer, phone, amount, due FROM invoices WHERE due <= ? ORDER BY id",
        parameters=["2026-12-01"],
        sql_conn_id="invoices_db",
        fetch_size=500,
        row_key="id",
        to="{{ row.phone }}",
        text="Halo {{ row.customer }}, tagihan {{ row.id }} Rp {{ '{:,}'.format(row.amount).replace(',', '.') }}"
             " jatuh tempo {{ row.due }}",
        concurrency=8,
    )
""",
    )
    assert result.state == "success", result.task_states()
    xcom = result.xcom("remind")
    assert xcom["totals"] == {"rows": 5000, "sent": 5000, "failed": 0, "skipped": 0, "unknown": 0, "resumed": 0}
    store = "task_state_store:" if AIRFLOW_3_3_PLUS else "variables:"  # Variables: deleted on success
    assert xcom["results"]["checkpoint"].startswith(store)
    ledger = emulator.ledger()
    assert len(ledger) == 5000
    assert Counter(len(messages) for messages in ledger.values()) == {1: 5000}
    expected = "Halo Pelanggan 1234, tagihan INV-01234 Rp 1.234.000 jatuh tempo 2026-11-30"
    assert ledger["6281300001234"][0]["text"] == expected


def test_lost_answer_fails_the_try_and_the_retry_sends_only_the_rest(
    dag_runner: Any, emulator: Any, sqlite_conn: Path, capsys: Any
) -> None:
    """Request 2,000 is processed but its answer is lost: try 1 stops; Airflow's retry resumes.

    Without the checkpoint the retry would send the first ~2,000 rows again (two messages each).
    """
    fast_key(emulator, dag_runner)
    invoices_db(sqlite_conn, 2500)
    emulator.add_fault(route=MESSAGES_ROUTE, status=None, count=1999)  # let 1,999 sends through
    emulator.add_fault(route=MESSAGES_ROUTE, lose_response=True, count=1)
    result = dag_runner.run(
        "batch_resume",
        HEADER
        + """
with DAG("batch_resume", schedule=None, start_date=datetime(2025, 1, 1),
         default_args={"retries": 1, "retry_delay": timedelta(0)}):
    WaslahBatchSendOperator(
        task_id="remind",
        instance_key="demo",
        sql="SELECT id, customer, phone FROM invoices ORDER BY id",
        sql_conn_id="invoices_db",
        row_key="id",
        to="{{ row.phone }}",
        text="Halo {{ row.customer }}, tagihan {{ row.id }} (percobaan {{ ti.try_number }})",
        concurrency=8,
    )
""",
    )
    assert result.task_states() == {"remind": ["success"]}
    out = capsys.readouterr().out
    assert "The batch stopped: WaslahSendOutcomeUnknownError" in out  # try 1 failed on the lost answer
    assert "a retry of this task sends only the rest" in out

    ledger = emulator.ledger()
    assert len(ledger) == 2500
    assert Counter(len(messages) for messages in ledger.values()) == {1: 2500}  # exactly one per row
    sends = [r for r in api_requests(emulator) if r["method"] == "POST"]
    assert len(sends) == 2500  # the lost one included, never sent again

    xcom = result.xcom("remind")
    totals = xcom["totals"]
    assert totals["rows"] == 2500 and totals["unknown"] == 1 and totals["failed"] == 0 and totals["skipped"] == 0
    assert totals["resumed"] >= 1999 and totals["resumed"] + totals["sent"] == 2499
    (unknown,) = [problem for problem in xcom["problems"] if problem["status"] == "unknown"]
    assert 1990 <= unknown["row"] <= 2010  # the answer of about the 2,000th request was lost
    assert unknown["key"] == f"INV-{unknown['row']:05d}"
    assert "WaslahSendOutcomeUnknownError" in unknown["error"]
    lost_phone = f"62813{unknown['row']:08d}"
    assert [entry["text"].endswith("(percobaan 1)") for entry in ledger[lost_phone]] == [True]
    # The retry says how to check and how to force.
    assert f"row {unknown['row']:,} ({unknown['key']})" in out and "resend_unknown=True" in out


BAD_ROWS = """
@task
def customers():
    rows = [{"id": f"C{i:03d}", "phone": f"0813{i:08d}", "name": f"c{i}"} for i in range(1, 201)]
    for i in range(9, 200, 10):  # rows 10, 20, ..., 200: 20 bad rows of 4 kinds
        kind = (i // 10) % 4
        if kind == 0:
            rows[i]["phone"] = "0812"  # too short
        elif kind == 1:
            rows[i]["phone"] = "halo"  # not a number
        elif kind == 2:
            rows[i]["name"] = "x" * 4000  # the text gets too long
        else:
            del rows[i]["phone"]  # no phone column
    return rows
"""


@pytest.mark.parametrize("skip", [False, True], ids=["fail", "skip_invalid_rows"])
def test_20_bad_rows_reported_by_number(dag_runner: Any, emulator: Any, capsys: Any, skip: bool) -> None:
    dag_id = f"batch_bad_{int(skip)}"
    result = dag_runner.run(
        dag_id,
        HEADER.replace("from airflow.sdk import DAG", "from airflow.sdk import DAG, task")
        + BAD_ROWS
        + f"""
with DAG("{dag_id}", schedule=None, start_date=datetime(2025, 1, 1)):
    WaslahBatchSendOperator(
        task_id="remind", instance_key="demo", rows=customers(), row_key="id",
        to="{{{{ row.phone }}}}", text="Halo {{{{ row.name }}}}", skip_invalid_rows={skip},
    )
""",
    )
    out = capsys.readouterr().out
    bad = list(range(10, 201, 10))
    for number in bad:
        assert f"row {number} (C{number:03d}): " in out, number
    assert "`to`: '0812' must have 8-15 digits" in out
    assert "`to`: 'halo' is not a phone number" in out
    assert "`text`: must be at most 4000 characters" in out
    assert "has no attribute 'phone'" in out
    if not skip:
        assert result.task_states()["remind"] == ["failed"]
        assert "20 invalid row(s); nothing was sent" in out
        assert api_requests(emulator) == []  # not one request
        return
    assert result.task_states()["remind"] == ["success"]
    xcom = result.xcom("remind")
    assert xcom["totals"] == {"rows": 200, "sent": 180, "failed": 0, "skipped": 20, "unknown": 0, "resumed": 0}
    assert [problem["row"] for problem in xcom["problems"]] == bad
    assert {problem["status"] for problem in xcom["problems"]} == {"skipped"}
    assert len(emulator.ledger()) == 180


def test_checkpoint_on_object_storage_resumes_a_retry(dag_runner: Any, emulator: Any, tmp_path: Path) -> None:
    """``checkpoint_path``: the parts are JSON files any task can read; a retry resumes from them."""
    fast_key(emulator, dag_runner)
    emulator.add_fault(route=MESSAGES_ROUTE, status=None, count=30)
    emulator.add_fault(route=MESSAGES_ROUTE, status=503, count=4)  # down for the client's 3 retries: stop
    result = dag_runner.run(
        "batch_files",
        HEADER
        + f"""
with DAG("batch_files", schedule=None, start_date=datetime(2025, 1, 1),
         default_args={{"retries": 1, "retry_delay": timedelta(0)}}):
    WaslahBatchSendOperator(
        task_id="remind", instance_key="demo",
        rows=[{{"phone": f"0813{{i:08d}}", "name": f"c{{i}}"}} for i in range(60)],
        to="{{{{ row.phone }}}}", text="Halo {{{{ row.name }}}}", concurrency=1,
        checkpoint_path="file://{tmp_path}/checkpoints",
    )
""",
    )
    assert result.task_states() == {"remind": ["success"]}
    xcom = result.xcom("remind")
    assert xcom["totals"]["resumed"] == 30 and xcom["totals"]["sent"] == 30
    assert Counter(len(messages) for messages in emulator.ledger().values()) == {1: 60}
    folder = Path(xcom["results"]["checkpoint"].removeprefix("file://"))
    assert folder.is_relative_to(tmp_path / "checkpoints" / "batch_files" / "remind" / "-1")
    parts = sorted(folder.glob("part-*.json"))
    assert len(parts) == xcom["results"]["parts"] >= 3
    accepted = [row for part in parts for row in json.loads(part.read_text()).get("accepted", [])]
    assert len(accepted) == 60 and all(key.startswith("h:") for key, _, _ in accepted)
