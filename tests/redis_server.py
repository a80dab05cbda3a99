"""A real ``redis-server`` for the shared-budget tests and benchmarks: a free port, a temp dir, no persistence.

``scripts/test.sh`` installs Debian's ``redis-server`` when it is missing (as root); a machine
without it fails these tests with a message that says so, rather than skipping them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

from airflow_provider_waslah.emulator.process import free_port

#: The password every test server requires, to prove it never shows in logs, reprs or errors.
PASSWORD = "s3cret-REDIS-pa55word"


@dataclass(frozen=True)
class RedisServer:
    """A running server: ``url`` carries the password (``redis://:PASSWORD@127.0.0.1:PORT/0``)."""

    port: int
    password: str
    pid: int

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def stored_keys(self) -> list[str]:
        """Every key in the server (read with redis-py directly)."""
        import redis

        with redis.Redis.from_url(self.url) as client:
            return sorted(key.decode() for key in client.keys("*"))


@contextlib.contextmanager
def redis_server(password: str = PASSWORD, port: int | None = None) -> Iterator[RedisServer]:
    """Start ``redis-server`` on ``port`` (a free one by default) in a temp dir; stop it after."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt-get install -y redis-server (scripts/test.sh does it)")
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="waslah-redis-") as directory:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", directory, "--requirepass", password]
        with open(f"{directory}/redis.log", "w+") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 15
                while True:
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                            break
                    except OSError as error:
                        if process.poll() is not None or time.monotonic() > deadline:
                            output.seek(0)
                            raise RuntimeError(f"redis-server did not start:\n{output.read()}") from error
                        time.sleep(0.05)
                yield RedisServer(port=port, password=password, pid=process.pid)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGCONT)  # a test may have stopped it
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
