"""``WaslahHITLNotifier`` on Airflow's own HITL operators (the sends go to the emulator)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_waslah._compat import AirflowException
from airflow_provider_waslah.hitl import WaslahHITLNotifier, short_code, whatsapp_user

pytest.importorskip("airflow.providers.standard.operators.hitl")
from airflow.providers.standard.operators.hitl import (
    ApprovalOperator,
    HITLEntryOperator,
    HITLOperator,
)

TI_ID = uuid.UUID("01a21444-a7cb-75b5-a7ca-8a25274ce0a1")


def context(task: Any) -> dict[str, Any]:
    ti = SimpleNamespace(
        id=TI_ID, dag_id="payouts", run_id="manual__2026-11-25T07:00:00+00:00", task_id=task.task_id, map_index=-1
    )
    return {"task": task, "ti": ti, "task_instance": ti}


def approval(**kwargs: Any) -> ApprovalOperator:
    defaults: dict[str, Any] = {
        "task_id": "approve",
        "subject": "Refund Rp 250.000?",
        "body": "Pesanan INV-7",
        "assigned_users": [
            whatsapp_user("0812-3456-0010"),
            {"id": "admin", "name": "admin"},
            whatsapp_user("123456789012345@lid"),
        ],
        "response_timeout": timedelta(hours=2),
        "defaults": "Reject",
    }
    return ApprovalOperator(**{**defaults, **kwargs})


def test_question_for_approval_operator() -> None:
    notifier = WaslahHITLNotifier(instance_key="demo", base_url="https://airflow.example.com")
    identities, text = notifier.question_text(context(approval()))
    assert identities == ["6281234560010", "123456789012345@lid"]  # the UI user is not asked on WhatsApp
    assert f"(kode {short_code(TI_ID)})" in text and "*Refund Rp 250.000?*" in text and "Pesanan INV-7" in text
    assert "Balas 1 = Setujui, 2 = Tolak" in text and "(tanpa jawaban: otomatis Tolak)" in text
    assert (
        "Buka di Airflow: https://airflow.example.com/dags/payouts/runs/manual__2026-11-25T07:00:00+00:00/tasks/approve/required_actions"
        in text
    )


def test_question_for_entry_and_multiple() -> None:
    entry = HITLEntryOperator(
        task_id="confirm", subject="Stok diterima?", assigned_users=[whatsapp_user("6281234560010")]
    )
    _, text = WaslahHITLNotifier(instance_key="demo").question_text(context(entry))
    assert "Balas 1 = OK" in text and "Batas waktu" not in text
    several = HITLOperator(
        task_id="pick",
        subject="Gudang",
        options=["Jakarta", "Bandung", "Surabaya"],
        multiple=True,
        assigned_users=[whatsapp_user("6281234560010")],
    )
    _, text = WaslahHITLNotifier(instance_key="demo").question_text(context(several))
    assert "Balas 1 = Jakarta, 2 = Bandung, 3 = Surabaya" in text and "lebih dari satu" in text


def test_refuses_what_it_cannot_ask() -> None:
    notifier = WaslahHITLNotifier(instance_key="demo")
    with pytest.raises(AirflowException, match="no WhatsApp assignee"):
        notifier.question_text(context(approval(assigned_users=[{"id": "admin", "name": "admin"}])))
    with pytest.raises(AirflowException, match="human-in-the-loop question"):
        notifier.question_text(context(SimpleNamespace(task_id="x")))
    with pytest.raises(AirflowException, match="groups cannot answer"):
        notifier.question_text(
            context(approval(assigned_users=[{"id": "whatsapp:120363012345678901@g.us", "name": "g"}]))
        )


def test_notify_sends_one_question_per_whatsapp_assignee(waslah_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", waslah_emulator.airflow_connection())
    WaslahHITLNotifier(instance_key="demo").notify(context(approval()))
    ledger = waslah_emulator.ledger()
    assert [len(ledger[k]) for k in ("6281234560010", "123456789012345@lid")] == [1, 1]
    assert ledger["6281234560010"][0]["text"] == ledger["123456789012345@lid"][0]["text"]


def test_notify_fails_only_when_nobody_was_asked(waslah_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", waslah_emulator.airflow_connection())
    with pytest.raises(AirflowException, match="reached no WhatsApp assignee"):
        WaslahHITLNotifier(instance_key="offline").notify(context(approval()))  # the instance is disconnected
    assert not waslah_emulator.ledger()
