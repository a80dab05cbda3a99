"""Compatibility imports: the emulator's state model, split into one module per concern.

:class:`EmulatorState` lives in ``state.py`` (its module docstring explains the parts and the
time model), the records in ``entities.py``, plans and scopes in ``plans.py``, the default seed
in ``seed.py`` and request-body parsing in ``body.py``. Import from those in new code.
"""

from __future__ import annotations

from airflow_provider_waslah.emulator.body import parse_json_object
from airflow_provider_waslah.emulator.broadcasts import MAX_BROADCASTS_LISTED
from airflow_provider_waslah.emulator.defaults import DEFAULT_API_KEY, DEFAULT_INSTANCE_KEY
from airflow_provider_waslah.emulator.entities import (
    ApiKey,
    AuthContext,
    Broadcast,
    Delivery,
    Fault,
    Instance,
    Message,
    RateWindow,
    Upload,
    User,
    WebhookEndpoint,
    iso,
)
from airflow_provider_waslah.emulator.plans import (
    ALL_SCOPES,
    PLANS,
    REST_FEATURE,
    SCHEDULE_FEATURE,
    WEBHOOK_FEATURE,
    plan_label,
)
from airflow_provider_waslah.emulator.seed import DEFAULT_SEED
from airflow_provider_waslah.emulator.state import EmulatorState

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_API_KEY",
    "DEFAULT_INSTANCE_KEY",
    "DEFAULT_SEED",
    "MAX_BROADCASTS_LISTED",
    "PLANS",
    "REST_FEATURE",
    "SCHEDULE_FEATURE",
    "WEBHOOK_FEATURE",
    "ApiKey",
    "AuthContext",
    "Broadcast",
    "Delivery",
    "EmulatorState",
    "Fault",
    "Instance",
    "Message",
    "RateWindow",
    "Upload",
    "User",
    "WebhookEndpoint",
    "iso",
    "parse_json_object",
    "plan_label",
]
