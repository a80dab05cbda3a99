"""Shared helpers for the emulator tests: httpx clients (over HTTP and in-process) and a webhook receiver."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from anyio.from_thread import start_blocking_portal

from airflow_provider_waslah.emulator import DEFAULT_API_KEY, EmulatorHandle


@pytest.fixture
def api(waslah_emulator: EmulatorHandle) -> Iterator[httpx.Client]:
    """An httpx client on the emulator's base URL with the demo key."""
    with httpx.Client(base_url=waslah_emulator.base_url, headers=waslah_emulator.headers, timeout=10) as client:
        yield client


class InProcessClient:
    """A synchronous client of an emulator app in this process (``httpx.ASGITransport`` on an event-loop thread).

    App exceptions come back as 500 answers, as a server would send them. Closing it stops the
    app's background threads.
    """

    def __init__(self, app: Any, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self._portal_context = start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        auth = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers or auth)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, answered in full."""
        return self._portal.call(functools.partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._portal.call(self._client.aclose)
        self._portal_context.__exit__(None, None, None)
        self.app.state.workers.stop()

    def __enter__(self) -> InProcessClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 recording every POST; answers ``fail_first`` times with 500."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.received.append((dict(self.headers.items()), body))
                    failing = receiver.fail_first > 0
                    if failing:
                        receiver.fail_first -= 1
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, name: str | None = None) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return [(h, b) for h, b in self.received if name is None or h.get("X-Waslah-Event") == name]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver over real HTTP."""
    server = WebhookReceiver()
    yield server
    server.close()
