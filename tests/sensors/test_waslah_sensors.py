"""The sensors in real DAG runs (``dag.test()``) against the emulator over HTTP.

``dag.test()`` runs deferred triggers in-process, so the deferrable mode is exercised end to end
here too (with a real triggerer in ``tests/stack``).
"""

from __future__ import annotations

import textwrap
from datetime import timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, TaskDeferred
from airflow.sdk import PokeReturnValue

from airflow_provider_waslah.client.errors import WaslahNotFoundError, WaslahUnauthorizedError
from airflow_provider_waslah.emulator import EmulatorHandle, unreachable_number
from airflow_provider_waslah.sensors.waslah import (
    WaslahBroadcastSensor,
    WaslahMessageSensor,
    WaslahSensorInputError,
    coerce_id,
    coerce_ids,
)
from airflow_provider_waslah.triggers.waslah import WaslahBroadcastTrigger, WaslahMessageTrigger
from airflow_provider_waslah.waiting import WaslahBroadcastFailedError, WaslahMessageFailedError
from tests.airflow_support import DagResult, DagRunner
from tests.triggers.support import UNREACHABLE, api_requests, send_bulk, send_text

pytestmark = [pytest.mark.airflow, pytest.mark.timeout(180)]

HEADER = """\
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_waslah.sensors.waslah import WaslahBroadcastSensor, WaslahMessageSensor

with DAG("{dag_id}", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):
"""


#: 5x faster than real time: delivery 0.6 s after sending (the `emulator` fixture reads it).
TIME_SCALE = 0.2


SEND_TASK = """
@task
def send():
    from airflow_provider_waslah.hooks.waslah import WaslahHook

    receipt = WaslahHook().send_text(instance_key="demo", to="081234567890", text="Halo")
    return {"message_id": receipt.id, "status": receipt.status}

"""


def run(dag_runner: DagRunner, dag_id: str, body: str) -> DagResult:
    """Run a DAG whose tasks are ``body`` (the inside of the ``with DAG`` block)."""
    source = HEADER.format(dag_id=dag_id) + textwrap.indent(textwrap.dedent(body), "    ")
    return dag_runner.run(dag_id, source)


def ti(result: DagResult, task_id: str) -> Any:
    [instance] = [t for t in result.dag_run.get_task_instances() if t.task_id == task_id]
    return instance


class TestMessageSensor:
    def test_poke_mode_waits_for_delivered_and_pushes_the_message(
        self, dag_runner: DagRunner, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # Delivered 8 s after the send: the sensor's first poke must still find it "sent" on a busy
        # machine (at 3 s, a slow start of the second task once missed the wait it tests).
        emulator.seed(time_scale=1.0, lifecycle={"delivered": 8.0, "read": 12.0})
        result = run(
            dag_runner,
            "waslah_sensor_poke",
            SEND_TASK
            + textwrap.dedent(
                """
            send() >> WaslahMessageSensor(
                task_id="wait",
                message_id="{{ ti.xcom_pull('send')['message_id'] }}",
                target_statuses=["delivered"],
                poke_interval=0.5,
            )
            """
            ),
        )
        assert result.task_states() == {"send": ["success"], "wait": ["success"]}
        message_id = result.xcom("send")["message_id"]
        message = result.xcom("wait")
        assert message["id"] == message_id
        assert message["status"] in ("delivered", "read")
        assert message["phone_number"] == "6281234567890"
        assert len(api_requests(emulator, contains=f"/messages/{message_id}")) >= 2  # waited across pokes
        assert f"Waslah message {message_id} is sent" in capsys.readouterr().out

    def test_failed_message_fails_with_waslahs_reason_and_is_not_retried(
        self, dag_runner: DagRunner, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
    ) -> None:
        message_id = send_text(emulator, to=UNREACHABLE)
        result = run(
            dag_runner,
            "waslah_sensor_failed",
            f"""
            WaslahMessageSensor(
                task_id="wait",
                message_id={message_id},
                poke_interval=0.2,
                retries=2,
                retry_delay=timedelta(seconds=0),
            )
            """,
        )
        assert result.state == "failed"
        instance = ti(result, "wait")
        assert str(instance.state) == "failed"
        assert instance.try_number == 1
        reason = emulator.ledger()[UNREACHABLE][0]["error_message"]
        assert reason
        assert f"WaslahMessageFailedError: Waslah message {message_id} to {UNREACHABLE} failed: {reason}" in (
            capsys.readouterr().out
        )

    def test_unknown_id_fails_with_the_404_message(
        self, dag_runner: DagRunner, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
    ) -> None:
        result = run(
            dag_runner,
            "waslah_sensor_unknown",
            """
            WaslahMessageSensor(task_id="wait", message_id=31337, poke_interval=0.2)
            """,
        )
        assert result.task_states() == {"wait": ["failed"]}
        out = capsys.readouterr().out
        assert "WaslahNotFoundError: GET /messages/31337 failed with HTTP 404 not_found:" in out
        assert "Message dengan ID `31337` tidak ditemukan" in out

    def test_reschedule_mode(self, dag_runner: DagRunner, emulator: EmulatorHandle) -> None:
        emulator.seed(time_scale=1.0)  # delivered 3 s after sending: several reschedules
        message_id = send_text(emulator)
        result = run(
            dag_runner,
            "waslah_sensor_reschedule",
            f"""
            WaslahMessageSensor(
                task_id="wait",
                message_id="{message_id}",
                target_statuses="delivered",
                mode="reschedule",
                poke_interval=1,
            )
            """,
        )
        assert result.task_states() == {"wait": ["success"]}
        assert result.xcom("wait")["status"] in ("delivered", "read")
        from airflow.models.taskreschedule import TaskReschedule
        from airflow.utils.session import create_session

        with create_session() as session:
            reschedules = session.query(TaskReschedule).filter_by(ti_id=ti(result, "wait").id).count()
        assert reschedules >= 1

    def test_deferrable_pokes_once_then_defers(
        self, dag_runner: DagRunner, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
    ) -> None:
        emulator.seed(time_scale=1.0)
        result = run(
            dag_runner,
            "waslah_sensor_deferred",
            SEND_TASK
            + textwrap.dedent(
                """
            send() >> WaslahMessageSensor(
                task_id="wait",
                message_id="{{ ti.xcom_pull('send')['message_id'] }}",
                target_statuses=["delivered"],
                deferrable=True,
                poke_interval=0.5,
            )
            """
            ),
        )
        assert result.task_states() == {"send": ["success"], "wait": ["success"]}
        message_id = result.xcom("send")["message_id"]
        assert result.xcom("wait")["status"] in ("delivered", "read")
        out = capsys.readouterr().out
        polls = [line for line in out.splitlines() if f"Waslah message {message_id} is " in line]
        worker_pokes = [line for line in polls if "WaslahMessageSensor" in line and "; waiting for" in line]
        trigger_polls = [line for line in polls if "WaslahMessageTrigger" in line]
        assert len(worker_pokes) == 1  # one poke, then defer
        assert trigger_polls  # the trigger polled until delivered

    def test_deferrable_does_not_defer_when_already_done(
        self, dag_runner: DagRunner, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
    ) -> None:
        message_id = send_text(emulator)
        emulator.wait_until(lambda: emulator.ledger()["6281234567890"][0]["status"] == "read", timeout=10)
        result = run(
            dag_runner,
            "waslah_sensor_deferred_done",
            f"""
            WaslahMessageSensor(task_id="wait", message_id={message_id}, deferrable=True, poke_interval=0.2)
            """,
        )
        assert result.task_states() == {"wait": ["success"]}
        assert result.xcom("wait")["status"] == "read"
        assert "waiting for" not in capsys.readouterr().out
        assert len(api_requests(emulator, contains=f"/messages/{message_id}")) == 1

    def test_deferred_failed_message_fails_without_retry(
        self, dag_runner: DagRunner, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
    ) -> None:
        emulator.seed(time_scale=1.0, lifecycle={"sent": 4.0})  # fails 4 s after the send task sent it
        result = run(
            dag_runner,
            "waslah_sensor_deferred_failed",
            SEND_TASK.replace("081234567890", UNREACHABLE)
            + textwrap.dedent(
                """
                send() >> WaslahMessageSensor(
                    task_id="wait",
                    message_id="{{ ti.xcom_pull('send')['message_id'] }}",
                    deferrable=True,
                    poke_interval=0.5,
                    retries=2,
                )
                """
            ),
        )
        instance = ti(result, "wait")
        assert str(instance.state) == "failed" and instance.try_number == 1
        message_id = result.xcom("send")["message_id"]
        out = capsys.readouterr().out
        assert "; waiting for sent or delivered or read" in out  # it did defer
        assert f"WaslahMessageFailedError: Waslah message {message_id} to {UNREACHABLE} failed:" in out

    def test_deferrable_first_poke_honours_soft_fail(self, dag_runner: DagRunner, emulator: EmulatorHandle) -> None:
        message_id = send_text(emulator, to=UNREACHABLE)
        emulator.wait_until(lambda: emulator.ledger()[UNREACHABLE][0]["status"] == "failed", timeout=10)
        result = run(
            dag_runner,
            "waslah_sensor_deferred_soft_fail",
            f"""
            WaslahMessageSensor(task_id="wait", message_id={message_id}, deferrable=True, soft_fail=True)
            """,
        )
        assert result.task_states() == {"wait": ["skipped"]}

    def test_missing_connection_is_reported_not_masked(
        self, dag_runner: DagRunner, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
    ) -> None:
        result = run(
            dag_runner,
            "waslah_sensor_no_conn",
            """
            WaslahMessageSensor(task_id="wait", message_id=1, waslah_conn_id="waslah_nowhere", deferrable=True)
            """,
        )
        assert result.task_states() == {"wait": ["failed"]}
        out = capsys.readouterr().out
        assert "waslah_nowhere" in out and "isn't defined" in out

    def test_soft_fail_on_timeout_skips(self, dag_runner: DagRunner, emulator: EmulatorHandle) -> None:
        emulator.seed(time_scale=100.0)  # pending for minutes
        message_id = send_text(emulator)
        result = run(
            dag_runner,
            "waslah_sensor_soft_fail",
            f"""
            WaslahMessageSensor(task_id="wait", message_id={message_id}, poke_interval=0.2, timeout=1, soft_fail=True)
            """,
        )
        assert result.task_states() == {"wait": ["skipped"]}

    def test_timeout_without_soft_fail_fails(self, dag_runner: DagRunner, emulator: EmulatorHandle) -> None:
        emulator.seed(time_scale=100.0)
        message_id = send_text(emulator)
        result = run(
            dag_runner,
            "waslah_sensor_timeout",
            f"""
            WaslahMessageSensor(task_id="wait", message_id={message_id}, poke_interval=0.2, timeout=1)
            """,
        )
        assert result.task_states() == {"wait": ["failed"]}


class TestBroadcastSensor:
    def test_progress_lines_and_counters(
        self, dag_runner: DagRunner, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
    ) -> None:
        emulator.seed(time_scale=1.0)  # one message a second: the broadcast takes about 7 s
        recipients = [f"0812345600{n:02d}" for n in range(5)]
        broadcast_id = send_bulk(emulator, [*recipients, UNREACHABLE], delay_min_sec=1, delay_max_sec=1)
        result = run(
            dag_runner,
            "waslah_broadcast_sensor",
            f"""
            WaslahBroadcastSensor(task_id="wait", broadcast_id="{broadcast_id}", poke_interval=0.5)
            """,
        )
        assert result.task_states() == {"wait": ["success"]}
        assert result.xcom("wait") == {
            "broadcast_ids": [broadcast_id],
            "status": "completed",
            "total": 6,
            "sent": 5,
            "failed": 1,
            "pending": 0,
            "progress_percent": 100,
        }
        out = capsys.readouterr().out
        lines = [line for line in out.splitlines() if f"Waslah broadcast {broadcast_id}: " in line]
        assert len(lines) >= 2  # one per poke while it ran
        assert "100%" not in lines[0]  # progress logged while it ran, not only at the end
        assert f"Waslah broadcast {broadcast_id} completed: 100% - sent 5/6, failed 1" in out

    def test_max_failed_ratio_fails_the_task(
        self, dag_runner: DagRunner, emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
    ) -> None:
        broadcast_id = send_bulk(emulator, ["081234560001", UNREACHABLE, unreachable_number(2)])
        result = run(
            dag_runner,
            "waslah_broadcast_sensor_ratio",
            f"""
            WaslahBroadcastSensor(
                task_id="wait", broadcast_id={broadcast_id}, max_failed_ratio=0.25, poke_interval=0.2, retries=1
            )
            """,
        )
        instance = ti(result, "wait")
        assert str(instance.state) == "failed" and instance.try_number == 1
        assert "more than max_failed_ratio=25%" in capsys.readouterr().out

    def test_deferrable_several_broadcasts(self, dag_runner: DagRunner, emulator: EmulatorHandle) -> None:
        first = send_bulk(emulator, ["081234560001", "081234560002"], delay_min_sec=1, delay_max_sec=1)
        second = send_bulk(emulator, ["081234560003"], delay_min_sec=1, delay_max_sec=1)
        result = run(
            dag_runner,
            "waslah_broadcast_sensor_deferred",
            f"""
            WaslahBroadcastSensor(
                task_id="wait", broadcast_id=[{first}, {second}], deferrable=True, poke_interval=0.2
            )
            """,
        )
        assert result.task_states() == {"wait": ["success"]}
        counters = result.xcom("wait")
        assert counters["broadcast_ids"] == [first, second]
        assert (counters["total"], counters["sent"], counters["failed"]) == (3, 3, 0)


class TestArguments:
    @pytest.mark.parametrize(("value", "expected"), [(5, 5), ("5", 5), (" 12 ", 12), (7.0, 7)])
    def test_ids_from_templates(self, value: Any, expected: int) -> None:
        assert coerce_id(value, "message_id") == expected

    @pytest.mark.parametrize("value", ["abc", "", "None", 0, -3, True, 1.5, None, {"message_id": 3}])
    def test_bad_ids_name_the_field(self, value: Any) -> None:
        with pytest.raises(WaslahSensorInputError, match="`message_id`: must be a positive integer"):
            coerce_id(value, "message_id")

    @pytest.mark.parametrize(
        ("value", "expected"), [(3, [3]), ("3", [3]), ("[3, 4]", [3, 4]), ("3,4", [3, 4]), ([3, "4"], [3, 4])]
    )
    def test_broadcast_ids(self, value: Any, expected: list[int]) -> None:
        assert coerce_ids(value, "broadcast_id") == expected

    def test_bad_broadcast_id_names_the_element(self) -> None:
        with pytest.raises(WaslahSensorInputError, match=r"`broadcast_id\[1\]`"):
            coerce_ids([3, "x"], "broadcast_id")

    def test_checked_at_construction_unless_templated(self) -> None:
        with pytest.raises(WaslahSensorInputError, match="message_id"):
            WaslahMessageSensor(task_id="w", message_id="abc")
        with pytest.raises(ValueError, match="target_statuses"):
            WaslahMessageSensor(task_id="w", message_id=1, target_statuses=["arrived"])
        with pytest.raises(ValueError, match="max_failed_ratio"):
            WaslahBroadcastSensor(task_id="w", broadcast_id=1, max_failed_ratio=1.5)
        WaslahMessageSensor(task_id="w", message_id="{{ ti.xcom_pull('send')['message_id'] }}")

    def test_templated_fields(self) -> None:
        assert set(WaslahMessageSensor.template_fields) >= {"message_id", "target_statuses"}
        assert "broadcast_id" in WaslahBroadcastSensor.template_fields


class TestResumeFromEvents:
    """``execute_complete`` and the deferral-timeout path, fed events as the triggerer would."""

    def sensor(self, **kwargs: Any) -> WaslahMessageSensor:
        return WaslahMessageSensor(task_id="wait", message_id=9, poke_interval=1, **kwargs)

    def test_success_event(self) -> None:
        event = {"status": "success", "message": "ok", "data": {"id": 9, "status": "delivered"}}
        assert self.sensor().execute_complete({}, event)["status"] == "delivered"  # type: ignore[arg-type]

    def test_failed_event_raises_the_waiting_rule(self) -> None:
        data = {"id": 9, "status": "failed", "phone_number": "6289991", "error_message": "Nomor tidak terdaftar"}
        with pytest.raises(WaslahMessageFailedError, match="Nomor tidak terdaftar"):
            self.sensor().execute_complete({}, {"status": "failed", "message": "x", "data": data})  # type: ignore[arg-type]

    def test_error_event_becomes_the_typed_api_error(self) -> None:
        event = {
            "status": "error",
            "message": "GET /messages/9 failed with HTTP 404 not_found: Message tidak ditemukan",
            "error_type": "WaslahNotFoundError",
            "http_status": 404,
            "error_code": "not_found",
            "api_message": "Message tidak ditemukan",
            "method": "GET",
            "path": "/messages/9",
        }
        with pytest.raises(WaslahNotFoundError, match="HTTP 404 not_found: Message tidak ditemukan") as caught:
            self.sensor().execute_complete({}, event)  # type: ignore[arg-type]
        assert caught.value.http_status == 404
        event.update(http_status=401, error_code="unauthorized", api_message="Unauthenticated.")
        with pytest.raises(WaslahUnauthorizedError):
            self.sensor().execute_complete({}, event)  # type: ignore[arg-type]

    def test_broadcast_events(self) -> None:
        sensor = WaslahBroadcastSensor(task_id="b", broadcast_id=4, max_failed_ratio=0.1)
        done = {"id": 4, "status": "completed", "total": 10, "sent": 10, "failed": 0, "pending": 0}
        result = sensor.execute_complete({}, {"status": "success", "message": "", "broadcasts": [done]})  # type: ignore[arg-type]
        assert result["sent"] == 10 and result["broadcast_ids"] == [4]
        over = dict(done, sent=8, failed=2)
        with pytest.raises(WaslahBroadcastFailedError, match="max_failed_ratio"):
            sensor.execute_complete({}, {"status": "failed", "message": "", "broadcasts": [over]})  # type: ignore[arg-type]

    def test_deferral_timeout_with_soft_fail_skips(self) -> None:
        from airflow.sdk.bases.operator import TriggerFailureReason

        timed_out = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
        with pytest.raises(AirflowSkipException):
            self.sensor(soft_fail=True).resume_execution("__fail__", timed_out, {})  # type: ignore[arg-type]
        with pytest.raises(AirflowSensorTimeout):
            self.sensor().resume_execution("__fail__", timed_out, {})  # type: ignore[arg-type]

    def test_defer_passes_timeout_and_trigger(self, monkeypatch: pytest.MonkeyPatch) -> None:
        sensor = self.sensor(deferrable=True, timeout=90, target_statuses=["read"])
        monkeypatch.setattr(WaslahMessageSensor, "poke", lambda self, context: PokeReturnValue(False))
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute({})  # type: ignore[arg-type]
        assert deferred.value.timeout == timedelta(seconds=90)
        assert deferred.value.method_name == "execute_complete"
        trigger = deferred.value.trigger
        assert isinstance(trigger, WaslahMessageTrigger)
        assert trigger.serialize()[1] == {
            "message_id": 9,
            "target_statuses": ["read"],
            "waslah_conn_id": "waslah_default",
            "poll_interval": 1.0,
        }
        broadcast = WaslahBroadcastSensor(task_id="b", broadcast_id="[4, 5]", deferrable=True, poke_interval=3)
        monkeypatch.setattr(WaslahBroadcastSensor, "poke", lambda self, context: PokeReturnValue(False))
        with pytest.raises(TaskDeferred) as deferred:
            broadcast.execute({})  # type: ignore[arg-type]
        assert isinstance(deferred.value.trigger, WaslahBroadcastTrigger)
        assert deferred.value.trigger.broadcast_ids == [4, 5]
