"""``WaslahBroadcastOperator`` in real DAGs: chunking, waiting, and resuming across task retries."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.operators.support import api_requests, dag_source, numbers

BULK_ROUTE = "POST /api/v1/messages/bulk"


def test_1000_recipients_in_10_chunks_waits_until_completed(dag_runner: Any, emulator: Any, capsys: Any) -> None:
    result = dag_runner.run(
        "bc_thousand",
        dag_source(
            """
with DAG("bc_thousand", schedule=None, start_date=datetime(2025, 1, 1), render_template_as_native_obj=True):
    @task
    def customers():
        rows = [{"phone": f"0813{i:08d}", "name": f"c{i}"} for i in range(1000)]
        return rows + rows[:5] + [{"phone": "+62 813 0000 0001"}]  # duplicates, as written and normalised

    customers() >> WaslahBroadcastOperator(
        task_id="promo",
        instance_key="demo",
        recipients="{{ ti.xcom_pull('customers') }}",
        text="Promo akhir bulan",
        name="Promo",
        delay_min_sec=0,
        delay_max_sec=0,
        wait_for="completed",
        poll_interval=0.1,
    )
"""
        ),
    )
    assert result.state == "success", result.task_states()
    xcom = result.xcom("promo")
    assert len(xcom["broadcasts"]) == 10
    assert [entry["chunk"] for entry in xcom["broadcasts"]] == list(range(1, 11))
    assert all(entry["total"] == 100 and entry["status"] == "completed" for entry in xcom["broadcasts"])
    assert not any(entry["resumed"] for entry in xcom["broadcasts"])
    assert all(entry["name"].startswith("Promo · bc_thousand.promo af:") for entry in xcom["broadcasts"])
    assert xcom["broadcasts"][2]["name"].endswith(" 3/10")
    assert xcom["totals"]["total"] == 1000 and xcom["totals"]["sent"] == 1000 and xcom["totals"]["failed"] == 0
    assert xcom["totals"]["recipients"] == 1000 and xcom["totals"]["chunks_sent"] == 10
    assert xcom["invalid_recipients"] == []

    ledger = emulator.ledger()
    expected = [f"62813{i:08d}" for i in range(1000)]
    assert sorted(ledger) == expected
    assert all(len(ledger[number]) == 1 and ledger[number][0]["text"] == "Promo akhir bulan" for number in expected)
    assert len({ledger[number][0]["broadcast_id"] for number in expected}) == 10

    out = capsys.readouterr().out
    assert f"chunk 3/10: created broadcast {xcom['broadcasts'][2]['broadcast_id']} (100 recipients)" in out
    assert "completed: 100% - sent 1000/1000, failed 0" in out


@pytest.mark.parametrize(
    ("fault", "resumed"),
    [
        # Chunk 3 gets a 500: Waslah did not create it; chunks 1-2 were.
        ({"status": 500}, [True, True, False, False]),
        # Chunk 3 is created but its answer is lost: the retry finds it by name too.
        ({"lose_response": True}, [True, True, True, False]),
    ],
    ids=["500-on-chunk-3", "answer-lost-on-chunk-3"],
)
def test_retry_resumes_without_sending_twice(
    dag_runner: Any, emulator: Any, capsys: Any, fault: dict[str, Any], resumed: list[bool]
) -> None:
    # Let two bulk sends through, then fail the third once.
    emulator.add_fault(route=BULK_ROUTE, status=None, count=2)
    emulator.add_fault(route=BULK_ROUTE, count=1, **fault)
    result = dag_runner.run(
        "bc_resume",
        dag_source(
            """
with DAG("bc_resume", schedule=None, start_date=datetime(2025, 1, 1),
         default_args={"retries": 1, "retry_delay": timedelta(0)}):
    @task
    def numbers():
        return [f"6281300{i:06d}" for i in range(350)]

    numbers() >> WaslahBroadcastOperator(
        task_id="remind",
        instance_key="demo",
        recipients="{{ ti.xcom_pull('numbers') }}",  # rendered as the string of a list
        text="Tagihan jatuh tempo",
        delay_min_sec=0,
        delay_max_sec=0,
    )
"""
        ),
    )
    assert result.state == "success", result.task_states()
    xcom = result.xcom("remind")
    assert [entry["resumed"] for entry in xcom["broadcasts"]] == resumed
    assert [entry["total"] for entry in xcom["broadcasts"]] == [100, 100, 100, 50]
    assert all(entry["broadcast_id"] for entry in xcom["broadcasts"])
    assert xcom["totals"]["chunks_resumed"] == resumed.count(True)

    ledger = emulator.ledger()
    assert sorted(ledger) == numbers(350)
    assert Counter(len(messages) for messages in ledger.values()) == {1: 350}

    bulk_posts = [r for r in api_requests(emulator) if r["method"] == "POST" and r["path"].endswith("/messages/bulk")]
    assert len(bulk_posts) == 3 + resumed.count(False)  # 3 in the first try, the rest in the second

    out = capsys.readouterr().out
    assert "chunk 1/4: found broadcast" in out and "from an earlier try, not sending again" in out
    assert "chunk 3/4 failed" in out and "a retry of this task finds them by name" in out


@pytest.mark.parametrize("on_input_change", ["fail", "send"])
def test_retry_with_changed_recipients_never_passes_as_resumed(
    dag_runner: Any, emulator: Any, capsys: Any, on_input_change: str
) -> None:
    """Try 1 sends 250 numbers and chunk 3 fails; try 2 has 250 other numbers, still 3 chunks.

    Before the fix the retry found chunks 1-2 "by name", skipped them and succeeded: 200 of the
    new recipients got nothing.
    """
    emulator.add_fault(route=BULK_ROUTE, status=None, count=2)
    emulator.add_fault(route=BULK_ROUTE, count=1, status=500)
    result = dag_runner.run(
        f"bc_changed_{on_input_change}",
        dag_source(
            f"""
with DAG("bc_changed_{on_input_change}", schedule=None, start_date=datetime(2025, 1, 1),
         default_args={{"retries": 1, "retry_delay": timedelta(0)}}):
    WaslahBroadcastOperator(
        task_id="remind",
        instance_key="demo",
        # The list an upstream query returns changes between the two tries.
        recipients=(
            "{{% set offset = 0 if ti.try_number == 1 else 5000 %}}"
            "{{% for i in range(250) %}}6281300{{{{ '%06d' % (i + offset) }}}},{{% endfor %}}"
        ),
        text="Tagihan jatuh tempo",
        delay_min_sec=0,
        delay_max_sec=0,
        on_input_change={on_input_change!r},
    )
"""
        ),
    )
    ledger = emulator.ledger()
    first, second = numbers(200), [f"6281300{i:06d}" for i in range(5000, 5250)]
    if on_input_change == "fail":
        assert result.task_states() == {"remind": ["failed"]}
        assert sorted(ledger) == first  # nothing sent by the second try, and it said why
        assert "differ from this try's" in capsys.readouterr().out
    else:
        assert result.task_states() == {"remind": ["success"]}
        assert sorted(ledger) == sorted(first + second)  # every new recipient got it, once
        assert Counter(len(messages) for messages in ledger.values()) == {1: 450}
