"""Run the emulator with uvicorn in a background thread (for tests, demos and the CLI)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from airflow_provider_waslah.emulator.defaults import DEFAULT_API_KEY, DEFAULT_INSTANCE_KEY

if TYPE_CHECKING:
    from airflow_provider_waslah.emulator.backend import WaslahBackend
    from airflow_provider_waslah.emulator.handle import EmulatorHandle

#: Addresses that mean "every interface": not an origin a client can use.
_WILDCARDS = ("", "0.0.0.0", "::")


class EmulatorServer:
    """The emulator served over real HTTP by uvicorn in a daemon thread.

    :param host: interface to bind (``127.0.0.1``).
    :param port: port to bind; ``0`` (default) picks a free one.
    :param seed: seed data merged over the default seed.
    :param time_scale: real seconds per emulated second (``0.02`` = 50x faster).
    :param rate_window_seconds: rate-limit window length.
    :param random_seed: seed of the emulator's RNG.
    :param public_url: the origin clients use (behind a proxy, or when binding every interface);
        by default ``http://HOST:PORT`` once bound.

    Use as a context manager, or call :meth:`start` / :meth:`stop`. After start:
    ``origin`` (``http://127.0.0.1:PORT``), ``base_url`` (``origin + "/api/v1"``), ``api_key``,
    ``instance_key``, ``backend`` (the live :class:`~.backend.WaslahBackend`), ``app`` and
    :meth:`handle` (a control-API client).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: dict[str, Any] | None = None,
        time_scale: float | None = None,
        rate_window_seconds: float | None = None,
        random_seed: int | None = None,
        log_level: str = "warning",
        public_url: str | None = None,
    ) -> None:
        from airflow_provider_waslah.emulator.app import create_app

        self.host = host
        self.port = port
        self.app = create_app(
            seed,
            time_scale=time_scale,
            rate_window_seconds=rate_window_seconds,
            random_seed=random_seed,
            public_url=public_url,
        )
        self.backend: WaslahBackend = self.app.state.backend
        self._public_url = public_url.rstrip("/") if public_url else None
        self.api_key = DEFAULT_API_KEY
        self.instance_key = DEFAULT_INSTANCE_KEY
        self._log_level = log_level
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        """The origin clients use: ``public_url``, else ``http://HOST:PORT``."""
        if self._public_url:
            return self._public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base URL, ``http://HOST:PORT/api/v1``."""
        return f"{self.origin}/api/v1"

    def start(self, timeout: float = 15.0) -> EmulatorServer:
        """Bind, start uvicorn in a thread and wait until it accepts connections."""
        import uvicorn

        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        if self._public_url is None and self.host not in _WILDCARDS:
            # The origin is where the emulator listens, never what a request's Host header says.
            self.app.state.public_url = self.origin
        config = uvicorn.Config(
            self.app, log_level=self._log_level, lifespan="on", access_log=False, timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="waslah-emulator-uvicorn", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the Waslah emulator failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the Waslah emulator did not start within {timeout} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self._server = None
        self.app.state.workers.stop()

    def handle(self) -> EmulatorHandle:
        """A client of this server's control API."""
        from airflow_provider_waslah.emulator.handle import EmulatorHandle

        return EmulatorHandle(self.origin, api_key=self.api_key, instance_key=self.instance_key)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorServer(origin={self.origin!r})"
