"""Proven for real: Airflow's human-in-the-loop questions asked and answered on WhatsApp.

Airflow's api-server (with the webhook receiver), scheduler, dag-processor and triggerer run as
processes (LocalExecutor, SQLite) with the payout-approval example from ``dags_examples/``. The
emulator, in this process, is the approvers' phones (``/_emulator/inbound``) and Waslah (signed
webhook deliveries to the api-server, registered through ``/_emulator/webhooks``).

Copies of the example run side by side, each with its own approver (the number in the file is
replaced) and no schedule of its own (the weekday schedule would add runs nobody triggered):

1. ``waslah_payout_approval``: the approver gets the question (code, options, deadline, link);
   "halo" gets the options back and the task keeps waiting; a reply from another number changes
   nothing; "1" approves: ``pay_vendor`` runs, the UI's API shows ``whatsapp:<number>`` as responder.
2. ``…_lid``: "tolak" from the approver's privacy-mode (``@lid``) chat rejects.
3. ``…_ui``: answered in the UI (the REST API the UI calls) first; a WhatsApp reply then gets
   "sudah dijawab oleh …" and changes nothing.
4. ``…_timeout`` (20 s): nobody answers; Airflow takes the default "Tolak"; a late reply is told so.
5. Two questions open for one approver: "1" gets the list of codes and answers nothing; a forged
   delivery answers nothing; "<code> tolak" answers that one; then "1" answers the other.

Every reply that reached a question is one Audit Log row (exactly once).
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_waslah.emulator import EmulatorHandle
from airflow_provider_waslah.emulator.handle import wait_until
from airflow_provider_waslah.emulator.server import EmulatorServer
from airflow_provider_waslah.hitl.text import short_code
from airflow_provider_waslah.webhooks import signed_headers
from tests.stack.airflow_stack import AirflowStack

pytestmark = [pytest.mark.stack, pytest.mark.timeout(720)]

EXAMPLE = Path(__file__).resolve().parents[2] / "dags_examples" / "waslah_payout_approval.py"
SECRET = "whsec_stack_hitl_0123456789"
DAG = "waslah_payout_approval"
APPROVERS = {  # dag_id -> approver
    DAG: "6281234560010",
    f"{DAG}_lid": "6281234560011",
    f"{DAG}_ui": "6281234560012",
    f"{DAG}_timeout": "6281234560013",
}
STRANGER = "6281234560099"
TASK = "approve_payout"
WAITING = {"awaiting_input", "deferred"}  # 3.3 parks the task; 3.1 defers it to the HITL trigger
FINAL = {"success", "failed", "upstream_failed"}


def write_copies(dags: Path) -> None:
    """The example as is, but triggered only, once per approver (and one with a 20 s timeout)."""
    source = EXAMPLE.read_text()
    assert 'schedule="0 9 * * 1-5"' in source and 'default="6281234560010"' in source
    for dag_id, approver in APPROVERS.items():
        copy = source.replace('schedule="0 9 * * 1-5"', "schedule=None").replace(
            f'dag_id="{DAG}"', f'dag_id="{dag_id}"'
        )
        copy = copy.replace('default="6281234560010"', f'default="{approver}"')
        if dag_id.endswith("_timeout"):
            copy = copy.replace('Variable.get("waslah_payout_timeout_minutes", default="240")', '"0.33"')
        (dags / f"{dag_id}.py").write_text(copy)


def test_payout_approval_answered_on_whatsapp(tmp_path: Path) -> None:
    started = time.monotonic()
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    write_copies(home / "dags")
    with EmulatorServer(time_scale=0.1) as server:
        emulator = EmulatorHandle(server.origin)
        env = {
            "AIRFLOW_CONN_WASLAH_DEFAULT": emulator.airflow_connection(webhook_secret=SECRET),
            "AIRFLOW__CORE__PARALLELISM": "4",
        }
        stack = AirflowStack(home, env)
        try:
            with stack:
                stack.wait_for_dags(*APPROVERS)
                stack.wait_for_jobs("SchedulerJob", "TriggererJob")
                emulator.register_webhook(f"http://127.0.0.1:{stack.api_port}/waslah/webhook/waslah_default", SECRET)
                print(f"\nstack up, DAGs parsed in {time.monotonic() - started:.0f} s")
                run_and_check(stack, emulator)
        except BaseException:
            stack.dump_logs()
            raise
    print(f"whole test: {time.monotonic() - started:.0f} s")


class Phones:
    """What the approvers' phones received (the emulator's ledger), by number and the JIDs they wrote from."""

    def __init__(self, emulator: EmulatorHandle) -> None:
        self.emulator = emulator

    def texts(self, phone: str, *jids: str) -> list[str]:
        ledger = self.emulator.ledger()
        keys = (phone, f"{phone}@s.whatsapp.net", *jids)
        return [m["text"] for m in sorted((m for k in keys for m in ledger.get(k, [])), key=lambda m: m["message_id"])]

    def wait_for(self, phone: str, count: int, *jids: str, what: str = "a message") -> list[str]:
        return wait_until(lambda: len(self.texts(phone, *jids)) >= count and self.texts(phone, *jids), 60, 0.2, what)


def hitl(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, Any] | None:
    rows = stack.query(
        "SELECT ti.id, ti.state, h.responded_at, h.responded_by, h.chosen_options FROM task_instance ti "
        "JOIN hitl_detail h ON h.ti_id = ti.id WHERE ti.dag_id=? AND ti.run_id=? AND ti.task_id=?",
        dag_id,
        run_id,
        TASK,
    )
    if not rows:
        return None
    ti_id, state, responded_at, responded_by, chosen = rows[0]
    return {
        "ti_id": ti_id,
        "state": state,
        "responded_at": responded_at,
        "responded_by": json.loads(responded_by) if responded_by else None,
        "chosen": json.loads(chosen) if chosen else None,
    }


def wait_for_question(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, Any]:
    def asked() -> dict[str, Any] | None:
        stack.check_alive()
        row = hitl(stack, dag_id, run_id)
        return row if row and row["state"] in WAITING else None

    return wait_until(asked, 120, 0.3, f"{dag_id}'s question waiting")


def wait_for_run(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, str]:
    def done() -> bool:
        stack.check_alive()
        rows = stack.query("SELECT state FROM dag_run WHERE dag_id=? AND run_id=?", dag_id, run_id)
        return bool(rows) and rows[0][0] in FINAL

    wait_until(done, 120, 0.3, f"{dag_id} run finished")
    rows = stack.query("SELECT task_id, state FROM task_instance WHERE dag_id=? AND run_id=?", dag_id, run_id)
    return {task_id: state for task_id, state in rows}


def answered_at(stack: AirflowStack, dag_id: str, run_id: str, since: float) -> float:
    """Seconds from ``since`` until the question has its answer in the metadata DB."""
    wait_until(lambda: (hitl(stack, dag_id, run_id) or {}).get("responded_at"), 60, 0.05, "the answer recorded")
    return time.monotonic() - since


def api(stack: AirflowStack) -> httpx.Client:
    """The REST API the UI calls, as the (all-admins) UI user."""
    base = f"http://127.0.0.1:{stack.api_port}"
    token = httpx.get(f"{base}/auth/token", timeout=30)
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"} if token.status_code < 300 else {}
    return httpx.Client(base_url=base, headers=headers, timeout=30)


def hitl_url(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{TASK}/-1/hitlDetails"


def run_and_check(stack: AirflowStack, emulator: EmulatorHandle) -> None:
    phones = Phones(emulator)
    timings: dict[str, float] = {}
    ui = api(stack)
    runs = {dag_id: run_id for dag_id, run_id in stack.trigger(*APPROVERS).items()}
    t0 = time.monotonic()
    for dag_id in APPROVERS:
        wait_for_question(stack, dag_id, runs[dag_id])
    timings["trigger to 4 questions waiting"] = time.monotonic() - t0
    all_waiting = time.monotonic()

    # 1. The question; "halo"; a stranger; "1".
    approver, run = APPROVERS[DAG], runs[DAG]
    (question,) = phones.wait_for(approver, 1, what="the question")
    code = short_code(hitl(stack, DAG, run)["ti_id"])  # type: ignore[index]
    assert question.startswith(f"*Perlu keputusan Anda* (kode {code})\n*Payout Rp 12.500.000 ke PT Maju Jaya*")
    assert "Balas 1 = Setujui, 2 = Tolak" in question and "(tanpa jawaban: otomatis Tolak)" in question
    assert re.search(r"Batas waktu: \d+ \w+ \d{4} \d\d:\d\d WIB", question), question
    assert (
        f"Buka di Airflow: http://127.0.0.1:{stack.api_port}/dags/{DAG}/runs/{run}/tasks/{TASK}/required_actions"
        in question
    )
    emulator.inbound(approver, "halo")
    options_again = phones.wait_for(approver, 2, what="the options again")[1]
    assert 'balasan "halo" tidak dikenali' in options_again and "Balas 1 = Setujui, 2 = Tolak" in options_again
    emulator.inbound(STRANGER, "1")
    time.sleep(3)
    row = hitl(stack, DAG, run)
    assert row is not None and row["responded_at"] is None and row["state"] in WAITING, row
    assert not phones.texts(STRANGER)
    sent = time.monotonic()
    emulator.inbound(approver, "1")
    timings["reply '1' to answer recorded"] = answered_at(stack, DAG, run, sent)
    states = wait_for_run(stack, DAG, run)
    timings["reply '1' to run finished"] = time.monotonic() - sent
    assert states == {
        "prepare_payout": "success",
        TASK: "success",
        "pay_vendor": "success",
        "notify_rejected": "skipped",
    }
    confirmation = phones.wait_for(approver, 3, what="the confirmation")[2]
    assert (
        confirmation
        == f'Terima kasih. Jawaban Anda untuk {code} "Payout Rp 12.500.000 ke PT Maju Jaya" tercatat: Setujui.'
    )
    shown = ui.get(hitl_url(DAG, run)).json()  # what the UI shows
    assert shown["responded_by_user"] == {"id": f"whatsapp:{approver}", "name": f"whatsapp:{approver}"}, shown
    assert shown["chosen_options"] == ["Setujui"]

    # 2. "tolak" from the approver's privacy-mode chat.
    lid_dag = f"{DAG}_lid"
    jid = emulator.inbound(APPROVERS[lid_dag], "  TOLAK ", lid=True)["remote_jid"]
    assert jid.endswith("@lid")
    states = wait_for_run(stack, lid_dag, runs[lid_dag])
    assert states["notify_rejected"] == "success" and states["pay_vendor"] == "skipped", states
    assert hitl(stack, lid_dag, runs[lid_dag])["responded_by"]["id"] == f"whatsapp:{APPROVERS[lid_dag]}"  # type: ignore[index]
    assert phones.wait_for(APPROVERS[lid_dag], 2, jid)[1].endswith("tercatat: Tolak.")
    assert emulator.ledger()[jid], "the confirmation goes to the @lid JID the reply came from"

    # 3. The UI answers first; a WhatsApp reply after it changes nothing.
    ui_dag = f"{DAG}_ui"
    # An answer (from the UI as from WhatsApp) within seconds of the task parking races Airflow 3.3.2's
    # scheduler (docs/hitl.md); the receiver waits that out for WhatsApp replies, the UI does not.
    time.sleep(max(0.0, 12 - (time.monotonic() - all_waiting)))
    answer = ui.patch(hitl_url(ui_dag, runs[ui_dag]), json={"chosen_options": ["Setujui"], "params_input": {}})
    assert answer.status_code == 200, answer.text
    ui_user = answer.json()["responded_by"]["name"]
    emulator.inbound(APPROVERS[ui_dag], "2")
    late = phones.wait_for(APPROVERS[ui_dag], 2, what="'already answered'")[1]
    assert f"sudah dijawab oleh {ui_user} pada" in late and late.endswith(
        ": Setujui. Balasan Anda tidak mengubah apa pun."
    )
    states = wait_for_run(stack, ui_dag, runs[ui_dag])
    assert states["pay_vendor"] == "success" and states["notify_rejected"] == "skipped", states
    assert hitl(stack, ui_dag, runs[ui_dag])["responded_by"]["name"] == ui_user  # type: ignore[index]

    # 4. Nobody answers within 20 s: the default, "Tolak"; a late reply is told so.
    timeout_dag = f"{DAG}_timeout"
    states = wait_for_run(stack, timeout_dag, runs[timeout_dag])
    assert states["notify_rejected"] == "success" and states["pay_vendor"] == "skipped", states
    row = hitl(stack, timeout_dag, runs[timeout_dag])
    assert row is not None and row["responded_by"] is None and row["chosen"] == ["Tolak"], row
    emulator.inbound(APPROVERS[timeout_dag], "1")
    late = phones.wait_for(APPROVERS[timeout_dag], 2, what="'closed by the timeout'")[1]
    assert "sudah ditutup: batas waktu lewat" in late and "pilihan bawaan dipakai: Tolak" in late

    # 5. Two questions open for one approver: the code decides.
    first, second = stack.trigger(DAG)[DAG], stack.trigger(DAG)[DAG]
    codes = {short_code(wait_for_question(stack, DAG, r)["ti_id"]): r for r in (first, second)}
    before = len(phones.wait_for(approver, 5, what="both questions"))
    emulator.inbound(approver, "1")
    choose = phones.wait_for(approver, before + 1, what="the list of codes")[-1]
    assert choose.startswith("Ada 2 pertanyaan terbuka untuk Anda.") and all(f"{c}: Payout" in choose for c in codes)
    forged = forged_reply(stack, approver, f"{next(iter(codes))} 1")
    assert forged.status_code == 401 and forged.json()["error"] == "signature_mismatch"
    time.sleep(2)
    assert all(hitl(stack, DAG, r)["responded_at"] is None for r in codes.values())  # type: ignore[index]
    rejected_code, rejected_run = next(c for c in codes.items() if c[1] == first)
    emulator.inbound(approver, f"#{rejected_code.lower()} tolak")
    assert wait_for_run(stack, DAG, rejected_run)["notify_rejected"] == "success"
    emulator.inbound(approver, "1")  # only one is open now: no code needed
    assert wait_for_run(stack, DAG, second)["pay_vendor"] == "success"

    # Exactly once: one Audit Log row per reply that reached a question; none for the stranger.
    audit = stack.query("SELECT owner, extra FROM log WHERE event = 'waslah_hitl_reply' ORDER BY id")
    outcomes = [(owner, json.loads(extra)["outcome"]) for owner, extra in audit]
    assert outcomes == [
        (f"whatsapp:{approver}", "not_understood"),
        (f"whatsapp:{approver}", "answer"),
        (f"whatsapp:{APPROVERS[lid_dag]}", "answer"),
        (f"whatsapp:{APPROVERS[ui_dag]}", "already_answered"),
        (f"whatsapp:{APPROVERS[timeout_dag]}", "already_answered"),
        (f"whatsapp:{approver}", "choose_code"),
        (f"whatsapp:{approver}", "answer"),
        (f"whatsapp:{approver}", "answer"),
    ], outcomes
    deliveries = emulator.webhook_deliveries()
    statuses = [d["attempts"][-1]["status_code"] for d in deliveries if d["event"] == "message.received"]
    assert statuses and all(status in (200, 201, 202) for status in statuses), statuses  # none retried
    print("timings: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))


def forged_reply(stack: AirflowStack, sender: str, body: str) -> httpx.Response:
    """A reply signed with the wrong secret, straight to the api-server."""
    data = {
        "message_id": 1,
        "instance_key": "demo",
        "from": sender,
        "remote_jid": f"{sender}@s.whatsapp.net",
        "body": body,
    }
    raw = json.dumps({"event": "message.received", "timestamp": int(time.time()), "data": data}).encode()
    headers = signed_headers("whsec_forged", raw, event="message.received", event_id=str(uuid.uuid4()))
    return httpx.post(f"http://127.0.0.1:{stack.api_port}/waslah/webhook/waslah_default", content=raw, headers=headers)


def test_copies_replace_what_they_must(tmp_path: Path) -> None:
    write_copies(tmp_path)
    assert sorted(p.stem for p in tmp_path.glob("*.py")) == sorted(APPROVERS)
    shutil.rmtree(tmp_path)
