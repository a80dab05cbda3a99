"""The receiver's side of Airflow's metadata DB: the connection's secret, durable asset events, replays.

Runs inside the api-server process, which has DB access. Every write goes through Airflow's own
asset manager (``asset_manager.register_asset_change``, the call behind the public REST API's
``POST /api/v2/assets/events``), so DAG runs are queued exactly as for any other asset event.

Replays are recognised from the metadata DB itself: every stored event keeps Waslah's event id and
a digest of the signed content in its ``extra``; before storing, the receiver looks both up among
the asset's events of the last :data:`DEDUPE_WINDOW` (an indexed ``(asset_id, timestamp)`` range),
under a lock on the asset row, so two copies arriving at once cannot both be stored.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_waslah.inbound import SCHEME
from airflow_provider_waslah.receiver.verify import Rejection, VerifiedDelivery

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from sqlalchemy.sql.elements import ColumnElement

log = logging.getLogger("airflow_provider_waslah.receiver")

#: How long an accepted event id is remembered. Replays of a captured delivery are refused after
#: 300 s by the signed timestamp anyway; this covers Waslah's own retries of a delivery whose 2xx
#: answer was lost, which carry a fresh timestamp and the same event id.
DEDUPE_WINDOW = timedelta(days=3)
#: SQLite allows one writer: a store that finds the DB locked tries again this many times.
_LOCK_RETRIES = 5

Outcome = Literal["stored", "duplicate", "no_consumer"]


@dataclass(frozen=True)
class StoreResult:
    """What happened to a verified delivery: stored as asset event ``asset_event_id``, a duplicate, or
    nobody schedules on its asset (not stored)."""

    outcome: Outcome
    asset_uri: str
    asset_event_id: int | None = None


def connection_secret(conn_id: str) -> str:
    """The ``webhook_secret`` of Waslah connection ``conn_id`` (env var, secrets backend or metadata DB).

    :raises Rejection: ``unknown_connection`` (also for a connection of another type, logged as such),
        ``webhook_secret_not_set``, or ``connection_lookup_failed`` (503) when the lookup itself fails.
    """
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        raise Rejection("unknown_connection", "No such connection.") from None
    except Exception as err:
        log.warning("Looking up connection %r failed: %s", conn_id, type(err).__name__)
        raise Rejection("connection_lookup_failed", "The connection could not be read; try again.") from None
    if conn.conn_type != "waslah":
        # Answered as unknown: the caller learns nothing about the deployment's other connections.
        log.warning("Waslah webhook for connection %r: it is of type %r, not waslah", conn_id, conn.conn_type)
        raise Rejection("unknown_connection", "No such connection.")
    extra = conn.extra_dejson
    secret = extra.get("webhook_secret") or extra.get("extra__waslah__webhook_secret")
    if not secret or not isinstance(secret, str):
        raise Rejection("webhook_secret_not_set", "The connection has no webhook_secret: receiving is off.")
    return secret


def _dialect(session: Session) -> str:
    """The session's database dialect (``sqlite``, ``postgresql``, ``mysql``)."""
    return str(session.get_bind().dialect.name)


def _json_text(column: Any, key: str, dialect: str) -> ColumnElement[Any] | None:
    """``column ->> key`` in SQL for the dialects Airflow supports; ``None`` means compare in Python."""
    from sqlalchemy import Text, cast, func

    if dialect == "sqlite":
        return func.json_extract(column, f"$.{key}")
    if dialect == "mysql":
        return func.json_unquote(func.json_extract(column, f"$.{key}"))
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSON

        # Airflow 3.1 stores extra as text on some set-ups, 3.3 as json: the cast reads both.
        return func.json_extract_path_text(cast(cast(column, Text), JSON), key)
    return None


class EventStore:
    """Stores verified deliveries as asset events, once each.

    :param dedupe_window: how far back accepted event ids are looked up.
    """

    def __init__(self, dedupe_window: timedelta = DEDUPE_WINDOW) -> None:
        self.dedupe_window = dedupe_window
        # One writer at a time in this process: the DB lock below orders writers across
        # api-server workers; this one spares SQLite's "database is locked" retries in one worker.
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ storing
    def store(self, delivery: VerifiedDelivery) -> StoreResult:
        """Store ``delivery`` as an asset event (committed before this returns), unless already stored.

        :raises Rejection: ``storage_unavailable`` (503) when the DB cannot be written: Waslah retries.
        """
        from sqlalchemy.exc import OperationalError

        for attempt in range(_LOCK_RETRIES):
            try:
                with self._lock:
                    return self._store_once(delivery)
            except OperationalError as err:
                locked = "locked" in str(err).lower() or "busy" in str(err).lower()
                if locked and attempt + 1 < _LOCK_RETRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                log.warning("Storing Waslah event %s failed: %s", delivery.event_id, type(err).__name__)
                raise Rejection("storage_unavailable", "The event could not be stored; try again.") from None
            except Rejection:
                raise
            except Exception as err:
                log.warning("Storing Waslah event %s failed: %r", delivery.event_id, err)
                raise Rejection("storage_unavailable", "The event could not be stored; try again.") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _store_once(self, delivery: VerifiedDelivery) -> StoreResult:
        from airflow.assets.manager import asset_manager
        from airflow.models.asset import AssetModel
        from airflow.utils.session import create_session

        uri = delivery.asset_uri
        asset_id = self.active_asset_id(uri)
        if asset_id is None:
            return StoreResult("no_consumer", uri)
        with create_session() as session:
            self._lock_asset(session, asset_id)
            existing = self._find_accepted(session, asset_id, delivery)
            if existing is not None:
                return StoreResult("duplicate", uri, existing)
            asset = session.get(AssetModel, asset_id)
            if asset is None:  # deleted since the look-up
                return StoreResult("no_consumer", uri)
            event = asset_manager.register_asset_change(asset=asset, extra=delivery.extra(), session=session)
            if event is None:
                return StoreResult("no_consumer", uri)
            session.flush()
            self._keep_queued(session, asset_id, event.timestamp)
            stored_id = int(event.id)
        # create_session() committed on leaving the block: only now is the event durable.
        return StoreResult("stored", uri, stored_id)

    @staticmethod
    def active_asset_id(uri: str) -> int | None:
        """The id of the active asset (declared by some DAG) with this URI, or ``None``."""
        from airflow.models.asset import AssetActive, AssetModel
        from airflow.utils.session import create_session
        from sqlalchemy import and_, select

        with create_session() as session:
            found = session.scalar(
                select(AssetModel.id)
                .join(AssetActive, and_(AssetActive.name == AssetModel.name, AssetActive.uri == AssetModel.uri))
                .where(AssetModel.uri == uri)
                .limit(1)
            )
            return None if found is None else int(found)

    @staticmethod
    def _lock_asset(session: Session, asset_id: int) -> None:
        """Hold the asset row until commit, so concurrent copies of one event are stored one after the other."""
        from airflow.models.asset import AssetModel
        from airflow.utils.sqlalchemy import with_row_locks
        from sqlalchemy import select, update

        if _dialect(session) == "sqlite":
            # A no-op write takes SQLite's database-wide write lock (as Airflow's asset manager does).
            session.execute(update(AssetModel).where(AssetModel.id == asset_id).values(id=AssetModel.id))
            return
        session.scalar(with_row_locks(select(AssetModel.id).where(AssetModel.id == asset_id), session=session))

    def _find_accepted(self, session: Session, asset_id: int, delivery: VerifiedDelivery) -> int | None:
        """An earlier asset event of this delivery: same event id, or same signed content (a replay)."""
        from airflow.models.asset import AssetEvent
        from sqlalchemy import or_, select

        since = datetime.now(timezone.utc) - self.dedupe_window
        in_window = (AssetEvent.asset_id == asset_id, AssetEvent.timestamp >= since)
        dialect = _dialect(session)
        event_id = _json_text(AssetEvent.extra, "event_id", dialect)
        digest = _json_text(AssetEvent.extra, "delivery_digest", dialect)
        if event_id is not None and digest is not None:
            found = session.scalar(
                select(AssetEvent.id)
                .where(*in_window, or_(event_id == delivery.event_id, digest == delivery.digest))
                .limit(1)
            )
            return None if found is None else int(found)
        for row_id, extra in session.execute(select(AssetEvent.id, AssetEvent.extra).where(*in_window)):
            if isinstance(extra, dict) and (
                extra.get("event_id") == delivery.event_id or extra.get("delivery_digest") == delivery.digest
            ):
                return int(row_id)
        return None

    @staticmethod
    def _keep_queued(session: Session, asset_id: int, timestamp: datetime) -> None:
        """Move the asset's queued-run marks up to this event, so the next DAG run includes it.

        The scheduler's next run of a DAG takes the events up to the ``created_at`` of its queue
        rows; a row created for an earlier event and not yet consumed keeps that earlier time, and
        an event arriving in between would wait for the next one (Airflow 3.1-3.3).
        """
        from airflow.models.asset import AssetDagRunQueue
        from sqlalchemy import update

        session.execute(
            update(AssetDagRunQueue)
            .where(AssetDagRunQueue.asset_id == asset_id, AssetDagRunQueue.created_at < timestamp)
            .values(created_at=timestamp)
            .execution_options(synchronize_session=False)
        )

    # ------------------------------------------------------------------ stranded events
    def requeue_stranded(
        self, *, settle: timedelta = timedelta(seconds=2), horizon: timedelta = timedelta(minutes=15)
    ) -> int:
        """Queue a DAG run for Waslah events no run has taken and none will: return how many were found.

        An event stored while the scheduler was creating a run from an older queue row is left
        out of that run, and the row is deleted with the run's creation; without a new event the
        DAG would not run again. For each Waslah event between ``settle`` and ``horizon`` old, each
        unpaused DAG scheduled on its asset (since before the event) that has neither consumed it,
        nor a queue row that covers it, nor a run at or after it, gets a fresh queue row.
        """
        from airflow.models.asset import (
            AssetDagRunQueue,
            AssetEvent,
            AssetModel,
            DagScheduleAssetReference,
        )
        from airflow.models.asset import association_table as consumed_by_run
        from airflow.models.dag import DagModel
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.types import DagRunType
        from sqlalchemy import and_, exists, func, select

        now = datetime.now(timezone.utc)
        stranded = 0
        with self._lock, create_session() as session:
            rows = session.execute(
                select(AssetEvent.id, AssetEvent.asset_id, AssetEvent.timestamp, DagScheduleAssetReference.dag_id)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .join(DagScheduleAssetReference, DagScheduleAssetReference.asset_id == AssetEvent.asset_id)
                .join(DagModel, DagModel.dag_id == DagScheduleAssetReference.dag_id)
                .where(
                    AssetModel.uri.startswith(f"{SCHEME}://"),
                    AssetEvent.timestamp >= now - horizon,
                    AssetEvent.timestamp <= now - settle,
                    DagScheduleAssetReference.created_at < AssetEvent.timestamp,
                    DagModel.is_paused.is_(False),
                    ~exists().where(
                        consumed_by_run.c.event_id == AssetEvent.id,
                        consumed_by_run.c.dag_run_id == DagRun.id,
                        DagRun.dag_id == DagScheduleAssetReference.dag_id,
                    ),
                    ~exists().where(
                        AssetDagRunQueue.target_dag_id == DagScheduleAssetReference.dag_id,
                        AssetDagRunQueue.created_at >= AssetEvent.timestamp,
                    ),
                )
            ).all()
            requeue: dict[tuple[int, str], datetime] = {}
            for _event_id, asset_id, timestamp, dag_id in rows:
                last_run = session.scalar(
                    select(func.max(DagRun.run_after)).where(
                        and_(DagRun.dag_id == dag_id, DagRun.run_type == DagRunType.ASSET_TRIGGERED)
                    )
                )
                if last_run is not None and last_run >= timestamp:
                    continue  # a run after it exists: Airflow's window has passed it by
                stranded += 1
                requeue[(asset_id, dag_id)] = now
            for (asset_id, dag_id), created_at in requeue.items():
                row = session.get(AssetDagRunQueue, {"asset_id": asset_id, "target_dag_id": dag_id})
                if row is None:
                    session.add(AssetDagRunQueue(asset_id=asset_id, target_dag_id=dag_id, created_at=created_at))
                else:
                    row.created_at = created_at
                log.warning(
                    "Waslah receiver: queued a run of DAG %s for Waslah events no run had taken (asset id %s)",
                    dag_id,
                    asset_id,
                )
        return stranded


class StrandedEventSweeper:
    """Calls :meth:`EventStore.requeue_stranded` every ``interval`` seconds while events keep coming.

    One daemon thread in the api-server; it sleeps without polling once nothing was stored for
    ``idle_after`` seconds, and wakes up with the next stored event.
    """

    def __init__(self, store: EventStore, interval: float = 5.0, idle_after: float = 900.0) -> None:
        self.store = store
        self.interval = interval
        self.idle_after = idle_after
        self._last_store = 0.0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def poke(self) -> None:
        """Note that an event was stored; start the thread on first use."""
        self._last_store = time.monotonic()
        self._wake.set()
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="waslah-receiver-sweeper", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            if time.monotonic() - self._last_store > self.idle_after:
                self._wake.clear()
                self._wake.wait()
            time.sleep(self.interval)
            try:
                self.store.requeue_stranded()
            except Exception as err:  # a sweep that fails is tried again at the next interval
                log.warning("Waslah receiver: checking for stranded events failed: %r", err)
