"""Thin ASGI routes over :class:`~airflow_provider_waslah.emulator.state.EmulatorState`.

``create_app()`` returns a FastAPI app serving the Waslah REST API under ``/api/v1``, uploaded
files under ``/storage/uploads/...`` and the control API under ``/_emulator/``. Faults, the
request log and the body-size limit are applied by the middleware (``middleware.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_waslah.emulator.background import BackgroundWorkers
from airflow_provider_waslah.emulator.body import parse_json_object
from airflow_provider_waslah.emulator.entities import AuthContext
from airflow_provider_waslah.emulator.errors import EmulatorAPIError, validation_failed
from airflow_provider_waslah.emulator.middleware import (
    CONTROL_PREFIX,
    MAX_BODY_BYTES,
    BodyTooLarge,
    DroppedConnection,
    EmulatorMiddleware,
    envelope,
    too_large_response,
)
from airflow_provider_waslah.emulator.plans import REST_FEATURE
from airflow_provider_waslah.emulator.state import EmulatorState

__all__ = ["API_PREFIX", "CONTROL_PREFIX", "MAX_BODY_BYTES", "BodyTooLarge", "DroppedConnection", "create_app"]

API_PREFIX = "/api/v1"


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
            return envelope(404, "not_found", f"Route `{request.method} {request.url.path}` tidak ditemukan.")
        if exc.status_code == 405:
            return envelope(
                405,
                "method_not_allowed",
                f"Method {request.method} tidak didukung untuk `{request.url.path}`.",
                headers=dict(exc.headers or {}),
            )
        return envelope(exc.status_code, "http_error", str(exc.detail))

    async def request_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors: dict[str, list[str]] = {}
        for item in exc.errors():
            name = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "path", "query")) or "body"
            errors.setdefault(name, []).append(str(item.get("msg", "invalid")))
        return JSONResponse(validation_failed(errors).body(), status_code=422)

    async def too_large(request: Request, exc: Exception) -> Response:
        return too_large_response()

    async def crash(request: Request, exc: Exception) -> Response:
        if isinstance(exc, DroppedConnection):
            raise exc
        return envelope(500, "server_error", f"Emulator error: {type(exc).__name__}.")

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
