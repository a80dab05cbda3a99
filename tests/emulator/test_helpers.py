"""The emulator's test helpers and the one plan table everyone reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from airflow_provider_waslah import plans
from airflow_provider_waslah.client import ratelimit
from airflow_provider_waslah.emulator import (
    UNREACHABLE_NUMBER,
    UNREACHABLE_PATTERN,
    EmulatorHandle,
    unreachable_number,
    wait_until,
)
from airflow_provider_waslah.emulator.settings import DEFAULT_SEED
from airflow_provider_waslah.provider_info import get_provider_info

SEND_TEXT = {"instance_key": "demo", "to": "081234567890", "text": "Halo dari API"}


def test_one_plan_table() -> None:
    assert ratelimit.PLAN_LIMITS is plans.PLAN_LIMITS
    assert dict(plans.PLAN_LIMITS) == {"free": 60, "basic": 300, "pro": 1000, "enterprise": 5000}
    assert dict(DEFAULT_SEED.settings.plan_limits) == dict(plans.PLAN_LIMITS)
    assert DEFAULT_SEED.settings.plan_features == {
        "REST API access": ("pro", "enterprise"),
        "Schedule message": ("basic", "pro", "enterprise"),
        "Webhooks": ("basic", "pro", "enterprise"),
    }
    (connection,) = get_provider_info()["connection-types"]
    plan = connection["conn-fields"]["plan"]
    assert plan["schema"]["enum"] == list(plans.PLAN_NAMES)
    assert "(60/300/1000/5000)" in plan["description"]


def test_unreachable_numbers(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    assert UNREACHABLE_NUMBER == unreachable_number() == "6289991234567"
    assert unreachable_number(1) == "6289990000001" and UNREACHABLE_PATTERN == "628999*"
    with pytest.raises(ValueError):
        unreachable_number(10**7)
    numbers = [UNREACHABLE_NUMBER, unreachable_number(0), unreachable_number(9_999_999)]
    ids = [api.post("/messages/text", json={**SEND_TEXT, "to": n}).json()["data"]["id"] for n in numbers]
    wait_until(lambda: all(api.get(f"/messages/{i}").json()["data"]["status"] == "failed" for i in ids))


def test_api_requests_filters_the_request_log(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    other = waslah_emulator.new_key()
    api.get("/me")
    api.post("/messages/text", json=SEND_TEXT)
    httpx.get(f"{other.base_url}/instances/demo", headers=other.headers)
    log = waslah_emulator.api_requests()
    assert [(r["method"], r["path"]) for r in log] == [
        ("GET", "/api/v1/me"),
        ("POST", "/api/v1/messages/text"),
        ("GET", "/api/v1/instances/demo"),
    ]
    assert [r["path"] for r in waslah_emulator.api_requests("get")] == ["/api/v1/me", "/api/v1/instances/demo"]
    assert [r["path"] for r in waslah_emulator.api_requests(path="/api/v1/messages/*")] == ["/api/v1/messages/text"]
    assert [r["path"] for r in waslah_emulator.api_requests(key=waslah_emulator.api_key)] == [
        "/api/v1/me",
        "/api/v1/messages/text",
    ]
    assert [r["path"] for r in other.api_requests(key=other.api_key)] == ["/api/v1/instances/demo"]
    assert all(r["fault"] is None for r in log)


def test_conn_fixture_points_waslah_default_at_a_fresh_key(waslah_emulator_conn: EmulatorHandle) -> None:
    connection = json.loads(os.environ["AIRFLOW_CONN_WASLAH_DEFAULT"])
    assert connection["password"] == waslah_emulator_conn.api_key != "wsl_demo_0123456789abcdef"
    assert connection["host"] == waslah_emulator_conn.base_url
    me = httpx.get(f"{waslah_emulator_conn.base_url}/me", headers=waslah_emulator_conn.headers)
    assert me.json()["data"]["api_key"]["prefix"] == waslah_emulator_conn.api_key[:12]


def test_statuses_stay_in_order_whatever_the_lifecycle(api: httpx.Client, waslah_emulator: EmulatorHandle) -> None:
    waslah_emulator.seed(lifecycle={"sent": 4.0, "delivered": 1.0, "read": 2.0}, time_scale=0.05)
    message_id = api.post("/messages/text", json=SEND_TEXT).json()["data"]["id"]
    seen: list[str] = []

    def read() -> bool:
        status = api.get(f"/messages/{message_id}").json()["data"]["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        return status == "read"

    wait_until(read, timeout=5, interval=0.01)
    # Delivered and read before sent is impossible: all three happen when it is sent, after 4 s.
    assert seen == ["pending", "read"]
    time.sleep(0.1)
    data = api.get(f"/messages/{message_id}").json()["data"]
    assert data["status"] == "read" and data["sent_at"] is not None


def test_cli_refuses_a_bad_seed_file(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"time_scale": -1, "users": [{"id": 1, "plan": "gold"}]}))
    done = subprocess.run(
        [sys.executable, "-m", "airflow_provider_waslah.emulator", "--port", "0", "--seed-file", str(seed)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "time_scale" in done.stderr and "users[0].plan" in done.stderr
