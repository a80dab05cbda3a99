"""Airflow-free Waslah API client: models, errors, input rules, sync and async clients.

Importing this package does not import httpx; the clients load it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_waslah.client.errors import (
    WaslahAPIError,
    WaslahConnectionError,
    WaslahEngineUnavailableError,
    WaslahError,
    WaslahForbiddenScopeError,
    WaslahInstanceNotConnectedError,
    WaslahInstanceNotFoundError,
    WaslahInvalidInputError,
    WaslahNotFoundError,
    WaslahNoValidRecipientsError,
    WaslahPlanFeatureRequiredError,
    WaslahRateLimitError,
    WaslahResponseError,
    WaslahSendOutcomeUnknownError,
    WaslahServerError,
    WaslahTimeoutError,
    WaslahTransportError,
    WaslahUnauthorizedError,
    WaslahUnsupportedMediaTypeError,
    WaslahValidationError,
)

if TYPE_CHECKING:
    from airflow_provider_waslah.client.client import AsyncWaslahClient, WaslahClient

__all__ = [
    "AsyncWaslahClient",
    "WaslahAPIError",
    "WaslahClient",
    "WaslahConnectionError",
    "WaslahEngineUnavailableError",
    "WaslahError",
    "WaslahForbiddenScopeError",
    "WaslahInstanceNotConnectedError",
    "WaslahInstanceNotFoundError",
    "WaslahInvalidInputError",
    "WaslahNoValidRecipientsError",
    "WaslahNotFoundError",
    "WaslahPlanFeatureRequiredError",
    "WaslahRateLimitError",
    "WaslahResponseError",
    "WaslahSendOutcomeUnknownError",
    "WaslahServerError",
    "WaslahTimeoutError",
    "WaslahTransportError",
    "WaslahUnauthorizedError",
    "WaslahUnsupportedMediaTypeError",
    "WaslahValidationError",
]


def __getattr__(name: str) -> Any:
    if name in ("WaslahClient", "AsyncWaslahClient"):
        from airflow_provider_waslah.client import client

        return getattr(client, name)
    raise AttributeError(name)
