"""Thin ASGI routes over :class:`~airflow_provider_waslah.emulator.state.EmulatorState`.

``create_app()`` returns a FastAPI app serving the Waslah REST API under ``/api/v1``, uploaded
files under ``/storage/uploads/...`` and the control API under ``/_emulator/``.

Faults (``POST /_emulator/faults``) are applied by an ASGI middleware before the routes:

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
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_waslah.emulator.background import BackgroundWorkers
from airflow_provider_waslah.emulator.body import parse_json_object
from airflow_provider_waslah.emulator.entities import AuthContext
from airflow_provider_waslah.emulator.errors import EmulatorAPIError, validation_failed
from airflow_provider_waslah.emulator.plans import REST_FEATURE
from airflow_provider_waslah.emulator.state import EmulatorState

#: Request bodies larger than this get a 413 (uploads are limited to 16 MB by the API rules).
MAX_BODY_BYTES = 20 * 1024 * 1024
API_PREFIX = "/api/v1"
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


def _envelope(
    status: int, error: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
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
            await _too_large()(scope, receive, send)
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
                await _envelope(fault.status, fault.error or error, fault.message or message)(scope, receive, send)
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


def _too_large() -> JSONResponse:
    return _envelope(413, "payload_too_large", f"Request body lebih dari {MAX_BODY_BYTES // (1024 * 1024)} MB.")


async def _drop(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1024")]})
    raise DroppedConnection("connection dropped by an emulator fault")


def _origin(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def create_app(
    seed: dict[str, Any] | None = None,
    *,
    time_scale: float | None = None,
    rate_window_seconds: float | None = None,
    random_seed: int | None = None,
    state: EmulatorState | None = None,
) -> FastAPI:
    """Build the emulator's ASGI app.

    :param seed: seed data merged over the default seed (what ``POST /_emulator/reset`` restores).
    :param time_scale: real seconds per emulated second (overrides the seed's).
    :param rate_window_seconds: the rate-limit window length (overrides the seed's).
    :param random_seed: seed of the emulator's RNG (overrides the seed's).
    :param state: use this state object instead of building one from ``seed``.

    ``app.state.emulator`` is the :class:`EmulatorState`; ``app.state.workers`` the background
    threads (started on the first request or at lifespan start-up, stopped at shutdown).
    """
    if state is None:
        overrides: dict[str, Any] = dict(seed or {})
        for key, value in (
            ("time_scale", time_scale),
            ("rate_window_seconds", rate_window_seconds),
            ("random_seed", random_seed),
        ):
            if value is not None:
                overrides[key] = value
        state = EmulatorState(overrides)
    emulator = state
    workers = BackgroundWorkers(emulator)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        workers.start()
        try:
            yield
        finally:
            workers.stop()

    app = FastAPI(
        title="Waslah API emulator",
        lifespan=lifespan,
        docs_url="/_emulator/docs",
        redoc_url=None,
        openapi_url="/_emulator/openapi.json",
    )
    app.state.emulator = emulator
    app.state.workers = workers
    app.add_middleware(EmulatorMiddleware, state=emulator, workers=workers)

    # ---------------------------------------------------------------- error handlers
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EmulatorAPIError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return _envelope(404, "not_found", f"Route `{request.method} {request.url.path}` tidak ditemukan.")
        if exc.status_code == 405:
            return _envelope(
                405,
                "method_not_allowed",
                f"Method {request.method} tidak didukung untuk `{request.url.path}`.",
                headers=dict(exc.headers or {}),
            )
        return _envelope(exc.status_code, "http_error", str(exc.detail))

    async def request_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors: dict[str, list[str]] = {}
        for item in exc.errors():
            name = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "path", "query")) or "body"
            errors.setdefault(name, []).append(str(item.get("msg", "invalid")))
        return JSONResponse(validation_failed(errors).body(), status_code=422)

    async def too_large(request: Request, exc: Exception) -> Response:
        return _too_large()

    async def crash(request: Request, exc: Exception) -> Response:
        if isinstance(exc, DroppedConnection):
            raise exc
        return _envelope(500, "server_error", f"Emulator error: {type(exc).__name__}.")

    app.add_exception_handler(EmulatorAPIError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_exception_handler(BodyTooLarge, too_large)
    app.add_exception_handler(Exception, crash)

    # ---------------------------------------------------------------- helpers
    def auth(request: Request, scope: str | None) -> AuthContext:
        ctx = emulator.authenticate(request.headers.get("authorization"), request.headers.get("x-api-key"))
        request.state.key_prefix = ctx.key.prefix
        allowed, headers = emulator.hit_rate_limit(ctx)
        request.state.rate_headers = headers
        if not allowed:
            raise EmulatorAPIError(429, "too_many_requests", "Too Many Attempts.", headers=headers)
        emulator.require_feature(ctx.user, REST_FEATURE)
        emulator.require_scope(ctx, scope)
        return ctx

    async def json_body(request: Request) -> dict[str, Any]:
        return parse_json_object(await request.body())

    def ok(data: Any, status: int = 200) -> JSONResponse:
        return JSONResponse({"ok": True, "data": data}, status_code=status)

    # ---------------------------------------------------------------- REST API
    @app.get(f"{API_PREFIX}/me")
    async def get_me(request: Request) -> Response:
        return ok(emulator.me(auth(request, None)))

    @app.get(f"{API_PREFIX}/instances")
    async def list_instances(request: Request) -> Response:
        return ok(emulator.list_instances(auth(request, "instances:read")))

    @app.get(f"{API_PREFIX}/instances/{{key}}")
    async def get_instance(request: Request, key: str) -> Response:
        return ok(emulator.get_instance(auth(request, "instances:read"), key))

    def send_route(send: Callable[[AuthContext, dict[str, Any], str], dict[str, Any]]) -> Callable[..., Any]:
        async def route(request: Request) -> Response:
            ctx = auth(request, "messages:send")
            return ok(send(ctx, await json_body(request), _origin(request)), 202)

        return route

    for path, name, send in (
        ("messages", "send_message", emulator.send_unified),
        ("messages/text", "send_text", emulator.send_text),
        ("messages/media", "send_media", emulator.send_media),
        ("messages/bulk", "send_bulk", emulator.send_bulk),
    ):
        app.post(f"{API_PREFIX}/{path}", name=name)(send_route(send))

    @app.post(f"{API_PREFIX}/uploads")
    async def upload(request: Request) -> Response:
        ctx = auth(request, "messages:send")
        filename: str | None = None
        content_type: str | None = None
        data: bytes | None = None
        try:
            form = await request.form(max_files=10, max_fields=100)
        except BodyTooLarge:
            raise
        except Exception:
            form = None
        if form is not None:
            item = form.get("file")
            if item is not None and not isinstance(item, str):
                filename = item.filename
                content_type = item.content_type
                data = await item.read()
        return ok(emulator.upload(ctx, filename, content_type, data, _origin(request)), 201)

    @app.get(f"{API_PREFIX}/messages/{{message_id}}")
    async def get_message(request: Request, message_id: str) -> Response:
        return ok(emulator.get_message(auth(request, "messages:read"), message_id))

    @app.get(f"{API_PREFIX}/broadcasts")
    async def list_broadcasts(request: Request) -> Response:
        return ok(emulator.list_broadcasts(auth(request, "messages:read"), _origin(request)))

    @app.get(f"{API_PREFIX}/broadcasts/{{broadcast_id}}")
    async def get_broadcast(request: Request, broadcast_id: str) -> Response:
        return ok(emulator.get_broadcast(auth(request, "messages:read"), broadcast_id, _origin(request)))

    @app.get("/storage/uploads/{month}/{name}")
    async def get_upload_file(month: str, name: str) -> Response:
        stored = emulator.get_upload(f"uploads/{month}/{name}")
        if stored is None:
            raise EmulatorAPIError(404, "not_found", f"File `uploads/{month}/{name}` tidak ditemukan.")
        return Response(stored.data, media_type=stored.mime_type)

    # ---------------------------------------------------------------- control API
    @app.post(f"{CONTROL_PREFIX}/reset")
    async def control_reset() -> Response:
        emulator.reset()
        return ok(emulator.summary())

    @app.post(f"{CONTROL_PREFIX}/seed")
    async def control_seed(request: Request) -> Response:
        return ok(emulator.seed(await json_body(request)))

    @app.get(f"{CONTROL_PREFIX}/seed")
    async def control_get_seed() -> Response:
        seed = emulator.current_seed()
        for key in seed["api_keys"]:
            key["key"] = key["key"][:12]
        return ok(seed)

    @app.post(f"{CONTROL_PREFIX}/faults")
    async def control_add_fault(request: Request) -> Response:
        return ok(emulator.add_fault(await json_body(request)), 201)

    @app.get(f"{CONTROL_PREFIX}/faults")
    async def control_list_faults() -> Response:
        return ok(emulator.list_faults())

    @app.delete(f"{CONTROL_PREFIX}/faults")
    async def control_clear_faults() -> Response:
        emulator.clear_faults()
        return ok([])

    @app.post(f"{CONTROL_PREFIX}/webhooks")
    async def control_webhooks(request: Request) -> Response:
        return ok(emulator.register_webhook(await json_body(request)), 201)

    @app.post(f"{CONTROL_PREFIX}/inbound")
    async def control_inbound(request: Request) -> Response:
        return ok(emulator.inbound(await json_body(request)), 201)

    @app.get(f"{CONTROL_PREFIX}/requests")
    async def control_requests() -> Response:
        return ok(emulator.requests())

    @app.get(f"{CONTROL_PREFIX}/ledger")
    async def control_ledger() -> Response:
        return ok(emulator.ledger())

    @app.get(f"{CONTROL_PREFIX}/webhook-deliveries")
    async def control_deliveries() -> Response:
        return ok(emulator.webhook_deliveries())

    return app
