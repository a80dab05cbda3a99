"""Helpers shared by the benchmarks: an emulator in its own process on 127.0.0.1, and its request log.

The emulator runs as a separate process (``python -m airflow_provider_waslah.emulator``), as the
real Waslah would, so its work does not compete with the client for this process's GIL.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from airflow_provider_waslah.emulator.handle import EmulatorHandle


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def emulator(**seed: Any) -> Iterator[EmulatorHandle]:
    """Start the emulator CLI on a free port, seed it, yield a handle; stop it afterwards."""
    port = _free_port()
    output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  (closed in finally; never a pipe, which could stall the server)
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_waslah.emulator", "--port", str(port), "--time-scale", "0.02"],
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        handle = EmulatorHandle(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                handle.requests()
                break
            except Exception as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    output.seek(0)
                    raise RuntimeError(f"the emulator did not start:\n{output.read()}") from error
                time.sleep(0.1)
        if seed:
            handle.seed(**seed)
        yield handle
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        output.close()


def api_log(handle: EmulatorHandle, key_prefix: str | None = None) -> list[dict[str, Any]]:
    """API requests in the emulator's log (control calls are not logged), optionally for one key."""
    return [r for r in handle.requests() if key_prefix is None or r.get("api_key_prefix") == key_prefix]
