"""``waslah-emulator``: run the Waslah API emulator as a local server."""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any

SEED_FILE_HELP = """\
--seed-file: a JSON object merged over the default seed (a Pro user, key
wsl_demo_0123456789abcdef with every scope, instances "demo" (connected) and
"offline"). Every field is optional; users, api_keys and instances merge by id/key:

  {"time_scale": 0.05, "rate_window_seconds": 10,
   "users": [{"id": 1, "name": "Toko Maju", "plan": "pro"}],
   "api_keys": [{"id": 2, "key": "wsl_readonly_0000000000000000", "user_id": 1,
                 "scopes": ["messages:read"], "expires_at": "2030-01-01T00:00:00Z"}],
   "instances": [{"id": 3, "key": "gudang", "user_id": 1, "status": "disconnected"}],
   "unreachable": ["628999*"]}

Plans: free, basic, pro, enterprise. Instance status: connected, disconnected, ...
Every field and its range: the control API's docs (POST /_emulator/seed takes the same).
"""


def _fail(message: str) -> int:
    """One line on stderr, exit status 2: a usage problem, not a crash."""
    print(f"waslah-emulator: error: {message}", file=sys.stderr)
    return 2


def _read_seed(path: str) -> dict[str, Any] | str:
    """The seed file's object, or why it cannot be used."""
    try:
        with open(path, encoding="utf-8") as handle:
            seed = json.load(handle)
    except OSError as error:
        return f"cannot read the seed file {path!r}: {error.strerror or error}"
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        return f"the seed file {path!r} is not valid JSON: {error}"
    if not isinstance(seed, dict):
        return f"the seed file {path!r} must hold a JSON object (see --help for an example)"
    return seed


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="waslah-emulator",
        description="Local emulator of the Waslah REST API.",
        epilog=SEED_FILE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (default 8787; 0 picks a free port)")
    parser.add_argument("--seed-file", help="JSON seed file merged over the default seed")
    # No defaults here: a seed file's settings apply unless a flag overrides them.
    parser.add_argument("--time-scale", type=float, help="real seconds per emulated second (default 1)")
    parser.add_argument("--rate-window", type=float, help="rate-limit window in seconds (default 60)")
    parser.add_argument("--random-seed", type=int, help="seed of the emulator's RNG (default 0)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    parser.add_argument(
        "--public-url",
        help="the origin clients use, in check_status_url and upload URLs (default http://HOST:PORT)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the emulator, print its base URL and API key, run until SIGINT/SIGTERM."""
    from airflow_provider_waslah.emulator.server import EmulatorServer

    args = build_parser().parse_args(argv)
    seed: dict[str, Any] = {}
    if args.seed_file:
        read = _read_seed(args.seed_file)
        if isinstance(read, str):
            return _fail(read)
        seed = read
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        server = EmulatorServer(
            args.host,
            args.port,
            seed=seed,
            time_scale=args.time_scale,
            rate_window_seconds=args.rate_window,
            random_seed=args.random_seed,
            log_level=args.log_level,
            public_url=args.public_url,
        )
    except ValueError as error:
        return _fail(str(error))
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server.start()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return _fail(f"port {args.port} on {args.host} is already in use; choose another with --port (0: any free)")
        return _fail(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}")
    keys = server.backend.api_keys
    api_key = server.api_key if server.api_key in keys else next(iter(keys), "")
    print(f"Waslah emulator listening on {server.base_url}")
    print(f"API key: {api_key}")
    print(f"Instance: {server.instance_key}")
    print(f"Control API: {server.origin}/_emulator/")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        print("Waslah emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
