"""Fault soak: 1,000 sends through the operators while 20% of the send requests go wrong.

The emulator injects, each at 20/7 % of ``POST /api/v1/messages*`` requests: 502, 503, 429 with
``Retry-After``, an answer later than the client's read timeout (the message is queued anyway),
a dropped connection, a lost response and a 2xx answer that cannot be read. Whatever happens,
the ledger holds each message at most once; every message not in it failed visibly; every
"outcome unknown" is listed (the operator says the message may have been queued).
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from airflow_provider_waslah._compat import AirflowFailException
from airflow_provider_waslah.emulator import EmulatorHandle
from airflow_provider_waslah.operators.waslah import WaslahSendTextOperator

SENDS = 1000
FAULT_SHARE = 0.2
ROUTE = "POST /api/v1/messages*"
FAULTS: list[dict[str, Any]] = [
    {"status": 502},
    {"status": 503},
    {"status": 429, "retry_after": 1},
    {"latency": 1.5, "answer_late": True},  # processed, answered after the client gave up
    {"drop_connection": True},
    {"lose_response": True},
    {"garbage": True, "body": "random"},
]

pytestmark = pytest.mark.timeout(300)


def number(index: int) -> str:
    return f"62812{index:08d}"


def send(index: int) -> tuple[str, Any]:
    """One operator run: ``("sent", message_id)``, ``("unknown", text)`` or ``("failed", text)``."""
    operator = WaslahSendTextOperator(
        task_id=f"send_{index}", instance_key="demo", to=number(index), text=f"soak {index}"
    )
    try:
        result = operator.execute({})  # type: ignore[arg-type]
    except AirflowFailException as error:
        if "may have queued" in str(error):
            return "unknown", str(error)
        return "failed", f"{type(error).__name__}: {error}"
    except Exception as error:
        return "failed", f"{type(error).__name__}: {error}"
    return "sent", result["message_id"]


def test_a_thousand_sends_under_faults_never_send_twice_and_never_fail_silently(
    waslah_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = waslah_emulator.new_key()
    emulator.seed(users=[{"id": 1, "plan": "enterprise"}])
    # A read timeout shorter than the late answer; quick backoff between the client's own retries.
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_DEFAULT", emulator.airflow_connection(timeout=1, plan="enterprise"))
    for fault in FAULTS:
        emulator.add_fault(route=ROUTE, rate=FAULT_SHARE / len(FAULTS), **fault)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = dict(zip(range(SENDS), pool.map(send, range(SENDS)), strict=True))
    elapsed = time.monotonic() - started
    emulator.clear_faults()

    ledger = emulator.ledger()
    by_kind = Counter(kind for kind, _ in outcomes.values())
    fired = Counter((entry.get("fault") or {}).get("kind") for entry in emulator.api_requests("POST"))
    fired.pop(None, None)

    # 1. Each message at most once.
    assert all(len(messages) == 1 for messages in ledger.values()), {k: v for k, v in ledger.items() if len(v) > 1}
    assert set(ledger) <= {number(i) for i in range(SENDS)}
    for index, (kind, detail) in outcomes.items():
        queued = ledger.get(number(index), [])
        if kind == "sent":  # 2. what the operator reported sent is there, with its id and text
            assert [(m["message_id"], m["text"]) for m in queued] == [(detail, f"soak {index}")]
        elif kind == "failed":  # 3. a visible, definite failure: nothing was queued
            assert queued == [], (index, detail)
        else:  # 4. outcome unknown: listed, with what to do; queued or not
            assert "not retrying" in detail and "Check" in detail
    unknown = [index for index, (kind, _) in outcomes.items() if kind == "unknown"]
    unknown_queued = sum(1 for index in unknown if number(index) in ledger)

    assert by_kind["sent"] + by_kind["failed"] + by_kind["unknown"] == SENDS
    assert by_kind["sent"] >= SENDS * 0.85  # the retryable faults (502, 503, 429) were ridden out
    assert set(fired) >= {"status", "answer_late", "drop_connection", "lose_response", "garbage"}
    with capsys.disabled():
        print(
            f"\nfault soak: {SENDS} sends in {elapsed:.1f} s; faults fired {dict(fired)}; "
            f"sent {by_kind['sent']}, definite failures {by_kind['failed']}, outcome unknown {len(unknown)} "
            f"({unknown_queued} of them queued); ledger {len(ledger)} messages, duplicates 0"
        )
