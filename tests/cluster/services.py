"""PostgreSQL for the cluster tests: a free port, private throwaway data (Redis: ``tests/redis_server.py``).

``scripts/cluster_services.sh`` installs it from Debian packages. Debian keeps PostgreSQL's
programs in ``/usr/lib/postgresql/<version>/bin``, off ``PATH``: :func:`postgres_program` looks
there too. PostgreSQL refuses to run as root, so as root its programs run as the ``postgres``
user (``runuser``) on a data directory under the system temp dir, which that user can reach.
The server runs in its own process group and is killed with it; the data goes with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from airflow_provider_waslah.emulator import free_port, wait_until

INSTALL_HINT = "run scripts/cluster_services.sh (as root) to install PostgreSQL"


def postgres_program(name: str) -> str:
    """The path of a PostgreSQL server program (``initdb``, ``postgres``): on ``PATH``, else Debian's newest."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if not versions:
        raise RuntimeError(f"PostgreSQL's {name} was not found on PATH nor in /usr/lib/postgresql: {INSTALL_HINT}")
    return str(versions[-1])


class PostgresServer:
    """A PostgreSQL server on 127.0.0.1 with a database ``airflow`` owned by user ``airflow`` (trust auth).

    Tuned for a throwaway test database: no fsync, no synchronous commit.
    """

    user = "airflow"
    database = "airflow"

    def __init__(self) -> None:
        # Not under pytest's tmp_path: that is private to root, and the server runs as ``postgres``.
        self.root = Path(tempfile.mkdtemp(prefix="waslah-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``airflow`` database."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @staticmethod
    def _as_owner(command: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def start(self) -> PostgresServer:
        """Create the cluster, start the server, create the database."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        initdb = [postgres_program("initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8"]
        init = subprocess.run(
            self._as_owner([*initdb, "--no-sync", "--no-instructions"]),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": "300",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        command = [postgres_program("postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self._as_owner(command), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(self._ready, 60, 0.2, "PostgreSQL accepting connections")
        self._execute("postgres", f"CREATE DATABASE {self.database}")
        return self

    def _execute(self, database: str, sql: str) -> None:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=database)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited with {self.process.returncode}:\n{self.log_text()}")
        try:
            self._execute("postgres", "SELECT 1")
        except Exception:
            return False
        return True

    def log_text(self) -> str:
        """The server's log."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """Stop at once (SIGQUIT: the data is thrown away) and remove the data directory."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
