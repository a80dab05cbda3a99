"""The inbound part of the demo: customers write in, Airflow's webhook receiver starts the DAGs, they answer.

    python scripts/demo_inbound.py http://127.0.0.1:8787      # the emulator's origin

Run by ``scripts/demo.sh`` with its environment (``AIRFLOW_HOME``, ``AIRFLOW__CORE__DAGS_FOLDER``
pointing at ``dags_examples/``, ``AIRFLOW_CONN_WASLAH_DEFAULT`` pointing at the emulator). It
starts Airflow's api-server, scheduler and dag-processor as processes on 127.0.0.1 (logs in
``.demo/logs/inbound-*.log``), unpauses only the two inbound DAGs (the other examples stay
paused), registers ``/waslah/webhook/waslah_default`` as the emulator's webhook URL, lets three
customers write in (one by phone number, one in WhatsApp's privacy mode ``@lid``, one sending
``STOP`` to the support line) and prints each message, the webhook answer, the DAG run it
started and the reply. Every process it started is stopped on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from airflow_provider_waslah.emulator.handle import EmulatorHandle, wait_until

T = TypeVar("T")
SECRET = "whsec_demo_0123456789abcdef"
SUPPORT = {"key": "support", "user_id": 1, "name": "Support", "status": "connected", "phone_number": "6281100000003"}
DAGS = ("waslah_auto_reply", "waslah_keyword_router")
CUSTOMERS = [  # (phone, instance, lid, text)
    ("6281234560301", "demo", False, "Halo, apakah pesanan INV-1001 sudah dikirim?"),
    ("6281234560302", "demo", True, "Jam berapa toko buka hari Minggu?"),
    ("6281234560303", "support", False, "STOP"),
]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def airflow_env(home: Path, port: int) -> dict[str, str]:
    """The processes' environment: the demo's, plus LocalExecutor on 127.0.0.1 and the webhook secret."""
    env = dict(os.environ)
    conn = json.loads(env["AIRFLOW_CONN_WASLAH_DEFAULT"])
    conn.setdefault("extra", {})["webhook_secret"] = SECRET
    env.update(
        {
            "AIRFLOW_CONN_WASLAH_DEFAULT": json.dumps(conn),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # The other examples are in the same folder: a running scheduler would run them too.
            # They stay paused; only the inbound DAGs are unpaused (see main()).
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "waslah-demo-inbound-secret-0123456789abcdef",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        }
    )
    return env


@contextlib.contextmanager
def airflow_processes(env: dict[str, str], logs: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """api-server, scheduler and dag-processor, each in its own process group; all stopped on exit."""
    airflow = str(Path(sys.executable).parent / "airflow")
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ("api-server", "scheduler", "dag-processor"):
            log = (logs / f"inbound-{name}.log").open("wb")
            processes[name] = subprocess.Popen(
                [airflow, name], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        yield processes
    finally:
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        print(f"Airflow processes stopped ({', '.join(f'{n} {p.pid}' for n, p in processes.items())}).")


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the demo's metadata DB (read-only; empty while it is locked or not there yet)."""
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as connection:
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []


def waiting(what: str, predicate: Callable[[], T], processes: dict[str, subprocess.Popen[bytes]], timeout: float) -> T:
    """``wait_until`` that also fails as soon as an Airflow process died."""

    def check() -> T:
        for name, process in processes.items():
            if process.poll() is not None:
                log = f".demo/logs/inbound-{name}.log"
                raise RuntimeError(f"airflow {name} exited with {process.returncode} (see {log})")
        return predicate()

    return wait_until(check, timeout, 0.5, what)


def main(argv: list[str] | None = None) -> int:
    """Run the inbound demo against the emulator at ``origin``; 0 when every customer got a reply."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("origin", help="the emulator's origin, e.g. http://127.0.0.1:8787")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each step")
    args = parser.parse_args(argv)
    home = Path(os.environ["AIRFLOW_HOME"])
    logs = Path(os.environ.get("DEMO_LOG_DIR") or home.parent / "logs")
    logs.mkdir(parents=True, exist_ok=True)
    db, port = home / "airflow.db", free_port()
    emulator = EmulatorHandle(args.origin)
    emulator.seed(instances=[SUPPORT])
    started = time.monotonic()

    env = airflow_env(home, port)
    with airflow_processes(env, logs) as processes:
        print(f"Airflow api-server, scheduler and dag-processor starting (api-server on 127.0.0.1:{port}) ...")
        waiting(
            "the inbound DAGs parsed and their assets active",
            lambda: len(query(db, "SELECT uri FROM asset_active WHERE uri LIKE 'waslah://%'")) >= len(DAGS),
            processes,
            args.timeout,
        )
        waiting("the api-server", lambda: _port_open(port), processes, args.timeout)
        airflow = str(Path(sys.executable).parent / "airflow")
        pattern = "^(" + "|".join(DAGS) + ")$"
        subprocess.run(
            [airflow, "dags", "unpause", "--treat-dag-id-as-regex", "-y", pattern],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        unpaused = f"SELECT count(*) FROM dag WHERE is_paused = 0 AND dag_id IN ({', '.join('?' * len(DAGS))})"
        waiting("the inbound DAGs unpaused", lambda: query(db, unpaused, *DAGS) == [(len(DAGS),)], processes, 30)
        url = f"http://127.0.0.1:{port}/waslah/webhook/waslah_default"
        emulator.register_webhook(url, SECRET)
        print(f"Up in {time.monotonic() - started:.0f} s. Webhook URL registered in the emulator: {url}\n")

        jids = []
        for phone, instance, lid, text in CUSTOMERS:
            message = emulator.inbound(phone, text, instance_key=instance, lid=lid)
            jids.append(message["remote_jid"])
            print(f"  customer {message['remote_jid']:<32} -> {instance:<8} {text!r}")

        def replied() -> dict[str, list[dict[str, Any]]] | None:
            ledger = emulator.ledger()
            return ledger if all(ledger.get(jid) for jid in jids) else None

        def runs_finished() -> bool:
            rows = query(db, "SELECT state FROM dag_run WHERE run_type = 'asset_triggered'")
            return bool(rows) and all(row[0] in ("success", "failed") for row in rows)

        ledger = waiting("a reply to every customer", replied, processes, args.timeout) or {}
        waiting("the DAG runs finished", runs_finished, processes, args.timeout)

        answers = {d["event_id"]: d for d in emulator.webhook_deliveries() if d["event"] == "message.received"}
        print("\nwebhook deliveries (emulator -> Airflow's receiver):")
        for delivery in answers.values():
            codes = [a.get("status_code") for a in delivery["attempts"]]
            print(f"  {delivery['event']:<18} {delivery['event_id']}  answered {codes}")
        print("\nDAG runs the messages started:")
        for dag_id, run_id, state, events in query(
            db,
            "SELECT r.dag_id, r.run_id, r.state, count(c.event_id) FROM dag_run r"
            " LEFT JOIN dagrun_asset_event c ON c.dag_run_id = r.id WHERE r.run_type = 'asset_triggered'"
            " GROUP BY r.id ORDER BY r.id",
        ):
            print(f"  {dag_id:<24} {run_id:<62} {state:<8} {events} message(s)")
        print("\nreplies (from the emulator's ledger):")
        for jid in jids:
            for reply in ledger[jid]:
                print(f"  -> {jid:<32} {reply['text']}")
        opted_out = query(home / "waslah_examples" / "opt_out.db", "SELECT remote_jid FROM opt_out")
        print(f"\nopt-out table: {[row[0] for row in opted_out]}")
        failed = query(db, "SELECT run_id FROM dag_run WHERE run_type = 'asset_triggered' AND state != 'success'")
        if failed:
            print(f"FAILED runs: {failed} (task logs under {home / 'logs'})")
            return 1
    print(f"Inbound demo finished in {time.monotonic() - started:.0f} s.")
    return 0


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


if __name__ == "__main__":
    sys.exit(main())
