"""The connection form's Test button and connection id, as the README describes them (issue 12).

From the real api-server app (a subprocess with this suite's AIRFLOW_HOME):

- ``[core] test_connection`` is ``Disabled`` unless set: ``GET /ui/config`` tells the UI so (the
  button is greyed out; ``Hidden`` removes it) and ``POST /api/v2/connections/test``, which the
  button calls, answers 403. Set to ``Enabled`` (``AIRFLOW__CORE__TEST_CONNECTION``), the same
  request tests a ``waslah`` connection: who owns the key, or what to fix.
- The form cannot pre-fill ``waslah_default``: the UI's connection-type metadata has a
  ``default_conn_name`` slot, but the api-server sends ``null`` there for every type.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.airflow

SCRIPT = """
import json, os, sys
from starlette.testclient import TestClient
from airflow.api_fastapi.app import create_app

base_url, api_key = sys.argv[1], sys.argv[2]
out = {}
with TestClient(create_app()) as client:
    token = client.get("/auth/token").json()["access_token"]
    headers = {"Authorization": "Bearer " + token}
    meta = client.get("/ui/connections/hook_meta", headers=headers)
    assert meta.status_code == 200, meta.text
    (waslah,) = [item for item in meta.json() if item["connection_type"] == "waslah"]
    out["default_conn_name"] = waslah["default_conn_name"]

    def test(password):
        body = {"connection_id": "waslah_default", "conn_type": "waslah", "host": base_url, "password": password}
        answer = client.post("/api/v2/connections/test", json=body, headers=headers)
        return {"status_code": answer.status_code, "body": answer.json()}

    def ui_setting():
        return client.get("/ui/config", headers=headers).json()["test_connection"]

    out["default_setting"] = ui_setting()
    out["default"] = test(api_key)
    os.environ["AIRFLOW__CORE__TEST_CONNECTION"] = "Enabled"  # what the README says to set
    out["enabled_setting"] = ui_setting()
    out["enabled"] = test(api_key)
    out["wrong_key"] = test("wsl_wrong_00000000000")
print("RESULT=" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def ui(airflow_db: Path, waslah_emulator_server: Any) -> dict[str, Any]:
    env = {**os.environ, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
    env.pop("AIRFLOW__CORE__TEST_CONNECTION", None)
    from airflow_provider_waslah.emulator.handle import EmulatorHandle

    handle = EmulatorHandle(waslah_emulator_server.origin)
    handle.reset()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, handle.base_url, handle.api_key],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT=")]
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT="))
    return result


def test_the_test_button_is_disabled_by_default(ui: dict[str, Any]) -> None:
    assert ui["default_setting"] == "Disabled"
    assert ui["default"]["status_code"] == 403
    assert "Testing connections is disabled" in ui["default"]["body"]["detail"]


def test_enabled_the_button_tests_a_waslah_connection(ui: dict[str, Any], waslah_emulator_server: Any) -> None:
    assert ui["enabled_setting"] == "Enabled"
    assert ui["enabled"]["status_code"] == 200
    assert ui["enabled"]["body"]["status"] is True
    assert ui["enabled"]["body"]["message"].startswith(f"Connected to {waslah_emulator_server.origin}/api/v1 as ")


def test_a_wrong_key_says_which_field_to_fix(ui: dict[str, Any]) -> None:
    answer = ui["wrong_key"]["body"]
    assert answer["status"] is False
    assert "API key tidak valid" in answer["message"]  # Waslah's own message
    assert '"API key" field' in answer["message"]


def test_the_form_cannot_prefill_the_connection_id(ui: dict[str, Any]) -> None:
    # If a later Airflow fills this in from the hook's default_conn_name, update the README's
    # "The connection" section: the form could then pre-fill waslah_default.
    assert ui["default_conn_name"] is None
