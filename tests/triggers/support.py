"""Helpers shared by the sensor and trigger tests: a fresh API key per test, sends, request counts."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_waslah.client.client import WaslahClient
from airflow_provider_waslah.emulator import EmulatorHandle
from airflow_provider_waslah.emulator.models import ALL_SCOPES

UNREACHABLE = "6289991234567"
REACHABLE = "081234567890"


def fresh_key(emulator: EmulatorHandle, **seed: Any) -> EmulatorHandle:
    """Seed a new API key for the demo user and return a handle that uses it.

    The client's rate limiter is shared per (base URL, key) across the whole test process; a key
    per test keeps one test's budget from leaking into the next.
    """
    key = f"wsl_{uuid.uuid4().hex}"  # the log shows the first 12 characters: unique per test
    emulator.seed(
        api_keys=[{"id": 1000 + uuid.uuid4().int % 10**6, "key": key, "user_id": 1, "scopes": list(ALL_SCOPES)}],
        **seed,
    )
    return EmulatorHandle(emulator.origin, api_key=key, instance_key=emulator.instance_key)


def client(emulator: EmulatorHandle) -> WaslahClient:
    """A sync client on the emulator (for arranging state: sends and broadcasts)."""
    return WaslahClient(api_key=emulator.api_key, base_url=emulator.base_url)


def send_text(emulator: EmulatorHandle, to: str = REACHABLE, text: str = "Halo") -> int:
    """Send a text through the emulator; return the message id."""
    with client(emulator) as waslah:
        return waslah.send_text(instance_key=emulator.instance_key, to=to, text=text).id


def send_bulk(emulator: EmulatorHandle, recipients: list[str], **kwargs: Any) -> int:
    """Start a broadcast; return its id."""
    kwargs.setdefault("delay_min_sec", 0)
    kwargs.setdefault("delay_max_sec", 1)
    with client(emulator) as waslah:
        return waslah.send_bulk(instance_key=emulator.instance_key, recipients=recipients, text="Promo", **kwargs).id


def api_requests(
    emulator: EmulatorHandle, method: str = "GET", contains: str = "", any_key: bool = False
) -> list[dict[str, Any]]:
    """Request-log entries of the handle's key (or of any key: faults answer before auth) matching a path."""
    prefix = emulator.api_key[:12]
    return [
        entry
        for entry in emulator.requests()
        if entry["method"] == method
        and contains in entry["path"]
        and (any_key or entry.get("api_key_prefix") == prefix)
    ]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def emulator_process(*args: str, timeout: float = 30.0) -> Iterator[EmulatorHandle]:
    """The emulator CLI in its own process (its own interpreter and GIL), as a handle.

    :param args: extra CLI flags, e.g. ``"--time-scale", "1"``.
    :param timeout: seconds to wait for it to answer.
    """
    port = free_port()
    command = [str(Path(sys.executable).parent / "waslah-emulator"), "--port", str(port), *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    handle = EmulatorHandle(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                handle.requests()
                break
            except (httpx.HTTPError, RuntimeError):
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                    raise RuntimeError(f"waslah-emulator did not start: {output}") from None
                time.sleep(0.1)
        yield handle
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
