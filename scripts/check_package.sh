#!/usr/bin/env bash
# The package as a user gets it: build an sdist and a wheel, check them, install the wheel into a clean
# venv, find the provider in `airflow providers list`, then run the README's `airflow dags test` steps
# there (emulator included). Run by CI (.ci/run); needs only python3 and PyPI (installs build and twine).
#
#   scripts/check_package.sh                        # with apache-airflow==3.3.2
#   AIRFLOW_VERSION=3.1.8 scripts/check_package.sh  # another Airflow
#   KEEP=1 scripts/check_package.sh                 # keep the work folder (dist/, venvs) for a look
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
WORK="$(mktemp -d "${TMPDIR:-/tmp}/waslah-package-check.XXXXXX")"
STEPS_PID=""
started=$SECONDS

cleanup() {
  if [[ -n "$STEPS_PID" ]]; then # the README steps' process group: the emulator goes with it
    kill -- -"$STEPS_PID" 2>/dev/null || true
  fi
  if [[ "${KEEP:-0}" == "1" ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
say() { printf '==> %s (%ss)\n' "$*" "$((SECONDS - started))"; }
fail() {
  echo "check_package: $*" >&2
  exit 1
}

say "tools: build and twine in their own venv"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install --quiet --upgrade pip build twine

say "python -m build (sdist, then the wheel built from it)"
"$WORK/tools/bin/python" -m build --outdir "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 || {
  tail -30 "$WORK/build.log"
  fail "the build failed"
}
VERSION="$("$PYTHON" -c 'import re,sys; print(re.search(r"__version__ = \"([^\"]+)\"", open(sys.argv[1]).read())[1])' \
  "$ROOT/airflow_provider_waslah/__init__.py")"
SDIST="$WORK/dist/airflow_provider_waslah-$VERSION.tar.gz"
WHEEL="$WORK/dist/airflow_provider_waslah-$VERSION-py3-none-any.whl"
[[ -f "$SDIST" && -f "$WHEEL" ]] || fail "expected $(basename "$SDIST") and $(basename "$WHEEL"), got: $(ls "$WORK/dist")"

say "twine check --strict"
"$WORK/tools/bin/twine" check --strict "$SDIST" "$WHEEL"

say "contents: entry points in the wheel, changelog and license in both"
"$WORK/tools/bin/python" - "$SDIST" "$WHEEL" "$VERSION" <<'EOF'
import sys, tarfile, zipfile
sdist, wheel, version = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
info = f"airflow_provider_waslah-{version}.dist-info"
entry_points = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
for needed in ("apache_airflow_provider", "provider_info = airflow_provider_waslah:get_provider_info",
               "waslah_emulator = airflow_provider_waslah.emulator.pytest_plugin",
               "waslah_airflow = airflow_provider_waslah.testing",
               "waslah-emulator = airflow_provider_waslah.emulator.cli:main"):
    assert needed in entry_points, f"wheel entry points lack {needed!r}:\n{entry_points}"
assert "airflow_provider_waslah/testing.py" in names and f"{info}/licenses/LICENSE" in names, names
assert not [n for n in names if n.startswith(("tests/", "dags_examples/", "scripts/"))], "test files in the wheel"
members = tarfile.open(sdist).getnames()
root = f"airflow_provider_waslah-{version}"
for needed in ("CHANGELOG.rst", "LICENSE", "README.md", "pyproject.toml", "airflow_provider_waslah/__init__.py",
               "tests/conftest.py", "scripts/readme_block.py"):
    assert f"{root}/{needed}" in members, f"sdist lacks {needed}"
assert not [m for m in members if "/.venv" in m or "/.hypothesis" in m or "__pycache__" in m], "junk in the sdist"
print(f"wheel: {len(names)} files; sdist: {len(members)} files")
EOF

say "a clean venv: the wheel and apache-airflow==$AIRFLOW_VERSION"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
"$WORK/venv/bin/python" -m pip install --quiet "$WHEEL" "apache-airflow==$AIRFLOW_VERSION"

say "airflow providers list shows the provider"
export AIRFLOW_HOME="$WORK/airflow-home"
env -u AIRFLOW__CORE__DAGS_FOLDER AIRFLOW__CORE__LOAD_EXAMPLES=False \
  "$WORK/venv/bin/airflow" providers list -o json >"$WORK/providers.json" 2>"$WORK/providers.err" || {
  cat "$WORK/providers.err"
  fail "airflow providers list failed"
}
"$WORK/venv/bin/python" - "$WORK/providers.json" "$VERSION" <<'EOF'
import json, sys
providers = json.load(open(sys.argv[1]))
ours = [p for p in providers if p["package_name"] == "airflow-provider-waslah"]
assert ours, "airflow-provider-waslah is not in `airflow providers list`"
assert ours[0]["version"] == sys.argv[2], ours
print(f"airflow providers list: airflow-provider-waslah {ours[0]['version']}")
EOF
unset AIRFLOW_HOME

say "the README's airflow dags test steps, in the clean venv"
PROJECT="$WORK/project"
mkdir -p "$PROJECT/dags"
"$PYTHON" scripts/readme_block.py sales-report-dag >"$PROJECT/dags/sales_report.py"
"$PYTHON" scripts/readme_block.py dags-test >"$PROJECT/steps.sh"
WASLAH_PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(
  cd "$PROJECT"
  # A user's shell: the clean venv first on PATH, no Airflow settings from outside.
  for name in $(env | sed -n 's/^\(AIRFLOW[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$name"; done
  export PATH="$WORK/venv/bin:$PATH" WASLAH_PORT
  exec setsid timeout 300 bash -e steps.sh
) >"$WORK/steps.log" 2>&1 &
STEPS_PID=$!
if ! wait "$STEPS_PID"; then
  tail -40 "$WORK/steps.log"
  echo "--- emulator.log" && cat "$PROJECT/emulator.log" 2>/dev/null
  fail "the README's airflow dags test steps failed"
fi
grep -q "Waslah emulator stopped." "$PROJECT/emulator.log" || sleep 2
grep -q "Waslah emulator stopped." "$PROJECT/emulator.log" || fail "the README's kill %1 did not stop the emulator"
STEPS_PID=""
grep -E "DagRun Finished: dag_id=sales_report.*state=success" "$WORK/steps.log" >/dev/null ||
  fail "airflow dags test sales_report did not end in success"

say "package check passed: $(basename "$SDIST"), $(basename "$WHEEL") with apache-airflow==$AIRFLOW_VERSION"
