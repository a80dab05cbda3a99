"""Bad input fails the task before any request, naming the field and the rule."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.operators.support import api_requests, dag_source, numbers


def test_bad_input_fails_before_any_request(dag_runner: Any, emulator: Any, tmp_path: Path, capsys: Any) -> None:
    big = tmp_path / "big.pdf"
    with big.open("wb") as handle:  # sparse: 17 MB on paper, nothing on disk
        handle.truncate(17 * 1024 * 1024)
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ\x90\x00")
    missing = tmp_path / "nope.pdf"
    valid_then_bad = [*numbers(150), "12345", "not-a-number"]
    cases = {
        "empty_recipients": ("WaslahBroadcastOperator", "recipients=[], text='x'", "Invalid `recipients`"),
        "bad_numbers_among_many": (
            "WaslahBroadcastOperator",
            f"recipients={valid_then_bad!r}, text='x'",
            "2 invalid number(s): '12345', 'not-a-number'",
        ),
        "bad_to": ("WaslahSendTextOperator", "to='12', text='x'", "Invalid `to`: '12' must have 8-15 digits"),
        "two_to": ("WaslahSendTextOperator", "to='0812345678, 0813456789', text='x'", "takes one recipient, got 2"),
        "long_text": (
            "WaslahSendTextOperator",
            "to='081234567890', text='x' * 4001",
            "must be at most 4000 characters",
        ),
        "naive_schedule": (
            "WaslahSendTextOperator",
            "to='081234567890', text='x', scheduled_at='2030-01-01T09:00:00'",
            "Invalid `scheduled_at`: must be timezone-aware",
        ),
        "early_schedule": (
            "WaslahSendTextOperator",
            "to='081234567890', text='x', scheduled_at=datetime.now(timezone.utc).isoformat()",
            "Invalid `scheduled_at`: must be at least 30 seconds in the future",
        ),
        "missing_file": (
            "WaslahSendMediaOperator",
            f"to='081234567890', file_path={str(missing)!r}",
            "Invalid `file_path`",
        ),
        "big_file": ("WaslahSendMediaOperator", f"to='081234567890', file_path={str(big)!r}", "at most 16777216 bytes"),
        "refused_mime": (
            "WaslahSendMediaOperator",
            f"to='081234567890', file_path={str(exe)!r}, type='document'",
            "is not accepted by Waslah uploads",
        ),
        "private_url": (
            "WaslahSendMediaOperator",
            "to='081234567890', url='http://192.168.1.10/a.png'",
            "Invalid `url`: host '192.168.1.10' is localhost or a private address",
        ),
        "no_caption_room": (
            "WaslahBroadcastOperator",
            f"recipients={numbers(120)!r}, type='image', url='https://cdn.example.com/a.png', caption='c' * 1025",
            "Invalid `caption`",
        ),
    }
    tasks = "\n".join(
        f"    {operator}(task_id={task_id!r}, instance_key='demo', {arguments})"
        for task_id, (operator, arguments, _) in cases.items()
    )
    source = f"""
with DAG("ops_bad_input", schedule=None, start_date=datetime(2025, 1, 1),
         default_args={{"retries": 0}}):
{tasks}
"""
    result = dag_runner.run("ops_bad_input", dag_source(source))
    assert result.task_states() == {task_id: ["failed"] for task_id in cases}
    assert api_requests(emulator) == []
    assert emulator.ledger() == {}
    out = capsys.readouterr().out
    missing_messages = [expected for _, _, expected in cases.values() if expected not in out]
    assert not missing_messages
    assert os.path.getsize(big) > 16 * 1024 * 1024


def test_bad_wait_for_is_refused_when_the_dag_is_defined() -> None:
    from airflow_provider_waslah.client.errors import WaslahInvalidInputError
    from airflow_provider_waslah.operators.waslah import WaslahBroadcastOperator, WaslahSendTextOperator

    with pytest.raises(WaslahInvalidInputError, match="`wait_for`: must be None or one of sent, delivered, read"):
        WaslahSendTextOperator(task_id="t", instance_key="demo", to="081234567890", text="x", wait_for="completed")
    with pytest.raises(WaslahInvalidInputError, match="`wait_for`: must be None or one of completed"):
        WaslahBroadcastOperator(
            task_id="b", instance_key="demo", recipients=["081234567890"], text="x", wait_for="read"
        )
    with pytest.raises(WaslahInvalidInputError, match="`chunk_size`"):
        WaslahBroadcastOperator(task_id="c", instance_key="demo", recipients=[], text="x", chunk_size=101)
