#!/usr/bin/env bash
# What the CeleryExecutor tests (tests/cluster) need, installed only when missing:
#   - PostgreSQL and Redis servers from Debian's packages (apt-get update + install, as root);
#   - the Python packages of the project's `cluster` extra (Celery provider, celery[redis],
#     psycopg2-binary, asyncpg), pinned to the venv's installed Airflow so pip never changes it.
# The tests start their own servers on free ports with throwaway data; nothing is started here.
#
#   scripts/cluster_services.sh                    # servers, then the extra into the current python's venv
#   scripts/cluster_services.sh .venv/bin/python   # ... into that venv
#   scripts/cluster_services.sh --servers-only     # servers only (scripts/test.sh: `pip install .[test]` has the extra)
set -euo pipefail
cd "$(dirname "$0")/.."

servers_only=0
python=""
for arg in "$@"; do
  case "$arg" in
    --servers-only) servers_only=1 ;;
    *) python="$arg" ;;
  esac
done

# --- servers --------------------------------------------------------------------------------------
# Debian keeps initdb and postgres in /usr/lib/postgresql/<version>/bin, off PATH (tests/cluster/services.py
# looks there too).
have_postgres() { command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
missing=()
have_postgres || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ((${#missing[@]})); then
  if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "cluster_services: ${missing[*]} missing; install the Debian package(s) as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "==> installing ${missing[*]} (Debian packages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# PostgreSQL refuses to run as root: as root, the tests run it as the `postgres` user the package creates.
if [[ "$(id -u)" == "0" ]] && ! id postgres >/dev/null 2>&1; then
  echo "cluster_services: PostgreSQL is installed but there is no 'postgres' user to run it as" >&2
  exit 1
fi
[[ "$servers_only" == "1" ]] && exit 0

# --- Python packages (the `cluster` extra of pyproject.toml) ---------------------------------------
python="${python:-$(command -v python || command -v python3)}"
mapfile -t requirements < <("$python" - <<'EOF'

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

with open("pyproject.toml", "rb") as handle:
    extras = tomllib.load(handle)["project"]["optional-dependencies"]
from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import Requirement

for text in extras["cluster"]:
    requirement = Requirement(text)
    try:
        if requirement.specifier.contains(version(requirement.name), prereleases=True):
            continue  # already there, in a version the extra accepts
    except PackageNotFoundError:
        pass
    print(text)
EOF
)
if ((${#requirements[@]} == 0)); then
  exit 0
fi
airflow_version="$("$python" -c 'from importlib.metadata import version; print(version("apache-airflow"))')"
echo "==> installing ${requirements[*]} (with apache-airflow==${airflow_version} kept)"
"$python" -m pip install --quiet "apache-airflow==${airflow_version}" "${requirements[@]}"
