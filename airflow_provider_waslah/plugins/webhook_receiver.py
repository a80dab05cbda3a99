"""The plugin that mounts the Waslah webhook receiver on the Airflow 3 api-server at ``/waslah``.

Airflow loads provider plugins in every component (workers too, for macros), so this module
imports neither FastAPI nor the receiver: the app is built on the first request the api-server
passes to it.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

#: Where the api-server mounts the receiver: the route is ``POST /waslah/webhook/<conn_id>``.
URL_PREFIX = "/waslah"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class LazyReceiverApp:
    """An ASGI app that builds :func:`airflow_provider_waslah.receiver.app.create_app` when first called."""

    def __init__(self) -> None:
        self._app: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
        self._lock = threading.Lock()

    def _build(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        with self._lock:
            if self._app is None:
                from airflow_provider_waslah.receiver.app import create_app

                self._app = create_app()
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Delegate to the receiver app (built on first use)."""
        app = self._app or self._build()
        await app(scope, receive, send)


class WaslahWebhookReceiverPlugin(AirflowPlugin):
    """Serves ``POST /waslah/webhook/<conn_id>`` on the api-server: Waslah webhooks become asset events."""

    name = "waslah_webhook_receiver"
    fastapi_apps = [  # noqa: RUF012 (AirflowPlugin declares it as a plain class attribute)
        {"app": LazyReceiverApp(), "url_prefix": URL_PREFIX, "name": "Waslah webhook receiver"},
    ]
