"""Fast operator tests: ``execute()`` called directly over a hook double, the exact calls asserted.

The ``dag.test()`` tests beside this file keep what needs a real run (templating from XCom,
mapping, retries by Airflow, the emulator's ledger).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_waslah._compat import AirflowFailException
from airflow_provider_waslah.broadcast_plan import parse_chunk_name
from airflow_provider_waslah.client.calls import Call
from airflow_provider_waslah.client.errors import (
    WaslahEngineUnavailableError,
    WaslahInvalidInputError,
    WaslahSendOutcomeUnknownError,
)
from airflow_provider_waslah.operators.waslah import (
    WaslahBroadcastOperator,
    WaslahSendMediaOperator,
    WaslahSendMessageOperator,
    WaslahSendTextOperator,
)
from airflow_provider_waslah.triggers.waslah import WaslahBroadcastTrigger, WaslahMessageTrigger
from airflow_provider_waslah.waiting import WaslahMessageFailedError
from tests.operators.doubles import FakeTI, HookDouble, context, receipt


def with_hook(operator: Any, answer: Any) -> HookDouble:
    double = HookDouble(answer)
    operator.hook = double
    return double


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"6281300{index:06d}" for index in range(start, start + count)]


class TestSingleMessages:
    def test_text_sends_one_request_and_returns_the_receipt(self) -> None:
        op = WaslahSendTextOperator(task_id="t", instance_key="demo", to="0812-3456-7890", text="Halo")
        hook = with_hook(op, lambda call: receipt(7))
        result = op.execute(context())
        assert hook.calls == ["POST /messages/text"]
        assert hook.bodies == [{"instance_key": "demo", "to": "6281234567890", "text": "Halo"}]
        assert result["message_id"] == 7 and result["status"] == "pending" and result["to"] == "6281234567890"

    def test_media_from_a_file_uploads_then_sends_the_uploaded_url(self, tmp_path: Path) -> None:
        pdf = tmp_path / "invoice.pdf"
        pdf.write_bytes(b"%PDF-1.4 x")
        uploaded = "https://waslah.id/storage/uploads/invoice.pdf"

        def answer(call: Call[Any]) -> Any:
            if call.path == "/uploads":
                return {"url": uploaded, "size": 10, "mime_type": "application/pdf"}
            return receipt(8, type="document", media_url=uploaded)

        op = WaslahSendMediaOperator(task_id="m", instance_key="demo", to="081234567890", file_path=str(pdf))
        hook = with_hook(op, answer)
        result = op.execute(context())
        assert hook.calls == ["POST /uploads", "POST /messages/media"]
        assert hook.bodies[1] == {
            "instance_key": "demo",
            "to": "6281234567890",
            "type": "document",
            "url": uploaded,
            "filename": "invoice.pdf",
        }
        assert result["message_id"] == 8 and result["media_url"] == uploaded

    def test_unified_text_only(self) -> None:
        op = WaslahSendMessageOperator(task_id="u", instance_key="demo", to="6281234567890@s.whatsapp.net", text="Hi")
        hook = with_hook(op, lambda call: receipt(9))
        op.execute(context())
        assert hook.calls == ["POST /messages"]
        assert hook.bodies == [{"instance_key": "demo", "to": "6281234567890@s.whatsapp.net", "text": "Hi"}]

    def test_unknown_outcome_fails_without_retry(self) -> None:
        op = WaslahSendTextOperator(task_id="t", instance_key="demo", to="081234567890", text="Halo", retries=3)

        def answer(call: Call[Any]) -> Any:
            raise WaslahSendOutcomeUnknownError("read timeout", method="POST", path="/messages/text")

        hook = with_hook(op, answer)
        with pytest.raises(AirflowFailException, match="not retrying"):
            op.execute(context())
        assert hook.calls == ["POST /messages/text"]

    def test_wait_in_worker_rides_out_a_503_then_returns_the_final_status(self) -> None:
        answers = iter(
            [
                receipt(5),
                WaslahEngineUnavailableError(status_code=503, error=None, message="down", method="GET", path="/m"),
                {"id": 5, "status": "sent"},
                {"id": 5, "status": "delivered", "sent_at": "2026-11-25T10:00:00Z"},
            ]
        )

        def answer(call: Call[Any]) -> Any:
            value = next(answers)
            if isinstance(value, Exception):
                raise value
            return value

        op = WaslahSendTextOperator(
            task_id="t", instance_key="demo", to="081234567890", text="x", wait_for="delivered", poll_interval=0.01
        )
        hook = with_hook(op, answer)
        result = op.execute(context())
        assert hook.calls == ["POST /messages/text", "GET /messages/5", "GET /messages/5", "GET /messages/5"]
        assert result["status"] == "delivered" and result["sent_at"] == "2026-11-25T10:00:00Z"

    def test_failed_message_fails_the_task_with_waslahs_reason(self) -> None:
        answers = iter([receipt(5), {"id": 5, "status": "failed", "error_message": "Nomor tidak terdaftar"}])
        op = WaslahSendTextOperator(task_id="t", instance_key="demo", to="081234567890", text="x", wait_for="sent")
        with_hook(op, lambda call: next(answers))
        with pytest.raises(WaslahMessageFailedError, match="Nomor tidak terdaftar"):
            op.execute(context())

    def test_wait_timeout_is_final_and_says_so(self) -> None:
        answers = iter([receipt(5)])
        op = WaslahSendTextOperator(
            task_id="t",
            instance_key="demo",
            to="081234567890",
            text="x",
            wait_for="read",
            poll_interval=0.05,
            wait_timeout=0.2,
        )
        with_hook(op, lambda call: next(answers, {"id": 5, "status": "sent"}))
        with pytest.raises(AirflowFailException, match=r"Waslah message 5 did not reach 'read' within 0.2 s"):
            op.execute(context())

    def test_deferrable_defers_with_the_trigger_then_resumes_from_the_event(self) -> None:
        op = WaslahSendTextOperator(
            task_id="t", instance_key="demo", to="081234567890", text="x", wait_for="delivered", deferrable=True
        )
        hook = with_hook(op, lambda call: receipt(11))
        ti = FakeTI()
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(context(ti))
        assert hook.calls == ["POST /messages/text"]  # no poll in the worker
        trigger = deferred.value.trigger
        assert isinstance(trigger, WaslahMessageTrigger)
        assert trigger.serialize()[1] == {
            "message_id": 11,
            "target_statuses": ["delivered"],
            "waslah_conn_id": "waslah_default",
            "poll_interval": 5.0,
        }
        event = {"status": "success", "message": "", "data": {"id": 11, "status": "read"}}
        result = op.execute_complete(context(ti), event)
        assert result["message_id"] == 11 and result["status"] == "read"


class TestBroadcast:
    @staticmethod
    def operator(recipients: list[str], **options: Any) -> WaslahBroadcastOperator:
        return WaslahBroadcastOperator(task_id="t", instance_key="demo", recipients=recipients, text="Promo", **options)

    @staticmethod
    def answering(listed: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
        created: list[dict[str, Any]] = []

        def answer(call: Call[Any]) -> Any:
            if call.method == "GET":
                return listed
            assert call.json is not None
            created.append({"id": 100 + len(created), "name": call.json["name"], "status": "processing"})
            return {**created[-1], "total": len(call.json["recipients"])}

        return answer, created

    def test_250_recipients_go_out_as_three_chunks_after_one_listing(self) -> None:
        op = self.operator(numbers(250))
        answer, _ = self.answering([])
        hook = with_hook(op, answer)
        result = op.execute(context())
        assert hook.calls == ["GET /broadcasts", *["POST /messages/bulk"] * 3]
        assert [body["recipients"] for body in hook.bodies[1:]] == [numbers(100), numbers(100, 100), numbers(50, 200)]
        assert [entry["broadcast_id"] for entry in result["broadcasts"]] == [100, 101, 102]
        assert result["totals"]["chunks_sent"] == 3 and result["totals"]["recipients"] == 250

    def test_retry_with_the_same_input_sends_only_the_missing_chunk(self) -> None:
        answer, created = self.answering([])
        first = self.operator(numbers(250))
        with_hook(first, answer)
        first.execute(context())
        retry = self.operator(numbers(250))
        answer2, _ = self.answering(created[:2][::-1])
        hook = with_hook(retry, answer2)
        result = retry.execute(context())
        assert hook.calls == ["GET /broadcasts", "POST /messages/bulk"]
        assert hook.bodies[1]["recipients"] == numbers(50, 200)
        assert [entry["resumed"] for entry in result["broadcasts"]] == [True, True, False]

    def test_retry_with_other_recipients_fails_without_sending(self) -> None:
        """The defect: same chunk count, other recipients; the retry skipped 200 of 250 new people."""
        answer, created = self.answering([])
        first = self.operator(numbers(250))
        with_hook(first, answer)
        first.execute(context())
        retry = self.operator(numbers(250, start=5000))
        answer2, _ = self.answering(created[:2][::-1])  # chunk 3 of the first try never went out
        hook = with_hook(retry, answer2)
        with pytest.raises(AirflowFailException, match="differ from this try's") as failure:
            retry.execute(context())
        assert hook.calls == ["GET /broadcasts"]
        assert "Nothing was sent by this try" in str(failure.value)

    def test_on_input_change_send_sends_the_new_input_in_full(self) -> None:
        answer, created = self.answering([])
        first = self.operator(numbers(250))
        with_hook(first, answer)
        first.execute(context())
        retry = self.operator(numbers(250, start=5000), on_input_change="send")
        answer2, _ = self.answering(created[::-1])
        hook = with_hook(retry, answer2)
        retry.execute(context())
        assert hook.calls == ["GET /broadcasts", *["POST /messages/bulk"] * 3]
        assert hook.bodies[1]["recipients"] == numbers(100, 5000)

    def test_chunk_names_carry_the_task_and_the_plan(self) -> None:
        op = self.operator(numbers(150), name="Promo")
        answer, created = self.answering([])
        with_hook(op, answer)
        op.execute(context(FakeTI("sales", "notify")))
        assert created[0]["name"].startswith("Promo · sales.notify af:") and created[1]["name"].endswith(" 2/2")
        assert parse_chunk_name(created[0]["name"]) is not None

    def test_deferrable_waits_on_every_chunk(self) -> None:
        op = self.operator(numbers(150), wait_for="completed", deferrable=True, max_failed_ratio=0.2)
        answer, _ = self.answering([])
        with_hook(op, answer)
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(context())
        trigger = deferred.value.trigger
        assert isinstance(trigger, WaslahBroadcastTrigger)
        assert trigger.broadcast_ids == [100, 101] and trigger.max_failed_ratio == 0.2


BAD_INPUT = {
    "empty recipients": (WaslahBroadcastOperator, {"recipients": [], "text": "x"}, "Invalid `recipients`"),
    "bad numbers among many": (
        WaslahBroadcastOperator,
        {"recipients": [*numbers(150), "12345", "not-a-number"], "text": "x"},
        "2 invalid number(s): '12345', 'not-a-number'",
    ),
    "bad to": (WaslahSendTextOperator, {"to": "12", "text": "x"}, "Invalid `to`: '12' must have 8-15 digits"),
    "two to": (WaslahSendTextOperator, {"to": "0812345678, 0813456789", "text": "x"}, "takes one recipient, got 2"),
    "long text": (WaslahSendTextOperator, {"to": "081234567890", "text": "x" * 4001}, "at most 4000 characters"),
    "naive schedule": (
        WaslahSendTextOperator,
        {"to": "081234567890", "text": "x", "scheduled_at": "2030-01-01T09:00:00"},
        "Invalid `scheduled_at`: must be timezone-aware",
    ),
    "missing file": (WaslahSendMediaOperator, {"to": "081234567890", "file_path": "/nope/x.pdf"}, "`file_path`"),
    "private url": (
        WaslahSendMediaOperator,
        {"to": "081234567890", "url": "http://192.168.1.10/a.png"},
        "Invalid `url`: host '192.168.1.10'",
    ),
    "caption too long": (
        WaslahBroadcastOperator,
        {"recipients": numbers(120), "type": "image", "url": "https://cdn.example.com/a.png", "caption": "c" * 1025},
        "Invalid `caption`",
    ),
    "bad delay": (
        WaslahBroadcastOperator,
        {"recipients": numbers(3), "text": "x", "delay_min_sec": "²"},
        "Invalid `delay_min_sec`",
    ),
}


@pytest.mark.parametrize(("cls", "arguments", "expected"), list(BAD_INPUT.values()), ids=list(BAD_INPUT))
def test_bad_input_fails_before_any_request(cls: type, arguments: dict[str, Any], expected: str) -> None:
    op = cls(task_id="t", instance_key="demo", **arguments)
    hook = with_hook(op, lambda call: pytest.fail(f"no request expected, got {call.method} {call.path}"))
    with pytest.raises(WaslahInvalidInputError) as error:
        op.execute(context())
    assert expected in str(error.value)
    assert hook.calls == []


def test_files_too_big_or_off_the_whitelist_fail_before_any_request(tmp_path: Path) -> None:
    big = tmp_path / "big.pdf"
    with big.open("wb") as handle:  # sparse: 17 MB on paper, nothing on disk
        handle.truncate(17 * 1024 * 1024)
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ\x90\x00")
    for path, extra, expected in [
        (big, {}, "at most 16777216 bytes"),
        (exe, {"type": "document"}, "is not accepted by Waslah uploads"),
    ]:
        op = WaslahSendMediaOperator(task_id="m", instance_key="demo", to="081234567890", file_path=str(path), **extra)
        hook = with_hook(op, lambda call: pytest.fail("no request expected"))
        with pytest.raises(WaslahInvalidInputError, match=expected):
            op.execute(context())
        assert hook.calls == []
