"""Apache Airflow provider for Waslah, the Indonesian WhatsApp gateway."""

from __future__ import annotations

__version__ = "0.2.0"

from airflow_provider_waslah.provider_info import get_provider_info

__all__ = ["__version__", "get_provider_info"]
