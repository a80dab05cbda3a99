"""``scripts/demo_summary.py``: the demo's table of what each recipient received."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from airflow_provider_waslah.emulator import unreachable_number

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "demo_summary.py"


@pytest.fixture(scope="module")
def summary() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_summary", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _send(emulator: Any, to: str, text: str) -> None:
    body = {"instance_key": emulator.instance_key, "to": to, "text": text}
    response = httpx.post(f"{emulator.base_url}/messages/text", json=body, headers=emulator.headers)
    assert response.status_code == 202, response.text


def test_table_and_expectations(summary: ModuleType, waslah_emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _send(waslah_emulator, "6281234560001", "Laporan penjualan\nTotal: Rp 8.085.000")
    _send(waslah_emulator, unreachable_number(1), "Pesanan Anda sudah dikirim.")

    assert summary.main([waslah_emulator.origin, "--settle", "5", "--expect", "Total: Rp 8.085.000"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["#", "RECIPIENT", "TYPE", "VIA", "STATUS", "TEXT", "/", "FILE"]
    # Multi-line texts on one row; failed messages show Waslah's reason.
    assert "Laporan penjualan / Total: Rp 8.085.000" in lines[2]
    assert unreachable_number(1) in lines[3] and "failed" in lines[3] and "tidak terdaftar" in lines[3]
    # Columns are aligned: the STATUS column starts at the same place on every row.
    column = lines[0].index("STATUS")
    assert lines[2][column:].startswith(("sent", "delivered", "read"))
    assert lines[3][column:].startswith("failed")
    assert "2 messages to 2 recipients" in out
    assert "found: a message containing 'Total: Rp 8.085.000'" in out


def test_missing_expectation_fails(summary: ModuleType, waslah_emulator: Any) -> None:
    _send(waslah_emulator, "6281234560001", "Halo")
    assert summary.main([waslah_emulator.origin, "--settle", "0", "--expect", "ALERT Airflow"]) == 1


def test_empty_ledger_fails(summary: ModuleType, waslah_emulator: Any) -> None:
    assert summary.main([waslah_emulator.origin, "--settle", "0"]) == 1
