"""The receiver reaches the api-server through the provider alone: listed as a plugin, mounted at /waslah.

The real api-server app (``airflow.api_fastapi.app.create_app``) runs in a subprocess with the
test AIRFLOW_HOME, so its configuration never leaks into other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.receiver.support import SECRET, delivery

pytestmark = pytest.mark.airflow

APP_SCRIPT = """
import json, sys
from starlette.testclient import TestClient
from airflow.api_fastapi.app import create_app

deliveries = json.loads(sys.argv[1])
out = {}
with TestClient(create_app(), raise_server_exceptions=False) as client:
    for name, (path, body, headers) in deliveries.items():
        response = client.post(path, content=body.encode(), headers=headers)
        out[name] = [response.status_code, response.json()]
    for path in ("/waslah/docs", "/waslah/openapi.json", "/waslah/webhook/waslah_plugin_test"):
        out["GET " + path] = [client.get(path).status_code, None]
    out["GET /api/v2/assets"] = [client.get("/api/v2/assets").status_code, None]
print("RESULT=" + json.dumps(out))
"""


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def api_server_answers(airflow_db: Path) -> dict[str, Any]:
    body, headers = delivery(event="message.status", data={"instance_key": "nobody-listens", "status": "read"})
    forged, forged_headers = delivery(secret="whsec_forger")
    deliveries = {
        "valid": ["/waslah/webhook/waslah_plugin_test", body.decode(), headers],
        "forged": ["/waslah/webhook/waslah_plugin_test", forged.decode(), forged_headers],
        "unknown": ["/waslah/webhook/waslah_nope", body.decode(), headers],
    }
    conn = {"conn_type": "waslah", "host": "http://127.0.0.1:1/api/v1", "extra": {"webhook_secret": SECRET}}
    env = {"AIRFLOW_CONN_WASLAH_PLUGIN_TEST": json.dumps(conn)}
    out = run([sys.executable, "-c", APP_SCRIPT, json.dumps(deliveries)], env)
    (line,) = [line for line in out.splitlines() if line.startswith("RESULT=")]
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT="))
    return result


def test_registered_by_entry_point_not_by_provider_info() -> None:
    """Provider-info plugins load only with [core] lazy_discover_providers = False; both would register twice."""
    from importlib.metadata import entry_points

    from airflow_provider_waslah import get_provider_info

    assert "plugins" not in get_provider_info()
    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "waslah_webhook_receiver"]
    assert entry.value == "airflow_provider_waslah.plugins.webhook_receiver:WaslahWebhookReceiverPlugin"


def test_listed_as_a_plugin_of_the_provider(airflow_db: Path) -> None:
    plugins = json.loads(run([sys.executable, "-m", "airflow", "plugins", "-o", "json"], {}))
    (ours,) = [p for p in plugins if p["name"] == "waslah_webhook_receiver"]
    (app,) = ours["fastapi_apps"]
    assert (app["url_prefix"], app["name"]) == ("/waslah", "Waslah webhook receiver")
    assert "airflow-provider-waslah" in ours["source"]


def test_mounted_on_the_api_server_without_login(api_server_answers: dict[str, Any]) -> None:
    status, answer = api_server_answers["valid"]
    # Verified against the connection's secret with no Airflow token; no DAG schedules on the asset.
    assert (status, answer["stored"], answer["reason"]) == (200, False, "no_dag_schedules_on_asset")
    assert answer["asset"] == "waslah://waslah_plugin_test/nobody-listens/message.status"
    assert api_server_answers["forged"][0] == 401
    assert api_server_answers["forged"][1]["error"] == "signature_mismatch"
    assert api_server_answers["unknown"][0] == 404


def test_nothing_else_is_served_and_airflow_keeps_its_auth(api_server_answers: dict[str, Any]) -> None:
    assert api_server_answers["GET /waslah/docs"][0] == 404
    assert api_server_answers["GET /waslah/openapi.json"][0] == 404
    assert api_server_answers["GET /waslah/webhook/waslah_plugin_test"][0] == 405
    assert api_server_answers["GET /api/v2/assets"][0] in (401, 403)
