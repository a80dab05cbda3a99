"""Registration: the provider info validates, Airflow lists the provider, its connection type and hook,
and the connection form reaches the UI the way the UI reads it (``GET /ui/connections/hook_meta``).

Airflow commands and the api-server app run in subprocesses with the test AIRFLOW_HOME, so their
configuration (auth manager, providers cache) never leaks into other tests.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from importlib.metadata import distribution, entry_points
from pathlib import Path
from typing import Any

import airflow
import jsonschema
import pytest

import airflow_provider_waslah
from airflow_provider_waslah import get_provider_info
from tests.airflow_support import AIRFLOW_3_2_PLUS

DECLARATIVE_FORM = AIRFLOW_3_2_PLUS
DIST = "airflow-provider-waslah"


def run_airflow(*args: str, env: dict[str, str] | None = None) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_provider_info_validates_against_airflows_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_provider_info_names_the_distribution_and_its_version() -> None:
    info = get_provider_info()
    dist = distribution(DIST)
    assert info["package-name"] == dist.metadata["Name"] == DIST
    assert info["versions"][0] == dist.version == airflow_provider_waslah.__version__
    (entry,) = [e for e in entry_points(group="apache_airflow_provider") if e.dist and e.dist.name == DIST]
    assert entry.load() is get_provider_info


def test_every_listed_module_and_class_imports() -> None:
    info = get_provider_info()
    modules = [
        m
        for kind in ("hooks", "operators", "sensors", "triggers")
        for item in info[kind]
        for m in item["python-modules"]
    ]
    assert len(modules) == 6
    assert "airflow_provider_waslah.operators.batch" in modules and "airflow_provider_waslah.triggers.batch" in modules
    for module in modules:
        importlib.import_module(module)
    paths = [info["connection-types"][0]["hook-class-name"], *info["notifications"]]
    for path in paths:
        module, _, name = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type), path


def test_connection_type_declares_the_form() -> None:
    (conn_type,) = get_provider_info()["connection-types"]
    assert (conn_type["connection-type"], conn_type["hook-name"]) == ("waslah", "Waslah")
    assert conn_type["hook-class-name"] == "airflow_provider_waslah.hooks.waslah.WaslahHook"
    assert set(conn_type["conn-fields"]) == {
        "plan",
        "rate_limit_per_minute",
        "timeout",
        "max_retries",
        "webhook_secret",
        "rate_limit_storage",
    }
    behaviour = conn_type["ui-field-behaviour"]
    assert sorted(behaviour["hidden-fields"]) == ["extra", "login", "port", "schema"]
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API key"}


def test_airflow_cli_lists_the_provider_and_its_hook(airflow_db: Path) -> None:
    providers = json.loads(run_airflow("providers", "list", "-o", "json"))
    (ours,) = [p for p in providers if p["package_name"] == DIST]
    assert ours["version"] == airflow_provider_waslah.__version__
    assert "WhatsApp" in ours["description"]

    hooks = json.loads(run_airflow("providers", "hooks", "-o", "json"))
    (hook,) = [h for h in hooks if h["connection_type"] == "waslah"]
    assert hook == {
        "connection_type": "waslah",
        "class": "airflow_provider_waslah.hooks.waslah.WaslahHook",
        "conn_id_attribute_name": "waslah_conn_id",
        "package_name": DIST,
        "hook_name": "Waslah",
    }

    got = json.loads(run_airflow("providers", "get", DIST, "-o", "json"))
    assert got == [{"Provider": DIST, "Version": airflow_provider_waslah.__version__}]


HOOK_META_SCRIPT = """
import json
from starlette.testclient import TestClient
from airflow.api_fastapi.app import create_app
from airflow.providers_manager import ProvidersManager

with TestClient(create_app()) as client:
    # All users are admins; the token endpoint hands one out (3.1 requires it, 3.2+ accepts it).
    token = client.get("/auth/token").json()["access_token"]
    response = client.get("/ui/connections/hook_meta", headers={"Authorization": "Bearer " + token})
    assert response.status_code == 200, response.text
    waslah = [item for item in response.json() if item["connection_type"] == "waslah"]
    behaviour = ProvidersManager().field_behaviours.get("waslah")
print("HOOK_META=" + json.dumps({"meta": waslah, "behaviour": behaviour}))
"""


@pytest.fixture(scope="module")
def hook_meta(airflow_db: Path) -> dict[str, Any]:
    """What the UI's connection form reads, from the real api-server app."""
    out = run_airflow_python(HOOK_META_SCRIPT, {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"})
    (line,) = [line for line in out.splitlines() if line.startswith("HOOK_META=")]
    data: dict[str, Any] = json.loads(line.removeprefix("HOOK_META="))
    return data


def run_airflow_python(script: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_connection_form_in_the_ui(hook_meta: dict[str, Any]) -> None:
    (meta,) = hook_meta["meta"]
    assert (meta["hook_class_name"], meta["hook_name"]) == ("airflow_provider_waslah.hooks.waslah.WaslahHook", "Waslah")
    if not DECLARATIVE_FORM:
        # Airflow 3.1 reads forms only from the hook's wtforms methods (not installed): the UI shows
        # the generic form (host, login, password, port, schema, extra as JSON), and the extras are typed by hand.
        assert meta["standard_fields"] is None
        assert meta["extra_fields"] is None
        assert hook_meta["behaviour"] is None
        return
    standard = meta["standard_fields"]
    assert standard["password"] == {"hidden": False, "title": "API key", "placeholder": "wsl_…"}
    assert standard["host"] == {"hidden": False, "title": "Base URL", "placeholder": "https://waslah.id/api/v1"}
    for hidden in ("url_schema", "port", "login"):
        assert standard[hidden]["hidden"] is True, hidden
    # hook_meta has no slot for `extra`: Airflow keeps the hidden list the provider declared, but the
    # 3.3 UI still offers the "Extra Fields JSON" editor (see docs/connection-form-standard.png).
    assert "extra" in hook_meta["behaviour"]["hidden_fields"]
    assert "extra" not in standard

    extra = meta["extra_fields"]
    assert set(extra) == {
        "plan",
        "rate_limit_per_minute",
        "timeout",
        "max_retries",
        "webhook_secret",
        "rate_limit_storage",
    }
    plan = extra["plan"]
    assert plan["schema"]["enum"] == ["free", "basic", "pro", "enterprise"]
    assert (plan["schema"]["title"], plan["value"]) == ("Plan", "pro")
    assert extra["webhook_secret"]["schema"]["format"] == "password"
    assert extra["webhook_secret"]["schema"]["title"] == "Webhook secret"
    secret = [name for name, field in extra.items() if field["schema"].get("format") == "password"]
    assert secret == ["webhook_secret", "rate_limit_storage"]  # a redis:// URL may carry a password
    assert extra["rate_limit_per_minute"]["schema"]["type"] == ["integer", "null"]
    assert (extra["timeout"]["value"], extra["max_retries"]["value"]) == (30, 3)
