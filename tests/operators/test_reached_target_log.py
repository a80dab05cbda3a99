"""A message reaching its target status logs one line saying so (issue 12), in every way of waiting.

The line is the polling policy's final verdict (``Waslah message 5 is delivered``), logged once at
the end of a worker-side ``wait_for``, once when a deferred send resumes, and once by the sensor's
poke that finds the target reached. Progress lines before it say ``waiting for``.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator
from airflow_provider_waslah.sensors.waslah import WaslahMessageSensor
from tests.operators.doubles import FakeTI, HookDouble, context, receipt


class Lines:
    """Stands in for an operator's logger: keeps each line as formatted."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def _keep(self, level: str, message: str, *args: Any, **kwargs: Any) -> None:
        self.lines.append((level, message % args if args else message))

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._keep("info", message, *args)

    def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._keep("warning", message, *args)

    def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        self._keep("debug", message, *args)

    def about(self, message_id: int) -> list[tuple[str, str]]:
        """The lines about message ``message_id`` (Airflow's own warnings left out)."""
        return [line for line in self.lines if line[1].startswith(f"Waslah message {message_id} ")]


def answers(*values: Any) -> Any:
    remaining = iter(values)
    return lambda call: next(remaining)


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> Lines:
    kept = Lines()
    for cls in (WaslahSendTextOperator, WaslahMessageSensor):
        monkeypatch.setattr(cls, "log", kept, raising=False)
    return kept


def test_worker_wait_logs_one_line_when_the_target_is_reached(lines: Lines) -> None:
    op = WaslahSendTextOperator(
        task_id="t", instance_key="demo", to="081234567890", text="x", wait_for="delivered", poll_interval=0.01
    )
    op.hook = HookDouble(answers(receipt(5), {"id": 5, "status": "sent"}, {"id": 5, "status": "delivered"}))
    op.execute(context())
    assert lines.about(5) == [
        ("info", "Waslah message 5 is sent; waiting for delivered"),
        ("info", "Waslah message 5 is delivered"),
    ]


def test_worker_wait_past_the_target_logs_one_line_too(lines: Lines) -> None:
    op = WaslahSendTextOperator(task_id="t", instance_key="demo", to="081234567890", text="x", wait_for="sent")
    op.hook = HookDouble(answers(receipt(6), {"id": 6, "status": "read"}))
    op.execute(context())
    assert lines.about(6) == [("info", "Waslah message 6 is read")]


def test_deferred_send_logs_one_line_when_it_resumes(lines: Lines) -> None:
    op = WaslahSendTextOperator(
        task_id="t", instance_key="demo", to="081234567890", text="x", wait_for="delivered", deferrable=True
    )
    ti = FakeTI()
    ti.xcom_push("waslah_sent", {"message_id": 7, "status": "pending", "to": "6281234567890"})
    op.execute_complete(context(ti), {"status": "success", "message": "", "data": {"id": 7, "status": "delivered"}})
    assert lines.about(7) == [("info", "Waslah message 7 is delivered (waited for 'delivered' in the triggerer)")]


def test_sensor_poke_logs_one_line_when_the_target_is_reached(lines: Lines) -> None:
    sensor = WaslahMessageSensor(task_id="s", message_id=8, target_statuses=["delivered"])
    sensor.hook = HookDouble(answers({"id": 8, "status": "sent"}, {"id": 8, "status": "delivered"}))
    assert sensor.poke(context()).is_done is False
    assert sensor.poke(context()).is_done is True
    assert lines.about(8) == [
        ("info", "Waslah message 8 is sent; waiting for delivered"),
        ("info", "Waslah message 8 is delivered"),
    ]


def test_the_line_reaches_the_task_log(capsys: pytest.CaptureFixture[str]) -> None:
    """Without the stand-in: the operator's own (structlog) logger prints the line once, at info."""
    op = WaslahSendTextOperator(task_id="t", instance_key="demo", to="081234567890", text="x", wait_for="delivered")

    def answer(call: Call[Any]) -> Any:
        return receipt(9) if call.method == "POST" else {"id": 9, "status": "delivered"}

    op.hook = HookDouble(answer)
    op.execute(context())
    printed = [line for line in capsys.readouterr().out.splitlines() if "Waslah message 9" in line]
    assert len(printed) == 1 and "Waslah message 9 is delivered" in printed[0] and "info" in printed[0]
