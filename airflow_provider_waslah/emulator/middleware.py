"""The emulator's ASGI middleware: request log, body-size limit, rate-limit headers, faults, disconnects.

Faults (``POST /_emulator/faults``, see ``control.py`` for every option) are carried out here,
around the routes. A dropped connection (``drop_connection``, ``lose_response``) starts a
response (status line and a ``Content-Length`` header) and then aborts, so uvicorn closes the
connection without a body: over real HTTP the client sees ``httpx.RemoteProtocolError``
("Server disconnected without sending a complete response."; httpx's own transport says "peer
closed connection without sending complete message body"); through
``httpx.ASGITransport`` the :class:`DroppedConnection` exception itself reaches the caller.

A client that hangs up before its request body was read is logged (status ``None``, a note
saying so) and otherwise ignored: one debug line, no traceback.
"""

from __future__ import annotations

import asyncio
import http
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from airflow_provider_waslah.emulator.backend import WaslahBackend
from airflow_provider_waslah.emulator.background import BackgroundWorkers
from airflow_provider_waslah.emulator.control import CONTROL_PREFIX
from airflow_provider_waslah.emulator.records import Fault, FaultSpec, LoggedRequest

#: Request bodies larger than this get a 413 (uploads are limited to 16 MB by the API rules).
MAX_BODY_BYTES = 20 * 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)


class DroppedConnection(Exception):
    """Raised to make the server drop the connection mid-response (fault injection)."""


class BodyTooLarge(Exception):
    """The request body exceeded :data:`MAX_BODY_BYTES`."""


class _DropFilter(logging.Filter):
    """Keep uvicorn from logging a traceback for connections the emulator drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


logging.getLogger("uvicorn.error").addFilter(_DropFilter())


def envelope(
    status: int, error: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The error envelope ``{"ok": false, "error", "message", **extra}`` as a response."""
    return JSONResponse({"ok": False, "error": error, "message": message, **extra}, status_code=status, headers=headers)


def too_large_response() -> JSONResponse:
    """The 413 answered to a body larger than :data:`MAX_BODY_BYTES`."""
    return envelope(413, "payload_too_large", f"Request body lebih dari {MAX_BODY_BYTES // (1024 * 1024)} MB.")


_FAULT_ERRORS = {
    400: ("bad_request", "Bad Request."),
    401: ("unauthorized", "Unauthenticated."),
    403: ("forbidden", "Forbidden."),
    404: ("not_found", "Not Found."),
    429: ("too_many_requests", "Too Many Attempts."),
    500: ("server_error", "Server Error"),
    502: ("bad_gateway", "Engine down / tidak respon. Coba lagi."),
    503: ("service_unavailable", "Service Unavailable."),
    504: ("gateway_timeout", "Gateway Timeout."),
}


def fault_answer(spec: FaultSpec, now: float) -> JSONResponse:
    """The error envelope a ``status`` fault answers with."""
    assert spec.status is not None
    error, message = _FAULT_ERRORS.get(spec.status) or _status_words(spec.status)
    headers = None
    if spec.status == 429:
        retry = spec.retry_after if spec.retry_after is not None else 1
        headers = {
            "Retry-After": str(retry),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(math.ceil(now + retry)),
        }
    return envelope(spec.status, spec.error or error, spec.message or message, headers=headers)


def _status_words(status: int) -> tuple[str, str]:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Server Error" if status >= 500 else "Client Error"
    return phrase.lower().replace(" ", "_").replace("-", "_"), f"{phrase}."


@dataclass
class _Outcome:
    """What happened to one request, for the request log."""

    status: int | None = None
    note: str | None = None


class EmulatorMiddleware:
    """Request log, body-size limit, rate-limit headers, fault injection and quiet disconnects (pure ASGI)."""

    def __init__(self, app: ASGIApp, backend: WaslahBackend, workers: BackgroundWorkers) -> None:
        self.app = app
        self.backend = backend
        self.workers = workers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.workers.start()
        method: str = scope["method"]
        path: str = scope["path"]
        control = path.startswith(CONTROL_PREFIX)
        scope.setdefault("state", {})
        started = time.time()
        outcome = _Outcome()
        fault: Fault | None = None

        def log() -> None:
            if control:
                return
            self.backend.log_request(
                LoggedRequest(
                    method=method,
                    path=path,
                    query=scope.get("query_string", b"").decode("latin-1"),
                    status=outcome.status,
                    started=started,
                    duration_ms=round((time.time() - started) * 1000, 2),
                    api_key_prefix=scope["state"].get("key_prefix"),
                    note=outcome.note,
                    fault_id=fault.id if fault else None,
                    fault_kind=fault.spec.kind if fault else None,
                )
            )

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length = headers.get("content-length", "")
        if length.isascii() and length.isdigit() and (len(length) > 12 or int(length) > MAX_BODY_BYTES):
            outcome.status = 413
            await too_large_response()(scope, receive, send)
            log()
            return

        fault = None if control else self.backend.pick_fault(method, path)
        if fault is not None and await self._before(fault, scope, receive, send, outcome, log):
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge()
            return message

        hold = fault is not None and fault.spec.kind in ("lose_response", "garbage", "answer_late")
        held: list[Message] = []

        async def wrapped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome.status = message["status"]
                message = _with_rate_headers(message, scope["state"].get("rate_headers") or {})
            if hold:
                held.append(message)
            else:
                await send(message)

        try:
            await self.app(scope, limited_receive, wrapped_send)
        except ClientDisconnect:
            outcome.status, outcome.note = None, "client disconnected before its request was read; not processed"
            logger.debug("Waslah emulator: client disconnected during %s %s", method, path)
            log()
            return
        except BaseException:
            log()
            raise
        if fault is None or not hold:
            log()
            return
        await self._after(fault, held, send, outcome, log)

    @staticmethod
    async def _before(
        fault: Fault, scope: Scope, receive: Receive, send: Send, outcome: _Outcome, log: Callable[[], None]
    ) -> bool:
        """Carry out what a fault does before processing; ``True`` if the request ends there (logged)."""
        spec = fault.spec
        if spec.latency > 0 and not spec.answer_late:
            await asyncio.sleep(spec.latency)
        if spec.kind == "drop_connection":
            outcome.note = "connection dropped (fault), not processed"
            log()
            await _drain(receive)
            await _drop(send)
        if spec.kind == "status":
            outcome.status, outcome.note = spec.status, "fault"
            await fault_answer(spec, time.time())(scope, receive, send)
            log()
            return True
        return False

    async def _after(
        self, fault: Fault, held: list[Message], send: Send, outcome: _Outcome, log: Callable[[], None]
    ) -> None:
        """Answer a processed request the way the fault says: lost, garbage, or late."""
        spec = fault.spec
        if spec.kind == "lose_response":
            outcome.note = f"processed with status {outcome.status}, response lost (fault)"
            outcome.status = None
            log()
            await _drop(send)
        if spec.kind == "garbage":
            body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
            content_type, content = self.backend.garbage_body(spec, body)
            start = held[0]
            kept = [
                (k, v) for k, v in start.get("headers", []) if k.lower() not in (b"content-type", b"content-length")
            ]
            kept += [(b"content-type", content_type), (b"content-length", str(len(content)).encode())]
            outcome.note = "processed, answered with a garbage body (fault)"
            log()
            await send({**start, "headers": kept})
            await send({"type": "http.response.body", "body": content, "more_body": False})
            return
        # answer_late: processed already; the answer waits (and goes nowhere if the client left).
        await asyncio.sleep(spec.latency)
        outcome.note = f"processed, answered {spec.latency:g} s late (fault)"
        log()
        for message in held:
            await send(message)


def _with_rate_headers(message: Message, extra: dict[str, str]) -> Message:
    if not extra:
        return message
    raw = list(message.get("headers", []))
    present = {k.lower() for k, _ in raw}
    for name, value in extra.items():
        if name.lower().encode("latin-1") not in present:
            raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return {**message, "headers": raw}


async def _drain(receive: Receive) -> None:
    """Read the request body (and ignore it).

    Closing a socket with client data still unread, or arriving, makes the kernel answer with a
    reset: the client would see ``ConnectionResetError`` instead of a closed connection.
    """
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _drop(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1024")]})
    raise DroppedConnection("connection dropped by an emulator fault")
