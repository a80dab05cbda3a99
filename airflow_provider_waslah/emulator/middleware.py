"""The emulator's ASGI middleware: request log, body-size limit, rate-limit headers, fault injection.

Faults (``POST /_emulator/faults``) are applied here, before the routes:

* ``status``: answer with that status and the error envelope, the request is not processed.
* ``latency``: wait that many (real) seconds before handling the request.
* ``drop_connection``: the request is *not* processed; the middleware starts a response
  (status line and a ``Content-Length`` header) and then aborts, so uvicorn closes the
  connection without a body. Over real HTTP an httpx client sees
  ``httpx.RemoteProtocolError`` ("peer closed connection without sending complete message
  body"); through ``httpx.ASGITransport`` the :class:`DroppedConnection` exception itself
  reaches the caller.
* ``lose_response``: the request *is* processed (a send is queued and shows in the ledger),
  then the response is discarded and the connection dropped the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timezone
from typing import Any

from fastapi.responses import JSONResponse

from airflow_provider_waslah.emulator.background import BackgroundWorkers
from airflow_provider_waslah.emulator.state import EmulatorState

#: Request bodies larger than this get a 413 (uploads are limited to 16 MB by the API rules).
MAX_BODY_BYTES = 20 * 1024 * 1024
CONTROL_PREFIX = "/_emulator"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class DroppedConnection(Exception):
    """Raised to make the server drop the connection mid-response (fault injection)."""


class BodyTooLarge(Exception):
    """The request body exceeded :data:`MAX_BODY_BYTES`."""


class _DropFilter(logging.Filter):
    """Keep uvicorn from logging a traceback for connections the emulator drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_drop_filter = _DropFilter()
logging.getLogger("uvicorn.error").addFilter(_drop_filter)


def envelope(
    status: int, error: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The error envelope ``{"ok": false, "error", "message", **extra}`` as a response."""
    return JSONResponse({"ok": False, "error": error, "message": message, **extra}, status_code=status, headers=headers)


_FAULT_ERRORS = {
    400: ("bad_request", "Bad Request."),
    429: ("too_many_requests", "Too Many Attempts."),
    500: ("server_error", "Server Error"),
    502: ("bad_gateway", "Engine down / tidak respon. Coba lagi."),
    503: ("service_unavailable", "Service Unavailable."),
    504: ("gateway_timeout", "Gateway Timeout."),
}


class EmulatorMiddleware:
    """Request log, body-size limit, rate-limit headers and fault injection (pure ASGI)."""

    def __init__(self, app: ASGIApp, state: EmulatorState, workers: BackgroundWorkers) -> None:
        self.app = app
        self.state = state
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
        result: dict[str, Any] = {"status": None, "note": None}

        def log() -> None:
            if control:
                return
            self.state.log_request(
                {
                    "method": method,
                    "path": path,
                    "query": scope.get("query_string", b"").decode("latin-1"),
                    "status": result["status"],
                    "time": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="milliseconds"),
                    "duration_ms": round((time.time() - started) * 1000, 2),
                    "api_key_prefix": scope["state"].get("key_prefix"),
                    "note": result["note"],
                }
            )

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            result["status"] = 413
            await too_large_response()(scope, receive, send)
            log()
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

        fault = None if control else self.state.pick_fault(method, path)
        if fault is not None:
            if fault.latency > 0:
                await asyncio.sleep(fault.latency)
            if fault.drop_connection:
                result.update(status=None, note="connection dropped (fault), not processed")
                log()
                await _drop(send)
            if fault.status is not None and not fault.lose_response:
                error, message = _FAULT_ERRORS.get(fault.status, ("server_error", "Server Error"))
                result.update(status=fault.status, note="fault")
                await envelope(fault.status, fault.error or error, fault.message or message)(scope, receive, send)
                log()
                return
        lose = fault is not None and fault.lose_response

        async def wrapped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                result["status"] = message["status"]
                extra = scope["state"].get("rate_headers") or {}
                if extra:
                    raw = list(message.get("headers", []))
                    present = {k.lower() for k, _ in raw}
                    for name, value in extra.items():
                        if name.lower().encode("latin-1") not in present:
                            raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
                    message = {**message, "headers": raw}
            if lose:
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, wrapped_send)
        finally:
            if lose:
                result["note"] = f"processed with status {result['status']}, response lost (fault)"
                result["status"] = None
            log()
        if lose:
            await _drop(send)


def too_large_response() -> JSONResponse:
    """The 413 answered to a body larger than :data:`MAX_BODY_BYTES`."""
    return envelope(413, "payload_too_large", f"Request body lebih dari {MAX_BODY_BYTES // (1024 * 1024)} MB.")


async def _drop(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1024")]})
    raise DroppedConnection("connection dropped by an emulator fault")
