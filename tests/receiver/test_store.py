"""The receiver's store against Airflow's real metadata DB (SQLite, migrated for the session).

A DAG scheduled on a Waslah asset is parsed and written to the DB the way the dag-processor does
it, so the asset is active and the asset manager queues the DAG exactly as in production.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_waslah.inbound import asset_uri
from airflow_provider_waslah.receiver.store import EventStore, connection_secret
from airflow_provider_waslah.receiver.verify import Rejection, VerifiedDelivery

pytestmark = pytest.mark.airflow

DAG_SOURCE = """
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_waslah.inbound import waslah_asset

with DAG("{dag_id}", schedule=[waslah_asset("{instance}")], start_date=datetime(2024, 1, 1), catchup=False):

    @task
    def noop():
        pass

    noop()
"""


def sync_dag_file(path: Path) -> None:
    """Parse one DAG file and write it to the metadata DB, as the dag-processor does."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils.session import create_session

    try:
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db  # Airflow 3.2+
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag, sync_bag_to_db  # type: ignore[no-redef,attr-defined]

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    try:
        bag = DagBag(dag_folder=str(path), bundle_path=path.parent, bundle_name="dags-folder")
    except TypeError:  # 3.1: no bundle_name
        bag = DagBag(dag_folder=str(path), bundle_path=path.parent)
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)


@pytest.fixture
def consumer(airflow_db: Path) -> dict[str, str]:
    """A fresh instance key with a DAG scheduled on its ``message.received`` asset."""
    tag = uuid.uuid4().hex[:8]
    dag_id, instance = f"waslah_store_{tag}", f"store-{tag}"
    path = airflow_db / "dags" / f"{dag_id}.py"
    path.write_text(textwrap.dedent(DAG_SOURCE.format(dag_id=dag_id, instance=instance)))
    try:
        sync_dag_file(path)
    finally:
        path.unlink()  # other tests parse this folder too
    return {"dag_id": dag_id, "instance": instance, "uri": asset_uri(instance)}


def make_delivery(instance: str, event_id: str | None = None, digest: str | None = None) -> VerifiedDelivery:
    event_id = event_id or str(uuid.uuid4())
    data = {"message_id": 1, "instance_key": instance, "remote_jid": "123456789012345@lid", "body": "Halo"}
    return VerifiedDelivery(
        conn_id="waslah_default",
        event="message.received",
        event_id=event_id,
        instance_key=instance,
        sent_at=int(time.time()),
        data=data,
        digest=digest or uuid.uuid4().hex,
    )


def query(sql: str, **params: Any) -> list[Any]:
    from airflow.utils.session import create_session
    from sqlalchemy import text

    with create_session() as session:
        result = session.execute(text(sql), params)
        return list(result.all()) if result.returns_rows else []


def events_of(uri: str) -> list[dict[str, Any]]:
    rows = query(
        "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.uri = :uri ORDER BY e.id", uri=uri
    )
    return [json.loads(row[0]) if isinstance(row[0], str) else row[0] for row in rows]


def test_stored_once_per_event_id_and_per_signed_content(consumer: dict[str, str]) -> None:
    store = EventStore()
    first = make_delivery(consumer["instance"], "ev-a", "digest-a")

    stored = store.store(first)
    assert (stored.outcome, stored.asset_uri) == ("stored", consumer["uri"])
    assert store.store(first).outcome == "duplicate"  # the same delivery again
    assert store.store(replace(first, digest="digest-retry")).outcome == "duplicate"  # Waslah's retry
    assert store.store(replace(first, event_id="ev-other")).outcome == "duplicate"  # a replay, new id header
    assert store.store(make_delivery(consumer["instance"], "ev-b")).outcome == "stored"

    events = events_of(consumer["uri"])
    assert [e["event_id"] for e in events] == ["ev-a", "ev-b"]
    assert events[0]["data"]["remote_jid"] == "123456789012345@lid"
    assert events[0]["event"] == "message.received" and events[0]["instance_key"] == consumer["instance"]
    # The asset manager queued the DAG, exactly as for any asset event.
    queued = query("SELECT target_dag_id FROM asset_dag_run_queue WHERE target_dag_id = :d", d=consumer["dag_id"])
    assert queued == [(consumer["dag_id"],)]


def test_remembered_by_a_new_store_as_after_a_restart(consumer: dict[str, str]) -> None:
    delivery = make_delivery(consumer["instance"])
    assert EventStore().store(delivery).outcome == "stored"
    assert EventStore().store(replace(delivery, digest="new")).outcome == "duplicate"


def test_concurrent_copies_are_stored_once(consumer: dict[str, str]) -> None:
    delivery = make_delivery(consumer["instance"])
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        store = EventStore()  # each its own process lock: only the DB lock orders them
        barrier.wait()
        outcomes.append(store.store(delivery).outcome)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["duplicate"] * 5 + ["stored"]
    assert len(events_of(consumer["uri"])) == 1


def test_no_dag_no_event(airflow_db: Path) -> None:
    delivery = make_delivery(f"nobody-{uuid.uuid4().hex[:6]}")
    result = EventStore().store(delivery)
    assert (result.outcome, result.asset_event_id) == ("no_consumer", None)
    assert events_of(delivery.asset_uri) == []


def test_a_later_event_moves_the_queue_mark_up(consumer: dict[str, str]) -> None:
    store = EventStore()
    store.store(make_delivery(consumer["instance"]))
    (first_mark,) = query("SELECT created_at FROM asset_dag_run_queue WHERE target_dag_id = :d", d=consumer["dag_id"])
    time.sleep(0.05)
    store.store(make_delivery(consumer["instance"]))
    (mark,) = query("SELECT created_at FROM asset_dag_run_queue WHERE target_dag_id = :d", d=consumer["dag_id"])
    (last_event,) = query(
        "SELECT max(e.timestamp) FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.uri = :u",
        u=consumer["uri"],
    )
    # Without the move, the scheduler's next run would take events up to the first mark only.
    assert str(mark[0]) > str(first_mark[0])
    assert str(mark[0]) >= str(last_event[0])


def test_stranded_events_get_a_run_queued(consumer: dict[str, str]) -> None:
    store = EventStore()
    store.store(make_delivery(consumer["instance"]))
    assert store.requeue_stranded(settle=timedelta(0)) == 0  # queued normally: nothing to do

    # The scheduler made a run from an older mark and deleted the queue row: the event is stranded.
    query("DELETE FROM asset_dag_run_queue WHERE target_dag_id = :d", d=consumer["dag_id"])
    assert store.requeue_stranded(settle=timedelta(0)) == 1
    (row,) = query("SELECT created_at FROM asset_dag_run_queue WHERE target_dag_id = :d", d=consumer["dag_id"])
    assert row[0] is not None
    assert store.requeue_stranded(settle=timedelta(0)) == 0  # queued again: nothing left


def test_connection_secret_from_the_connection(monkeypatch: pytest.MonkeyPatch, airflow_db: Path) -> None:
    def conn(**fields: Any) -> str:
        return json.dumps({"conn_type": "waslah", "host": "http://127.0.0.1:1/api/v1", **fields})

    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_RECV_OK", conn(extra={"webhook_secret": "whsec_x_0123456789"}))
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_RECV_NOSECRET", conn(extra={"plan": "pro"}))
    http = {"conn_type": "http", "extra": {"webhook_secret": "whsec_x_0123456789"}}
    monkeypatch.setenv("AIRFLOW_CONN_WASLAH_RECV_HTTP", json.dumps(http))
    assert connection_secret("waslah_recv_ok") == "whsec_x_0123456789"
    for conn_id, reason in [
        ("waslah_recv_missing", "unknown_connection"),
        ("waslah_recv_nosecret", "webhook_secret_not_set"),
        ("waslah_recv_http", "unknown_connection"),  # another type: not revealed to the caller
    ]:
        with pytest.raises(Rejection) as caught:
            connection_secret(conn_id)
        assert caught.value.reason == reason


def test_old_events_are_outside_the_window(consumer: dict[str, str]) -> None:
    delivery = make_delivery(consumer["instance"])
    assert EventStore().store(delivery).outcome == "stored"
    query(
        "UPDATE asset_event SET timestamp = :t WHERE asset_id = (SELECT id FROM asset WHERE uri = :u)",
        t=datetime.now(timezone.utc) - timedelta(days=4),
        u=consumer["uri"],
    )
    # Three days on, the id is forgotten (Waslah's retries and the 300 s replay window are long over).
    assert EventStore().store(replace(delivery, digest="later")).outcome == "stored"
