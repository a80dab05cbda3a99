#!/usr/bin/env bash
# The whole test suite on a fresh machine: makes a venv, installs the provider with its test
# extras and the Airflow version asked for, runs ruff, mypy and pytest.
#
#   scripts/test.sh                       # newest supported Airflow (3.3.2)
#   AIRFLOW_VERSION=3.1.8 scripts/test.sh # oldest supported Airflow
#   scripts/test.sh tests/client -k retry # extra arguments go to pytest
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

# --- redis-server: the shared rate budget's tests start their own (tests/redis_server.py) ---------
if ! command -v redis-server >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing redis-server (Debian package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "==> redis-server is missing and this is not root: tests/client/test_shared_budget.py will fail" >&2
  fi
fi
# --- end redis-server -------------------------------------------------------------------------------

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
