"""The provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata (validated by Airflow against ``provider_info.schema.json``)."""
    return {
        "package-name": "airflow-provider-waslah",
        "name": "Waslah",
        "description": "Send WhatsApp messages through Waslah from Airflow.",
        "versions": ["0.1.0"],
    }
