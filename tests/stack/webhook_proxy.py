"""A recording HTTP proxy between the emulator's webhook deliveries and the api-server, able to lose answers.

``lose_answer_to(n)`` makes the proxy forward the n-th ``message.received`` delivery, let the
receiver answer it, and then drop the connection without passing the answer on: Waslah (the
emulator) sees a failed attempt and retries the same event id later, exactly as after a network
failure on the way back. Every request and the receiver's status are recorded, so tests can replay
a real, correctly signed delivery later.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass
class Recorded:
    """One delivery that went through the proxy."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None
    answer_lost: bool

    @property
    def event(self) -> str | None:
        """The body's ``event`` name."""
        with contextlib.suppress(ValueError):
            return str(json.loads(self.body).get("event"))
        return None

    @property
    def event_id(self) -> str | None:
        """The ``X-Waslah-Event-Id`` header."""
        return next((v for k, v in self.headers.items() if k.lower() == "x-waslah-event-id"), None)


class WebhookProxy:
    """Forwards every POST to ``upstream`` (the api-server origin) on 127.0.0.1, on a free port."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.recorded: list[Recorded] = []
        self._lose: set[int] = set()
        self._received = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                lose = proxy._should_lose(body)
                try:
                    response = proxy._client.post(proxy.upstream + self.path, content=body, headers=headers)
                except httpx.HTTPError:
                    proxy._record(self.path, headers, body, None, False)
                    self.send_error(502)
                    return
                proxy._record(self.path, headers, body, response.status_code, lose)
                if lose:
                    self.close_connection = True  # the receiver answered; the sender never hears it
                    return
                self.send_response(response.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-proxy", daemon=True)

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def lose_answer_to(self, *nth_received: int) -> None:
        """Lose the answer to the n-th (1-based) ``message.received`` delivery that comes through."""
        with self._lock:
            self._lose.update(nth_received)

    def _should_lose(self, body: bytes) -> bool:
        with contextlib.suppress(ValueError), self._lock:
            if json.loads(body).get("event") == "message.received":
                self._received += 1
                if self._received in self._lose:
                    self._lose.discard(self._received)
                    return True
        return False

    def _record(self, path: str, headers: dict[str, str], body: bytes, status: int | None, lost: bool) -> None:
        with self._lock:
            self.recorded.append(Recorded(path, headers, body, status, lost))

    def start(self) -> WebhookProxy:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the upstream client."""
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def __enter__(self) -> WebhookProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
