"""Helpers for the HITL tests: signed WhatsApp replies, the real receiver in-process, the HITL rows."""

from __future__ import annotations

import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.testclient import TestClient

from airflow_provider_waslah.client.client import WaslahClient
from airflow_provider_waslah.hitl.responder import HITLResponder, ReplyOutcome, send_reply
from airflow_provider_waslah.receiver.app import Receiver, create_app
from airflow_provider_waslah.receiver.store import EventStore
from airflow_provider_waslah.webhooks import signed_headers

SECRET = "whsec_hitl_test_0123456789"


def reply_delivery(
    sender: str,
    body: str,
    *,
    remote_jid: str | None = None,
    instance_key: str = "demo",
    event_id: str | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A signed ``message.received`` delivery: ``sender`` (digits) wrote ``body`` just now."""
    now = int(time.time())
    data = {
        "message_id": int(uuid.uuid4().int % 10**6),
        "instance_key": instance_key,
        "from": sender,
        "remote_jid": remote_jid or f"{sender}@s.whatsapp.net",
        "body": body,
        "message_type": "text",
        "received_at": datetime.now(timezone.utc).isoformat(),
    }
    raw = json.dumps({"event": "message.received", "timestamp": now, "data": data}).encode()
    headers = signed_headers(SECRET, raw, event="message.received", event_id=event_id or str(uuid.uuid4()))
    return raw, headers


class RecordingSender:
    """Sends the replies for real (through the emulator's API) and records each outcome.

    The client is built from the emulator handle, not from the Airflow connection: under ``dag.test()``
    this process is also a task runner, whose connection look-ups go to a supervisor that only the
    main thread serves. (The api-server reads the connection itself: see tests/stack/.)
    """

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.sent: list[ReplyOutcome] = []

    def client(self, conn_id: str) -> WaslahClient:
        return WaslahClient(api_key=self.emulator.api_key, base_url=self.emulator.base_url)

    def __call__(self, outcome: ReplyOutcome) -> None:
        self.sent.append(outcome)
        send_reply(outcome, self.client)


def receiver_client(sender: Callable[[ReplyOutcome], None]) -> TestClient:
    """The receiver app with the real store and HITL responder (metadata DB), mounted at ``/waslah``."""
    from fastapi import FastAPI

    ensure_auth_manager()
    receiver = Receiver(
        secret_for=lambda conn_id: SECRET,
        store=EventStore(),
        hitl=HITLResponder(settle=timedelta(0)),  # dag.test() has no executor to race (docs/hitl.md)
        reply_sender=sender,
    )
    root = FastAPI()
    root.mount("/waslah", create_app(receiver))
    return TestClient(root, raise_server_exceptions=False)


def post_reply(client: TestClient, sender: str, body: str, **kwargs: Any) -> Any:
    """Deliver ``sender``'s reply to ``/waslah/webhook/waslah_default``; return the response."""
    raw, headers = reply_delivery(sender, body, **kwargs)
    return client.post("/waslah/webhook/waslah_default", content=raw, headers=headers)


def conversation(ledger: dict[str, list[dict[str, Any]]], phone: str, *jids: str) -> list[str]:
    """The texts sent to one person, oldest first: to their number and to the JIDs they wrote from.

    Replies go to the reply's ``remote_jid`` verbatim (``628…@s.whatsapp.net`` or ``…@lid``); the
    question went to the number: the emulator's ledger keeps them apart.
    """
    keys = (phone, f"{phone}@s.whatsapp.net", *jids)
    messages = sorted((m for key in keys for m in ledger.get(key, [])), key=lambda m: m["message_id"])
    return [m["text"] for m in messages]


def hitl_rows(dag_id: str) -> list[dict[str, Any]]:
    """Every HITL detail of ``dag_id``'s task instances, with the task instance's ids and state."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(HITLDetail, TaskInstance)
            .join(TaskInstance, TaskInstance.id == HITLDetail.ti_id)
            .where(TaskInstance.dag_id == dag_id)
        ).all()
        return [
            {
                "ti_id": str(ti.id),
                "run_id": ti.run_id,
                "task_id": ti.task_id,
                "state": str(ti.state.value if hasattr(ti.state, "value") else ti.state),
                "responded_by": detail.responded_by,
                "chosen_options": detail.chosen_options,
                "responded_at": detail.responded_at,
                "created_at": detail.created_at,
            }
            for detail, ti in rows
        ]


def ensure_auth_manager() -> None:
    """Airflow's ``update_hitl_detail`` asks the auth manager; the api-server creates it at start."""
    from airflow.api_fastapi import app

    if getattr(app, "auth_manager", None) is None:
        app.create_auth_manager()


def answer_in_ui(dag_id: str, run_id: str, task_id: str, option: str, user: str = "admin") -> Any:
    """Answer as an Airflow user would in the UI: Airflow's own route function, as the user ``user``."""
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.utils.session import create_session

    class UiUser(BaseUser):
        def get_id(self) -> str:
            return user

        def get_name(self) -> str:
            return user

    ensure_auth_manager()
    with create_session() as session:
        return update_hitl_detail(
            dag_id=dag_id,
            dag_run_id=run_id,
            task_id=task_id,
            update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option]),
            user=UiUser(),
            session=session,
            map_index=-1,
        )


class Background:
    """Runs ``target`` in a thread beside ``dag.test()`` (which must run in the main thread); re-raises its error.

    :param unblock: called when ``target`` fails, so that ``dag.test()`` (waiting for an answer) can end.
    """

    def __init__(self, target: Callable[[], None], unblock: Callable[[], None] | None = None) -> None:
        self.error: BaseException | None = None
        self.unblock = unblock
        self.thread = threading.Thread(target=self._run, args=(target,), daemon=True)

    def _run(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as err:
            self.error = err
            traceback.print_exc()
            if self.unblock is not None:
                try:
                    self.unblock()
                except BaseException:
                    traceback.print_exc()

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(timeout=30)
        if self.error is not None and exc[0] is None:
            raise self.error
