"""The receiver's FastAPI app: one route, ``POST /webhook/{conn_id}`` (mounted under ``/waslah``).

No Airflow authentication applies: the api-server authorises per route (dependencies on its own
routes), and this app declares none, so Waslah, which cannot log in, is let through and the HMAC
signature is the only credential. The app serves nothing else: no docs, no OpenAPI schema; any
other path or method gets 404 / 405.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from airflow_provider_waslah.receiver.store import EventStore, StoreResult, StrandedEventSweeper, connection_secret
from airflow_provider_waslah.receiver.verify import (
    MAX_BODY_BYTES,
    Rejection,
    VerifiedDelivery,
    check_conn_id,
    check_size,
    verify_delivery,
)
from airflow_provider_waslah.webhooks import EVENT_ID_HEADER

log = logging.getLogger("airflow_provider_waslah.receiver")

#: The route, under the plugin's ``/waslah`` prefix: ``POST /waslah/webhook/<conn_id>``.
ROUTE = "/webhook/{conn_id}"


def _printable(value: object, limit: int = 80) -> str:
    """``repr`` cut to ``limit``: request data in a log line can neither forge lines nor flood."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Receiver:
    """Turns one HTTP delivery into a verdict: a rejection, a duplicate, an ignored or a stored event.

    :param secret_for: ``conn_id -> webhook secret``, raising :class:`Rejection` (default: the Airflow connection).
    :param store: where verified deliveries go (default: Airflow's metadata DB).
    :param sweeper: started after each stored event (``None``: no sweep).
    :param max_body_bytes: bodies above this are refused with 413.
    :param clock: the current Unix time (for the 300 s window).
    :param hitl: answers Airflow HITL questions from WhatsApp replies before anything is stored
        (an :class:`~airflow_provider_waslah.hitl.responder.HITLResponder`; ``None``: off).
    :param reply_sender: sends the text a HITL reply gets back, after the answer (default: Waslah).
    """

    def __init__(
        self,
        *,
        secret_for: Callable[[str], str] = connection_secret,
        store: Any = None,
        sweeper: StrandedEventSweeper | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.time,
        hitl: Any = None,
        reply_sender: Callable[[Any], None] | None = None,
    ) -> None:
        self.hitl = hitl
        if reply_sender is None:
            from airflow_provider_waslah.hitl.responder import send_reply

            reply_sender = send_reply
        self.reply_sender = reply_sender
        self.secret_for = secret_for
        self.store = store if store is not None else EventStore()
        self.sweeper = sweeper
        self.max_body_bytes = max_body_bytes
        self.clock = clock

    async def read_body(self, request: Request) -> bytes:
        """The raw body, refused with 413 as soon as it passes the limit (declared or actual)."""
        check_size(request.headers.get("content-length"), self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise Rejection("body_too_large", f"Body over the {self.max_body_bytes} byte limit.")
            chunks.append(chunk)
        return b"".join(chunks)

    async def handle(self, conn_id: str, request: Request) -> JSONResponse:
        """Answer one delivery; log every rejection with its reason (never the secret, never the body)."""
        client = request.client.host if request.client else "unknown"
        header_id = request.headers.get(EVENT_ID_HEADER)
        try:
            check_conn_id(conn_id)
            body = await self.read_body(request)
            secret = await run_in_threadpool(self.secret_for, conn_id)
            delivery = verify_delivery(conn_id, body, request.headers, secret, now=self.clock())
            # A reply to a HITL question answers it and is not stored (no DAG reacts to it as to a customer).
            reply = await run_in_threadpool(self.hitl.handle, delivery, wait=False) if self.hitl is not None else None
            if reply is not None:
                return self._hitl_answer(conn_id, delivery, reply)
            result: StoreResult = await run_in_threadpool(self.store.store, delivery)
        except ClientDisconnect:
            log.warning("Waslah webhook for connection %s: the client went away mid-request", _printable(conn_id))
            return JSONResponse({"ok": False, "error": "client_disconnected"}, status_code=400)
        except Rejection as rejection:
            log.warning(
                "Waslah webhook for connection %s rejected: %s %s (%s) event id %s, from %s",
                _printable(conn_id),
                rejection.status,
                rejection.reason,
                rejection.message,
                _printable(header_id),
                client,
            )
            return JSONResponse(
                {"ok": False, "error": rejection.reason, "message": rejection.message}, status_code=rejection.status
            )
        base = {"ok": True, "event_id": delivery.event_id, "asset": result.asset_uri}
        if result.outcome == "duplicate":
            log.warning(
                "Waslah webhook for connection %s: event %s was already accepted (asset event %s); not stored again",
                _printable(conn_id),
                delivery.event_id,
                result.asset_event_id,
            )
            return JSONResponse(
                {**base, "stored": False, "reason": "duplicate_event", "asset_event_id": result.asset_event_id},
                status_code=208,
            )
        if result.outcome == "no_consumer":
            log.info(
                "Waslah webhook for connection %s: %s %s acknowledged, not stored: no DAG schedules on %s",
                _printable(conn_id),
                delivery.event,
                delivery.event_id,
                result.asset_uri,
            )
            return JSONResponse({**base, "stored": False, "reason": "no_dag_schedules_on_asset"}, status_code=200)
        log.info(
            "Waslah webhook for connection %s: %s %s stored as asset event %s on %s",
            _printable(conn_id),
            delivery.event,
            delivery.event_id,
            result.asset_event_id,
            result.asset_uri,
        )
        if self.sweeper is not None:
            self.sweeper.poke()
        return JSONResponse({**base, "stored": True, "asset_event_id": result.asset_event_id}, status_code=201)

    def _hitl_answer(self, conn_id: str, delivery: VerifiedDelivery, reply: Any) -> JSONResponse:
        """The answer to a delivery that was a reply to a HITL question; its WhatsApp text goes after it."""
        event_id = delivery.event_id
        base = {"ok": True, "event_id": event_id, "stored": False, "hitl": reply.kind}
        if reply.kind == "duplicate":
            return JSONResponse({**base, "reason": "duplicate_event"}, status_code=208)
        if reply.kind == "pending":
            # The question was asked seconds ago: answered after a short wait, after this response
            # (Waslah's delivery timeout is shorter than the wait; see HITLResponder.settle).
            return JSONResponse(
                {**base, "reason": "hitl_reply"},
                status_code=202,
                background=BackgroundTask(self._answer_later, delivery),
            )
        log.info(
            "Waslah webhook for connection %s: %s was a reply to a HITL question (%s)",
            _printable(conn_id),
            event_id,
            reply.kind,
        )
        return JSONResponse(
            {**base, "reason": "hitl_reply", "code": reply.code},
            status_code=200,
            background=BackgroundTask(self.reply_sender, reply) if reply.text else None,
        )

    def _answer_later(self, delivery: VerifiedDelivery) -> None:
        """Answer a reply to a question asked seconds ago, after the wait; never raises (logs instead)."""
        try:
            reply = self.hitl.handle(delivery, wait=True)
            if reply is None:  # answered meanwhile in the UI, and this was no answer: a message like any other
                self.store.store(delivery)
            elif reply.text:
                self.reply_sender(reply)
        except Exception as err:
            log.warning("Waslah HITL reply %s could not be processed after the wait: %r", delivery.event_id, err)


def create_app(receiver: Receiver | None = None) -> FastAPI:
    """The receiver app (mount it under ``/waslah``); a default :class:`Receiver` uses Airflow's DB
    and answers HITL questions from WhatsApp replies."""
    if receiver is None:
        from airflow_provider_waslah.hitl.responder import HITLResponder

        store = EventStore()
        receiver = Receiver(store=store, sweeper=StrandedEventSweeper(store), hitl=HITLResponder())
    app = FastAPI(
        title="Waslah webhook receiver",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.receiver = receiver

    @app.post(ROUTE)
    async def receive_webhook(conn_id: str, request: Request) -> JSONResponse:
        """Verify a Waslah webhook for ``conn_id`` and store it as an Airflow asset event."""
        return await receiver.handle(conn_id, request)

    return app
