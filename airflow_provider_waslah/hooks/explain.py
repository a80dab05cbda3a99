"""What to change, added to the client's errors by the hooks, which know the Airflow connection.

The client is Airflow-free: its errors name the method, the path, the base URL it tried and
Waslah's own message, but not the connection they came from. The hooks catch every
:class:`~airflow_provider_waslah.client.errors.WaslahError` once, in their ``call`` (sync and
async), and set its ``hint``: which connection, which form field, what to do. Waslah's message
is kept as it is (often Indonesian); the hint is English.

For ``instance_not_found`` the hook makes one extra ``GET /instances`` (only then) so the hint can
list the instance keys the API key can see; :func:`instances_note` words its outcome, and a
failed lookup never replaces the original error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_waslah.client.errors import (
    WaslahConnectionError,
    WaslahError,
    WaslahForbiddenScopeError,
    WaslahInstanceNotFoundError,
    WaslahInvalidInputError,
    WaslahPlanFeatureRequiredError,
    WaslahResponseError,
    WaslahTimeoutError,
    WaslahUnauthorizedError,
)
from airflow_provider_waslah.client.models import Instance

#: The most instance keys a hint lists.
MAX_LISTED = 20


def needs_instance_list(error: BaseException) -> bool:
    """True for an error whose hint lists the visible instance keys (one ``GET /instances``)."""
    return isinstance(error, WaslahInstanceNotFoundError) and not error.hint


def instances_note(found: Sequence[Instance] | BaseException) -> str:
    """The hint's sentence about the instances the key can see, from the lookup's result or error."""
    if isinstance(found, WaslahForbiddenScopeError):
        return "Its API key may not list instances (scope instances:read), so the valid keys cannot be shown."
    if isinstance(found, BaseException):
        return f"Listing the instances this API key can see failed too ({type(found).__name__})."
    if not found:
        return "Its API key sees no instances: pair a phone in Waslah's dashboard (Instances) first."
    shown = ", ".join(f"{item.key} ({item.status})" for item in found[:MAX_LISTED])
    more = f" and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else ""
    return f"Instance keys its API key can see: {shown}{more}."


def hint_for(error: WaslahError, conn_id: str, base_url: str | None, instances: str | None = None) -> str | None:
    """The hint for ``error`` raised through connection ``conn_id``; ``None`` when there is nothing to add."""
    conn = f"connection {conn_id!r}"
    if isinstance(error, WaslahUnauthorizedError):
        return (
            f"Waslah refused the API key of {conn}: put a valid, unrevoked, unexpired wsl_… key from "
            "Waslah's dashboard (API Keys) in its \"API key\" field (the connection's password)."
        )
    if isinstance(error, WaslahInstanceNotFoundError):
        listing = f" {instances}" if instances else ""
        return f"Check instance_key: {conn} has no such instance.{listing}"
    if isinstance(error, WaslahForbiddenScopeError):
        return f"Add the missing scope to the API key of {conn} in Waslah's dashboard (API Keys), or use another key."
    if isinstance(error, WaslahPlanFeatureRequiredError):
        return f"The Waslah account of {conn} needs a higher plan for this (Waslah's dashboard, Billing)."
    if isinstance(error, WaslahTimeoutError):
        where = base_url or getattr(error, "base_url", None) or "Waslah"
        return (
            f'Check the "Base URL" field (host) of {conn}, or raise its "Timeout (seconds)" '
            f"(extra.timeout) if {where} is just slow."
        )
    if isinstance(error, WaslahResponseError):
        return f'Check the "Base URL" field (host) of {conn}: it should be the API root, e.g. https://waslah.id/api/v1.'
    if isinstance(error, WaslahConnectionError):
        where = base_url or error.base_url or "the base URL"
        return f'Check the "Base URL" field (host) of {conn}, and that {where} can be reached from this machine.'
    return None


def explain(error: WaslahError, conn_id: str, base_url: str | None, instances: str | None = None) -> WaslahError:
    """Set ``error.hint`` (and ``error.conn_id``) once; an error explained already is left as it is."""
    if error.hint or isinstance(error, WaslahInvalidInputError):
        return error
    error.conn_id = conn_id
    error.hint = hint_for(error, conn_id, base_url, instances)
    return error


def base_url_of(client: Any) -> str | None:
    """The client's base URL without any ``user:password@`` part (``None`` when there is no client yet)."""
    from airflow_provider_waslah.client._engine import url_without_userinfo

    url = getattr(client, "base_url", None)
    return url_without_userinfo(url) if isinstance(url, str) else None
