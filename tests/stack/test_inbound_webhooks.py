"""Proven for real: customers write in, Airflow answers, through the webhook receiver on the api-server.

Airflow's api-server, scheduler, dag-processor and triggerer run as processes (LocalExecutor,
SQLite) with the two inbound examples from ``dags_examples/``. The emulator, in this process,
is the customer (``/_emulator/inbound``) and Waslah (signed webhook deliveries with retries,
registered through ``/_emulator/webhooks``); a recording proxy sits between its deliveries and the
api-server so that one answer can be lost on the way back.

1. 30 customers write to the ``demo`` line within a few seconds, 10 of them in WhatsApp's privacy
   mode (``@lid``); the answer to one delivery is lost and the emulator retries it. Every customer
   gets exactly one auto-reply, to the JID they wrote from, quoting their message.
2. The ``support`` line's router: ``STOP`` (any case) records the customer in the opt-out table
   and confirms; anything else gets the auto-reply.
3. Forged, tampered, stale and replayed deliveries, an unknown connection, a connection without a
   secret and an oversized body are refused with their status and reason, and start nothing.
4. The api-server restarts: a replay of an accepted delivery is still refused, a new message
   still answered.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_waslah.emulator import EmulatorHandle
from airflow_provider_waslah.emulator.handle import wait_until
from airflow_provider_waslah.emulator.server import EmulatorServer
from airflow_provider_waslah.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADERS, TIMESTAMP_HEADER, signed_headers
from tests.stack.airflow_stack import VENV_BIN, AirflowStack
from tests.stack.webhook_proxy import WebhookProxy

pytestmark = [pytest.mark.stack, pytest.mark.timeout(480)]

EXAMPLES = Path(__file__).resolve().parents[2] / "dags_examples"
AUTO_REPLY, ROUTER = "waslah_auto_reply", "waslah_keyword_router"
SECRET = "whsec_stack_inbound_0123456789"
TIME_SCALE = 0.1  # the emulator's retry backoff of 1 emulated second is 0.1 s
SUPPORT = {"key": "support", "user_id": 1, "name": "Support", "status": "connected", "phone_number": "6281100000003"}
LOST = 5  # the answer to the 5th customer message is lost on its way back to the emulator
FINAL = {"success", "failed", "upstream_failed"}
REPLY_END = "Tim kami akan membalas secepatnya."


def test_customers_write_in_and_airflow_answers(tmp_path: Path) -> None:
    started = time.monotonic()
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    for dag_id in (AUTO_REPLY, ROUTER):
        shutil.copyfile(EXAMPLES / f"{dag_id}.py", home / "dags" / f"{dag_id}.py")
    with EmulatorServer(time_scale=TIME_SCALE, seed={"instances": [SUPPORT]}) as server:
        emulator = EmulatorHandle(server.origin)
        env = {
            "AIRFLOW_CONN_WASLAH_DEFAULT": emulator.airflow_connection(webhook_secret=SECRET),
            "AIRFLOW_CONN_WASLAH_NOSECRET": emulator.airflow_connection(),
            "AIRFLOW__CORE__PARALLELISM": "4",
        }
        stack = AirflowStack(home, env)
        try:
            with WebhookProxy(f"http://127.0.0.1:{stack.api_port}") as proxy, stack:
                stack.wait_for_dags(AUTO_REPLY, ROUTER)
                stack.wait_for_jobs("SchedulerJob", "TriggererJob")
                wait_until(lambda: len(stack.query("SELECT uri FROM asset_active WHERE uri LIKE 'waslah://%'")) == 2)
                print(f"\nstack up, DAGs parsed, assets active in {time.monotonic() - started:.0f} s")
                run_and_check(stack, emulator, proxy)
        except BaseException:
            stack.dump_logs()
            raise


def run_and_check(stack: AirflowStack, emulator: EmulatorHandle, proxy: WebhookProxy) -> None:
    receiver = f"http://127.0.0.1:{stack.api_port}/waslah/webhook/waslah_default"
    emulator.register_webhook(proxy.origin + "/waslah/webhook/waslah_default", SECRET)
    proxy.lose_answer_to(LOST)

    # 1. 30 customers within a few seconds: 20 by phone number, 10 in privacy mode (@lid).
    t0 = time.monotonic()
    customers: dict[str, str] = {}  # remote_jid -> what they wrote
    for i in range(30):
        body = f"Halo, pesanan saya nomor {1000 + i} sudah dikirim?"
        message = emulator.inbound(f"62812345{i:05d}", body, lid=i % 3 == 2)
        customers[message["remote_jid"]] = body
    # 2. The support line's router.
    routed = {
        emulator.inbound("6281300000001", "STOP", instance_key="support")["remote_jid"]: "stop",
        emulator.inbound("6281300000002", "  stop ", instance_key="support", lid=True)["remote_jid"]: "stop",
        emulator.inbound("6281300000003", "Jam buka toko?", instance_key="support")["remote_jid"]: "other",
    }
    sent_in = time.monotonic() - t0
    assert sum(jid.endswith("@lid") for jid in customers) == 10

    def everyone_answered() -> bool:
        stack.check_alive()
        ledger = emulator.ledger()
        return all(ledger.get(jid) for jid in [*customers, *routed])

    wait_until(everyone_answered, 240, 0.5, "a reply to every customer")
    answered_in = time.monotonic() - t0
    wait_for_runs_to_finish(stack)
    time.sleep(5)  # anything left to send (a second reply) would show up now
    ledger = emulator.ledger()

    for jid, body in customers.items():
        (reply,) = ledger[jid]  # exactly one, to the JID as received (never to the bare digits of an @lid)
        assert reply["text"] == f'Terima kasih! Pesan Anda "{body}" sudah kami terima. {REPLY_END}'
    for jid, kind in routed.items():
        (reply,) = ledger[jid]
        assert ("tidak akan menerima pesan promosi" in reply["text"]) == (kind == "stop"), reply
    replied_jids = set(ledger)
    assert replied_jids == set(customers) | set(routed), replied_jids - set(customers) - set(routed)
    opted_out = sqlite3.connect(stack.home / "waslah_examples" / "opt_out.db").execute("SELECT remote_jid FROM opt_out")
    assert {row[0] for row in opted_out} == {jid for jid, kind in routed.items() if kind == "stop"}

    # The lost answer: the receiver had stored the event; the emulator retried; 208, no second reply.
    deliveries = {d["event_id"]: d for d in emulator.webhook_deliveries()}
    (lost,) = [r for r in proxy.recorded if r.answer_lost]
    attempts = deliveries[lost.event_id]["attempts"]
    assert lost.status == 201 and len(attempts) >= 2, attempts
    assert attempts[0]["status_code"] is None and attempts[-1]["status_code"] == 208, attempts
    received = [r for r in proxy.recorded if r.event == "message.received"]
    assert Counter(r.status for r in received) == {201: 33, 208: len(attempts) - 1}

    # Airflow's batching is kept: fewer runs than messages, each event consumed by exactly one run.
    runs = stack.query("SELECT dag_id, count(*) FROM dag_run GROUP BY dag_id")
    consumed = stack.query(
        "SELECT e.id, count(*) FROM asset_event e JOIN dagrun_asset_event c ON c.event_id = e.id GROUP BY e.id"
    )
    assert len(consumed) == 33 and all(count == 1 for _, count in consumed), consumed
    print(
        f"33 customer messages sent in {sent_in:.1f} s, all answered {answered_in:.0f} s after the first; "
        f"DAG runs: {dict(runs)}; lost answer retried {len(attempts) - 1}x, answered 208"
    )

    # 3. Refused deliveries start nothing.
    events_before, runs_before = count(stack, "asset_event"), count(stack, "dag_run")
    accepted = next(r for r in received if r.status == 201)
    refused = refuse_hostile_deliveries(receiver, accepted)
    time.sleep(8)  # the scheduler would have made runs by now
    assert (count(stack, "asset_event"), count(stack, "dag_run")) == (events_before, runs_before)
    assert not [jid for jid in emulator.ledger() if jid.startswith("62899")], "a forged message was answered"
    print(f"refused: {refused}")

    # 4. The api-server restarts; accepted ids are still known (they live in the metadata DB).
    restart_api_server(stack)
    replay = httpx.post(receiver, content=accepted.body, headers=accepted.headers, timeout=30)
    assert replay.status_code == 208, replay.text
    jid = emulator.inbound("6281234599999", "Masih buka?")["remote_jid"]
    wait_until(lambda: emulator.ledger().get(jid), 120, 0.5, "a reply after the restart")
    wait_for_runs_to_finish(stack)
    assert len(emulator.ledger()[jid]) == 1
    assert count(stack, "asset_event") == events_before + 1

    # What an operator sees: one log line per refusal, with its reason; no secret anywhere.
    api_logs = "\n".join(p.read_text(errors="replace") for p in stack.process_logs.glob("api-server*.log"))
    for reason in ("signature_mismatch", "timestamp_out_of_tolerance", "unknown_connection", "webhook_secret_not_set"):
        assert f"rejected: {refused[reason]} {reason}" in api_logs, reason
    assert "was already accepted" in api_logs
    every_log = [p for p in stack.home.rglob("*.log") if p.is_file()]
    assert not [str(p) for p in every_log if SECRET in p.read_text(errors="replace")]


def refuse_hostile_deliveries(receiver: str, accepted: Any) -> dict[str, int]:
    """Send every kind of bad delivery straight to the api-server; return reason -> status."""
    seen: dict[str, int] = {}

    def send(url: str, body: bytes, headers: dict[str, str], expect: int, reason: str | None) -> None:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == expect, (reason, response.status_code, response.text)
        got = response.json().get("error") or response.json().get("reason")
        if reason is not None:
            assert got == reason, response.text
        seen[got] = response.status_code

    def fresh(phone: str, secret: str = SECRET, offset: int = 0) -> tuple[bytes, dict[str, str]]:
        """A new delivery from ``phone``, signed with ``secret`` at now + ``offset`` seconds."""
        data = {"message_id": 1, "instance_key": "demo", "from": phone, "remote_jid": f"{phone}@s.whatsapp.net"}
        body = json.dumps({"event": "message.received", "timestamp": int(time.time()), "data": {**data, "body": "x"}})
        ts = int(time.time()) + offset
        raw = body.encode()
        return raw, signed_headers(secret, raw, event="message.received", event_id=str(uuid.uuid4()), timestamp=ts)

    send(receiver, *fresh("6289900000001", secret="whsec_forged"), 401, "signature_mismatch")
    tampered = accepted.body.replace(b"Halo", b"HALO")
    send(receiver, tampered, accepted.headers, 401, "signature_mismatch")
    send(receiver, *fresh("6289900000002", offset=-301), 401, "timestamp_out_of_tolerance")
    send(receiver, *fresh("6289900000003", offset=+301), 401, "timestamp_out_of_tolerance")
    unsigned = {k: v for k, v in fresh("6289900000004")[1].items() if k not in SIGNATURE_HEADERS}
    send(receiver, fresh("6289900000004")[0], unsigned, 401, "missing_signature")
    send(receiver, accepted.body, accepted.headers, 208, "duplicate_event")  # replayed as captured
    send(receiver, accepted.body, {**accepted.headers, EVENT_ID_HEADER: str(uuid.uuid4())}, 208, "duplicate_event")
    base = receiver.rsplit("/", 1)[0]
    send(f"{base}/no_such_conn", *fresh("6289900000005"), 404, "unknown_connection")
    send(f"{base}/waslah_nosecret", *fresh("6289900000006"), 403, "webhook_secret_not_set")
    big = b'{"event":"message.received","data":{"body":"' + b"x" * 300_000 + b'"}}'
    headers = signed_headers(SECRET, big, event="message.received", event_id=str(uuid.uuid4()))
    send(receiver, big, headers, 413, "body_too_large")
    assert TIMESTAMP_HEADER in accepted.headers
    return seen


def count(stack: AirflowStack, table: str) -> int:
    return int(stack.query(f"SELECT count(*) FROM {table}")[0][0])


def wait_for_runs_to_finish(stack: AirflowStack) -> None:
    def finished() -> bool:
        stack.check_alive()
        states = [row[0] for row in stack.query("SELECT state FROM dag_run")]
        return bool(states) and all(state in FINAL for state in states)

    wait_until(finished, 180, 0.5, "every DAG run finished")
    failed = stack.query("SELECT dag_id, run_id FROM dag_run WHERE state != 'success'")
    assert not failed, failed


def restart_api_server(stack: AirflowStack) -> None:
    """Stop the api-server process group and start a new one on the same port."""
    old = stack.processes["api-server"]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(old.pid, signal.SIGTERM)
    old.wait(timeout=30)
    log = (stack.process_logs / "api-server-restarted.log").open("wb")
    stack.processes["api-server"] = subprocess.Popen(
        [str(VENV_BIN / "airflow"), "api-server"],
        env=stack.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def up() -> bool:
        stack.check_alive()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", stack.api_port), timeout=1):
            return True
        return False

    wait_until(up, 90, 0.5, "the api-server back up")
