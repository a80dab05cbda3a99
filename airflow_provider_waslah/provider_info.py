"""The provider metadata Airflow reads through the ``apache_airflow_provider`` entry point.

Airflow 3.2+ builds the ``waslah`` connection form from ``conn-fields`` and
``ui-field-behaviour`` here, without importing the hook.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_waslah.plans import DEFAULT_PLAN, PLAN_LIMITS, PLAN_NAMES

_PACKAGE = "airflow_provider_waslah"
_BUDGETS = "/".join(str(limit) for limit in PLAN_LIMITS.values())
#: Versions before the current one, newest first (Airflow's provider.yaml convention); each has a
#: section in CHANGELOG.rst.
_EARLIER_VERSIONS = ("0.1.0",)


def _connection_type() -> dict[str, Any]:
    return {
        "connection-type": "waslah",
        "hook-class-name": f"{_PACKAGE}.hooks.waslah.WaslahHook",
        "hook-name": "Waslah",
        "conn-fields": {
            "plan": {
                "label": "Plan",
                "description": f"Your Waslah plan: sizes the per-minute rate limit ({_BUDGETS}).",
                "schema": {
                    "type": ["string", "null"],
                    "enum": list(PLAN_NAMES),
                    "default": DEFAULT_PLAN,
                },
            },
            "rate_limit_per_minute": {
                "label": "Rate limit per minute",
                "description": "Overrides the plan's budget (requests per minute for this key).",
                "schema": {"type": ["integer", "null"], "minimum": 1},
            },
            "timeout": {
                "label": "Timeout (seconds)",
                "description": "Seconds to wait for each request.",
                "schema": {"type": ["number", "null"], "default": 30, "minimum": 1},
            },
            "max_retries": {
                "label": "Max retries",
                "description": "Retries of reads and of sends that provably did not reach Waslah.",
                "schema": {"type": ["integer", "null"], "default": 3, "minimum": 0},
            },
            "webhook_secret": {
                "label": "Webhook secret",
                "description": "The secret from Waslah's dashboard, to verify webhook signatures.",
                "schema": {"type": ["string", "null"], "format": "password"},
            },
            "rate_limit_storage": {
                "label": "Shared rate limit storage",
                "description": (
                    "A redis:// or rediss:// URL: every worker process on every host takes its requests "
                    "from one budget for this key (needs airflow-provider-waslah[redis]). Empty: per process."
                ),
                "schema": {"type": ["string", "null"], "format": "password"},
            },
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login", "extra"],
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {
                "host": "https://waslah.id/api/v1",
                "password": "wsl_…",
                "plan": DEFAULT_PLAN,
                "timeout": "30",
                "max_retries": "3",
                "rate_limit_storage": "redis://:password@redis-host:6379/0",
            },
        },
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata (validated by Airflow against ``provider_info.schema.json``)."""
    from airflow_provider_waslah import __version__

    integration = "Waslah"
    return {
        "package-name": "airflow-provider-waslah",
        "name": "Waslah",
        "description": "Send WhatsApp messages through `Waslah <https://waslah.id>`__ from Airflow.",
        "versions": [__version__, *_EARLIER_VERSIONS],
        "integrations": [
            {
                "integration-name": integration,
                "external-doc-url": "https://waslah.id",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": integration, "python-modules": [f"{_PACKAGE}.hooks.waslah"]}],
        "operators": [
            {
                "integration-name": integration,
                "python-modules": [f"{_PACKAGE}.operators.waslah", f"{_PACKAGE}.operators.batch"],
            }
        ],
        "sensors": [{"integration-name": integration, "python-modules": [f"{_PACKAGE}.sensors.waslah"]}],
        "triggers": [
            {
                "integration-name": integration,
                "python-modules": [f"{_PACKAGE}.triggers.waslah", f"{_PACKAGE}.triggers.batch"],
            }
        ],
        "notifications": [
            f"{_PACKAGE}.notifications.waslah.WaslahNotifier",
            f"{_PACKAGE}.hitl.notifier.WaslahHITLNotifier",
        ],
        # No "plugins" key: Airflow loads a provider's plugins only with [core] lazy_discover_providers
        # = False (default True). The webhook receiver's plugin is registered through the
        # "airflow.plugins" entry point instead (pyproject.toml), which Airflow always loads.
        "connection-types": [_connection_type()],
    }
