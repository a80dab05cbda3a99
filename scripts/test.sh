#!/usr/bin/env bash
# The whole test suite on a fresh machine: makes a venv, installs the provider with its test
# extras and the Airflow version asked for, runs ruff, mypy and pytest.
#
#   scripts/test.sh                       # newest supported Airflow (3.3.2)
#   AIRFLOW_VERSION=3.1.8 scripts/test.sh # oldest supported Airflow
#   scripts/test.sh tests/client -k retry # extra arguments go to pytest
#   scripts/test.sh -m "not cluster"      # without the CeleryExecutor tests (tests/cluster, ~3 min)
set -euo pipefail
cd "$(dirname "$0")/.."

AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV="${VENV:-.venv-airflow-${AIRFLOW_VERSION}}"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "==> creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
echo "==> installing airflow-provider-waslah[test] with apache-airflow==${AIRFLOW_VERSION}"
"$VENV/bin/python" -m pip install --quiet -e ".[test]" "apache-airflow==${AIRFLOW_VERSION}"

# PostgreSQL and Redis servers (Debian packages, installed as root when missing; a no-op otherwise) for
# tests/cluster (CeleryExecutor) and the shared rate budget's tests, which start their own.
if ! ./scripts/cluster_services.sh --servers-only; then
  echo "==> without PostgreSQL and Redis, tests/cluster and the shared-budget tests fail (-m 'not cluster' skips the first)" >&2
fi

# The scheduler and the `airflow` CLI are started through PATH by some tests.
export PATH="$PWD/$VENV/bin:$PATH"

if [[ "${SKIP_LINT:-0}" != "1" ]]; then
  echo "==> ruff"
  "$VENV/bin/ruff" check airflow_provider_waslah tests dags_examples benchmarks scripts
  "$VENV/bin/ruff" format --check airflow_provider_waslah tests dags_examples benchmarks scripts
  echo "==> mypy"
  "$VENV/bin/mypy"
fi

echo "==> pytest (Airflow ${AIRFLOW_VERSION})"
"$VENV/bin/python" -m pytest "$@"
