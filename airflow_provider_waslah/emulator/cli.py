"""``waslah-emulator``: run the Waslah API emulator as a local server."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    parser = argparse.ArgumentParser(prog="waslah-emulator", description="Local emulator of the Waslah REST API.")
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
        with open(args.seed_file, encoding="utf-8") as handle:
            seed = json.load(handle)
        if not isinstance(seed, dict):
            print("error: the seed file must hold a JSON object", file=sys.stderr)
            return 2
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
        print(f"error: {error}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
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
