"""Fixtures shared by the client and hook tests: fresh rate limiters and clients on the emulator."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_waslah.client import ratelimit
from airflow_provider_waslah.client.client import AsyncWaslahClient, WaslahClient


@pytest.fixture(autouse=True)
def fresh_limiters() -> Iterator[None]:
    """Each test starts with no shared limiter, so budgets and windows never leak between tests."""
    saved = dict(ratelimit._registry)
    ratelimit._registry.clear()
    yield
    ratelimit._registry.clear()
    ratelimit._registry.update(saved)


def fast(client: Any, **settings: Any) -> Any:
    """Shrink the client's backoff so retry tests run in milliseconds (the rules stay the same)."""
    defaults = {"backoff_base": 0.01, "backoff_max": 0.05}
    client.settings = dataclasses.replace(client.settings, **{**defaults, **settings})
    return client


@pytest.fixture
def client(waslah_emulator: Any) -> Iterator[WaslahClient]:
    """A sync client on the emulator over real HTTP (127.0.0.1), with fast backoff."""
    with WaslahClient(api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url) as made:
        yield fast(made)


@pytest.fixture
async def aclient(waslah_emulator: Any) -> Any:
    """An async client on the emulator over real HTTP, with fast backoff."""
    async with AsyncWaslahClient(api_key=waslah_emulator.api_key, base_url=waslah_emulator.base_url) as made:
        yield fast(made)


def api_requests(emulator: Any, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
    """The emulator's log of API requests (control calls excluded), filtered by method and path."""
    return emulator.api_requests(method, path)  # type: ignore[no-any-return]


class ManglingProxy:
    """A reverse proxy on 127.0.0.1 in front of the emulator that can replace answers' bodies.

    It stands for a broken proxy or load balancer between the client and Waslah: the request
    reaches the emulator (which acts on it), then :meth:`mangle` swaps the answer's body (and
    optionally its status) for the next ``count`` requests matching ``route``.
    """

    def __init__(self, upstream: str) -> None:
        import http.server
        import threading

        import httpx

        self.upstream = upstream.rstrip("/")
        self._rules: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=10.0)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = proxy._http.request(self.command, proxy.upstream + self.path, headers=headers, content=body)
                status, content, content_type = answer.status_code, answer.content, answer.headers.get("content-type")
                rule = proxy._take(f"{self.command} {self.path.split('?')[0]}")
                if rule is not None:
                    status = rule["status"] or status
                    content, content_type = rule["body"], rule["content_type"]
                self.send_response(status)
                for name, value in answer.headers.items():
                    if name.lower().startswith("x-ratelimit") or name.lower() == "retry-after":
                        self.send_header(name, value)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _forward

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        """The API base URL through the proxy."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/v1"

    def mangle(
        self, route: str, body: bytes, *, status: int | None = None, content_type: str = "text/html", count: int = 1
    ) -> None:
        """Answer the next ``count`` requests to ``route`` (``"POST /api/v1/messages/text"``) with ``body``."""
        with self._lock:
            self._rules.append(
                {"route": route, "body": body, "status": status, "content_type": content_type, "count": count}
            )

    def _take(self, route: str) -> dict[str, Any] | None:
        with self._lock:
            for rule in self._rules:
                if rule["route"] == route and rule["count"] > 0:
                    rule["count"] -= 1
                    return rule
        return None

    def close(self) -> None:
        """Stop the server and its upstream client."""
        self._server.shutdown()
        self._server.server_close()
        self._http.close()


@pytest.fixture
def mangling_proxy(waslah_emulator: Any) -> Iterator[ManglingProxy]:
    """A :class:`ManglingProxy` in front of the emulator (real HTTP on both sides)."""
    proxy = ManglingProxy(waslah_emulator.origin)
    yield proxy
    proxy.close()
