"""The emulator in its own process: for tests and benchmarks that must not share its GIL.

In-process (``EmulatorServer``), the emulator's request handling runs on the test's interpreter
and shows up in timings, event-loop gaps and rate-limit windows; a separate process behaves as
the real Waslah would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from airflow_provider_waslah.emulator.handle import EmulatorHandle


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def emulator_process(
    *cli_args: str, seed: dict[str, Any] | None = None, timeout: float = 30.0
) -> Iterator[EmulatorHandle]:
    """Run ``python -m airflow_provider_waslah.emulator`` on a free port; yield a handle; stop it after.

    :param cli_args: extra CLI flags, e.g. ``"--time-scale", "0.02"``.
    :param seed: merged into the emulator's state once it answers.
    :param timeout: seconds to wait for it to answer.
    """
    port = free_port()
    command = [sys.executable, "-m", "airflow_provider_waslah.emulator", "--port", str(port), *cli_args]
    # A file, not a pipe: a pipe nobody reads can fill up and stall the server.
    with tempfile.TemporaryFile(mode="w+") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            handle = EmulatorHandle(f"http://127.0.0.1:{port}")
            deadline = time.monotonic() + timeout
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
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
