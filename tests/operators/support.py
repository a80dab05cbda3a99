"""Shared by the operator and notifier tests: a fresh API key per test, DAG source helpers."""

from __future__ import annotations

from typing import Any

from tests.airflow_support import AIRFLOW_3_2_PLUS, AIRFLOW_3_3_PLUS

__all__ = ["AIRFLOW_3_2_PLUS", "AIRFLOW_3_3_PLUS"]


#: Imports every test DAG starts with.
DAG_HEADER = """
from datetime import datetime, timedelta, timezone
from airflow.sdk import DAG, task
from airflow_provider_waslah.operators.waslah import (
    WaslahBroadcastOperator,
    WaslahSendMediaOperator,
    WaslahSendMessageOperator,
    WaslahSendTextOperator,
)
from airflow_provider_waslah.notifications.waslah import WaslahNotifier, send_waslah_notification
"""


def dag_source(body: str) -> str:
    """A DAG file: the shared imports, then ``body`` (already dedented)."""
    return DAG_HEADER + body


def numbers(count: int, prefix: str = "6281300") -> list[str]:
    """``count`` distinct reachable numbers in Waslah's ``62…`` form."""
    return [f"{prefix}{index:06d}" for index in range(count)]


def api_requests(emulator: Any) -> list[dict[str, Any]]:
    """The API requests the emulator received (the control API is not logged)."""
    return emulator.api_requests(path="/api/v1/*")  # type: ignore[no-any-return]
