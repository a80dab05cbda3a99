"""A client for the emulator's control API (``/_emulator/``), usable from tests and scripts."""

from __future__ import annotations

import fnmatch
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from airflow_provider_waslah.emulator.defaults import ALL_SCOPES, DEFAULT_API_KEY, DEFAULT_INSTANCE_KEY

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> T:
    """Call ``predicate`` until it returns something truthy; return it, or raise ``TimeoutError``.

    :param what: named in the error, e.g. ``"the broadcast completed"``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout:g} s")
        time.sleep(interval)


class EmulatorHandle:
    """Talks to a running emulator's control API over HTTP.

    :param origin: the emulator's origin, e.g. ``http://127.0.0.1:8787``.
    :param api_key: the API key tests should use (the default seed's demo key).
    :param instance_key: the connected instance of the default seed.
    """

    def __init__(
        self,
        origin: str,
        api_key: str = DEFAULT_API_KEY,
        instance_key: str = DEFAULT_INSTANCE_KEY,
        timeout: float = 10.0,
    ) -> None:
        self.origin = origin.rstrip("/")
        self.api_key = api_key
        self.instance_key = instance_key
        self.timeout = timeout

    @property
    def base_url(self) -> str:
        """The API base URL (``origin + "/api/v1"``)."""
        return f"{self.origin}/api/v1"

    @property
    def headers(self) -> dict[str, str]:
        """``Authorization`` headers for the handle's API key."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        # Plain HTTP needs no certificates: not loading them makes each call ~30x faster.
        verify = not self.origin.startswith("http://")
        url = f"{self.origin}/_emulator/{path}"
        response = httpx.request(method, url, json=body, timeout=self.timeout, verify=verify)
        payload = response.json()
        if response.status_code >= 400:
            raise RuntimeError(f"emulator control API {method} {path} failed: {response.status_code} {payload}")
        return payload.get("data")

    def reset(self) -> dict[str, Any]:
        """Back to the seed the emulator started with."""
        result: dict[str, Any] = self._call("POST", "reset")
        return result

    def seed(self, **config: Any) -> dict[str, Any]:
        """Merge seed data (``users``, ``api_keys``, ``instances``, ``time_scale``, ...) into the state."""
        result: dict[str, Any] = self._call("POST", "seed", config)
        return result

    def current_seed(self) -> dict[str, Any]:
        """The live seed (API keys by prefix)."""
        result: dict[str, Any] = self._call("GET", "seed")
        return result

    def add_fault(self, **fault: Any) -> dict[str, Any]:
        """Inject a fault: ``route``, ``status``, ``rate``, ``count``, ``latency``, ``answer_late``,
        ``drop_connection``, ``lose_response``, ``garbage`` (``body``), ``retry_after``, ``error``,
        ``message`` (``emulator.control`` explains each)."""
        result: dict[str, Any] = self._call("POST", "faults", fault)
        return result

    def faults(self) -> list[dict[str, Any]]:
        """The installed faults (``count``: firings left; ``hits``: firings so far)."""
        result: list[dict[str, Any]] = self._call("GET", "faults")
        return result

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._call("DELETE", "faults")

    def register_webhook(self, url: str, secret: str, user_id: int | None = None) -> dict[str, Any]:
        """Where the user's webhook events go."""
        body: dict[str, Any] = {"url": url, "secret": secret}
        if user_id is not None:
            body["user_id"] = user_id
        result: dict[str, Any] = self._call("POST", "webhooks", body)
        return result

    def inbound(
        self,
        from_: str | None = None,
        body: str = "Halo",
        *,
        instance_key: str | None = None,
        lid: bool = False,
        remote_jid: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Simulate a customer writing in; returns the recorded inbound message."""
        payload: dict[str, Any] = {"instance_key": instance_key or self.instance_key, "body": body, "lid": lid}
        if from_ is not None:
            payload["from"] = from_
        if remote_jid is not None:
            payload["remote_jid"] = remote_jid
        payload.update(extra)
        result: dict[str, Any] = self._call("POST", "inbound", payload)
        return result

    def webhooks(self) -> list[dict[str, Any]]:
        """The registered webhook endpoints."""
        result: list[dict[str, Any]] = self._call("GET", "webhooks")
        return result

    def requests(self) -> list[dict[str, Any]]:
        """The request log: every API request, oldest first (API key prefixes only; control calls are not logged)."""
        result: list[dict[str, Any]] = self._call("GET", "requests")
        return result

    def api_requests(
        self, method: str | None = None, path: str | None = None, *, key: str | None = None
    ) -> list[dict[str, Any]]:
        """The request log, filtered.

        :param method: only this method (``"POST"``).
        :param path: only paths matching this ``fnmatch`` pattern (``"/api/v1/messages/*"``; an exact
            path matches itself).
        :param key: only requests made with this API key (or its 12-character prefix), e.g.
            ``handle.api_key``. Requests a fault answered before authentication have no key.
        """
        prefix = key[:12] if key else None
        return [
            entry
            for entry in self.requests()
            if (method is None or entry["method"] == method.upper())
            and (path is None or fnmatch.fnmatchcase(entry["path"], path))
            and (prefix is None or entry.get("api_key_prefix") == prefix)
        ]

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        """Every outbound message per recipient."""
        result: dict[str, list[dict[str, Any]]] = self._call("GET", "ledger")
        return result

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """The webhook delivery log."""
        result: list[dict[str, Any]] = self._call("GET", "webhook-deliveries")
        return result

    def airflow_connection(self, **extra: Any) -> str:
        """A JSON connection for ``AIRFLOW_CONN_WASLAH_DEFAULT`` pointing at this emulator."""
        return json.dumps({"conn_type": "waslah", "host": self.base_url, "password": self.api_key, "extra": extra})

    def wait_until(self, predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
        """Call ``predicate`` until it returns something truthy; return it, or raise ``TimeoutError``."""
        return wait_until(predicate, timeout, interval)

    def new_key(self, **seed: Any) -> EmulatorHandle:
        """Seed a new API key (all scopes) for the default user; return a handle that uses it.

        The client's rate limiter is shared per (base URL, key) across a process, so a key per
        test keeps one test's budget from leaking into the next. ``seed`` is merged too.
        """
        key = f"wsl_{uuid.uuid4().hex}"  # the request log shows the first 12 characters: unique
        key_id = 1000 + uuid.uuid4().int % 10**6
        self.seed(api_keys=[{"id": key_id, "key": key, "user_id": 1, "scopes": list(ALL_SCOPES)}], **seed)
        return EmulatorHandle(self.origin, api_key=key, instance_key=self.instance_key, timeout=self.timeout)

    def __repr__(self) -> str:
        return f"EmulatorHandle(origin={self.origin!r})"
