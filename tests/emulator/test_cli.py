"""``waslah-emulator`` as a user runs it: one-line errors for a busy port or a bad seed file, the documented seed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from airflow_provider_waslah.emulator.cli import SEED_FILE_HELP, _read_seed
from airflow_provider_waslah.emulator.server import EmulatorServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SEED = REPO / "docs" / "examples" / "emulator-seed.json"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow_provider_waslah.emulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_busy_port_is_one_line_not_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("--port", str(port))
    assert done.returncode == 2
    # Airflow 3.1 logs a few lines when the client's errors import it; the error itself is one line.
    errors = [line for line in done.stderr.splitlines() if "waslah-emulator" in line or "rror" in line]
    assert errors == [
        f"waslah-emulator: error: port {port} on 127.0.0.1 is already in use; choose another with --port (0: any free)"
    ]
    assert "Traceback" not in done.stderr


def test_a_bad_seed_file_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "seed.json"
    broken.write_text('{"users": [')
    for path, expected in [
        (broken, "is not valid JSON"),
        (tmp_path / "missing.json", "cannot read the seed file"),
    ]:
        done = run_cli("--port", "0", "--seed-file", str(path))
        errors = [line for line in done.stderr.splitlines() if "waslah-emulator" in line or "rror" in line]
        assert done.returncode == 2 and len(errors) == 1, done.stderr
        assert expected in errors[0] and "Traceback" not in done.stderr
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    assert "must hold a JSON object" in str(_read_seed(str(listed)))


def test_the_documented_seed_file_loads_as_documented() -> None:
    seed = _read_seed(str(EXAMPLE_SEED))
    assert isinstance(seed, dict)
    with EmulatorServer("127.0.0.1", 0, seed=seed) as server:
        handle = server.handle()
        live = handle.current_seed()
        assert {i["key"]: i["status"] for i in live["instances"]}["gudang"] == "disconnected"
        assert {u["id"]: u["plan"] for u in live["users"]} == {1: "pro", 2: "free"}
    # The --help example is valid JSON of the same shape.
    example = SEED_FILE_HELP.split("merge by id/key:", 1)[1].split("Plans:", 1)[0]
    assert set(json.loads(example)) <= set(seed) | {"unreachable"}
