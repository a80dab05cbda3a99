"""What the provider's operators add to parsing a DAG file, vs the same DAG with ``EmptyOperator``.

Two DAG files of 10 tasks each: five ``WaslahSendTextOperator`` and five
``WaslahBroadcastOperator`` tasks, or ten ``EmptyOperator`` tasks. Figures:

- **first parse**: a fresh interpreter that has imported ``airflow.sdk`` (as the DAG processor
  has) runs the file once; fresh processes alternate between the two files. The difference is
  what importing the provider adds to the first parse in a process.
- **repeated parses**: one process parses each file again and again (modules cached), as the
  DAG processor re-parses a file: what the operators cost per parse once imported.
- ``python -X importtime``: the cumulative import time of ``airflow_provider_waslah.operators.waslah``
  after ``airflow.sdk``.

The provider's modules are compiled to bytecode first, as ``pip install`` does for a wheel: with
``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__`` (an editable install in a container), each
fresh process would compile the sources again, about 30 ms more, a cost no installed provider has.

    python -m benchmarks.bench_parse [--processes 8] [--parses 30]
"""

from __future__ import annotations

import argparse
import compileall
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_triggers import _machine

WASLAH_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow_provider_waslah.operators.waslah import WaslahBroadcastOperator, WaslahSendTextOperator

with DAG("parse_waslah", start_date=datetime(2026, 1, 1), schedule=None) as dag:
    for i in range(5):
        WaslahSendTextOperator(task_id=f"text_{i}", instance_key="demo", to="081234567890", text="Halo")
        WaslahBroadcastOperator(
            task_id=f"broadcast_{i}", instance_key="demo", recipients=["081234567890"], text="Promo"
        )
"""
EMPTY_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("parse_empty", start_date=datetime(2026, 1, 1), schedule=None) as dag:
    for i in range(5):
        EmptyOperator(task_id=f"text_{i}")
        EmptyOperator(task_id=f"broadcast_{i}")
"""

CHILD = """
import json, runpy, sys, time
import airflow.sdk
from airflow.providers.standard.operators.empty import EmptyOperator
path, repeats = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(repeats):
    started = time.perf_counter()
    runpy.run_path(path)
    times.append(time.perf_counter() - started)
print(json.dumps(times))
"""


def _parse(path: Path, repeats: int) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(repeats)], capture_output=True, text=True, check=True
    )
    times: list[float] = json.loads(out.stdout.strip().splitlines()[-1])
    return times


def _importtime() -> float:
    """Cumulative µs of importing the operators module after ``airflow.sdk`` and ``EmptyOperator``."""
    code = (
        "import airflow.sdk\nfrom airflow.providers.standard.operators.empty import EmptyOperator\n"
        "import airflow_provider_waslah.operators.waslah"
    )
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    for line in out.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[2] == "airflow_provider_waslah.operators.waslah":
            return float(parts[1])
    raise RuntimeError("airflow_provider_waslah.operators.waslah not in -X importtime output")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--parses", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {_machine()}")
    import airflow_provider_waslah

    compileall.compile_dir(Path(airflow_provider_waslah.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory() as folder:
        waslah, empty = Path(folder, "dag_waslah.py"), Path(folder, "dag_empty.py")
        waslah.write_text(WASLAH_DAG)
        empty.write_text(EMPTY_DAG)
        first: dict[str, list[float]] = {"waslah": [], "empty": []}
        for number in range(args.processes):
            order = [("waslah", waslah), ("empty", empty)]
            for name, path in order if number % 2 == 0 else reversed(order):
                first[name].append(_parse(path, 1)[0])
        repeated = {"waslah": _parse(waslah, args.parses)[1:], "empty": _parse(empty, args.parses)[1:]}
        imports = [_importtime() for _ in range(5)]
    print(f"machine after: {_machine()}\n")
    ms = {name: statistics.median(values) * 1000 for name, values in first.items()}
    print(f"first parse in a fresh process ({args.processes} processes each, medians):")
    print(f"  Waslah DAG {ms['waslah']:.1f} ms, EmptyOperator DAG {ms['empty']:.1f} ms")
    print(f"  added by the provider: {ms['waslah'] - ms['empty']:.1f} ms")
    again = {name: statistics.median(values) * 1000 for name, values in repeated.items()}
    print(f"repeated parses in one process ({args.parses - 1} each, medians):")
    print(f"  Waslah DAG {again['waslah']:.2f} ms, EmptyOperator DAG {again['empty']:.2f} ms")
    print(f"  added per parse: {again['waslah'] - again['empty']:.2f} ms")
    print(
        f"-X importtime, airflow_provider_waslah.operators.waslah after airflow.sdk: "
        f"median {statistics.median(imports) / 1000:.1f} ms (runs: {', '.join(f'{x / 1000:.0f}' for x in imports)})"
    )


if __name__ == "__main__":
    main()
