"""The ASGI app: routes that parse requests (``parsing.py``), call the backend, and build replies (``responses.py``).

``create_app()`` returns a FastAPI app serving the Waslah REST API under ``/api/v1``, uploaded
files under ``/storage/uploads/...`` and the control API under ``/_emulator/`` (``control.py``).
Faults, the request log and the body-size limit are applied by the middleware (``middleware.py``).

The emulator's origin (in ``check_status_url`` and upload URLs, and the one origin whose media
URLs are trusted) is its ``public_url`` setting, else the address the connection arrived on
(the listening socket; under ``httpx.ASGITransport`` the URL's host). It never comes from the
``Host`` header, which any client can forge.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from airflow_provider_waslah.emulator.backend import WaslahBackend
from airflow_provider_waslah.emulator.background import BackgroundWorkers
from airflow_provider_waslah.emulator.control import CONTROL_PREFIX, add_control_routes, parse_seed_patch
from airflow_provider_waslah.emulator.errors import (
    EmulatorAPIError,
    broadcast_not_found,
    message_not_found,
    validation_failed,
)
from airflow_provider_waslah.emulator.middleware import (
    MAX_BODY_BYTES,
    BodyTooLarge,
    DroppedConnection,
    EmulatorMiddleware,
    envelope,
    too_large_response,
)
from airflow_provider_waslah.emulator.parsing import SendParser, parse_id, parse_object, parse_upload
from airflow_provider_waslah.emulator.records import Caller, SendRequest
from airflow_provider_waslah.emulator.responses import (
    broadcast_json,
    instance_json,
    me_json,
    message_json,
    receipt_json,
    upload_json,
)
from airflow_provider_waslah.emulator.settings import DEFAULT_SEED, Seed, SeedPatch, apply_patch
from airflow_provider_waslah.plans import REST_FEATURE

__all__ = ["API_PREFIX", "CONTROL_PREFIX", "MAX_BODY_BYTES", "BodyTooLarge", "DroppedConnection", "create_app"]

API_PREFIX = "/api/v1"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(request: Request) -> str:
    """The emulator's origin for this request: its ``public_url``, else the address the connection came in on."""
    configured: str | None = request.app.state.public_url
    if configured:
        return configured
    scheme = request.scope.get("scheme", "http")
    server = request.scope.get("server")
    if not server or not server[0]:
        return f"{scheme}://localhost"
    host, port = str(server[0]), server[1]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{scheme}://{host}:{port}"


def create_app(
    seed: dict[str, Any] | None = None,
    *,
    time_scale: float | None = None,
    rate_window_seconds: float | None = None,
    random_seed: int | None = None,
    public_url: str | None = None,
    backend: WaslahBackend | None = None,
) -> FastAPI:
    """Build the emulator's ASGI app.

    :param seed: seed data (as ``POST /_emulator/seed`` takes it) over the default seed: what
        ``POST /_emulator/reset`` restores. Bad seed data raises ``ValueError`` naming the fields.
    :param time_scale: real seconds per emulated second (overrides the seed's).
    :param rate_window_seconds: the rate-limit window length (overrides the seed's).
    :param random_seed: seed of the emulator's random choices (overrides the seed's).
    :param public_url: the emulator's origin as clients reach it (``http://127.0.0.1:8787``); by
        default the address each connection arrives on.
    :param backend: use this backend instead of building one from ``seed``.

    ``app.state.backend`` is the :class:`WaslahBackend`; ``app.state.workers`` the background
    threads (started on the first request or at lifespan start-up, stopped at shutdown);
    ``app.state.public_url`` the configured origin (``EmulatorServer`` sets it once bound).
    """
    if backend is None:
        backend = WaslahBackend(_start_seed(seed, time_scale, rate_window_seconds, random_seed))
    workers = BackgroundWorkers(backend)

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
        redirect_slashes=False,  # Waslah answers an unknown path (``/messages/``) 404, not a redirect
    )
    app.state.backend = backend
    app.state.workers = workers
    app.state.public_url = public_url.rstrip("/") if public_url else None
    app.add_middleware(EmulatorMiddleware, backend=backend, workers=workers)
    _add_error_handlers(app)
    _add_api_routes(app, backend)
    add_control_routes(app, backend)
    return app


def _start_seed(
    seed: dict[str, Any] | None, time_scale: float | None, rate_window_seconds: float | None, random_seed: int | None
) -> Seed:
    """The default seed with ``seed`` and the overrides applied (``ValueError`` naming bad fields)."""
    overrides: dict[str, Any] = dict(seed or {})
    for key, value in (
        ("time_scale", time_scale),
        ("rate_window_seconds", rate_window_seconds),
        ("random_seed", random_seed),
    ):
        if value is not None:
            overrides[key] = value
    try:
        patch: SeedPatch = parse_seed_patch(overrides)
    except EmulatorAPIError as exc:
        raise ValueError(f"invalid emulator seed: {exc.extra.get('errors', exc.message)}") from None
    return apply_patch(DEFAULT_SEED, patch)


def _add_error_handlers(app: FastAPI) -> None:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EmulatorAPIError)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return envelope(404, "not_found", f"Route `{request.method} {request.url.path[:200]}` tidak ditemukan.")
        if exc.status_code == 405:
            return envelope(
                405,
                "method_not_allowed",
                f"Method {request.method} tidak didukung untuk `{request.url.path[:200]}`.",
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


def _add_api_routes(app: FastAPI, backend: WaslahBackend) -> None:
    def auth(request: Request, scope: str | None) -> Caller:
        authorization = request.headers.get("authorization")
        token = authorization[7:].strip() if authorization and authorization.lower().startswith("bearer ") else None
        if not token:
            token = (request.headers.get("x-api-key") or "").strip() or None
        caller = backend.authenticate(token)
        request.state.key_prefix = caller.key.prefix
        decision = backend.count_request(caller)
        headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
        if decision.retry_after is not None:
            now = backend.clock()
            headers["Retry-After"] = str(decision.retry_after)
            headers["X-RateLimit-Reset"] = str(math.ceil(now + decision.retry_after))
        elif backend.settings.rate_limit_reset_header_always:
            headers["X-RateLimit-Reset"] = str(math.ceil(decision.window_end))
        request.state.rate_headers = headers
        if not decision.allowed:
            raise EmulatorAPIError(429, "too_many_requests", "Too Many Attempts.", headers=headers)
        backend.require_feature(caller.user, REST_FEATURE)
        backend.require_scope(caller, scope)
        return caller

    def ok(data: Any, status: int = 200) -> JSONResponse:
        return JSONResponse({"ok": True, "data": data}, status_code=status)

    def parser(request: Request) -> SendParser:
        return SendParser(origin_of(request), backend.clock(), backend.upload)

    @app.get(f"{API_PREFIX}/me")
    async def get_me(request: Request) -> Response:
        return ok(me_json(auth(request, None)))

    @app.get(f"{API_PREFIX}/instances")
    async def list_instances(request: Request) -> Response:
        instances = backend.instances_of(auth(request, "instances:read"))
        now = backend.clock()
        return ok([instance_json(i, now) for i in instances])

    @app.get(f"{API_PREFIX}/instances/{{key}}")
    async def get_instance(request: Request, key: str) -> Response:
        return ok(instance_json(backend.instance(auth(request, "instances:read"), key), backend.clock()))

    def send_route(parse: Callable[[SendParser, dict[str, Any]], SendRequest]) -> Callable[..., Any]:
        async def route(request: Request) -> Response:
            caller = auth(request, "messages:send")
            body = parse_object(await request.body())
            message = backend.send(caller, parse(parser(request), body))
            return ok(receipt_json(message, origin_of(request)), 202)

        return route

    for path, name, parse in (
        ("messages", "send_message", SendParser.unified),
        ("messages/text", "send_text", SendParser.text),
        ("messages/media", "send_media", SendParser.media),
    ):
        app.post(f"{API_PREFIX}/{path}", name=name)(send_route(parse))

    @app.post(f"{API_PREFIX}/messages/bulk")
    async def send_bulk(request: Request) -> Response:
        caller = auth(request, "messages:send")
        body = parse_object(await request.body())
        progress = backend.send_bulk(caller, parser(request).bulk(body))
        return ok(broadcast_json(progress, origin_of(request)), 202)

    @app.post(f"{API_PREFIX}/uploads")
    async def upload(request: Request) -> Response:
        caller = auth(request, "messages:send")
        filename: str | None = None
        content_type: str | None = None
        data: bytes | None = None
        try:
            form = await request.form(max_files=10, max_fields=100)
        except (BodyTooLarge, ClientDisconnect):
            raise
        except Exception:  # a body that is not multipart: the file is missing
            form = None
        if form is not None:
            item = form.get("file")
            if item is not None and not isinstance(item, str):
                filename = item.filename
                content_type = item.content_type
                data = await item.read()
        stored = backend.store_upload(caller, *parse_upload(filename, content_type, data))
        return ok(upload_json(stored, origin_of(request)), 201)

    @app.get(f"{API_PREFIX}/messages/{{message_id}}")
    async def get_message(request: Request, message_id: str) -> Response:
        caller = auth(request, "messages:read")
        number = parse_id(message_id)
        if number is None:
            raise message_not_found(message_id)
        return ok(message_json(backend.message(caller, number), backend.clock()))

    @app.get(f"{API_PREFIX}/broadcasts")
    async def list_broadcasts(request: Request) -> Response:
        progress = backend.broadcasts_of(auth(request, "messages:read"))
        return ok([broadcast_json(p, origin_of(request)) for p in progress])

    @app.get(f"{API_PREFIX}/broadcasts/{{broadcast_id}}")
    async def get_broadcast(request: Request, broadcast_id: str) -> Response:
        caller = auth(request, "messages:read")
        number = parse_id(broadcast_id)
        if number is None:
            raise broadcast_not_found(broadcast_id)
        return ok(broadcast_json(backend.broadcast(caller, number), origin_of(request)))

    @app.get("/storage/uploads/{month}/{name}")
    async def get_upload_file(month: str, name: str) -> Response:
        stored = backend.upload(f"uploads/{month}/{name}")
        if stored is None:
            raise EmulatorAPIError(404, "not_found", f"File `uploads/{month[:40]}/{name[:80]}` tidak ditemukan.")
        return Response(stored.data, media_type=stored.mime_type)
