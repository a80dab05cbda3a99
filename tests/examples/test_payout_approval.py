"""The payout-approval example under ``dag.test()``, answered on WhatsApp through the real receiver app.

``dag.test()`` runs the DAG in this process; the question goes out through the emulator (what the
approver's phone received is in its ledger). The approver's replies are signed deliveries posted to
the receiver app in-process, with the real HITL responder on the same metadata DB, from a thread
beside ``dag.test()``. Airflow 3.3's ``dag.test()`` waits for the answer (the task is parked in
``awaiting_input``). Airflow 3.1's cannot run the HITL trigger in-process (skipped there; the stack
test runs the example with real processes on 3.1 too). Timeouts are not
tested here: ``dag.test()`` does not run the scheduler's timeout sweep (3.3); the stack test does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_waslah.emulator.handle import wait_until
from tests.airflow_support import AIRFLOW_3_2_PLUS, DagResult
from tests.examples.conftest import messages_to
from tests.hitl.support import (
    Background,
    RecordingSender,
    answer_in_ui,
    conversation,
    hitl_rows,
    post_reply,
    receiver_client,
    reply_delivery,
)

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not AIRFLOW_3_2_PLUS,
        reason="Airflow 3.1's dag.test() cannot run the HITL trigger in-process (its supervisor answers the "
        "trigger's GetHITLDetail with 'Unhandled request' and the task fails); tests/stack/ runs it on 3.1",
    ),
]


@pytest.fixture(autouse=True)
def ui_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Airflow UI's address, for the link in the question (``[api] base_url``)."""
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example")


DAG_ID = "waslah_payout_approval"
APPROVER = "6281234560010"  # the example's default approver
STRANGER = "6281234560099"


def open_question(since: int) -> dict[str, Any]:
    """The example's HITL question created by this test's run (the ``since``-th one), once it exists."""

    def found() -> dict[str, Any] | None:
        # Parked, as when a person reads the question: an answer while the task still runs is resumed
        # by Airflow's park transition; under dag.test() one such run hung once (cause not found).
        rows = [r for r in hitl_rows(DAG_ID) if r["responded_at"] is None and r["state"] == "awaiting_input"]
        return rows[0] if len(hitl_rows(DAG_ID)) > since and rows else None

    return wait_until(found, 90, 0.2, "the HITL question")  # type: ignore[return-value]


def unblock() -> None:
    """If the test thread failed, answer any open question so that ``dag.test()`` ends."""
    for row in hitl_rows(DAG_ID):
        if row["responded_at"] is None:
            answer_in_ui(DAG_ID, row["run_id"], row["task_id"], "Tolak")


def test_reply_1_approves_and_halo_gets_the_options(
    run_example: Callable[..., DagResult], waslah_emulator: Any
) -> None:
    client = receiver_client(sender := RecordingSender(waslah_emulator))
    before = len(hitl_rows(DAG_ID))
    seen: dict[str, Any] = {}

    def approver() -> None:
        question = open_question(before)
        wait_until(lambda: messages_to(waslah_emulator.ledger(), APPROVER), 30, 0.2, "the question on WhatsApp")
        halo = post_reply(client, APPROVER, "halo")
        stranger = post_reply(client, STRANGER, "1")
        still_open = hitl_rows(DAG_ID)
        answer = post_reply(client, APPROVER, " 1 ")
        assert answer.status_code == 200, answer.text  # else dag.test() would wait forever: unblock()
        seen.update(question=question, halo=halo, stranger=stranger, still_open=still_open, answer=answer)

    with Background(approver, unblock):
        result = run_example(DAG_ID)

    assert seen["halo"].status_code == 200 and seen["halo"].json()["hitl"] == "not_understood"
    assert seen["stranger"].json().get("hitl") is None  # not a reply to any question: the normal path
    assert all(r["responded_at"] is None for r in seen["still_open"] if r["ti_id"] == seen["question"]["ti_id"])
    assert seen["answer"].json()["hitl"] == "answer", seen["answer"].text
    assert result.state == "success", result.task_states()
    states = result.task_states()
    assert states["pay_vendor"] == ["success"] and states["notify_rejected"] == ["skipped"]
    assert result.xcom("pay_vendor") == "paid Rp 12.500.000 to PT Maju Jaya"
    (row,) = [r for r in hitl_rows(DAG_ID) if r["ti_id"] == seen["question"]["ti_id"]]
    assert row["responded_by"] == {"id": f"whatsapp:{APPROVER}", "name": f"whatsapp:{APPROVER}"}
    assert row["chosen_options"] == ["Setujui"]

    texts = conversation(waslah_emulator.ledger(), APPROVER)
    assert len(texts) == 3, texts  # the question, the options again after "halo", the confirmation
    question, options_again, confirmed = texts
    assert "*Payout Rp 12.500.000 ke PT Maju Jaya*" in question and "Balas 1 = Setujui, 2 = Tolak" in question
    assert "Invoice: INV-1001" in question and "(tanpa jawaban: otomatis Tolak)" in question
    assert f"Buka di Airflow: http://airflow.example/dags/{DAG_ID}/runs/" in question
    assert "/tasks/approve_payout/required_actions?map_index=-1" in question
    assert 'balasan "halo" tidak dikenali' in options_again and "Balas 1 = Setujui, 2 = Tolak" in options_again
    assert confirmed.startswith("Terima kasih. Jawaban Anda untuk") and confirmed.endswith("tercatat: Setujui.")
    assert not messages_to(waslah_emulator.ledger(), STRANGER)
    assert [o.kind for o in sender.sent] == ["not_understood", "answer"]


def test_tolak_rejects_and_a_duplicate_delivery_does_nothing(
    run_example: Callable[..., DagResult], waslah_emulator: Any
) -> None:
    client = receiver_client(RecordingSender(waslah_emulator))
    before = len(hitl_rows(DAG_ID))
    seen: dict[str, Any] = {}

    def approver() -> None:
        open_question(before)
        raw, headers = reply_delivery(APPROVER, "TOLAK", remote_jid="211198035367129@lid")  # privacy mode
        seen["first"] = client.post("/waslah/webhook/waslah_default", content=raw, headers=headers)
        seen["again"] = client.post("/waslah/webhook/waslah_default", content=raw, headers=headers)
        assert seen["first"].status_code == 200, seen["first"].text

    with Background(approver, unblock):
        result = run_example(DAG_ID)

    assert seen["first"].json()["hitl"] == "answer" and seen["again"].status_code == 208
    states = result.task_states()
    assert states["notify_rejected"] == ["success"] and states["pay_vendor"] == ["skipped"]
    # The confirmation went to the JID the reply came from (an @lid gets nothing at its digits).
    ledger = waslah_emulator.ledger()
    (confirmation,) = messages_to(ledger, "211198035367129@lid")
    assert confirmation["text"].endswith("tercatat: Tolak.")
    assert len(messages_to(ledger, APPROVER)) == 1  # only the question


def test_ui_answer_first_then_whatsapp_gets_already_answered(
    run_example: Callable[..., DagResult], waslah_emulator: Any
) -> None:
    client = receiver_client(RecordingSender(waslah_emulator))
    before = len(hitl_rows(DAG_ID))
    seen: dict[str, Any] = {}

    def ui_then_whatsapp() -> None:
        question = open_question(before)
        answer_in_ui(DAG_ID, question["run_id"], question["task_id"], "Setujui", user="admin")
        seen["late"] = post_reply(client, APPROVER, "2")

    with Background(ui_then_whatsapp, unblock):
        result = run_example(DAG_ID)

    assert seen["late"].json()["hitl"] == "already_answered", seen["late"].text
    assert result.task_states()["pay_vendor"] == ["success"]
    texts = conversation(waslah_emulator.ledger(), APPROVER)
    assert len(texts) == 2 and "sudah dijawab oleh admin pada" in texts[1] and texts[1].count(": Setujui.") == 1
