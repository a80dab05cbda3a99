"""The message operators in real DAGs (``dag.test()``) against the emulator over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_waslah.emulator import UNREACHABLE_NUMBER
from tests.operators.support import AIRFLOW_3_2_PLUS, AIRFLOW_3_3_PLUS, api_requests, dag_source, numbers

#: 250 rows as asked; on Airflow 3.1 dag.test() would take ten minutes for them.
ROWS = 250 if AIRFLOW_3_2_PLUS else 10

UNREACHABLE = UNREACHABLE_NUMBER


def test_text_media_unified_and_upload_in_one_dag(dag_runner: Any, emulator: Any, tmp_path: Path, capsys: Any) -> None:
    invoice = tmp_path / "invoice-0042.pdf"
    invoice.write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    result = dag_runner.run(
        "ops_all_kinds",
        dag_source(
            f"""
with DAG("ops_all_kinds", schedule=None, start_date=datetime(2025, 1, 1)):
    @task
    def customers():
        return [{{"phone": "0812-3456-7890", "name": "Ani"}}, {{"phone": "+62 813 1111 2222", "name": "Budi"}}]

    rows = customers()
    text = WaslahSendTextOperator(
        task_id="text",
        instance_key="demo",
        to="{{{{ ti.xcom_pull('customers')[0]['phone'] }}}}",
        text="Halo {{{{ ti.xcom_pull('customers')[0]['name'] }}}}, run {{{{ run_id }}}}",
        wait_for="delivered",
        poll_interval=0.05,
    )
    unified_text = WaslahSendMessageOperator(
        task_id="unified_text", instance_key="demo", to=[{{"phone": "081311112222"}}], text="Plain via /messages"
    )
    unified_image = WaslahSendMessageOperator(
        task_id="unified_image",
        instance_key="demo",
        to="6281311112222@s.whatsapp.net",
        url="https://cdn.example.com/promo.png",
        text="Promo!",
    )
    media_url = WaslahSendMediaOperator(
        task_id="media_url",
        instance_key="demo",
        to="081311112222",
        url="https://cdn.example.com/files/report.pdf",
        caption="Laporan",
    )
    media_file = WaslahSendMediaOperator(
        task_id="media_file",
        instance_key="demo",
        to="{{{{ ti.xcom_pull('customers')[1] }}}}",
        recipient_key="phone",
        file_path="{invoice}",
        caption="Invoice {{{{ ds }}}}",
        wait_for="sent",
        poll_interval=0.05,
    )
    rows >> [text, media_file]
"""
        ),
    )
    assert result.state == "success", result.task_states()

    text = result.xcom("text")
    assert text["status"] in ("delivered", "read")
    assert text["to"] == "6281234567890"
    assert text["type"] == "text"
    assert set(text) >= {"message_id", "status", "to", "check_status_url", "scheduled_at", "instance_key"}
    assert text["check_status_url"].endswith(f"/messages/{text['message_id']}")

    media_file = result.xcom("media_file")
    assert media_file["type"] == "document"
    assert media_file["status"] in ("sent", "delivered", "read")
    assert media_file["media_url"].startswith(emulator.origin + "/storage/uploads/")

    assert result.xcom("media_url")["type"] == "document"  # inferred from the URL's .pdf
    assert result.xcom("unified_image")["type"] == "image"

    ledger = emulator.ledger()
    (ani,) = ledger["6281234567890"]
    assert ani["type"] == "text"
    assert ani["text"].startswith("Halo Ani, run manual__")
    (plain,) = (entry for entry in ledger["6281311112222"] if entry["type"] == "text")
    assert plain["text"] == "Plain via /messages"
    # A full JID is kept as given, so Waslah's ledger files it under the JID.
    (image,) = ledger["6281311112222@s.whatsapp.net"]
    assert (image["type"], image["media_url"], image["caption"]) == (
        "image",
        "https://cdn.example.com/promo.png",
        "Promo!",
    )
    documents = [entry for entry in ledger["6281311112222"] if entry["type"] == "document"]
    assert {doc["media_url"] for doc in documents} == {
        "https://cdn.example.com/files/report.pdf",
        media_file["media_url"],
    }
    uploaded = next(doc for doc in documents if doc["media_url"] == media_file["media_url"])
    assert uploaded["filename"] == "invoice-0042.pdf"
    assert uploaded["caption"].startswith("Invoice 20")
    assert len(ledger["6281311112222"]) == 3

    out = capsys.readouterr().out
    assert f"Queued text message {text['message_id']} to 62812****7890 (pending)" in out
    assert "Uploaded " in out and "invoice-0042.pdf" in out
    assert emulator.api_key not in out


def test_wait_in_worker_fails_with_the_error_message(dag_runner: Any, emulator: Any, capsys: Any) -> None:
    result = dag_runner.run(
        "ops_wait_failed",
        dag_source(
            f"""
with DAG("ops_wait_failed", schedule=None, start_date=datetime(2025, 1, 1),
         default_args={{"retries": 2, "retry_delay": timedelta(0)}}):
    WaslahSendTextOperator(
        task_id="unreachable", instance_key="demo", to="{UNREACHABLE}", text="Halo", wait_for="delivered",
        poll_interval=0.05,
    )
"""
        ),
    )
    assert result.task_states() == {"unreachable": ["failed"]}
    (entry,) = emulator.ledger()[UNREACHABLE]
    assert entry["status"] == "failed" and entry["error_message"]
    out = capsys.readouterr().out
    assert entry["error_message"] in out
    # A failed message is final: the task is not retried (a retry would send it again).
    sends = [r for r in api_requests(emulator) if r["method"] == "POST"]
    assert len(sends) == 1


def test_wait_timeout_retries_the_wait_not_the_send(dag_runner: Any, emulator: Any, capsys: Any) -> None:
    """Every try's wait times out; with the checkpoint (Airflow 3.3+) each retry waits again, sending nothing.

    Without a task state store (3.1, 3.2) the task is failed at once, not retried, as before.
    """
    emulator.seed(lifecycle={"sent": 1.0, "delivered": 100000.0, "read": 200000.0, "broadcast_start": 1.0})
    result = dag_runner.run(
        "ops_wait_timeout",
        dag_source(
            """
with DAG("ops_wait_timeout", schedule=None, start_date=datetime(2025, 1, 1),
         default_args={"retries": 2, "retry_delay": timedelta(0)}):
    WaslahSendTextOperator(
        task_id="slow", instance_key="demo", to="081234567890", text="Halo", wait_for="read",
        poll_interval=0.05, wait_timeout=0.5,
    )
"""
        ),
    )
    assert result.task_states() == {"slow": ["failed"]}
    assert len(emulator.ledger()["6281234567890"]) == 1
    assert len([r for r in api_requests(emulator) if r["method"] == "POST"]) == 1
    out = capsys.readouterr().out
    assert out.count("did not reach 'read' within 0.5 s") == (3 if AIRFLOW_3_3_PLUS else 1)
    if AIRFLOW_3_3_PLUS:
        assert out.count("queued message 1 to 62812****7890") == 2  # tries 2 and 3 found it
        assert "a retry waits for it again" in out
    else:
        assert "not retried" in out


@pytest.mark.skipif(not AIRFLOW_3_3_PLUS, reason="the task state store arrived in Airflow 3.3")
def test_retry_after_a_failed_wait_finds_the_message_and_only_waits(
    dag_runner: Any, emulator: Any, capsys: Any
) -> None:
    """Try 1 sends, then its wait times out before delivery; try 2 sends nothing and sees it delivered.

    (Worker-side wait: ``dag.test()`` does not enforce deferral timeouts.)
    """
    # 75 emulated seconds to delivery = 1.5 s real (time scale 0.02): after try 1's 1 s wait.
    emulator.seed(lifecycle={"sent": 1.0, "delivered": 75.0, "read": 100000.0, "broadcast_start": 1.0})
    result = dag_runner.run(
        "ops_wait_retry",
        dag_source(
            """
with DAG("ops_wait_retry", schedule=None, start_date=datetime(2025, 1, 1),
         default_args={"retries": 2, "retry_delay": timedelta(0)}):
    WaslahSendTextOperator(
        task_id="remind", instance_key="demo", to="081234567890", text="Halo {{ ti.try_number }}",
        wait_for="delivered", poll_interval=0.1, wait_timeout=1.0,
    )
"""
        ),
    )
    assert result.task_states() == {"remind": ["success"]}
    (message,) = emulator.ledger()["6281234567890"]
    assert message["text"] == "Halo 1"  # sent by try 1 only
    assert result.xcom("remind")["status"] == "delivered"
    out = capsys.readouterr().out
    assert "did not reach 'delivered' within 1 s. The message is in this task's checkpoint" in out
    assert "An earlier try of this task queued message 1 to 62812****7890" in out and "not sending again" in out


def test_mapping_250_personalised_rows_and_expand_to(dag_runner: Any, emulator: Any) -> None:
    result = dag_runner.run(
        "ops_mapped",
        dag_source(
            """
with DAG("ops_mapped", schedule=None, start_date=datetime(2025, 1, 1)):
    @task
    def rows():
        return [
            {"to": f"6281300{i:06d}", "text": f"Halo pelanggan #{i}, tagihan Anda Rp{i * 1000}"} for i in range(250)
        ]

    WaslahSendTextOperator.partial(task_id="personal", instance_key="demo").expand_kwargs(rows())
    WaslahSendTextOperator.partial(task_id="same_text", instance_key="demo", text="Server maintenance tonight").expand(
        to=["081400000001", "081400000002", "081400000003"]
    )
""".replace("range(250)", f"range({ROWS})")
        ),
    )
    assert result.state == "success"
    states = result.task_states()
    assert states["personal"] == ["success"] * ROWS and states["same_text"] == ["success"] * 3

    ledger = emulator.ledger()
    expected = numbers(ROWS)
    assert all(len(ledger[number]) == 1 for number in expected)
    for index, number in enumerate(expected):
        assert ledger[number][0]["text"] == f"Halo pelanggan #{index}, tagihan Anda Rp{index * 1000}"
    for number in ("6281400000001", "6281400000002", "6281400000003"):
        assert [entry["text"] for entry in ledger[number]] == ["Server maintenance tonight"]
    assert len(ledger) == ROWS + 3
    assert result.xcom("personal", map_index=ROWS - 1)["to"] == expected[-1]
